"""Olivetti ``.npy`` arrays: NaN/inf, ranges, dtypes, shapes, targets, pickles, huge headers; valid variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Evil, Rng, check_splits, data_info, files_under, load, npy_huge_header, pick, writers

npy_generic = expect({"truncate": True, "magic": True, "append": True, "random": True})


def olivetti_folder(case: Path) -> Path:
    return case / "data" / "olivetti"


def olivetti_mutation(rng: Rng, case: Path) -> Mutation:
    """Crafted Olivetti arrays: NaN/inf, out of range, wrong dtypes and shapes, bad targets, huge headers."""
    folder = olivetti_folder(case)
    img_path, tgt_path = folder / "olivetti_faces.npy", folder / "olivetti_faces_target.npy"
    images, targets = np.load(img_path), np.load(tgt_path)
    how = pick(rng, ["nan", "inf", "range", "str", "complex", "bool", "object", "ndim2", "ndim4", "tfloat", "t2d", "tlen",
                     "nine", "huge", "zero", "uint8", "float64", "fortran", "bigendian"])
    must_fail: bool | None = True
    expect = None
    if how in ("nan", "inf", "range"):
        images = images.copy()
        images.flat[int(rng.integers(images.size))] = {"nan": np.nan, "inf": pick(rng, [np.inf, -np.inf]), "range": pick(rng, [1.5, -0.1, 1e30])}[how]
    elif how == "str":
        images = images.astype("U5")
    elif how == "complex":
        images = images.astype(np.complex64)
    elif how == "bool":
        images = images > 0.05
    elif how == "object":
        images, expect = np.array([Evil()] * len(targets), dtype=object), "refused"
    elif how == "ndim2":
        images = images.reshape(len(images), -1)
    elif how == "ndim4":
        images = images[:, None]
    elif how == "tfloat":
        targets = targets + 0.5
    elif how == "t2d":
        targets = targets[:, None]
    elif how == "tlen":
        targets = targets[:-1]
    elif how == "nine":
        targets = targets.copy()
        targets[0] = targets[-1]
    elif how == "zero":
        images, targets = images[:0], targets[:0]
    elif how == "uint8":
        images, must_fail = np.rint(images * 255).astype(np.uint8), False
    elif how == "float64":
        images, must_fail = images.astype(np.float64), False
    elif how == "fortran":
        images, must_fail = np.asfortranarray(images), False
    elif how == "bigendian":
        images, must_fail = images.astype(">f4"), False
    np.save(img_path, images, allow_pickle=how == "object")
    np.save(tgt_path, targets)
    if how == "huge":
        npy_huge_header(pick(rng, [img_path, tgt_path]), rng)
    return Mutation(f"olivetti-{how}", must_fail, expect)


FORMAT = Format(
    "olivetti",
    write_seed=lambda case, variant: writers().write_olivetti(olivetti_folder(case), subjects=2, size=8),
    targets=lambda case: files_under(olivetti_folder(case), "*.npy"),
    read=load("olivetti"),
    check=check_splits,
    semantic=(olivetti_mutation,),
    generic=npy_generic,
    cli=data_info("olivetti"),
)
