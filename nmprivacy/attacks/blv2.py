"""BrainLeaks-v2: population-based search over Bernoulli spike probabilities (the paper's Algorithm 1,
docs/method.md §5.2).

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

The algorithm is ``BLv2Search`` (its state), ``blv2_iteration`` (one step) and
``BLv2Search.plateaued`` (the stop rule); ``nmprivacy.attacks.executor`` runs it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from nmprivacy.attacks.base import AttackInfo, GradientOracle, Inversion
from nmprivacy.attacks.common import OracleFactory, SpikingAttack, default_oracle, oracle_name
from nmprivacy.attacks.executor import ClassParts, Step
from nmprivacy.attacks.layout import from_model_layout, to_model_layout
from nmprivacy.attacks.oracle import population_gradient
from nmprivacy.attacks.threads import SerialPool, chunks
from nmprivacy.encoding import bernoulli_spikes
from nmprivacy.models.base import TargetModel
from nmprivacy.attacks.state import BestSoFar, ClassState, per_class
from nmprivacy.presets import BLv2Settings, RMSPropStep


@dataclass
class BLv2State(ClassState):
    """Optimiser state of BL-v2, each ``[K, T, *input_shape]``: X_p, accumulator r, momentum nu
    (also the query attack's, over its rate parameters)."""

    xp: torch.Tensor = per_class()
    r: torch.Tensor = per_class()
    nu: torch.Tensor = per_class()

    @classmethod
    def start(cls, shape: tuple[int, ...], init: float) -> "BLv2State":
        """X_p = ``init`` everywhere, r = nu = 0, each of ``shape``."""
        return cls(xp=torch.full(shape, float(init)), r=torch.zeros(shape), nu=torch.zeros(shape))


def population_weights(losses: torch.Tensor, variant: str) -> torch.Tensor:
    """Weights ``[K, P]`` of each population member from its loss ``[K, P]`` (rows sum to 1)."""
    if variant == "paper":
        return torch.softmax(-losses, dim=1)  # e^{-L_i} / sum_j e^{-L_j}
    if variant == "reference":
        return losses / losses.sum(dim=1, keepdim=True).clamp_min(1e-30)
    raise ValueError(f"unknown BL-v2 variant {variant!r}")


def blv2_update_(state: BLv2State, g: torch.Tensor, settings: RMSPropStep, lr: torch.Tensor | None = None) -> BLv2State:
    """One BL-v2 step, in place on ``state`` (returned), from the population-weighted gradient
    ``g`` ``[K, T, ...]`` of the full loss (``sum_i w_i dL_i/dx_i`` with :func:`population_weights`).
    ``lr`` ``[K]``: a step size per class instead of ``settings.lr`` (an automatic step rule's).
    In place because every fresh temporary of X_p's size costs a page-faulting allocation."""
    if settings.accumulator == "rmsprop":  # r <- rho r + (1 - rho) g^2
        state.r.mul_(settings.rho)
    elif settings.accumulator == "unbounded":  # r <- r + rho r + (1 - rho) g^2
        state.r.mul_(1 + settings.rho)
    else:
        raise ValueError(f"unknown BL-v2 accumulator {settings.accumulator!r}")
    state.r.addcmul_(g, g, value=1 - settings.rho)
    state.nu.mul_(settings.momentum).add_(g)
    step = state.r.sqrt().add_(settings.eps).reciprocal_().mul_(state.nu)  # nu / (sqrt(r) + eps)
    if lr is None:
        xp = state.xp.add_(step, alpha=-settings.lr).clamp_min_(0.0)
    else:
        xp = state.xp.sub_(step.mul_(lr.reshape(-1, *([1] * (step.dim() - 1))))).clamp_min_(0.0)
    peak = xp.reshape(xp.shape[0], -1).max(dim=1).values
    xp.div_(peak.clamp_min(1.0).reshape(-1, *([1] * (xp.dim() - 1))))  # classes whose maximum exceeds 1
    return state


def class_generator(seed: int, target: int) -> np.random.Generator:
    """The generator of class ``target``'s population samples in a run with ``seed`` (numpy PCG64:
    its float32 uniforms are cheaper than torch's)."""
    return np.random.Generator(np.random.PCG64(int(seed) * 65537 + int(target) + 1))


class PopulationSampler:
    """Draws the ``P`` binary samples of each class's X_p, ``[K, P, T, ...]`` from ``[K, T, ...]``.

    Class ``k`` has its own generator, seeded from ``(seed, class)``: a class's samples do not
    depend on which other classes are attacked nor on how many threads draw them. Classes are
    split across ``workers`` threads (the uniform draws are a noticeable share of an iteration on one
    thread) and the sample buffer is reused (a fresh tensor of the population's size page-faults)."""

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


@dataclass
class BLv2Search(ClassState):
    """Algorithm 1's state for the classes ``targets`` ``[k]``: the optimiser state (X_p, r, nu),
    the best X_p so far and the per-iteration record. Built for all classes (``start``); a part
    of them is a ``part`` of it, whose tensors are views of the whole."""

    targets: torch.Tensor = per_class()  # [k] attacked classes
    state: BLv2State = per_class()  # X_p, r, nu [k, T, *input_shape]
    best: BestSoFar = per_class()  # the X_p [k, T, ...] whose population scored the highest mean confidence, that confidence [k]
    losses: torch.Tensor = per_class(1)  # [iterations, k]: mean population loss (sparsity term included)
    confs: torch.Tensor = per_class(1)  # [iterations, k]: mean population confidence in the target class

    @classmethod
    def start(cls, targets: torch.Tensor, sample_shape: tuple[int, ...], settings: BLv2Settings) -> "BLv2Search":
        """X_p = ``settings.init`` everywhere, r = nu = 0, for samples of ``sample_shape`` ``(T, *input_shape)``."""
        k = len(targets)
        state = BLv2State.start((k, *sample_shape), settings.init)
        return cls(targets=targets, state=state, best=BestSoFar.start(state.xp), losses=torch.zeros(settings.iterations, k),
                   confs=torch.zeros(settings.iterations, k))

    def plateaued(self, patience: int) -> bool:
        """The stop rule: every class went ``patience`` iterations without improving (0: never)."""
        return patience > 0 and bool((self.best.stale >= patience).all())


def blv2_iteration(search: BLv2Search, it: int, samples: torch.Tensor, oracle: GradientOracle, settings: BLv2Settings,
                   lr: torch.Tensor | None = None) -> None:
    """Iteration ``it`` of Algorithm 1 on ``search`` (in place), given the population ``samples``
    ``[k, P, T, *input_shape]`` drawn from its X_p (docs/method.md, BrainLeaks-v2); ``lr`` ``[k]``:
    per-class step sizes instead of ``settings.lr``."""
    s = settings
    k, p, sample_shape = samples.shape[0], samples.shape[1], samples.shape[2:]
    voxels = math.prod(sample_shape)
    pop_targets = search.targets.repeat_interleave(p)
    # L_i = loss(X_i) + xi mean(X_i); weights w_i from the L_i; G = sum_i w_i dL_i/dX_i
    density = s.sparsity * samples.reshape(k, p, -1).mean(dim=2)  # [k, P]
    out = population_gradient(
        oracle,
        to_model_layout(samples.reshape(k * p, *sample_shape), "spikes"),
        pop_targets,
        k,
        lambda loss, groups: population_weights(loss.reshape(-1, p) + density[groups], s.variant),
        s.loss,
    )
    # the sparsity term's gradient xi / voxels is the same for every sample: added once, times sum_i w_i
    g = from_model_layout(out.grad, "spikes") + (s.sparsity / voxels) * out.weights.sum(dim=1).reshape(k, *([1] * len(sample_shape)))
    conf = out.probs.gather(1, pop_targets[:, None]).reshape(k, p).mean(dim=1)
    search.best.record(conf, search.state.xp, s.plateau_tol)  # the X_p these samples were drawn from
    blv2_update_(search.state, g, s, lr)
    search.losses[it] = (out.loss.reshape(k, p) + density).mean(dim=1)
    search.confs[it] = conf


class BrainLeaksV2(SpikingAttack):
    """BrainLeaks-v2 on a spiking model; ``run`` attacks all classes x population in one batch."""

    name = "bl-v2"
    info = AttackInfo(settings="bl_v2", settings_type=BLv2Settings, quick={"iterations": 5})
    settings: BLv2Settings

    def __init__(self, settings: BLv2Settings = BLv2Settings(), oracle: OracleFactory = default_oracle, steps: int | None = None) -> None:
        super().__init__(settings, oracle, steps)

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion:
        """Invert ``model`` for ``classes``; ``probabilities`` holds X_p, ``reconstructions`` one sample of it.

        Classes are independent until the plateau stop, so they run in parts (one per lane of the
        oracle, ``nmprivacy.attacks.executor``); results do not depend on the split: each class
        draws from its own generator (``class_generator``)."""
        s = self.settings
        run = self.start(model, classes, seed)
        sample_shape = (run.steps, *model.info.input_shape)
        search = BLv2Search.start(run.targets, sample_shape, s)
        parts = ClassParts(run.oracle, len(run.targets))
        steps = [self._part_step(search.part(part.classes), part.oracle, seed, sample_shape, parts.helpers) for part in parts.parts]
        done = parts.run(
            steps, s.iterations, stop=lambda it: search.plateaued(s.plateau_patience), desc=self.name,
            status=lambda it: {"conf": f"{search.confs[it].mean():.3f}"},
        )
        xp = search.best.point if s.keep == "best" else search.state.xp
        return Inversion(
            attack=self.name,
            classes=run.targets.tolist(),
            reconstructions=bernoulli_spikes(xp, run.gen),
            loss_curve=search.losses[: done.iterations],
            confidence_curve=search.confs[: done.iterations],
            iterations=done.iterations,
            seconds_per_iteration=done.seconds_per_iteration,
            seed=seed,
            probabilities=xp,
            config={**asdict(s), "steps": run.steps, "oracle": oracle_name(run.oracle)},
        )

    def _part_step(self, search: BLv2Search, oracle: GradientOracle, seed: int, sample_shape: tuple[int, ...], workers: int) -> Step:
        """One part's step: draw its population from its own generators, then Algorithm 1's iteration."""
        sampler = PopulationSampler(search.targets, seed, self.settings.population, sample_shape, workers)
        return lambda it: blv2_iteration(search, it, sampler.draw(search.state.xp), oracle, self.settings)
