"""Attack metrics on a confidence matrix (docs/method.md §6), as pure functions.

``conf`` is ``[C, C]``: ``conf[i, j]`` is the evaluation classifier's probability that the
reconstruction made by attacking class ``i`` belongs to class ``j``. All metrics are fractions
in [0, 1]. Ties are resolved by expectation over a uniformly random tie-break: a true entry
tied with ``m`` others at the cut earns the matching fraction of a hit (so a row of equal
values gives ``k / C`` rather than an arbitrary 0 or 1).
"""

from __future__ import annotations

import torch


def _check(conf: torch.Tensor) -> torch.Tensor:
    if conf.dim() != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confidence matrix must be square [C, C], got {tuple(conf.shape)}")
    return conf.to(torch.float64)


def diagonal_topk_hits(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Per row ``i`` of ``scores`` ``[C, C]``: expected indicator that entry ``(i, i)`` is among the
    ``k`` largest of its row under random tie-breaking, ``[C]`` in [0, 1]."""
    s = _check(scores)
    diag = s.diagonal()[:, None]
    greater = (s > diag).sum(dim=1).to(torch.float64)
    equal = (s == diag).sum(dim=1).to(torch.float64)  # includes the diagonal itself
    return ((k - greater) / equal).clamp(0.0, 1.0)


def attack_accuracy(conf: torch.Tensor) -> float:
    """Fraction of attacked classes whose reconstruction the evaluator assigns to that class."""
    return float(diagonal_topk_hits(conf, 1).mean())


def top_k_accuracy(conf: torch.Tensor, k: int = 3) -> float:
    """Fraction of attacked classes whose true class is among the ``k`` most likely of its row."""
    return float(diagonal_topk_hits(conf, k).mean())


def average_confidence(conf: torch.Tensor) -> float:
    """Mean over classes of the evaluator's confidence in the attacked class, ``mean_i conf[i, i]``."""
    return float(_check(conf).diagonal().mean())


def daa(conf: torch.Tensor) -> float:
    """Discriminative attack accuracy: fraction of classes ``j`` whose most ``j``-like reconstruction
    (argmax over rows of column ``j``) is the one that attacked ``j``."""
    return float(diagonal_topk_hits(_check(conf).T, 1).mean())


METRICS = {
    "attack_acc": attack_accuracy,
    "top3_acc": lambda c: top_k_accuracy(c, 3),
    "avg_conf": average_confidence,
    "daa": daa,
}


def all_metrics(conf: torch.Tensor) -> dict[str, float]:
    """Every metric of ``conf`` under its stable results.json key (``attack_acc``, ``top3_acc``, ``avg_conf``, ``daa``)."""
    return {name: fn(conf) for name, fn in METRICS.items()}
