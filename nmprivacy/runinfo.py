"""Reproducibility records and crash-safe file writes shared by every stage.

Every result file is written through ``atomic_write_*`` (temp file in the same folder, then
``os.replace``) so that no half-written result is ever left behind; every run records
``run_metadata()`` (versions, machine, seed, config, timings) next to its results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

STACK_PACKAGES = ("nmprivacy", "torch", "numpy", "lava-nc", "lava-dl", "norse", "tonic", "h5py")


def package_versions(names: tuple[str, ...] = STACK_PACKAGES) -> dict[str, str]:
    """Installed version of each named distribution (``"missing"`` when not installed)."""
    out: dict[str, str] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def machine_info() -> dict[str, Any]:
    """Cores, torch threads and platform of this machine."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, paths, tuples and numpy/torch scalars to plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj


def run_metadata(config: Any = None, seed: int | None = None, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """The record every run stores beside its results: config, seed, versions, machine, timings."""
    return {
        "config": to_jsonable(config),
        "seed": seed,
        "versions": package_versions(),
        "machine": machine_info(),
        "timings_s": to_jsonable(timings or {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files (e.g. 0644)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (dataclasses and tensors converted)."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


class Stopwatch:
    """Named wall-clock timings: ``with sw("train"): ...`` accumulates seconds under "train"."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
