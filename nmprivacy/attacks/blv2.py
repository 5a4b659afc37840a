"""BrainLeaks-v2: population-based search over Bernoulli spike probabilities (spec Algorithm 1).

State ``X_p`` is ``[K, T, *input_shape]`` in [0, 1]. Each iteration draws ``P`` binary samples
per class (``[K, P, T, ...]``, all ``K * P`` in one forward/backward), weights their surrogate
gradients by ``e^{-L_i}`` normalised over the population (paper) or ``L_i / sum L_j``
(reference), and takes an RMSProp-with-momentum step. Only the weighted sum of the gradients is
needed, so the oracle forms it directly (``population_gradient``: one input-gradient matmul per
class, not per sample); the sparsity term's gradient ``xi / voxels`` is the same for every sample
and is added once, times the weights' sum. negatives are clamped to 0 and a class
whose maximum exceeds 1 is divided by it. The returned X_p is, per class, the best one seen
(``keep="best"``: highest mean population confidence) or the last (``keep="last"``); the
reconstruction is one Bernoulli sample of it.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from nmprivacy.attacks.base import Inversion
from nmprivacy.attacks.common import OracleFactory, SpikingAttack, Timer, default_oracle, torch_threads
from nmprivacy.attacks.layout import from_model_layout, to_model_layout
from nmprivacy.attacks.oracle import oracle_lanes, population_gradient
from nmprivacy.attacks.threads import SerialPool, chunks, run_parts
from nmprivacy.encoding import bernoulli_spikes
from nmprivacy.models.base import TargetModel
from nmprivacy.presets import BLv2Settings


@dataclass
class BLv2State:
    """Optimiser state of BL-v2, each ``[K, T, *input_shape]``: X_p, accumulator r, momentum nu."""

    xp: torch.Tensor
    r: torch.Tensor
    nu: torch.Tensor


def population_weights(losses: torch.Tensor, variant: str) -> torch.Tensor:
    """Weights ``[K, P]`` of each population member from its loss ``[K, P]`` (rows sum to 1)."""
    if variant == "paper":
        return torch.softmax(-losses, dim=1)  # e^{-L_i} / sum_j e^{-L_j}
    if variant == "reference":
        return losses / losses.sum(dim=1, keepdim=True).clamp_min(1e-30)
    raise ValueError(f"unknown BL-v2 variant {variant!r}")


def blv2_update_(state: BLv2State, g: torch.Tensor, settings: BLv2Settings) -> BLv2State:
    """One BL-v2 step, in place on ``state`` (returned), from the population-weighted gradient
    ``g`` ``[K, T, ...]`` of the full loss (``sum_i w_i dL_i/dx_i`` with :func:`population_weights`).
    In place because fresh 0.8 MB temporaries cost a page-faulting allocation each (MNIST: 2 ms
    of a 40 ms iteration)."""
    if settings.accumulator == "rmsprop":  # r <- rho r + (1 - rho) g^2
        state.r.mul_(settings.rho)
    elif settings.accumulator == "unbounded":  # r <- r + rho r + (1 - rho) g^2
        state.r.mul_(1 + settings.rho)
    else:
        raise ValueError(f"unknown BL-v2 accumulator {settings.accumulator!r}")
    state.r.addcmul_(g, g, value=1 - settings.rho)
    state.nu.mul_(settings.momentum).add_(g)
    step = state.r.sqrt().add_(settings.eps).reciprocal_().mul_(state.nu)  # nu / (sqrt(r) + eps)
    xp = state.xp.add_(step, alpha=-settings.lr).clamp_min_(0.0)
    peak = xp.reshape(xp.shape[0], -1).max(dim=1).values
    xp.div_(peak.clamp_min(1.0).reshape(-1, *([1] * (xp.dim() - 1))))  # classes whose maximum exceeds 1
    return state


def class_generator(seed: int, target: int) -> np.random.Generator:
    """The generator of class ``target``'s population samples in a run with ``seed`` (numpy PCG64:
    its float32 uniforms cost 0.56 of torch's)."""
    return np.random.Generator(np.random.PCG64(int(seed) * 65537 + int(target) + 1))


