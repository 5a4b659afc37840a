"""Inversion files: tensors only (``torch.load(weights_only=True)`` reads them safely).

An inversion file is a dict of tensors: ``reconstructions`` (``[K, T, *input_shape]`` spikes
or ``[K, *input_shape]`` images), ``probabilities`` (BL-v2's X_p, optional), ``loss_curve`` and
``confidence_curve`` ``[iterations, K]``, ``classes`` ``[K]`` and ``seed``; query attacks add
``queries`` and their trace (``trace_queries`` ``[S]``, ``trace_confidence`` ``[S, K]``,
``trace_rates`` ``[S, K, bins, *input_shape]``, see ``QueryTrace``). A bare tensor (as the
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
    trace = getattr(inv, "trace", None)  # query attacks (QueryInversion): leakage-vs-queries snapshots
    if trace is not None:
        tensors.update(queries=torch.tensor(inv.queries), trace_queries=trace.queries, trace_confidence=trace.confidence, trace_rates=trace.rates)
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
    return Path(path)


RECON_FIX = "pass a file written by `nmprivacy attack`/`audit` (inversion-*.pt) or a tensor saved with torch.save(tensor, path)"


def load_reconstructions(path: str | os.PathLike[str]) -> tuple[torch.Tensor, list[int] | None]:
    """(reconstructions as float, attacked classes or None) from an inversion file or a bare tensor file.

    Read with ``weights_only=True``; the reconstructions must be a real-valued tensor with at
    least 2 dimensions, honest storage and finite values, the classes distinct non-negative
    integers, one per reconstruction. Anything else is a one-line ``NmprivacyError``.
    """
    from nmprivacy.tensorfile import check_tensor, load_tensor_file

    p = Path(path)
    data = load_tensor_file(p, "reconstruction file", RECON_FIX)
    if isinstance(data, dict) and "reconstructions" in data:
        recon, classes = data["reconstructions"], data.get("classes")
    elif isinstance(data, torch.Tensor):
        recon, classes = data, None
    else:
        what = f"a dict without 'reconstructions' (keys {sorted(map(str, data))[:4]})" if isinstance(data, dict) else type(data).__name__
        raise NmprivacyError(f"reconstruction file {p} holds {what}, not a tensor or an inversion dict; {RECON_FIX}")
    try:
        recon = check_tensor(recon, "reconstructions", ndim=(2, 3, 4, 5, 6)).detach().float()
        if not bool(torch.isfinite(recon).all()):
            raise ValueError("reconstructions hold values beyond float32's range")
        if classes is not None:
            classes = check_tensor(classes, "classes", kinds=("int",), ndim=1)
            if len(classes) != recon.shape[0]:
                raise ValueError(f"lists {len(classes)} classes for {recon.shape[0]} reconstructions")
            if (len(classes) and int(classes.min()) < 0) or len(set(classes.tolist())) != len(classes):
                raise ValueError(f"classes {classes.tolist()[:10]} are not distinct non-negative class indices")
    except ValueError as exc:
        raise NmprivacyError(f"reconstruction file {p} is invalid: {exc}; {RECON_FIX}") from None
    return recon, ([int(c) for c in classes] if classes is not None else None)


INVERSION_FILES = ("inversion.pt", "inversion-*.pt")


def inversion_files(path: str | os.PathLike[str]) -> list[Path]:
    """The inversion files of a run: the file itself, or ``inversion.pt`` / ``inversion-*.pt`` in a folder."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        found = [f for pattern in INVERSION_FILES for f in sorted(p.glob(pattern))]
        if found:
            return found
        raise NmprivacyError(f"no inversion.pt or inversion-*.pt in {p}: pass the folder of an attack or audit run (nmprivacy attack/audit)")
    raise NmprivacyError(f"--inversion {p} does not exist: pass the folder of an attack or audit run")


def load_inversion(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of an inversion file (``reconstructions`` ``[K, ...]``, ``classes`` ``[K]``,
    BL-v2's ``probabilities`` when present: same shape as the reconstructions, in [0, 1]),
    validated like ``load_reconstructions``."""
    from nmprivacy.tensorfile import check_tensor, load_tensor_file

    p = Path(path)
    recon, classes = load_reconstructions(p)
    out = {"reconstructions": recon, "classes": torch.as_tensor(classes if classes is not None else range(recon.shape[0]), dtype=torch.long)}
    data = load_tensor_file(p, "inversion file", RECON_FIX)
    probs = data.get("probabilities") if isinstance(data, dict) else None
    if probs is not None:
        try:
            probs = check_tensor(probs, "probabilities", kinds=("float",)).float()
            if tuple(probs.shape) != tuple(recon.shape):
                raise ValueError(f"probabilities of shape {tuple(probs.shape)} do not match the reconstructions {tuple(recon.shape)}")
            if probs.numel() and (float(probs.min()) < 0 or float(probs.max()) > 1):
                raise ValueError("probabilities lie outside [0, 1]")
        except ValueError as exc:
            raise NmprivacyError(f"inversion file {p} is invalid: {exc}; re-run the attack") from None
        out["probabilities"] = probs
    return out
