"""BrainLeaks-v1: gradient-sign flips of a binary spike input (docs/method.md §5.1).

State ``X`` is binary ``[K, T, *input_shape]`` starting at 0. Each iteration the surrogate
gradient ``g = dM_y/dX`` is normalised to ``P = minmax(|g|)`` per class (global over T and
neurons), masked by ``Q = 1[P >= eta]`` (paper) or ``Bernoulli(P)`` (reference), and applied
as ``X <- 1[X + sign(g) Q > 0]`` so X stays in {0, 1}. The algorithm is ``BLv1Search`` (its
state) and ``blv1_iteration`` (one step; it runs a fixed number of iterations);
``nmprivacy.attacks.executor`` runs it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Sequence

import torch

from nmprivacy.attacks.base import AttackInfo, GradientOracle, Inversion
from nmprivacy.attacks.common import OracleFactory, SpikingAttack, default_oracle, oracle_name
from nmprivacy.attacks.executor import ClassParts
from nmprivacy.attacks.layout import from_model_layout, per_sample_minmax, to_model_layout
from nmprivacy.attacks.state import ClassState, per_class
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


@dataclass
class BLv1Search(ClassState):
    """BL-v1's state for the classes ``targets`` ``[k]``: the binary input and the per-iteration
    record. Built for all classes (``start``); a ``part`` of it holds views of the whole."""

    targets: torch.Tensor = per_class()  # [k] attacked classes
    x: torch.Tensor = per_class()  # [k, T, *input_shape] binary
    losses: torch.Tensor = per_class(1)  # [iterations, k]: identity loss 1 - M_y
    confs: torch.Tensor = per_class(1)  # [iterations, k]: confidence M_y in the target class

    @classmethod
    def start(cls, targets: torch.Tensor, sample_shape: tuple[int, ...], iterations: int) -> "BLv1Search":
        """X = 0 for inputs of ``sample_shape`` ``(T, *input_shape)``."""
        k = len(targets)
        return cls(targets, torch.zeros((k, *sample_shape)), torch.zeros(iterations, k), torch.zeros(iterations, k))


def blv1_iteration(search: BLv1Search, it: int, oracle: GradientOracle, settings: BLv1Settings, gen: torch.Generator) -> None:
    """Iteration ``it`` of BL-v1 on ``search`` (in place; docs/method.md, BrainLeaks-v1)."""
    out = oracle(to_model_layout(search.x, "spikes"), search.targets, "identity")
    search.losses[it] = out.loss
    search.confs[it] = out.probs.gather(1, search.targets[:, None]).squeeze(1)
    # identity loss is 1 - M_y, so dM_y/dx = -grad.
    search.x.copy_(blv1_step(search.x, -from_model_layout(out.grad, "spikes"), settings, gen))


class BrainLeaksV1(SpikingAttack):
    """BrainLeaks-v1 on a spiking model; ``run`` attacks all classes in one batch."""

    name = "bl-v1"
    info = AttackInfo(settings="bl_v1", settings_type=BLv1Settings, quick={"iterations": 5})
    settings: BLv1Settings

    def __init__(self, settings: BLv1Settings = BLv1Settings(), oracle: OracleFactory = default_oracle, steps: int | None = None) -> None:
        super().__init__(settings, oracle, steps)

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion:
        """Invert ``model`` for every class in ``classes``; reconstructions are binary ``[K, T, ...]``.

        With the threshold mask classes are independent, so they run in parts (one per lane of the
        oracle, ``nmprivacy.attacks.executor``); the Bernoulli mask draws every class's mask from
        the run's one generator, so its classes run together."""
        s = self.settings
        run = self.start(model, classes, seed)
        search = BLv1Search.start(run.targets, (run.steps, *model.info.input_shape), s.iterations)
        parts = ClassParts(run.oracle, len(run.targets), split=s.mask == "threshold")
        steps = [partial(blv1_iteration, search.part(p.classes), oracle=p.oracle, settings=s, gen=run.gen) for p in parts.parts]
        done = parts.run(steps, s.iterations, desc=self.name)
        return Inversion(
            attack=self.name,
            classes=run.targets.tolist(),
            reconstructions=search.x,
            loss_curve=search.losses,
            confidence_curve=search.confs,
            iterations=done.iterations,
            seconds_per_iteration=done.seconds_per_iteration,
            seed=seed,
            config={**asdict(s), "steps": run.steps, "oracle": oracle_name(run.oracle)},
        )

