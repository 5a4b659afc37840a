"""Reproducibility records and crash-safe file writes shared by every stage.

Every result file is written through ``atomic_write_*`` (temp file in the same folder, then
``os.replace``) and every result folder through ``atomic_dir``, so that no half-written result
(nor an empty folder) is ever left behind; every run records
``run_metadata()`` (versions, machine, seed, config, timings) next to its results.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from nmprivacy.errors import NmprivacyError

STACK_PACKAGES = ("nmprivacy", "torch", "numpy", "lava-nc", "lava-dl", "norse", "tonic", "h5py")


PACKAGE_DIR = Path(__file__).resolve().parent


def package_versions(names: tuple[str, ...] = STACK_PACKAGES) -> dict[str, str]:
    """Installed version of each named distribution (``"missing"`` when not installed), plus
    which nmprivacy code runs (``source_version``): a package version does not change with
    every commit, the code that trains and attacks does."""
    out: dict[str, str] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return {**out, **source_version()}


@functools.lru_cache(maxsize=1)
def source_version() -> dict[str, str]:
    """The running nmprivacy code: ``nmprivacy-source``, a SHA-256 (first 16 hex digits) over the
    package's Python files (relative path and content: the same in any checkout or install of
    the same code), and, when the package sits in a git work tree, ``nmprivacy-git``: the commit,
    with ``+dirty`` when the package's files differ from it."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    out = {"nmprivacy-source": digest.hexdigest()[:16]}
    commit = _git("rev-parse", "HEAD")
    if commit:
        out["nmprivacy-git"] = commit + ("+dirty" if _git("status", "--porcelain", "--", ".") else "")
    return out


def _git(*args: str) -> str:
    """Output of ``git args`` run in the package folder ("" when git or a work tree is missing)."""
    try:
        done = subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def machine_info() -> dict[str, Any]:
    """Cores, torch threads and platform of this machine."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        **({"thread_plan": plan.record()} if (plan := _thread_plan()) is not None else {}),
    }


def _thread_plan():  # the CLI's or the API's choice of threads, with its reason (nmprivacy.resources)
    from nmprivacy import resources

    return resources.current()


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, paths, tuples and numpy/torch scalars to plain JSON values.

    A dataclass's fields named in its ``OMITTED_AT_DEFAULT`` are left out while they hold their
    default (settings added after results were keyed: older cache keys and records stay valid)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        omit = getattr(obj, "OMITTED_AT_DEFAULT", ())
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.name in omit and getattr(obj, f.name) == f.default)}
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


def check_output(path: str | os.PathLike[str], folder: bool = False) -> Path:
    """``path`` if an output file (``folder``: an output folder) can be created there; else a
    one-line ``NmprivacyError`` (a folder where a file goes or the reverse, a file in the way)."""
    target = Path(path)
    if target.is_dir() and not folder:
        raise NmprivacyError(f"output {target} is a folder: give a file name")
    if target.exists() and not target.is_dir() and folder:
        raise NmprivacyError(f"output folder {target} is an existing file: choose another folder name")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NmprivacyError(f"cannot create {target}: {parent} is a file, not a folder")
            break
    return target


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the created folders, deepest last."""
    missing = []
    for p in (folder, *folder.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        p.mkdir(exist_ok=True)
    return list(reversed(missing))


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders ``_make_parents`` created, deepest first, while they are empty."""
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            break


def _unwritable(target: Path, exc: OSError) -> NmprivacyError:
    return NmprivacyError(f"cannot write {target} ({exc.strerror or type(exc).__name__}): choose a writable path")


def _ordinary_mode(path: str, mode: int) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)  # mkstemp/mkdtemp make 0600/0700; results are ordinary (e.g. 0644)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On failure nothing is left: neither the temporary file nor folders created for it. A path
    that cannot be written is a one-line ``NmprivacyError`` naming ``path``."""
    target = check_output(path)
    try:
        created = _make_parents(target.parent)
    except OSError as exc:
        raise _unwritable(target, exc) from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        _remove_empty(created)
        raise _unwritable(target, exc) from None
    os.close(fd)
    _ordinary_mode(tmp, 0o666)
    tmp_path = Path(tmp)
    done = False
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, target)
        except OSError as exc:
            raise _unwritable(target, exc) from None
        done = True
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        if not done:
            _remove_empty(created)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it takes ``path``'s place
    (a folder already at ``path`` is replaced as a whole), on failure it is removed together
    with the parent folders created for it. Whether an existing folder may be replaced is the
    caller's decision."""
    target = check_output(path, folder=True)
    try:
        created = _make_parents(target.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        _remove_empty(locals().get("created", []))
        raise _unwritable(target, exc) from None
    _ordinary_mode(str(tmp), 0o777)
    done = False
    try:
        yield tmp
        old = None
        try:
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
                os.replace(target, old / target.name)
            os.replace(tmp, target)
        except OSError as exc:
            if old is not None and (old / target.name).exists() and not target.exists():
                os.replace(old / target.name, target)  # put the previous folder back
            raise _unwritable(target, exc) from None
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        done = True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            _remove_empty(created)


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
