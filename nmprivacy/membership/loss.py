"""The loss attack of Yeom et al. 2018 ("Privacy Risk in Machine Learning"); docs/method.md §9.3.

A model's loss is lower on its training records, so the score is minus the cross-entropy of the
true class, ``log p_y`` (mean over queries). Yeom et al. threshold it at the model's mean
training loss; the ROC sweeps every threshold instead. No reference models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmprivacy.membership.base import AttackInput, MembershipAttack
from nmprivacy.membership.observables import true_class_logprob


@dataclass(frozen=True)
class LossSettings:
    """The loss attack has no settings."""


class LossAttack(MembershipAttack):
    """Score = ``log p_y`` of the target (higher: lower loss: member)."""

    name = "loss"
    needs_references = False

    def __init__(self, settings: LossSettings | None = None) -> None:
        self.settings = settings or LossSettings()

    def score(self, data: AttackInput) -> np.ndarray:
        return true_class_logprob(data.target, data.labels).mean(axis=1)
