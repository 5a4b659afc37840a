"""Deliberately broken readers, one per failure column: they prove the harness sees each failure
(``tests/test_fuzz_readers.py``; ``--formats selftest-<kind>``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.fuzz.core import Format, Mutation


def _seed(case: Path, variant: str) -> None:
    case.mkdir(parents=True, exist_ok=True)
    (case / "f.bin").write_bytes(b"seed")


def _selftest(name: str, read: Callable[[Path], Any]) -> Format:
    return Format(f"selftest-{name}", _seed, lambda case: [case / "f.bin"], read,
                  semantic=(lambda rng, case: Mutation("must-fail", True),), generic=lambda n, t, v: True)


def _fail_after_writing(case: Path) -> None:
    from nmprivacy.errors import NmprivacyError

    (case / "out").mkdir(exist_ok=True)
    (case / "out" / "half.json").write_text("{")
    raise NmprivacyError(f"{case / 'f.bin'} is bad")


def _two_lines(case: Path) -> None:
    from nmprivacy.errors import NmprivacyError

    raise NmprivacyError(f"{case / 'f.bin'} is bad\nand this is a second line")


SELFTEST: dict[str, Format] = {f.name: f for f in (
    _selftest("traceback", lambda case: int("not a number")),
    _selftest("memory", lambda case: np.ones(1 << 40, dtype=np.uint8)),
    _selftest("hang", lambda case: time.sleep(3600)),
    _selftest("crash", lambda case: os.kill(os.getpid(), signal.SIGSEGV)),
    _selftest("partial", _fail_after_writing),
    _selftest("accepts", lambda case: None),
    _selftest("message", _two_lines),
)}
