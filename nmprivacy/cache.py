"""The one cache: preprocessed data sets and trained models, under one root, keyed by one function.

Root: ``$NMPRIVACY_CACHE``, else the platform's user cache folder (``~/.cache/nmprivacy`` on
Linux, via platformdirs); the audit's ``--cache DIR`` overrides it for trained models. Entries:
- ``<root>/<data set>-<key>.pt``: event frames and labels (``save_entry`` / ``load_entry``);
- ``<root>/<data set>-<kind>-s<seed>-<key>/``: checkpoint folders of trained models.
Keys are ``cache_key(**parts)``: a short sha256 of the parts' JSON form, so any change of
settings or inputs changes the name. Entries are written atomically with a digest of their
contents; one that cannot be read, does not match its digest or fails its content check is a
miss (rebuilt), never trusted. Nothing is written into data folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from nmprivacy.errors import NmprivacyError
from nmprivacy.runinfo import atomic_path, to_jsonable

FORMAT = 1  # bump when a cached entry changes meaning
DIGEST = "_digest"  # key of the content digest inside a cache entry


def cache_root(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``override``, else ``$NMPRIVACY_CACHE``, else the user cache folder."""
    if override:
        return Path(override)
    env = os.environ.get("NMPRIVACY_CACHE")
    if env:
        return Path(env)
    try:
        from platformdirs import user_cache_dir
    except ImportError:  # platformdirs is a dependency; this only guards a broken install
        return Path.home() / ".cache" / "nmprivacy"
    return Path(user_cache_dir("nmprivacy", appauthor=False))


def cache_key(**parts: Any) -> str:
    """Short stable hash of the JSON form of ``parts`` (settings, inputs, seed, ...)."""
    blob = json.dumps(to_jsonable({"format": FORMAT, **parts}), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_fingerprint(files: Iterable[Path], base: Path) -> list[tuple[str, int, int]]:
    """(path relative to ``base``, size in bytes, mtime in ns) of each file: the inputs part of a key."""
    out = []
    for f in files:
        try:
            rel = str(f.relative_to(base))
        except ValueError:
            rel = str(f)
        st = f.stat()
        out.append((rel, st.st_size, st.st_mtime_ns))
    return out


def entry_path(name: str, key: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The cache file of ``name`` (e.g. a data set) for ``key``."""
    return cache_root(root) / f"{name}-{key}.pt"


def _say(text: str) -> None:
    try:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(text, file=sys.stderr)


def content_digest(content: dict[str, Any]) -> str:
    """A blake2b digest of a cache entry's keys, tensors (dtype, shape, bytes) and other values."""
    h = hashlib.blake2b(digest_size=16)
    for key in sorted(k for k in content if k != DIGEST):
        value = content[key]
        h.update(repr(key).encode())
        if isinstance(value, torch.Tensor):
            h.update(f"{value.dtype}{tuple(value.shape)}".encode())
            h.update(value.detach().contiguous().reshape(-1).view(torch.uint8).numpy().data)
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def _verified(content: object) -> dict[str, Any]:
    """``content`` without its digest if it is a dict of honest tensors matching its digest."""
    from nmprivacy.tensorfile import storage_ok

    if not isinstance(content, dict) or not isinstance(content.get(DIGEST), str):
        raise ValueError("it has no content digest")
    for key, value in content.items():
        if isinstance(value, torch.Tensor) and not storage_ok(value):
            raise ValueError(f"{key} claims more elements than its storage holds")
    if content_digest(content) != content[DIGEST]:
        raise ValueError("its contents do not match their digest (damaged)")
    return {k: v for k, v in content.items() if k != DIGEST}


def load_entry(path: Path, check: Callable[[Any], None]) -> Any | None:
    """The cached content at ``path``, or None (a miss) when it is absent, unreadable, does not
    match its digest or fails ``check`` (which raises ``ValueError`` or ``NmprivacyError`` for
    content it refuses)."""
    if not path.exists():
        return None
    from nmprivacy.tensorfile import load_tensor_file

    try:
        content = _verified(load_tensor_file(path, "cache entry", "rebuilding it"))
        check(content)
    except NmprivacyError as exc:  # names the entry and says it is rebuilt
        _say(str(exc))
        return None
    except (ValueError, TypeError, KeyError) as exc:
        _say(f"cache entry {path} is unusable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); rebuilding it")
        return None
    return content


def save_entry(path: Path, content: dict[str, Any]) -> bool:
    """Write ``content`` (tensors, numbers, strings) to ``path`` atomically; False when the cache
    folder cannot be written (the caller then goes on uncached)."""
    try:
        with atomic_path(path) as tmp:
            torch.save({**content, DIGEST: content_digest(content)}, tmp)
    except (OSError, NmprivacyError) as exc:
        _say(f"cannot write cache entry {path} ({str(exc).splitlines()[0]}); going on without caching (set NMPRIVACY_CACHE to a writable folder)")
        return False
    return True
