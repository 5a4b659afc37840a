"""Inversion files: tensors only (``torch.load(weights_only=True)`` reads them safely).

An inversion file is a dict of tensors: ``reconstructions`` (``[K, T, *input_shape]`` spikes
or ``[K, *input_shape]`` images), ``probabilities`` (BL-v2's X_p, optional), ``loss_curve`` and
``confidence_curve`` ``[iterations, K]``, ``classes`` ``[K]`` and ``seed``. A bare tensor (as the
published notebooks saved reconstructions) is read as the reconstructions of classes 0..K-1.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nmprivacy.attacks.base import Inversion
from nmprivacy.errors import NmprivacyError
from nmprivacy.runinfo import atomic_path


def save_inversion(path: str | os.PathLike[str], inv: Inversion) -> Path:
    """Write an ``Inversion``'s tensors atomically to ``path``."""
    tensors = {
        "reconstructions": inv.reconstructions,
        "loss_curve": inv.loss_curve,
        "confidence_curve": inv.confidence_curve,
        "classes": torch.as_tensor(inv.classes, dtype=torch.long),
        "seed": torch.tensor(inv.seed),
    }
    if inv.probabilities is not None:
        tensors["probabilities"] = inv.probabilities
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
    return Path(path)


def load_reconstructions(path: str | os.PathLike[str]) -> tuple[torch.Tensor, list[int] | None]:
    """(reconstructions, attacked classes or None) from an inversion file or a bare tensor file."""
    p = Path(path)
    if not p.is_file():
        raise NmprivacyError(f"reconstruction file {p} not found: pass a file written by `nmprivacy attack`/`audit` (inversion-*.pt) or a saved tensor")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        raise NmprivacyError(f"{p} is not a readable tensor file ({type(exc).__name__}): save reconstructions with torch.save(tensor, path)") from None
    if isinstance(data, torch.Tensor):
        return data.detach().float(), None
    if isinstance(data, dict) and isinstance(data.get("reconstructions"), torch.Tensor):
        classes = data.get("classes")
        return data["reconstructions"].float(), ([int(c) for c in classes] if isinstance(classes, torch.Tensor) else None)
    raise NmprivacyError(f"{p} holds {type(data).__name__}, not a tensor or an inversion dict with 'reconstructions'")