class PopulationSampler:
    """Draws the ``P`` binary samples of each class's X_p, ``[K, P, T, ...]`` from ``[K, T, ...]``.

    Class ``k`` has its own generator, seeded from ``(seed, class)``: a class's samples do not
    depend on which other classes are attacked nor on how many threads draw them. Classes are
    split across ``workers`` threads (the uniform draws are a tenth of an MNIST iteration on one
    thread) and the sample buffer is reused (a fresh 5.5 MB tensor page-faults: 5 vs 3.4 ms)."""

    def __init__(self, classes: torch.Tensor, seed: int, population: int, shape: tuple[int, ...], workers: int) -> None:
        self.generators = [class_generator(seed, c) for c in classes.tolist()]
        self.buffer = torch.empty((len(self.generators), population, *shape))
        self.parts = chunks(len(self.generators), -(-len(self.generators) // max(1, workers)))
        self.pool = SerialPool(len(self.parts), "nmprivacy-sampler")

    def draw(self, xp: torch.Tensor) -> torch.Tensor:
        """Samples ``[K, P, T, ...]`` of ``xp`` ``[K, T, ...]`` (a buffer overwritten by the next call)."""

        def part(_: int, classes: slice) -> None:
            for k in range(classes.start, classes.stop):
                bernoulli_spikes(xp[k].unsqueeze(0), self.generators[k], out=self.buffer[k])

        self.pool.map(part, self.parts)
        return self.buffer


class BrainLeaksV2(SpikingAttack):
    """BrainLeaks-v2 on a spiking model; ``run`` attacks all classes x population in one batch."""

    name = "bl-v2"
    settings: BLv2Settings

    def __init__(self, settings: BLv2Settings = BLv2Settings(), oracle: OracleFactory = default_oracle, steps: int | None = None) -> None:
        super().__init__(settings, oracle, steps)

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion:
        """Invert ``model`` for ``classes``; ``probabilities`` holds X_p, ``reconstructions`` one sample of it.

        Classes are independent until the plateau stop, so with an oracle that has several lanes
        (``FastLIFOracle``) the classes are split into one part per lane and each part runs its
        own loop (draw, population gradient, update) on its own worker thread; the parts meet once
        per iteration, where the stop is decided over all classes. Results do not depend on the
        split: each class draws from its own generator (``class_generator``)."""
        s = self.settings
        run = self.start(model, classes, seed)
        targets, steps, gen, oracle = run.targets, run.steps, run.gen, run.oracle
        k, p = len(targets), s.population
        shape = (k, steps, *model.info.input_shape)
        state = BLv2State(xp=torch.full(shape, float(s.init)), r=torch.zeros(shape), nu=torch.zeros(shape))
        voxels = state.xp[0].numel()
        best_xp = state.xp.clone()
        best = torch.full((k,), -1.0)
        stale = torch.zeros(k, dtype=torch.long)
        losses, confs = torch.zeros(s.iterations, k), torch.zeros(s.iterations, k)
        lanes = min(oracle_lanes(oracle), k)
        parts = chunks(k, -(-k // lanes))
        sampler_workers = 1 if len(parts) > 1 else torch.get_num_threads()
        bar = tqdm(total=s.iterations, desc=self.name, leave=False)
        done, stop = 0, False

        def end_of_iteration() -> None:  # runs once per iteration, when every part has finished it
            nonlocal done, stop
            bar.update(1)
            bar.set_postfix(conf=f"{confs[done].mean():.3f}")
            done += 1
            stop = s.plateau_patience > 0 and bool((stale >= s.plateau_patience).all())

        barrier = threading.Barrier(len(parts), action=end_of_iteration)

        def part_loop(lane: int, part: slice) -> None:
            kp = part.stop - part.start
            sub = BLv2State(xp=state.xp[part], r=state.r[part], nu=state.nu[part])  # views: updated in place
            pop_targets = targets[part].repeat_interleave(p)
            sampler = PopulationSampler(targets[part], seed, p, shape[1:], sampler_workers)
            for it in range(s.iterations):
                samples = sampler.draw(sub.xp)
                density = s.sparsity * samples.reshape(kp, p, -1).mean(dim=2)  # sparsity term of each loss [k, P]
                out = population_gradient(
                    oracle,
                    to_model_layout(samples.reshape(kp * p, *shape[1:]), "spikes"),
                    pop_targets,
                    kp,
                    lambda loss, g, density=density: population_weights(loss.reshape(-1, p) + density[g], s.variant),
                    s.loss,
                    lane=lane if len(parts) > 1 else None,
                )
                g = from_model_layout(out.grad, "spikes") + (s.sparsity / voxels) * out.weights.sum(dim=1).reshape(kp, *([1] * len(shape[1:])))
                conf = out.probs.gather(1, pop_targets[:, None]).reshape(kp, p).mean(dim=1)
                better = conf > best[part]
                best_xp[part][better] = sub.xp[better]  # the X_p these samples were drawn from
                blv2_update_(sub, g, s)
                losses[it, part] = (out.loss.reshape(kp, p) + density).mean(dim=1)
                confs[it, part] = conf
                improved = conf > best[part] + s.plateau_tol
                best[part] = torch.where(better, conf, best[part])
                stale[part] = torch.where(improved, torch.zeros_like(stale[part]), stale[part] + 1)
                barrier.wait()
                if stop:
                    break

        timer = Timer()
        if len(parts) == 1:
            # an oracle with worker threads of its own (FastLIFOracle): this loop's tensor ops stay on one
            # thread, so none waits at an OpenMP barrier for a descheduled peer
            with torch_threads(1) if oracle_lanes(oracle) > 1 else nullcontext():
                part_loop(0, parts[0])
        else:
            run_parts(part_loop, parts, barrier)
        seconds = timer.elapsed()
        bar.close()
        iterations = done
        xp = best_xp if s.keep == "best" else state.xp
        return Inversion(
            attack=self.name,
            classes=targets.tolist(),
            reconstructions=bernoulli_spikes(xp, gen),
            loss_curve=losses[:iterations],
            confidence_curve=confs[:iterations],
            iterations=iterations,
            seconds_per_iteration=seconds / max(iterations, 1),
            seed=seed,
            probabilities=xp,
            config={**asdict(s), "steps": steps},
        )
