"""LiRA, the likelihood-ratio attack of Carlini et al. 2022 ("Membership Inference Attacks From
First Principles"), online (``lira``) and offline (``lira-offline``); docs/method.md §9.3.

Signal: ``phi = log(p_y / (1 - p_y))`` of each query (``observables.logit_confidence``). For a
record x, the references that trained on x (IN) and those that did not (OUT) give ``phi`` samples
whose mean and variance fit two Gaussians, per query index. Online score (mean over queries):

    log N(phi_target; mu_in, s_in^2) - log N(phi_target; mu_out, s_out^2)

Offline score (OUT references only, one-sided): ``log Phi((phi_target - mu_out) / s_out)``, the
log-probability that an OUT model gives x a *lower* confidence than the target did.

Variances: per record (the references' sample variance, floored at ``floor`` times the global
variance, so that references agreeing exactly, which discrete spike counts make common, do not
give an infinite ratio) or global (one variance per side for all records: the pooled
within-record variance; where no record has two references on a side, the variance of all that
side's scores, Carlini et al.'s "fixed variance"). ``auto`` takes per-record variances only when
every record has at least ``per_example_min`` references on each side used (Carlini et al.
recommend the global variance below 64 reference models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from nmprivacy.membership.base import AttackInput, MembershipAttack, masked_mean_var
from nmprivacy.membership.observables import logit_confidence

MIN_VARIANCE = 1e-12


@dataclass(frozen=True)
class LiRASettings:
    """LiRA's Gaussian fit (module docstring)."""

    variance: Literal["auto", "per-example", "global"] = "auto"
    per_example_min: int = 16
    floor: float = 0.01


def global_variance(values: np.ndarray, mask: np.ndarray, var: np.ndarray) -> float:
    """One variance for a side: the mean of the per-record variances ``var`` ``[M, Q]`` where
    defined, else the variance of every masked score in ``values`` ``[R, M, Q]``."""
    defined = np.isfinite(var)
    if defined.any():
        return max(float(var[defined].mean()), MIN_VARIANCE)
    picked = values[np.broadcast_to(mask[:, :, None], values.shape)]
    return max(float(picked.var()) if picked.size > 1 else 1.0, MIN_VARIANCE)


def fitted(values: np.ndarray, mask: np.ndarray, settings: LiRASettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean ``[M, Q]``, variance ``[M, Q]``, count ``[M]``) of one side's Gaussians."""
    mean, var, n = masked_mean_var(values, mask)
    glob = global_variance(values, mask, var)
    use_per_example = settings.variance == "per-example" or (settings.variance == "auto" and n.size and n.min() >= settings.per_example_min)
    if use_per_example:
        var = np.where(np.isfinite(var), np.maximum(var, settings.floor * glob), glob)
    else:
        var = np.full_like(mean, glob)
    return mean, np.maximum(var, MIN_VARIANCE), n


def gaussian_logpdf(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``log N(x; mean, var)``."""
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


class LiRA(MembershipAttack):
    """Online LiRA: the likelihood ratio of the IN and OUT Gaussians of ``phi``."""

    name = "lira"

    def __init__(self, settings: LiRASettings | None = None) -> None:
        self.settings = settings or LiRASettings()

    def score(self, data: AttackInput) -> np.ndarray:
        self.check(data)
        phi_t = logit_confidence(data.target, data.labels)  # [M, Q]
        phi_r = logit_confidence(data.references, data.labels)  # [R, M, Q]
        mu_in, var_in, n_in = fitted(phi_r, data.reference_in, self.settings)
        mu_out, var_out, n_out = fitted(phi_r, ~data.reference_in, self.settings)
        ratio = (gaussian_logpdf(phi_t, mu_in, var_in) - gaussian_logpdf(phi_t, mu_out, var_out)).mean(axis=1)
        return np.where((n_in > 0) & (n_out > 0), ratio, np.nan)


class LiRAOffline(MembershipAttack):
    """Offline LiRA: the one-sided test against the OUT Gaussian of ``phi`` only."""

    name = "lira-offline"

    def __init__(self, settings: LiRASettings | None = None) -> None:
        self.settings = settings or LiRASettings()

    def score(self, data: AttackInput) -> np.ndarray:
        from scipy.special import log_ndtr

        self.check(data)
        phi_t = logit_confidence(data.target, data.labels)
        phi_r = logit_confidence(data.references, data.labels)
        mu_out, var_out, n_out = fitted(phi_r, ~data.reference_in, self.settings)
        score = log_ndtr((phi_t - mu_out) / np.sqrt(var_out)).mean(axis=1)
        return np.where(n_out > 0, score, np.nan)
