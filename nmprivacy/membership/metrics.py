"""Membership-inference metrics: ROC, AUC, TPR at a fixed low FPR, balanced accuracy, each with a
bootstrap confidence interval (docs/method.md §9.5).

Inputs: ``scores`` float ``[P]`` (higher: more likely a member) and ``members`` bool ``[P]`` for
``P`` (record, model) pairs. The ROC is ``sklearn.metrics.roc_curve`` with every threshold kept
(``drop_intermediate=False``), so tied scores form one step of the curve (one threshold lets all
of them through or none: ties are never broken in the attack's favour). ``tpr_at_fpr`` reads the
curve conservatively: the highest TPR among the curve's points whose FPR is at most the target,
never an interpolation between points. ``balanced_acc`` is the best ``(TPR + 1 - FPR) / 2`` over
all thresholds (as Carlini et al. 2022 report it: an optimistic, average-case number).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmprivacy.errors import NmprivacyError

FPR_TARGETS: tuple[float, ...] = (0.001, 0.01)  # the stable keys tpr_at_fpr["0.001"], ["0.01"]
BOOTSTRAP = 200  # default resamples for the confidence intervals
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Roc:
    """A ROC curve: ``fpr``, ``tpr``, ``thresholds`` ``[K]`` as ``sklearn.metrics.roc_curve``
    returns them (FPR non-decreasing from 0 to 1)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def _checked(scores: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    m = np.asarray(members).astype(bool).reshape(-1)
    if s.shape != m.shape:
        raise NmprivacyError(f"{s.size} scores but {m.size} membership labels: give one label per score")
    if not np.isfinite(s).all():
        raise NmprivacyError("membership scores must be finite numbers (drop the pairs an attack cannot score first)")
    if m.all() or not m.any():
        raise NmprivacyError("a ROC needs both members and non-members among the scored pairs")
    return s, m


def roc(scores: np.ndarray, members: np.ndarray) -> Roc:
    """The ROC curve of ``scores`` against ``members`` (every threshold kept)."""
    from sklearn.metrics import roc_curve

    s, m = _checked(scores, members)
    fpr, tpr, thresholds = roc_curve(m, s, drop_intermediate=False)
    return Roc(fpr, tpr, thresholds)


def auc(curve: Roc) -> float:
    """Area under the curve (trapezoids: a step of tied scores counts as half right)."""
    from sklearn.metrics import auc as _auc

    return float(_auc(curve.fpr, curve.tpr))


def tpr_at_fpr(curve: Roc, target: float) -> float:
    """The highest TPR at a point of the curve whose FPR is at most ``target`` (conservative)."""
    ok = curve.fpr <= target + 1e-12
    return float(curve.tpr[ok].max()) if ok.any() else 0.0


def balanced_accuracy(curve: Roc) -> float:
    """The best balanced accuracy ``(TPR + 1 - FPR) / 2`` over all thresholds."""
    return float(np.max((curve.tpr + 1.0 - curve.fpr) / 2.0))


def point_metrics(scores: np.ndarray, members: np.ndarray, fpr_targets: tuple[float, ...] = FPR_TARGETS) -> dict[str, object]:
    """``auc``, ``tpr_at_fpr`` (``{"0.001": ..., "0.01": ...}``) and ``balanced_acc`` of one set of pairs."""
    curve = roc(scores, members)
    return {"auc": auc(curve), "tpr_at_fpr": {fpr_key(t): tpr_at_fpr(curve, t) for t in fpr_targets}, "balanced_acc": balanced_accuracy(curve)}


def fpr_key(target: float) -> str:
    """The JSON key of an FPR target: ``0.001 -> "0.001"``, ``0.01 -> "0.01"``."""
    return f"{target:g}"


def summarize(scores: np.ndarray, members: np.ndarray, bootstrap: int = BOOTSTRAP, seed: int = 0,
              fpr_targets: tuple[float, ...] = FPR_TARGETS) -> dict[str, object]:
    """Every metric of ``point_metrics`` with a ``<metric>_ci`` sibling ``[lo, hi]``: the
    percentile interval (``CI_LEVEL``) over ``bootstrap`` resamples of the pairs with replacement
    (a resample without members or non-members is drawn again); ``bootstrap = 0`` gives no
    intervals (``None``). Also ``pairs``, ``members``, ``non_members`` and ``bootstrap``."""
    s, m = _checked(scores, members)
    out = point_metrics(s, m, fpr_targets)
    samples: dict[str, list[float]] = {"auc": [], "balanced_acc": [], **{fpr_key(t): [] for t in fpr_targets}}
    rng = np.random.default_rng(seed)
    drawn = 0
    while drawn < bootstrap:
        idx = rng.integers(0, s.size, s.size)
        mb = m[idx]
        if mb.all() or not mb.any():
            continue
        point = point_metrics(s[idx], mb, fpr_targets)
        samples["auc"].append(point["auc"])  # type: ignore[arg-type]
        samples["balanced_acc"].append(point["balanced_acc"])  # type: ignore[arg-type]
        for key, value in point["tpr_at_fpr"].items():  # type: ignore[union-attr]
            samples[key].append(value)
        drawn += 1
    q = ((1 - CI_LEVEL) / 2 * 100, (1 + CI_LEVEL) / 2 * 100)

    def ci(values: list[float]) -> list[float] | None:
        return [float(v) for v in np.percentile(values, q)] if values else None

    return {
        "auc": out["auc"], "auc_ci": ci(samples["auc"]),
        "tpr_at_fpr": out["tpr_at_fpr"], "tpr_at_fpr_ci": {fpr_key(t): ci(samples[fpr_key(t)]) for t in fpr_targets},
        "balanced_acc": out["balanced_acc"], "balanced_acc_ci": ci(samples["balanced_acc"]),
        "pairs": int(s.size), "members": int(m.sum()), "non_members": int((~m).sum()), "bootstrap": int(bootstrap),
    }
