"""Writers of the real on-disk data-set formats, used only by tests to build tiny fake data sets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in IDX format (magic 0x0000080N, big-endian dims, data)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write ``array`` as an IDX file (``.gz`` appended and compressed when ``gz``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_idx_dataset(folder: Path, n_train: int = 30, n_test: int = 10, size: int = 6, gz: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny MNIST-style data set (10 classes, labels cycling 0..9) in ``folder``; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, size, size), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, size, size), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, arr in arrays.items():
        write_idx(folder / IDX_NAMES[key], arr, gz=gz)
    return arrays


def write_pgm(path: Path, image: np.ndarray, binary: bool = True, maxval: int = 255) -> Path:
    """Write ``image`` (uint ``[H, W]``) as PGM: P5 (binary) or P2 (ASCII), with a comment line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = image.shape
    header = f"{'P5' if binary else 'P2'}\n# written by tests\n{w} {h}\n{maxval}\n".encode()
    if binary:
        body = np.asarray(image, dtype=np.uint8 if maxval < 256 else ">u2").tobytes()
    else:
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in image).encode() + b"\n"
    path.write_bytes(header + body)
    return path


def face_image(subject: int, number: int, h: int, w: int) -> np.ndarray:
    """A recognisable test image: pixel (0, 0) = subject, (0, 1) = image number, rest a gradient."""
    img = (np.arange(h * w).reshape(h, w) % 200 + 20).astype(np.uint8)
    img[0, 0], img[0, 1] = subject, number
    return img


def write_att_faces(folder: Path, subjects: int = 3, h: int = 12, w: int = 10, binary: bool = True) -> None:
    """``s1``..``s<subjects>`` folders with ``1.pgm``..``10.pgm`` each, as in att_faces.zip."""
    for s in range(1, subjects + 1):
        for n in range(1, 11):
            write_pgm(folder / f"s{s}" / f"{n}.pgm", face_image(s, n, h, w), binary=binary)


def write_olivetti(folder: Path, subjects: int = 4, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The Olivetti ``.npy`` pair: images float32 ``[10*subjects, size, size]`` in [0, 1] and targets."""
    folder.mkdir(parents=True, exist_ok=True)
    targets = np.repeat(np.arange(subjects), 10)
    images = np.zeros((targets.size, size, size), dtype=np.float32)
    images[:, 0, 0] = targets / 100.0
    images[:, 0, 1] = np.tile(np.arange(1, 11), subjects) / 100.0  # image number
    np.save(folder / "olivetti_faces.npy", images)
    np.save(folder / "olivetti_faces_target.npy", targets)
    return images, targets


def nmnist_bytes(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray) -> bytes:
    """Events in N-MNIST's 40-bit format: x, y, then polarity bit + 23-bit big-endian time (us)."""
    t = np.asarray(t, dtype=np.int64)
    assert t.max(initial=0) < 2**23
    raw = np.zeros((len(t), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (np.asarray(p, dtype=np.int64) << 7) | (t >> 16)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return raw.tobytes()


def blob_events(label: int, seed: int, duration_us: int = 300_000, width: int = 34) -> tuple[np.ndarray, ...]:
    """(x, y, t, p) of a small 2x2 blob drifting over time, position depending on ``label``."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, size=400))
    base_x, base_y = 3 + 2 * label, 5 + label
    drift = (t * 6 // duration_us).astype(np.int64)
    x = np.clip(base_x + drift + rng.integers(0, 2, size=t.size), 0, width - 1)
    y = np.clip(base_y + rng.integers(0, 2, size=t.size), 0, width - 1)
    p = rng.integers(0, 2, size=t.size)
    return x, y, t, p


def write_nmnist(folder: Path, per_class: dict[str, int], seed: int = 0) -> list[Path]:
    """``Train/<digit>/<NNNNN>.bin`` and ``Test/...`` with ``per_class`` recordings per digit per split."""
    paths = []
    k = 0
    for split, n in per_class.items():
        for digit in range(10):
            for i in range(n):
                path = folder / split / str(digit) / f"{i:05d}.bin"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(nmnist_bytes(*blob_events(digit, seed + k)))
                paths.append(path)
                k += 1
    return paths


def write_dvs_gesture(folder: Path, users: dict[str, list[str]], labels: range = range(11), n_events: int = 3000, seed: int = 0) -> None:
    """tonic's DVS Gesture layout: ``<split>/user<NN>_<lighting>/<label>.npy`` with ``[n, 4]`` (x, y, p, t ms)."""
    rng = np.random.default_rng(seed)
    for split, user_dirs in users.items():
        for user in user_dirs:
            d = folder / split / user
            d.mkdir(parents=True, exist_ok=True)
            for label in labels:
                t = np.sort(rng.integers(0, 6000, size=n_events))  # ms, ~6 s gesture
                x = np.clip(20 + 8 * (label % 10) + rng.integers(0, 3, size=n_events), 0, 127)
                y = np.clip(40 + rng.integers(0, 3, size=n_events), 0, 127)
                p = rng.integers(0, 2, size=n_events)
                np.save(d / f"{label}.npy", np.stack([x, y, p, t], axis=1).astype(np.int64))
