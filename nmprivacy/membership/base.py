"""The one interface of every membership-inference attack, and what it is given.

An attack gets an ``AttackInput`` (the attacker's view of the target and of its reference
models, all as log class probabilities from ``nmprivacy.membership.observables.attacker_view``)
and returns one membership score per record: higher means "more likely a member"; NaN where the
attack cannot score a record (e.g. online LiRA without an IN reference for it). Scores are
compared only within one attack; the ROC turns them into rates (``nmprivacy.membership.metrics``).

Layouts (``M`` records, ``Q`` queries per record, ``C`` classes, ``R`` reference models, ``Z``
population records no model trained on):
- ``target`` ``[M, Q, C]``; ``labels`` int ``[M]``;
- ``references`` ``[R, M, Q, C]``; ``reference_in`` bool ``[R, M]`` (record in that reference's
  training half: the attacker trained the references, so it knows);
- ``population_target`` ``[Z, Q, C]``, ``population_references`` ``[R, Z, Q, C]``,
  ``population_labels`` ``[Z]``: RMIA's population samples ``z``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nmprivacy.errors import NmprivacyError


@dataclass(frozen=True)
class AttackInput:
    """What the attacker holds when it scores the records of one target (module docstring)."""

    target: np.ndarray
    labels: np.ndarray
    references: np.ndarray
    reference_in: np.ndarray
    population_target: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1)))
    population_references: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 1, 1)))
    population_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        m = self.target.shape[0]
        if self.target.ndim != 3 or self.labels.shape != (m,):
            raise ValueError(f"target must be [M, Q, C] with labels [M], got {self.target.shape} and {self.labels.shape}")
        if self.references.ndim != 4 or self.references.shape[1:] != self.target.shape or self.reference_in.shape != self.references.shape[:2]:
            raise ValueError(f"references must be [R, M, Q, C] with reference_in [R, M], got {self.references.shape} and {self.reference_in.shape}")

    @property
    def num_references(self) -> int:
        return int(self.references.shape[0])


class MembershipAttack:
    """Base class: subclasses set ``name`` and ``needs_references`` and implement ``score``;
    ``settings`` is the attack's settings dataclass (recorded in mia.json)."""

    name: ClassVar[str] = "attack"
    needs_references: ClassVar[bool] = True
    needs_population: ClassVar[bool] = False
    settings: Any = None

    def score(self, data: AttackInput) -> np.ndarray:
        """Membership scores ``[M]`` (higher: member; NaN: cannot score this record)."""
        raise NotImplementedError

    def check(self, data: AttackInput) -> None:
        """One-line error when ``data`` lacks what this attack needs."""
        if self.needs_references and data.num_references < 1:
            raise NmprivacyError(f"membership attack '{self.name}' needs reference models: give --references >= 2")
        if self.needs_population and data.population_target.shape[0] < 1:
            raise NmprivacyError(f"membership attack '{self.name}' needs population records no model trained on")


def masked_mean_var(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per record and query: mean and unbiased variance of ``values`` ``[R, M, Q]`` over the
    references where ``mask`` ``[R, M]`` holds, and their count ``[M]`` (mean NaN where none;
    variance NaN where fewer than two)."""
    w = mask.astype(np.float64)[:, :, None]
    n = w.sum(axis=0)  # [M, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * values).sum(axis=0) / n
        var = (w * (values - mean) ** 2).sum(axis=0) / (n - 1)
    mean = np.where(n > 0, mean, np.nan)
    var = np.where(n > 1, var, np.nan)
    return mean, var, n[:, 0].astype(np.int64)
