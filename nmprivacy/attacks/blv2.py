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

from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from nmprivacy.attacks.base import Inversion
from nmprivacy.attacks.common import OracleFactory, SpikingAttack, Timer, default_oracle, torch_threads
from nmprivacy.attacks.layout import from_model_layout, to_model_layout
from nmprivacy.attacks.oracle import population_gradient
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


def blv2_update(state: BLv2State, g: torch.Tensor, settings: BLv2Settings) -> BLv2State:
    """One BL-v2 step from the population-weighted gradient ``g`` ``[K, T, ...]`` of the full loss
    (``sum_i w_i dL_i/dx_i`` with :func:`population_weights`)."""
    if settings.accumulator == "rmsprop":
        r = settings.rho * state.r + (1 - settings.rho) * g * g
    elif settings.accumulator == "unbounded":
        r = state.r + settings.rho * state.r + (1 - settings.rho) * g * g
    else:
        raise ValueError(f"unknown BL-v2 accumulator {settings.accumulator!r}")
    nu = settings.momentum * state.nu + g
    xp = (state.xp - settings.lr / (r.sqrt() + settings.eps) * nu).clamp_min(0.0)
    peak = xp.reshape(xp.shape[0], -1).max(dim=1).values
    scale = torch.where(peak > 1, peak, torch.ones_like(peak))
    xp = xp / scale.reshape(-1, *([1] * (xp.dim() - 1)))
    return BLv2State(xp=xp, r=r, nu=nu)


class BrainLeaksV2(SpikingAttack):
    """BrainLeaks-v2 on a spiking model; ``run`` attacks all classes x population in one batch."""

    name = "bl-v2"
    settings: BLv2Settings

    def __init__(self, settings: BLv2Settings = BLv2Settings(), oracle: OracleFactory = default_oracle, steps: int | None = None) -> None:
        super().__init__(settings, oracle, steps)

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion:
        """Invert ``model`` for ``classes``; ``probabilities`` holds X_p, ``reconstructions`` one sample of it."""
        s = self.settings
        run = self.start(model, classes, seed)
        targets, steps, gen, oracle = run.targets, run.steps, run.gen, run.oracle
        k, p = len(targets), s.population
        shape = (k, steps, *model.info.input_shape)
        state = BLv2State(xp=torch.full(shape, float(s.init)), r=torch.zeros(shape), nu=torch.zeros(shape))
        voxels = state.xp[0].numel()
        pop_targets = targets.repeat_interleave(p)
        losses, confs = [], []
        best = torch.full((k,), -1.0)
        best_xp = state.xp.clone()
        stale = torch.zeros(k, dtype=torch.long)
        timer = Timer()
        done = 0
        # an oracle with worker threads of its own (FastLIFOracle): this loop's tensor ops stay on one
        # thread, so none waits at an OpenMP barrier for a descheduled peer
        with torch_threads(1) if getattr(oracle, "parallel", False) else nullcontext():
            bar = tqdm(range(s.iterations), desc=self.name, leave=False)
            for _ in bar:
                samples = torch.bernoulli(state.xp.unsqueeze(1).expand(k, p, *shape[1:]), generator=gen)
                density = s.sparsity * samples.reshape(k, p, -1).mean(dim=2)  # sparsity term of each loss [K, P]
                out = population_gradient(
                    oracle,
                    to_model_layout(samples.reshape(k * p, *shape[1:]), "spikes"),
                    pop_targets,
                    k,
                    lambda loss, density=density: population_weights(loss.reshape(k, p) + density, s.variant),
                    s.loss,
                )
                sample_loss = out.loss.reshape(k, p) + density
                g = from_model_layout(out.grad, "spikes") + (s.sparsity / voxels) * out.weights.sum(dim=1).reshape(k, *([1] * len(shape[1:])))
                conf = out.probs.gather(1, pop_targets[:, None]).reshape(k, p).mean(dim=1)
                better = conf > best
                best_xp[better] = state.xp[better]  # the X_p these samples were drawn from
                state = blv2_update(state, g, s)
                losses.append(sample_loss.mean(dim=1))
                confs.append(conf)
                done += 1
                bar.set_postfix(conf=f"{conf.mean():.3f}")
                improved = conf > best + s.plateau_tol
                best = torch.where(better, conf, best)
                if s.plateau_patience > 0:
                    stale = torch.where(improved, torch.zeros_like(stale), stale + 1)
                    if bool((stale >= s.plateau_patience).all()):
                        break
            bar.close()
        seconds = timer.elapsed()
        xp = best_xp if s.keep == "best" else state.xp
        return Inversion(
            attack=self.name,
            classes=targets.tolist(),
            reconstructions=torch.bernoulli(xp, generator=gen),
            loss_curve=torch.stack(losses),
            confidence_curve=torch.stack(confs),
            iterations=done,
            seconds_per_iteration=seconds / max(done, 1),
            seed=seed,
            probabilities=xp,
            config={**asdict(s), "steps": steps},
        )
