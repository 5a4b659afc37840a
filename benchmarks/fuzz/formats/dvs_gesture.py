"""DVS Gesture ``.npy`` event files: coordinates, polarities, times, dtypes, shapes, names, folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Evil, Rng, check_splits, data_info, files_under, load, npy_huge_header, pick, writers


def dvs_folder(case: Path) -> Path:
    return case / "data" / "DVSGesture"


def dvs_files(case: Path) -> list[Path]:
    """The gesture files the loader reads (``10.npy``, "Other gestures", is dropped unread)."""
    return [p for p in files_under(dvs_folder(case), "*.npy") if p.name != "10.npy"]


def dvs_mutation(rng: Rng, case: Path) -> Mutation:
    """Crafted gesture files: coordinates, polarities and times out of range, NaN, wrong dtypes and
    shapes, float16 times, huge headers, bad file names, a file for a split folder."""
    path = pick(rng, dvs_files(case))
    ev = np.load(path)
    how = pick(rng, ["x", "y", "p", "tneg", "thuge", "nan", "inf", "bool", "str", "complex", "object", "cols3", "cols5", "flat", "cube",
                     "f16big", "f16small", "float64", "int32", "unsorted", "empty", "huge", "name", "splitfile"])
    must_fail: bool | None = True
    expect = None
    i = int(rng.integers(len(ev)))
    if how in ("x", "y"):
        ev[i, 0 if how == "x" else 1] = pick(rng, [128, 129, -1, 70000, 2**40])
    elif how == "p":
        ev[i, 2] = pick(rng, [2, -1, 255])
    elif how == "tneg":
        ev[i, 3] = -int(rng.integers(1, 10**6))
    elif how == "thuge":
        ev[-1, 3] = pick(rng, [10**15, 2**62, 2**31 + 5])
    elif how in ("nan", "inf"):
        ev = ev.astype(np.float64)
        ev[i, int(rng.integers(4))] = np.nan if how == "nan" else np.inf
    elif how == "bool":
        ev = ev > 0
    elif how == "str":
        ev = ev.astype("U8")
    elif how == "complex":
        ev = ev.astype(np.complex128)
    elif how == "object":
        ev, expect = np.array([[Evil()] * 4] * 3, dtype=object), "refused"
    elif how == "cols3":
        ev = ev[:, :3]
    elif how == "cols5":
        ev = np.concatenate([ev, ev[:, :1]], axis=1)
    elif how == "flat":
        ev = ev.ravel()
    elif how == "cube":
        ev = ev[None]
    elif how == "f16big":
        ev = ev.astype(np.float16)
        ev[-1, 3] = np.float16(65504) * 2  # inf in float16
    elif how == "f16small":
        ev, must_fail = ev.astype(np.float16), None
    elif how == "float64":
        ev, must_fail = ev.astype(np.float64), False
    elif how == "int32":
        ev, must_fail = ev.astype(np.int32), False
    elif how == "unsorted":
        ev, must_fail = ev[rng.permutation(len(ev))], None
    elif how == "empty":
        ev, must_fail = ev[:0], None
    if how == "name":
        path.rename(path.with_name(pick(rng, ["11.npy", "x.npy", "-1.npy", "0011.npy", "1e3.npy"])))
    elif how == "splitfile":
        split = dvs_folder(case) / pick(rng, ["ibmGestureTrain", "ibmGestureTest"])
        shutil.rmtree(split)
        split.write_bytes(b"not a folder")
    else:
        np.save(path, ev, allow_pickle=how == "object")
        if how == "huge":
            npy_huge_header(path, rng)
    return Mutation(f"dvs-{how}", must_fail, expect)


FORMAT = Format(
    "dvs-gesture",
    write_seed=lambda case, variant: writers().write_dvs_gesture(
        dvs_folder(case), {"ibmGestureTrain": ["user01_led"], "ibmGestureTest": ["user02_led"]}, labels=range(11), n_events=150),
    targets=dvs_files,
    read=load("dvs-gesture", cache=False),
    check=check_splits,
    semantic=(dvs_mutation,),
    generic=expect({"truncate": True, "magic": True, "append": True, "random": True, "delete": None}),  # one gesture fewer is fine
    cli=data_info("dvs-gesture", "cache=false"),
)
