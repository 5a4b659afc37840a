"""MNIST and Fashion-MNIST from their IDX files (raw or ``.gz``), validated before use."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from nmprivacy.data.base import DatasetSplits, Split, register
from nmprivacy.data.files import FileSpec, corrupt, locate_files, resolve
from nmprivacy.data.subset import check_limit, limit_split

IDX_UBYTE = 0x08
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _required() -> tuple[tuple[str, ...], ...]:
    return tuple((f, f + ".gz") for f in FILES.values())


MNIST = FileSpec(
    title="MNIST",
    subdirs=("mnist", "MNIST/raw", "MNIST"),
    required=_required(),
    how_to_get="get the four files from http://yann.lecun.com/exdb/mnist/ (or a mirror such as "
    "https://ossci-datasets.s3.amazonaws.com/mnist/) into <root>/mnist/",
)
FASHION_MNIST = FileSpec(
    title="Fashion-MNIST",
    subdirs=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
    required=_required(),
    how_to_get="install them with 'apt-get install dataset-fashion-mnist' (into /usr/share/datasets/fashion-mnist) "
    "or get the four .gz files from https://github.com/zalandoresearch/fashion-mnist into <root>/fashion-mnist/",
)
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


MAX_IDX_BYTES = 1 << 32  # 4 GiB of pixels: far above any IDX data set (EMNIST: 0.55 GB)
CHUNK = 1 << 20


def _read_limited(fh: BinaryIO, limit: int) -> bytes:
    """At most ``limit`` bytes from ``fh``, read in chunks (a gzip stream is never inflated further)."""
    parts, got = [], 0
    while got < limit:
        chunk = fh.read(min(CHUNK, limit - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_idx(path: Path, ndim: int, spec: FileSpec) -> np.ndarray:
    """The uint8 array stored in IDX file ``path`` (raw or gzip), checking magic number and size.

    The header's declared size is checked against a bound and (raw files) the file size before
    any data is read; a gzip stream is inflated only up to the declared size plus one byte.
    """
    header = 4 + 4 * ndim
    if not path.is_file():
        raise corrupt(path, "is a folder, not an IDX file" if path.is_dir() else "is missing", spec)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            head = _read_limited(fh, header)
            if len(head) < header:
                raise corrupt(path, f"only {len(head)} bytes, shorter than an IDX header of {header}", spec)
            magic = int.from_bytes(head[:4], "big")
            expected = (IDX_UBYTE << 8) | ndim
            if magic != expected:
                raise corrupt(path, f"bad magic number 0x{magic:08x} (expected 0x{expected:08x})", spec)
            dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
            shape = "x".join(map(str, dims))
            need = math.prod(dims)  # Python integers: no wrap-around
            if need == 0:
                raise corrupt(path, f"header announces an empty array {shape}", spec)
            if need > MAX_IDX_BYTES:
                raise corrupt(path, f"header announces {shape} = {need} bytes, more than the {MAX_IDX_BYTES} allowed", spec)
            if path.suffix != ".gz" and path.stat().st_size - header != need:
                raise corrupt(path, f"holds {path.stat().st_size - header} data bytes but its header announces {shape} = {need}", spec)
            raw = _read_limited(fh, need + 1)  # fewer than need + 1: the end, where gzip checks its CRC
    except (OSError, EOFError, zlib.error) as exc:
        raise corrupt(path, f"cannot be read ({type(exc).__name__}: {exc})", spec) from None
    if len(raw) != need:
        more = "more" if len(raw) > need else "fewer"
        raise corrupt(path, f"holds {more} data bytes than its header announces ({shape} = {need})", spec)
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def _split(folder: Path, which: str, spec: FileSpec, num_classes: int) -> Split:
    img_path = resolve(folder, (FILES[f"{which}_images"], FILES[f"{which}_images"] + ".gz"))
    lab_path = resolve(folder, (FILES[f"{which}_labels"], FILES[f"{which}_labels"] + ".gz"))
    assert img_path is not None and lab_path is not None  # checked by locate_files
    images = read_idx(img_path, 3, spec)
    labels = read_idx(lab_path, 1, spec)
    if images.shape[0] != labels.shape[0]:
        raise corrupt(lab_path, f"{labels.shape[0]} labels for {images.shape[0]} images in {img_path.name}", spec)
    if labels.size and labels.max() >= num_classes:
        raise corrupt(lab_path, f"label {int(labels.max())} outside 0..{num_classes - 1}", spec)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # [N, 1, H, W]
    return Split(x, torch.from_numpy(labels.astype(np.int64)))


def load_idx_dataset(
    name: str, spec: FileSpec, classes: tuple[str, ...], root: Path | None, limit_train: int | None, limit_test: int | None
) -> DatasetSplits:
    """An IDX image data set as ``[N, 1, H, W]`` float32 in [0, 1] with the official train/test split."""
    limit_train, limit_test = check_limit("limit_train", limit_train), check_limit("limit_test", limit_test)
    folder = locate_files(spec, root)
    train = _split(folder, "train", spec, len(classes))
    test = _split(folder, "test", spec, len(classes))
    if train.x.shape[1:] != test.x.shape[1:]:
        raise corrupt(folder, f"train images are {tuple(train.x.shape[2:])} but test images {tuple(test.x.shape[2:])}", spec)
    return DatasetSplits(
        name=name,
        domain="image",
        train=limit_split(train, limit_train),
        test=limit_split(test, limit_test),
        classes=classes,
        input_shape=tuple(train.x.shape[1:]),
        source=str(folder),
        info={"files": "IDX", "full_sizes": [len(train), len(test)]},
    )


def locate_mnist(root: Path | None = None) -> Path:
    """The folder holding the MNIST IDX files."""
    return locate_files(MNIST, root)


def locate_fashion_mnist(root: Path | None = None) -> Path:
    """The folder holding the Fashion-MNIST IDX files."""
    return locate_files(FASHION_MNIST, root)


@register("mnist", "image", "MNIST handwritten digits, 28x28, IDX files", locate_mnist)
def load_mnist(root: Path | None = None, limit_train: int | None = None, limit_test: int | None = None) -> DatasetSplits:
    """MNIST (60000/10000, 28x28) from its IDX files."""
    return load_idx_dataset("mnist", MNIST, tuple(str(d) for d in range(10)), root, limit_train, limit_test)


@register("fashion-mnist", "image", "Fashion-MNIST clothing images, 28x28, IDX files", locate_fashion_mnist)
def load_fashion_mnist(
    root: Path | None = None, limit_train: int | None = None, limit_test: int | None = None
) -> DatasetSplits:
    """Fashion-MNIST (60000/10000, 28x28) from its IDX files."""
    return load_idx_dataset("fashion-mnist", FASHION_MNIST, FASHION_CLASSES, root, limit_train, limit_test)
