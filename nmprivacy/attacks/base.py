"""The one attack interface and its result type.

An attack inverts a frozen ``TargetModel`` for a list of target classes, all classes at once
(batched), and returns an ``Inversion``. Layouts, with ``K`` classes attacked:
- ``reconstructions``: the scored reconstruction per class, in the model's input layout with
  the class axis first: spiking ``[K, T, *input_shape]`` binary, image ``[K, *input_shape]``;
- ``probabilities``: BrainLeaks-v2's Bernoulli parameters X_p ``[K, T, *input_shape]`` (None
  for attacks without them);
- ``loss_curve`` / ``confidence_curve``: ``[iterations, K]`` identity loss and target-model
  confidence in the target class per iteration.

Gradients come from a ``GradientOracle`` so the fast attack core and the plain autograd path
are interchangeable (and tested equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping, Protocol, Sequence

import torch

from nmprivacy.models.base import TargetModel

LossKind = Literal["identity", "cross-entropy"]


@dataclass
class Inversion:
    """Result of one attack run on one model (all attacked classes)."""

    attack: str
    classes: list[int]
    reconstructions: torch.Tensor
    loss_curve: torch.Tensor
    confidence_curve: torch.Tensor
    iterations: int
    seconds_per_iteration: float
    seed: int
    probabilities: torch.Tensor | None = None
    config: dict = field(default_factory=dict)


@dataclass
class OracleOutput:
    """Loss ``[B]``, class probabilities ``[B, classes]`` and d(sum of loss)/dx in x's layout."""

    loss: torch.Tensor
    probs: torch.Tensor
    grad: torch.Tensor


@dataclass
class PopulationOutput:
    """A population's loss ``[K * P]``, probabilities ``[K * P, classes]``, weights ``[K, P]`` and
    weighted input gradient ``sum_p w[k, p] dL_{k,p}/dx_{k,p}`` ``[T, K, *input_shape]``."""

    loss: torch.Tensor
    probs: torch.Tensor
    weights: torch.Tensor
    grad: torch.Tensor


class GradientOracle(Protocol):
    """Computes the attack loss of a batch and its gradient with respect to the input only."""

    def __call__(self, x: torch.Tensor, targets: torch.Tensor, loss: LossKind = "identity") -> OracleOutput: ...


class Attack(Protocol):
    """A model-inversion attack: ``run`` attacks every class in ``classes`` at once."""

    name: str

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion: ...


@dataclass(frozen=True)
class AttackInfo:
    """What the pipelines need to know of an attack, declared once by its class as ``info``:
    the CLI's choices and ``--iterations``, the preset lookup and ``--set`` names, the study's
    attack groups and the audit's plan are all read from it (``nmprivacy.attacks.ATTACKS``)."""

    settings: str  # its field of a data set's ``Preset`` (``"bl_v2"``: ``--set bl_v2.lr=0.1``)
    settings_type: type  # its settings dataclass (defaults where a preset names none)
    model: Literal["target", "ann"] = "target"  # the audit model it attacks: the spiking target or the ANN baseline
    domain: Literal["spikes", "image"] = "spikes"  # the input domain of the models it can attack
    iterations: str = "iterations"  # the settings field ``--iterations`` sets
    # in the audit's default plan: "always"; "loihi": on targets that run bit-exactly on Loihi
    # (snn-lava, NetX files); "asked": only when named in --attacks
    plan: Literal["always", "loihi", "asked"] = "always"
    quick: Mapping[str, Any] = field(default_factory=dict)  # its settings in a --quick smoke run
    queries: bool = False  # sees the model through output queries only (``--oracle emulation|lava``, ``--queries``, ``--threat``)


class RegisteredAttack:
    """Base of the registered attacks: ``name``, ``info`` and what a report adds for them."""

    name: ClassVar[str]
    info: ClassVar[AttackInfo]
    settings: Any

    def prepare(self, splits: Any) -> None:
        """Take what the attacker may know of the input domain from the data set's ``splits``
        before ``run`` (its test split is disjoint from the training set): nothing by default."""

    def summarise(self, inversion: Inversion, evaluators: list[Any], classes: list[int], seed: int, steps: int | None) -> dict[str, Any]:
        """Fields this attack adds to its row of an audit (besides the scores): none by default."""
        return {}

    def parts(self, inversion: Inversion) -> dict[str, Any]:
        """Whole attacks inside this one whose reconstructions ``[K, ...]`` the audit scores on
        their own (an ensemble's members, each exactly the attack it wraps): none by default."""
        return {}
