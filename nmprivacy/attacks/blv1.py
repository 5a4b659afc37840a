"""BrainLeaks-v1: gradient-sign flips of a binary spike input (spec section 5).

State ``X`` is binary ``[K, T, *input_shape]`` starting at 0. Each iteration the surrogate
gradient ``g = dM_y/dX`` is normalised to ``P = minmax(|g|)`` per class (global over T and
neurons), masked by ``Q = 1[P >= eta]`` (paper) or ``Bernoulli(P)`` (reference), and applied
as ``X <- 1[X + sign(g) Q > 0]`` so X stays in {0, 1}.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import torch
from tqdm.auto import tqdm

from nmprivacy.attacks.base import Inversion
from nmprivacy.attacks.common import OracleFactory, SpikingAttack, Timer, default_oracle
from nmprivacy.attacks.layout import from_model_layout, per_sample_minmax, to_model_layout
from nmprivacy.models.base import TargetModel
from nmprivacy.presets import BLv1Settings


def blv1_step(x: torch.Tensor, grad_conf: torch.Tensor, settings: BLv1Settings, gen: torch.Generator) -> torch.Tensor:
    """One BL-v1 update of binary ``x`` ``[K, ...]`` given ``grad_conf = dM_y/dx`` (same layout)."""
    p = per_sample_minmax(grad_conf.abs())
    if settings.mask == "threshold":
        q = (p >= settings.eta).to(x.dtype)
    else:
        q = torch.bernoulli(p, generator=gen)
    return ((x + torch.sign(grad_conf) * q) > 0).to(x.dtype)


class BrainLeaksV1(SpikingAttack):
    """BrainLeaks-v1 on a spiking model; ``run`` attacks all classes in one batch."""

    name = "bl-v1"
    settings: BLv1Settings

    def __init__(self, settings: BLv1Settings = BLv1Settings(), oracle: OracleFactory = default_oracle, steps: int | None = None) -> None:
        super().__init__(settings, oracle, steps)

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion:
        """Invert ``model`` for every class in ``classes``; reconstructions are binary ``[K, T, ...]``."""
        run = self.start(model, classes, seed)
        targets, steps, gen, oracle = run.targets, run.steps, run.gen, run.oracle
        x = torch.zeros((len(targets), steps, *model.info.input_shape))
        losses, confs = [], []
        timer = Timer()
        for _ in tqdm(range(self.settings.iterations), desc=self.name, leave=False):
            out = oracle(to_model_layout(x, "spikes"), targets, "identity")
            losses.append(out.loss)
            confs.append(out.probs.gather(1, targets[:, None]).squeeze(1))
            # identity loss is 1 - M_y, so dM_y/dx = -grad.
            x = blv1_step(x, -from_model_layout(out.grad, "spikes"), self.settings, gen)
        seconds = timer.elapsed()
        n = self.settings.iterations
        return Inversion(
            attack=self.name,
            classes=targets.tolist(),
            reconstructions=x,
            loss_curve=torch.stack(losses) if losses else torch.zeros(0, len(targets)),
            confidence_curve=torch.stack(confs) if confs else torch.zeros(0, len(targets)),
            iterations=n,
            seconds_per_iteration=seconds / max(n, 1),
            seed=seed,
            config={**asdict(self.settings), "steps": steps},
        )

