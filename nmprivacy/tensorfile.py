"""Reading ``.pt`` tensor files safely: no code is ever unpickled and no tensor is trusted blindly.

``load_tensor_file`` reads with ``torch.load(weights_only=True)`` and turns every failure into a
one-line ``NmprivacyError`` that says the true problem: missing, a folder, empty, refused (the
file asks to run code or to build objects other than tensors), not a torch tensor file, or
truncated/corrupt. ``check_tensor`` refuses tensors whose shape claims more elements than their
storage holds (a stride-0 tensor of a few bytes can claim terabytes and allocate them on first
use), unexpected dtypes, shapes and non-finite values.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from nmprivacy.errors import NmprivacyError

ZIP_MAGIC = b"PK\x03\x04"
DTYPE_KINDS = {
    "float": (torch.float16, torch.bfloat16, torch.float32, torch.float64),
    "int": (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64),
    "bool": (torch.bool,),
}


def _problem(path: Path, exc: BaseException) -> str:
    """What a ``torch.load`` failure says about the file."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        unsafe = re.search(r"Unsupported (?:class|global):? ?([\w.]+)", text)
        if unsafe:
            return f"refused: it contains code (it asks to build '{unsafe.group(1)}'), and nmprivacy reads tensor files only"
        return "refused: it is not a plain tensor file (its pickle holds objects other than tensors, or is damaged)"
    if isinstance(exc, RecursionError):
        return "refused: its contents are nested too deeply to be a tensor file"
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == ZIP_MAGIC:
        return f"is truncated or corrupt ({type(exc).__name__})"
    return f"is not a torch tensor file (no torch.save archive; {type(exc).__name__})"


def load_tensor_file(path: str | os.PathLike[str], what: str, fix: str, error: type[NmprivacyError] = NmprivacyError) -> Any:
    """The contents of ``.pt`` file ``path`` (tensors, dicts, lists, numbers only).

    ``what`` names the file in messages (e.g. "checkpoint weights"), ``fix`` says what to do;
    every failure raises ``error`` with ``"<what> <path> <problem>; <fix>"``.
    """
    p = Path(path)
    if not p.exists():
        raise error(f"{what} {p} not found; {fix}")
    if not p.is_file():
        raise error(f"{what} {p} is a folder, not a file; {fix}")
    try:
        if p.stat().st_size == 0:
            raise error(f"{what} {p} is empty (0 bytes); {fix}")
        return torch.load(p, map_location="cpu", weights_only=True)
    except (NmprivacyError, MemoryError):
        raise
    except Exception as exc:  # torch raises many types for foreign or damaged files
        if "can't allocate memory" in str(exc):
            raise  # an allocation failure is not a verdict on the file
        try:
            problem = _problem(p, exc)
        except OSError as exc2:
            problem = f"cannot be read ({exc2.strerror})"
        raise error(f"{what} {p} {problem}; {fix}") from None


def storage_ok(t: torch.Tensor) -> bool:
    """True when ``t``'s shape needs no more bytes than its storage holds (no overlapping views)."""
    if t.is_sparse or t.layout != torch.strided:
        return False
    n = t.numel()
    if n == 0:
        return True
    if any(s < 0 for s in t.stride()):
        return False
    extent = 1 + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()))
    itemsize = t.element_size()
    nbytes = t.untyped_storage().nbytes()
    return n <= extent and (t.storage_offset() + extent) * itemsize <= nbytes and n * itemsize <= nbytes


def check_tensor(
    value: object,
    name: str,
    *,
    kinds: Sequence[str] = ("float", "int", "bool"),
    ndim: int | Sequence[int] | None = None,
    finite: bool = True,
    max_elements: int | None = None,
) -> torch.Tensor:
    """``value`` if it is a dense tensor of one of ``kinds`` (``float``, ``int``, ``bool``) with
    ``ndim`` dimensions, honest storage and (``finite``) no NaN/inf; raises ``ValueError`` naming
    ``name`` and the problem otherwise (callers turn it into their one-line error)."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} is {type(value).__name__}, not a tensor")
    t = value
    allowed = tuple(d for k in kinds for d in DTYPE_KINDS[k])
    if t.dtype not in allowed:
        raise ValueError(f"{name} has dtype {str(t.dtype).replace('torch.', '')}, expected {' or '.join(kinds)}")
    if ndim is not None:
        dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.dim() not in dims:
            raise ValueError(f"{name} has {t.dim()} dimensions {tuple(t.shape)}, expected {' or '.join(map(str, dims))}")
    if not storage_ok(t):
        raise ValueError(f"{name} claims shape {tuple(t.shape)} ({math.prod(t.shape)} elements) but its storage holds only "
                         f"{t.untyped_storage().nbytes()} bytes (an overlapping or forged view)")
    if max_elements is not None and t.numel() > max_elements:
        raise ValueError(f"{name} has {t.numel()} elements, more than the {max_elements} allowed")
    if finite and t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t
