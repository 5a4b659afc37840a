"""PGM images (the AT&T faces): ASCII tokens, headers, pixels above maxval, sizes; valid variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Rng, check_splits, data_info, files_under, load, pick, writers


def pgm_folder(case: Path) -> Path:
    return case / "data" / "att_faces"


def pgm_write(path: Path, header: bytes, body: bytes) -> None:
    path.write_bytes(header + body)


def pgm_pixels(rng: Rng, case: Path) -> tuple[Path, np.ndarray]:
    path = pick(rng, files_under(pgm_folder(case), "*.pgm"))
    from nmprivacy.data.faces import read_pgm

    return path, np.rint(read_pgm(path) * 255).astype(np.int64)


def pgm_ascii_token(rng: Rng, case: Path) -> Mutation:
    """An ASCII (P2) image with one pixel that is not a whole number."""
    path, img = pgm_pixels(rng, case)
    words = [str(int(v)).encode() for v in img.ravel()]
    words[int(rng.integers(len(words)))] = pick(rng, [b"x", b"-3", b"1.5", b"+7", b"0x1f", b"\xff\xfe", b"1e3", b"12a", b"9" * 40])
    h, w = img.shape
    pgm_write(path, f"P2\n{w} {h}\n255\n".encode(), b" ".join(words) + b"\n")
    return Mutation("pgm-ascii-token", True)


def pgm_header(rng: Rng, case: Path) -> Mutation:
    """Header values that cannot be: maxval 0 or > 65535, huge or non-numeric sizes, other magic."""
    path, img = pgm_pixels(rng, case)
    h, w = img.shape
    body = img.astype(np.uint8).tobytes()
    how = pick(rng, ["maxval", "size", "magic", "digits"])
    if how == "maxval":
        header = f"P5\n{w} {h}\n{pick(rng, [0, 65536, 10**12, -255])}\n".encode()
    elif how == "size":
        header = f"P5\n{pick(rng, [w, 999999, 2**31])} {pick(rng, [999999, 2**31 - 1, 0, -h])}\n255\n".encode()
    elif how == "magic":
        header = f"{pick(rng, ['P6', 'P3', 'P1', 'P4', 'P5x', 'p5', 'P'])}\n{w} {h}\n255\n".encode()
    else:
        header = f"P5\n{'1' + '0' * 5000} {h}\n255\n".encode()
    pgm_write(path, header, body)
    return Mutation(f"pgm-header-{how}", True)


def pgm_above_maxval(rng: Rng, case: Path) -> Mutation:
    """Pixels larger than the header's maxval (the seed's pixels go up to 219)."""
    path, img = pgm_pixels(rng, case)
    h, w = img.shape
    binary = rng.random() < 0.5
    body = img.astype(np.uint8).tobytes() if binary else " ".join(map(str, img.ravel())).encode()
    pgm_write(path, f"{'P5' if binary else 'P2'}\n{w} {h}\n100\n".encode(), body)
    return Mutation("pgm-above-maxval", True)


def pgm_other_size(rng: Rng, case: Path) -> Mutation:
    """One valid image of another size than the others."""
    path, img = pgm_pixels(rng, case)
    writers().write_pgm(path, img[:, :-1].astype(np.uint8))
    return Mutation("pgm-other-size", True)


def pgm_valid(rng: Rng, case: Path) -> Mutation:
    """Valid variations: comments between header fields, CRLF, 16-bit pixels."""
    path, img = pgm_pixels(rng, case)
    h, w = img.shape
    if rng.random() < 0.5:
        pgm_write(path, f"P5 # c\n# more\n{w}\r\n# x\n{h} 255\n".encode(), img.astype(np.uint8).tobytes())
        return Mutation("pgm-valid-comments", False)
    writers().write_pgm(path, (img * 4).astype(np.uint16), maxval=1000)
    return Mutation("pgm-valid-16bit", False)


def pgm_generic(name: str, target: Path, variant: str) -> bool | None:
    if name == "truncate":
        return True if variant == "P5" else None  # a P2 file cut after its last digit is still whole
    return expect({"magic": True, "random": True})(name, target, variant)


FORMAT = Format(
    "pgm",
    write_seed=lambda case, variant: writers().write_att_faces(pgm_folder(case), subjects=2, h=12, w=10, binary=variant == "P5"),
    targets=lambda case: files_under(pgm_folder(case), "*.pgm"),
    read=load("att-faces"),
    variants=("P5", "P2"),
    check=check_splits,
    semantic=(pgm_ascii_token, pgm_header, pgm_above_maxval, pgm_other_size, pgm_valid),
    generic=pgm_generic,
    cli=data_info("att-faces"),
)
