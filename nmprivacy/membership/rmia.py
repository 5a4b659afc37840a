"""RMIA, the relative membership-inference attack of Zarifzadeh, Liu and Shokri 2024 ("Low-Cost
High-Power Membership Inference Attacks"); docs/method.md §9.3.

With ``Pr(x | theta)`` the target's probability of x's true class (mean over its queries) and
``Pr(x)`` the same probability averaged over reference models, the likelihood ratio of x
against a population record z is

    LR(x, z) = (Pr(x | theta) / Pr(x)) / (Pr(z | theta) / Pr(z)),

and the score of x is the fraction of population records z (records no model trained on) with
``LR(x, z) >= gamma``. ``online``: ``Pr(x)`` is the mean over every reference (IN and OUT for x).
``offline`` (OUT references only, the paper's low-cost setting, usable with a single one):
``Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2``, the paper's linear approximation of the missing
IN models (``Pr_IN = a Pr_OUT + 1 - a``); ``a`` is a setting (0.3, the paper's and Privacy
Meter's default; the paper tunes it on a reference model). No reference trained on a
population record, so ``Pr(z)`` is their mean (online) or the same approximation (offline).
A record without any reference of the kind its mode needs is not scored (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from nmprivacy.membership.base import AttackInput, MembershipAttack
from nmprivacy.membership.observables import true_class_probability

MIN_PROBABILITY = 1e-30


@dataclass(frozen=True)
class RMIASettings:
    """RMIA's mode, offline coefficient ``a`` and threshold ``gamma`` (module docstring)."""

    mode: Literal["online", "offline"] = "online"
    a: float = 0.3
    gamma: float = 1.0


class RMIA(MembershipAttack):
    """RMIA: the fraction of population records that x dominates in likelihood ratio."""

    name = "rmia"
    needs_population = True

    def __init__(self, settings: RMIASettings | None = None) -> None:
        self.settings = settings or RMIASettings()

    def marginal(self, p_ref: np.ndarray, reference_in: np.ndarray) -> np.ndarray:
        """``Pr(x)`` ``[M]`` from the references' probabilities ``[R, M]`` (NaN where the mode has no reference)."""
        s = self.settings
        if s.mode == "online":
            return p_ref.mean(axis=0) if p_ref.shape[0] else np.full(p_ref.shape[1], np.nan)
        out = ~reference_in
        n_out = out.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            p_out = np.where(n_out > 0, (p_ref * out).sum(axis=0) / n_out, np.nan)
        return 0.5 * ((1 + s.a) * p_out + (1 - s.a))

    def score(self, data: AttackInput) -> np.ndarray:
        self.check(data)
        p_x_t = true_class_probability(data.target, data.labels).mean(axis=1)  # [M]
        p_x_r = true_class_probability(data.references, data.labels).mean(axis=2)  # [R, M]
        p_z_t = true_class_probability(data.population_target, data.population_labels).mean(axis=1)  # [Z]
        p_z_r = true_class_probability(data.population_references, data.population_labels).mean(axis=2)  # [R, Z]
        ratio_x = p_x_t / np.maximum(self.marginal(p_x_r, data.reference_in), MIN_PROBABILITY)
        ratio_z = p_z_t / np.maximum(self.marginal(p_z_r, np.zeros(p_z_r.shape, dtype=bool)), MIN_PROBABILITY)
        ratio_z = np.sort(ratio_z[np.isfinite(ratio_z)])
        # LR(x, z) >= gamma  <=>  ratio_z <= ratio_x / gamma
        dominated = np.searchsorted(ratio_z, ratio_x / self.settings.gamma, side="right")
        return np.where(np.isfinite(ratio_x), dominated / max(ratio_z.size, 1), np.nan)
