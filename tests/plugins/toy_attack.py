"""A toy inversion attack for tests/test_attack_registry.py: its whole definition is this module
plus one registry entry. It returns seeded random spikes of a set density for every class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from nmprivacy.attacks.base import AttackInfo, Inversion
from nmprivacy.attacks.common import SpikingAttack
from nmprivacy.models.base import TargetModel
from nmprivacy.settings import check_settings, ranged


@dataclass(frozen=True)
class ToySettings:
    """The toy attack's settings (checked when built, like every settings type)."""

    iterations: int = ranged(3, low=1)
    density: float = ranged(0.2, low=0, high=1)

    def __post_init__(self) -> None:
        check_settings(self)


class ToyAttack(SpikingAttack):
    """Seeded random spikes of ``density`` per class (no use of the model but its shape)."""

    info = AttackInfo(settings="toy", settings_type=ToySettings, plan="asked", quick={"iterations": 1})

    def __init__(self, settings: ToySettings = ToySettings(), steps: int | None = None, **options: object) -> None:
        super().__init__(settings, steps=steps)

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion:
        """``[K, T, *input_shape]`` Bernoulli(density) spikes for the classes."""
        run = self.start(model, classes, seed)
        k, s = len(run.targets), self.settings
        x = (torch.rand((k, run.steps, *model.info.input_shape), generator=run.gen) < s.density).float()
        curve = torch.zeros(s.iterations, k)
        return Inversion(attack=self.name, classes=run.targets.tolist(), reconstructions=x, loss_curve=curve, confidence_curve=curve,
                         iterations=s.iterations, seconds_per_iteration=0.0, seed=seed, config={"density": s.density, "steps": run.steps})
