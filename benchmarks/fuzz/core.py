"""What every part of the fuzz harness shares: a case's ``Mutation``, a fuzzed ``Format`` and their
registry, the generic byte-level mutations, a case's seeded generator and data-root isolation.

The format modules (``benchmarks.fuzz.formats``) import this module only; the runner imports it
and them, so there is no import cycle.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


@dataclass(frozen=True)
class Mutation:
    """What a case did to its seed. ``must_fail``: True when a correct reader must refuse it,
    False when it must succeed (and pass ``check``), None when either is right. ``expect``: a
    word the error message must contain (e.g. "refused" for a pickle with code)."""

    name: str
    must_fail: bool | None
    expect: str | None = None


@dataclass(frozen=True)
class Format:
    """One fuzzed reader (see ``benchmarks.fuzz``): how to write a valid seed case into a folder
    (``write_seed(case, variant)``), the files mutations may hit (``targets``), the reader call
    (``read(case)``), optionally ``check(result, case)``, semantic mutations (``semantic``:
    ``(rng, case) -> Mutation``), the expected outcome of each generic mutation
    (``generic(name, target, variant)``), the command line (``cli``), the case sub-folders a
    successful run may write into (``outputs``) and a one-off set-up before the memory limit
    (``warm``)."""

    name: str
    write_seed: Callable[[Path, str], None]
    targets: Callable[[Path], list[Path]]
    read: Callable[[Path], Any]
    variants: tuple[str, ...] = ("default",)
    check: Callable[[Any, Path], None] | None = None
    semantic: tuple[Callable[[np.random.Generator, Path], Mutation], ...] = ()
    generic: Callable[[str, Path, str], bool | None] = lambda name, target, variant: True if name in ALWAYS_FAIL else None
    cli: Callable[[Path], list[str]] | None = None
    outputs: tuple[str, ...] = ("cache", "out")
    warm: Callable[[Path], None] | None = None


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add ``fmt`` to the fuzzed formats (``benchmarks/fuzz/formats/__init__.py`` registers each)."""
    FORMATS[fmt.name] = fmt
    return fmt


# --- generic byte-level mutations ------------------------------------------------------------

def _truncate(rng: np.random.Generator, p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: int(rng.integers(0, max(len(data), 1)))])


def _empty(rng: np.random.Generator, p: Path) -> None:
    p.write_bytes(b"")


def _flip(rng: np.random.Generator, p: Path, head: bool = False) -> None:
    data = bytearray(p.read_bytes())
    if not data:
        return
    span = min(len(data), 32) if head else len(data)
    for i in rng.integers(0, span, size=int(rng.integers(1, 9))):
        data[i] ^= int(rng.integers(1, 256))
    p.write_bytes(bytes(data))


def _magic(rng: np.random.Generator, p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(bytes(rng.integers(0, 256, size=4, dtype=np.uint8)) + data[4:])


def _append(rng: np.random.Generator, p: Path) -> None:
    with open(p, "ab") as fh:
        fh.write(bytes(rng.integers(0, 256, size=int(rng.integers(1, 4096)), dtype=np.uint8)))


def _random(rng: np.random.Generator, p: Path) -> None:
    p.write_bytes(bytes(rng.integers(0, 256, size=max(p.stat().st_size, 1), dtype=np.uint8)))


def _directory(rng: np.random.Generator, p: Path) -> None:
    p.unlink()
    (p / "inner").mkdir(parents=True)


def _delete(rng: np.random.Generator, p: Path) -> None:
    p.unlink()


GENERIC: dict[str, Callable[[np.random.Generator, Path], None]] = {
    "truncate": _truncate,
    "empty": _empty,
    "flip": _flip,
    "flip-header": lambda rng, p: _flip(rng, p, head=True),
    "magic": _magic,
    "append": _append,
    "random": _random,
    "directory": _directory,
    "delete": _delete,
}
ALWAYS_FAIL = ("empty", "directory", "delete")  # refused by any reader of a single file (see ``expect``)


def expect(table: dict[str, bool | None] | None = None) -> Callable[[str, Path, str], bool | None]:
    """A ``Format.generic``: ``table``'s expectation per generic mutation, the ``ALWAYS_FAIL``
    ones True unless ``table`` says otherwise, the rest None."""
    full = {**{name: True for name in ALWAYS_FAIL}, **(table or {})}
    return lambda name, target, variant: full.get(name)


def case_rng(seed: int, fmt: str, index: int) -> np.random.Generator:
    """The generator of case ``index`` of format ``fmt``: depends on nothing else."""
    return np.random.default_rng([seed, zlib.crc32(fmt.encode()), index])


@contextlib.contextmanager
def isolated(cache: Path | None = None) -> Iterator[None]:
    """Within the block data sets are looked for only in the ``root`` they are given and (with
    ``cache``) ``NMPRIVACY_CACHE`` is ``cache``; both are restored afterwards."""
    from nmprivacy.data import files

    roots, env = files.data_roots, os.environ.get("NMPRIVACY_CACHE")
    files.data_roots = lambda r=None: [Path(r)] if r is not None else []
    if cache is not None:
        os.environ["NMPRIVACY_CACHE"] = str(cache)
    try:
        yield
    finally:
        files.data_roots = roots
        if env is None:
            os.environ.pop("NMPRIVACY_CACHE", None)
        else:
            os.environ["NMPRIVACY_CACHE"] = env
