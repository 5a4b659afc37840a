"""Class-balanced subsets for small runs (``limit_train`` / ``limit_test``)."""

from __future__ import annotations

import numpy as np
import torch

from nmprivacy.data.base import Split
from nmprivacy.errors import NmprivacyError


def check_limit(name: str, limit: object) -> int | None:
    """``limit`` as a positive int (or None); a one-line error for anything else."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise NmprivacyError(f"{name} must be a positive whole number of samples, got {limit!r}")
    return int(limit)


def balanced_indices(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices (ascending) of at most ``limit`` samples, taken round-robin over the classes.

    Within each class the earliest samples are taken first, so the choice is deterministic and
    every class is represented as evenly as ``limit`` allows. ``labels``: int ``[N]``.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if limit is None or limit >= n:
        return np.arange(n)
    per_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    # rank of each sample inside its class; take the lowest ranks across classes first
    rank = np.empty(n, dtype=np.int64)
    for idx in per_class:
        rank[idx] = np.arange(idx.size)
    order = np.lexsort((labels, rank))  # by rank, ties broken by class
    return np.sort(order[:limit])


def limit_split(split: Split, limit: int | None) -> Split:
    """``split`` cut to at most ``limit`` class-balanced samples (unchanged when ``limit`` is None)."""
    if limit is None or limit >= len(split):
        return split
    idx = torch.from_numpy(balanced_indices(split.y.numpy(), limit))
    return Split(split.x[idx], split.y[idx])
