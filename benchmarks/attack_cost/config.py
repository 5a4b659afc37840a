"""What the attack-cost benchmark measures: configurations, options, attack settings, targets."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch

from nmprivacy.presets import BLv1Settings, BLv2Settings, MIFaceSettings


@dataclass(frozen=True)
class CostConfig:
    """One network / attack configuration to time."""

    name: str
    input_shape: tuple[int, ...]
    steps: int
    population: int
    classes: int = 10
    hidden: int = 3000
    ann: bool = True  # time MI-Face on the ANN baseline too
    preset: str = "mnist"  # data set whose family's attack settings (nmprivacy.presets, paper budget) are used

    @property
    def inputs(self) -> int:
        return math.prod(self.input_shape)

    @property
    def attacks(self) -> tuple[str, ...]:
        """The attacks timed for this configuration."""
        return ("bl-v1", "bl-v2", "mi-face") if self.ann else ("bl-v1", "bl-v2")

    @property
    def network(self) -> str:
        """``inputs-hidden-classes``."""
        return f"{self.inputs}-{self.hidden}-{self.classes}"


MNIST = CostConfig("mnist", (1, 28, 28), steps=25, population=7)
NMNIST = CostConfig("nmnist", (1, 34, 34), steps=100, population=5, ann=False, preset="nmnist")
# AT&T faces: 92x112 images, 40 subjects, the faces family's settings (10,304-3000-40)
FACES = CostConfig("faces", (1, 112, 92), steps=25, population=7, classes=40, preset="att-faces")
CONFIGS: dict[str, CostConfig] = {c.name: c for c in (MNIST, NMNIST, FACES)}


@dataclass(frozen=True)
class BenchOptions:
    """How much to measure."""

    quick: bool = False
    iterations: int | None = None  # attack iterations per timed run (None: the preset's, a whole attack)
    reference_classes: int = 1
    reference_samples: int | None = None  # BL-v2 samples per reference class (None: K)
    xp_init: float | None = None  # BL-v2's starting X_p (None: the preset's)
    densities: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)  # BL-v2 density sweep (first configuration)
    seed: int = 0
    sweeps: bool = True
    warmup: bool = True  # one untimed run (1 attack iteration; the reference subset) before timing
    repeats: int = 3  # timed runs per measurement (reference and ours alike); the fastest is kept
    variants: bool = True  # also time the dense-only engine and the batched autograd oracle
    loihi: bool = True  # also time BL-v2 on the snn-lava target (fixed-point engine path)

    @staticmethod
    def for_budget(quick: bool) -> "BenchOptions":
        """Full measurement, or a smoke run that finishes in well under a minute."""
        if quick:
            return BenchOptions(quick=True, iterations=1, reference_samples=1, variants=False, repeats=1, densities=(0.1, 0.5))
        return BenchOptions()

    def comparison(self) -> "BenchOptions":
        """Lighter options for the slow comparison column (batched autograd): at most 2 timed
        iterations, one repeat."""
        return replace(self, iterations=min(self.iterations or 2, 2), repeats=1)


@dataclass(frozen=True)
class AttackSettings:
    """The settings each attack is timed with."""

    bl_v1: BLv1Settings
    bl_v2: BLv2Settings
    mi_face: MIFaceSettings


def attack_settings(cfg: CostConfig, opts: BenchOptions) -> AttackSettings:
    """BL-v1, BL-v2 and MI-Face settings of ``cfg``: the audit's (paper preset of ``cfg.preset``)
    with ``cfg``'s population, no early stop, and ``opts``' iterations / X_p start if given."""
    from nmprivacy.presets import preset_for

    p = preset_for(cfg.preset, "paper")
    v2 = replace(p.bl_v2, population=cfg.population, plateau_patience=0)
    v2 = replace(v2, init=v2.init if opts.xp_init is None else opts.xp_init, iterations=opts.iterations or v2.iterations)
    return AttackSettings(replace(p.bl_v1, iterations=opts.iterations or p.bl_v1.iterations), v2, p.mi_face)


@dataclass(frozen=True)
class Targets:
    """The randomly initialised targets of a configuration: ``snn-norse`` and (if timed) ``ann``."""

    snn: Any
    ann: Any | None


def build_targets(cfg: CostConfig, seed: int) -> Targets:
    """Randomly initialised ``snn-norse`` and (if ``cfg.ann``) ``ann`` targets of ``cfg``'s shape."""
    from nmprivacy.models.ann import ANN, ANNConfig
    from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig

    torch.manual_seed(seed)
    snn = SNNNorse(SNNNorseConfig(input_shape=cfg.input_shape, num_classes=cfg.classes, hidden=cfg.hidden)).freeze()
    ann = ANN(ANNConfig(input_shape=cfg.input_shape, num_classes=cfg.classes, hidden=cfg.hidden)).freeze() if cfg.ann else None
    return Targets(snn, ann)


def loihi_target(cfg: CostConfig, seed: int) -> Any:
    """A randomly initialised ``snn-lava`` target (Loihi fixed point) of ``cfg``'s shape."""
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

    torch.manual_seed(seed)
    return SNNLava(SNNLavaConfig(input_shape=cfg.input_shape, num_classes=cfg.classes, hidden=cfg.hidden)).freeze()
