"""N-MNIST ``.bin`` recordings: events off the sensor, partial events, overflow markers, huge files, folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Rng, check_splits, data_info, files_under, load, pick, writers


def nmnist_folder(case: Path) -> Path:
    return case / "data" / "NMNIST"


def nmnist_mutation(rng: Rng, case: Path) -> Mutation:
    """Events outside the 34x34 sensor, partial events, overflow markers, huge files, a file for a
    split folder, a split without recordings."""
    files = files_under(nmnist_folder(case), "*.bin")
    path = pick(rng, files)
    raw = bytearray(path.read_bytes())
    i = int(rng.integers(len(raw) // 5))
    how = pick(rng, ["x", "y", "partial", "overflow", "huge", "splitfile", "nosplit", "norecordings"])
    must_fail: bool | None = True
    if how == "x":
        raw[5 * i] = int(rng.integers(34, 256))
    elif how == "y":
        raw[5 * i + 1] = pick(rng, [int(rng.integers(34, 240)), int(rng.integers(241, 256))])
    elif how == "partial":
        raw += bytes(int(rng.integers(1, 5)))
    elif how == "overflow":
        raw[5 * i + 1], must_fail = 240, None  # a time-stamp overflow marker: valid
    if how in ("x", "y", "partial", "overflow"):
        path.write_bytes(bytes(raw))
    elif how == "huge":
        os.truncate(path, ((1 << 26) // 5 + 1) * 5)  # whole events beyond the size bound; sparse: costs no disk
    elif how == "splitfile":
        split = nmnist_folder(case) / pick(rng, ["Train", "Test"])
        shutil.rmtree(split)
        split.write_bytes(b"")
    elif how == "nosplit":
        shutil.rmtree(nmnist_folder(case) / pick(rng, ["Train", "Test"]))
    elif how == "norecordings":
        for f in files_under(nmnist_folder(case) / pick(rng, ["Train", "Test"]), "*.bin"):
            f.unlink()
    return Mutation(f"nmnist-{how}", must_fail)


FORMAT = Format(
    "nmnist",
    write_seed=lambda case, variant: writers().write_nmnist(nmnist_folder(case), {"Train": 1, "Test": 1}),
    targets=lambda case: files_under(nmnist_folder(case), "*.bin"),
    read=load("nmnist", cache=False),
    check=check_splits,
    semantic=(nmnist_mutation,),
    generic=expect({"delete": None}),  # one recording fewer is fine; a cut or appended file may still hold whole events
    cli=data_info("nmnist", "cache=false"),
)
