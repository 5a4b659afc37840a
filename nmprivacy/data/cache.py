"""Cache of preprocessed tensors, keyed by a hash of the settings and the input file list.

Files are ``<data folder>/.nmprivacy-cache/<name>-<sha>.pt`` (or ``$NMPRIVACY_CACHE`` /
``~/.nmprivacy/cache`` when the data folder is read-only), written atomically and loaded with
``weights_only=True``. Any change of settings or files changes the hash, hence the file name.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import torch

from nmprivacy.runinfo import atomic_path, to_jsonable

CACHE_FORMAT = 1  # bump when the preprocessing code changes meaning


def cache_dir(data_folder: Path | None) -> Path:
    """Where caches go: ``$NMPRIVACY_CACHE``, else ``<data_folder>/.nmprivacy-cache`` if writable,
    else ``~/.nmprivacy/cache``."""
    env = os.environ.get("NMPRIVACY_CACHE")
    if env:
        return Path(env)
    if data_folder is not None:
        folder = data_folder / ".nmprivacy-cache"
        if folder.is_dir() and os.access(folder, os.W_OK):
            return folder
        if not folder.exists() and os.access(data_folder, os.W_OK):
            return folder
    return Path.home() / ".nmprivacy" / "cache"


def file_fingerprint(files: Iterable[Path], base: Path) -> list[tuple[str, int]]:
    """(path relative to ``base``, size in bytes) of each file: the file-list part of a cache key."""
    out = []
    for f in files:
        try:
            rel = str(f.relative_to(base))
        except ValueError:
            rel = str(f)
        out.append((rel, f.stat().st_size))
    return out


def cache_key(settings: dict[str, Any], inputs: object = None) -> str:
    """A short sha256 of the settings and the inputs' identity (e.g. ``file_fingerprint``)."""
    payload = json.dumps(
        {"format": CACHE_FORMAT, "settings": to_jsonable(settings), "inputs": to_jsonable(inputs)}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_path(name: str, data_folder: Path | None, key: str) -> Path:
    """The cache file of data set ``name`` for ``key``."""
    return cache_dir(data_folder) / f"{name}-{key}.pt"


def load_cached(path: Path) -> dict[str, Any] | None:
    """The cached dictionary at ``path`` or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None


def save_cached(path: Path, content: dict[str, Any]) -> Path:
    """Write ``content`` (tensors, numbers, strings) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return path
