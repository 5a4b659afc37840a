"""IDX files (the MNIST layout): headers, labels, image sizes, gzip bombs and trailing data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Rng, check_splits, data_info, files_under, gzip_bomb, load, pick, writers


def idx_folder(case: Path) -> Path:
    return case / "data" / "mnist"


def idx_raw(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def idx_store(path: Path, raw: bytes) -> None:
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def idx_file(rng: Rng, case: Path, kind: str = "") -> Path:
    return pick(rng, [p for p in files_under(idx_folder(case), "*") if kind in p.name])


def idx_header(rng: Rng, case: Path) -> Mutation:
    """Rewrite the header: wrong dimension count, huge, wrapping or zero dimensions."""
    path = idx_file(rng, case)
    raw = bytearray(idx_raw(path))
    ndim = raw[3]
    how = pick(rng, ["ndim", "huge", "wrap", "zero"])
    if how == "ndim":
        raw[3] = pick(rng, [d for d in (0, 1, 2, 3, 4, 255) if d != ndim])
    else:
        i = int(rng.integers(ndim))
        value = {"huge": int(rng.integers(2**24, 2**32)), "wrap": 2**32 - 1, "zero": 0}[how]
        if how == "wrap":
            for j in range(ndim):
                raw[4 + 4 * j : 8 + 4 * j] = value.to_bytes(4, "big")
        raw[4 + 4 * i : 8 + 4 * i] = value.to_bytes(4, "big")
    idx_store(path, bytes(raw))
    return Mutation(f"idx-header-{how}", True)


def idx_labels(rng: Rng, case: Path) -> Mutation:
    """A valid IDX label file with a label outside 0..9, or fewer labels than images."""
    path = idx_file(rng, case, "labels")
    labels = np.frombuffer(idx_raw(path), dtype=np.uint8, offset=8).copy()
    how = pick(rng, ["range", "count"])
    if how == "range":
        labels[int(rng.integers(len(labels)))] = int(rng.integers(10, 256))
    else:
        labels = labels[: int(rng.integers(1, len(labels)))]
    idx_store(path, writers().idx_bytes(labels))
    return Mutation(f"idx-labels-{how}", True)


def idx_image_size(rng: Rng, case: Path) -> Mutation:
    """Test images of another size than the training images."""
    path = [p for p in files_under(idx_folder(case), "t10k-images*")][0]
    n = int.from_bytes(idx_raw(path)[4:8], "big")
    idx_store(path, writers().idx_bytes(np.zeros((n, 7, 7), dtype=np.uint8)))
    return Mutation("idx-image-size", True)


def idx_bomb(rng: Rng, case: Path) -> Mutation:
    """A gzip bomb in place of the training images (header announcing the seed's or MNIST's size)."""
    folder = idx_folder(case)
    raw_path = folder / "train-images-idx3-ubyte"
    gz_path = folder / "train-images-idx3-ubyte.gz"
    target = raw_path if raw_path.exists() else gz_path
    header = idx_raw(target)[:16]
    if rng.random() < 0.5:
        header = header[:4] + (60000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    raw_path.unlink(missing_ok=True)
    gz_path.write_bytes(gzip_bomb(header))
    return Mutation("idx-gzip-bomb", True)


def idx_gzip_trailing(rng: Rng, case: Path) -> Mutation:
    """A valid gzip stream followed by garbage, or the raw file turned into valid gzip."""
    path = idx_file(rng, case)
    raw = idx_raw(path)
    gz = path if path.suffix == ".gz" else path.with_name(path.name + ".gz")
    path.unlink()
    if rng.random() < 0.5:
        gz.write_bytes(gzip.compress(raw) + bytes(rng.integers(1, 256, size=64, dtype=np.uint8)))
        return Mutation("idx-gzip-trailing-garbage", True)
    gz.write_bytes(gzip.compress(raw))
    return Mutation("idx-gzip-valid", False)


def idx_seed(case: Path, variant: str) -> None:
    writers().write_idx_dataset(idx_folder(case), n_train=20, n_test=10, size=6, gz=variant == "gz")


FORMAT = Format(
    "idx",
    write_seed=idx_seed,
    targets=lambda case: files_under(idx_folder(case), "*"),
    read=load("mnist"),
    variants=("raw", "gz"),
    check=check_splits,
    semantic=(idx_header, idx_labels, idx_image_size, idx_bomb, idx_gzip_trailing),
    generic=expect({"truncate": True, "magic": True, "append": True, "random": True}),
    cli=data_info("mnist"),
)
