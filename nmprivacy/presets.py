"""Per-data-set defaults in one table: time steps, training schedules and attack settings.

Numbers come from ../shared/docs/brainleaks-spec.md (sections 3-5); ``paper`` holds the
published schedules (``--paper``), ``default`` fits a 2-core CPU, ``quick`` is a smoke run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Budget = Literal["quick", "default", "paper"]


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser schedule of one model kind."""

    epochs: int
    batch_size: int
    lr: float
    grad_clip: float | None = None
    max_train_samples: int | None = None  # None: the whole training split


@dataclass(frozen=True)
class BLv2Settings:
    """BrainLeaks-v2 hyper-parameters (spec section 5 table)."""

    population: int = 7
    iterations: int = 10
    lr: float = 1.0
    momentum: float = 0.9
    rho: float = 0.1
    eps: float = 1e-10
    sparsity: float = 0.01


@dataclass(frozen=True)
class BLv1Settings:
    """BrainLeaks-v1 hyper-parameters."""

    iterations: int = 10
    eta: float = 0.5
    mask: Literal["threshold", "bernoulli"] = "threshold"


@dataclass(frozen=True)
class MIFaceSettings:
    """MI-Face (Fredrikson et al. 2015) settings."""

    lr: float = 0.1
    max_iterations: int = 5000
    patience: int = 100
    cost_goal: float = 0.01
    clamp: bool = True


@dataclass(frozen=True)
class Preset:
    """Everything the audit needs to know of one data-set family."""

    steps: int  # T for training and attacks
    hidden: int = 3000
    snn_train: TrainSettings = TrainSettings(epochs=10, batch_size=100, lr=5e-5, grad_clip=1.0)
    ann_train: TrainSettings = TrainSettings(epochs=50, batch_size=1000, lr=1e-3)
    evaluator_train: TrainSettings = TrainSettings(epochs=20, batch_size=100, lr=1e-3)
    evaluator_neuron: Literal["fast-sigmoid", "atan"] = "fast-sigmoid"
    evaluator_beta: float = 0.7
    bl_v1: BLv1Settings = BLv1Settings()
    bl_v2: BLv2Settings = BLv2Settings()
    mi_face: MIFaceSettings = MIFaceSettings()
    ann_baseline: bool = True


PAPER: dict[str, Preset] = {
    "mnist": Preset(steps=25),
    "faces": Preset(
        steps=25,
        ann_train=TrainSettings(epochs=70, batch_size=8, lr=5e-5),
        evaluator_train=TrainSettings(epochs=40, batch_size=8, lr=1e-3),
        mi_face=MIFaceSettings(clamp=False),
    ),
    "nmnist": Preset(
        steps=100,
        snn_train=TrainSettings(epochs=20, batch_size=100, lr=2e-4, grad_clip=1.0),
        evaluator_neuron="atan",
        evaluator_beta=0.8,
        bl_v2=BLv2Settings(population=5, lr=1e-3, rho=0.3, eps=1e-12, sparsity=0.3),
        ann_baseline=False,
    ),
    "dvs": Preset(
        steps=100,
        snn_train=TrainSettings(epochs=20, batch_size=6, lr=5e-5, grad_clip=1.0),
        evaluator_neuron="atan",
        evaluator_beta=0.8,
        bl_v1=BLv1Settings(iterations=25),
        bl_v2=BLv2Settings(population=5, lr=0.1, rho=0.2, eps=1e-12, sparsity=0.1),
        ann_baseline=False,
    ),
}

# Which family each registered data set belongs to (saccade versions of image sets are events).
FAMILY: dict[str, str] = {
    "digits": "mnist",
    "mnist": "mnist",
    "fashion-mnist": "mnist",
    "att-faces": "faces",
    "olivetti": "faces",
    "nmnist": "nmnist",
    "dvs-gesture": "dvs",
}


def family_of(dataset: str) -> str:
    """The preset family of a data-set name (``*-saccade`` event versions use N-MNIST's)."""
    if dataset.endswith("-saccade"):
        return "nmnist"
    return FAMILY.get(dataset, "mnist")


def preset_for(dataset: str, budget: Budget = "default") -> Preset:
    """The settings for ``dataset`` at a compute ``budget`` (paper schedules, CPU default, smoke)."""
    p = PAPER[family_of(dataset)]
    if budget == "paper":
        return p
    if budget == "default":
        # Fits a 2-core CPU: each model trains in <= ~15 minutes on 28x28 data.
        return replace(
            p,
            snn_train=replace(p.snn_train, epochs=min(p.snn_train.epochs, 2), lr=max(p.snn_train.lr, 5e-4)),
            ann_train=replace(p.ann_train, epochs=min(p.ann_train.epochs, 10)),
            evaluator_train=replace(p.evaluator_train, epochs=min(p.evaluator_train.epochs, 3)),
        )
    return replace(
        p,
        hidden=128,
        snn_train=replace(p.snn_train, epochs=1, lr=1e-3, max_train_samples=2000),
        ann_train=replace(p.ann_train, epochs=3, batch_size=100, max_train_samples=2000),
        evaluator_train=replace(p.evaluator_train, epochs=1, max_train_samples=2000),
        bl_v2=replace(p.bl_v2, iterations=5),
        bl_v1=replace(p.bl_v1, iterations=5),
        mi_face=replace(p.mi_face, max_iterations=200),
    )
