"""N-MNIST from its original layout ``Train/<digit>/<NNNNN>.bin``, ``Test/<digit>/<NNNNN>.bin``.

Files are read with tonic's own reader (``tonic.io.read_mnist_file``, 40-bit events). tonic's
``NMNIST`` dataset class is not used because it downloads unless the zip archives sit next to
the extracted folders; this loader never downloads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmprivacy.cache import file_fingerprint
from nmprivacy.data.base import DatasetSplits, register
from nmprivacy.data.events import NMNIST_PIPELINE, configure, event_splits
from nmprivacy.data.files import FileSpec, corrupt, locate_files
from nmprivacy.data.subset import check_limit
from nmprivacy.errors import DatasetNotFoundError

NMNIST = FileSpec(
    title="N-MNIST",
    subdirs=("NMNIST", "N-MNIST", "nmnist"),
    required=(("Train",), ("Test",)),
    how_to_get="unzip the N-MNIST archives Train.zip and Test.zip (https://www.garrickorchard.com/datasets/n-mnist; "
    "tonic's mirror: train.zip/test.zip at data.mendeley.com/datasets/468j46mzdv) into <root>/NMNIST/",
)
CLASSES = tuple(str(d) for d in range(10))
MAX_BIN_BYTES = 1 << 26  # 64 MiB (13 M events); real recordings are ~4-10 k events


def read_nmnist_file(path: Path) -> np.ndarray:
    """Events of one N-MNIST ``.bin`` recording (tonic structured array ``x, y, t, p``; t in us)."""
    from tonic.datasets import NMNIST as TonicNMNIST
    from tonic.io import read_mnist_file

    if not path.is_file():
        raise corrupt(path, "is a folder, not a .bin recording" if path.is_dir() else "is missing", NMNIST)
    try:
        size = path.stat().st_size
        if size == 0:
            raise corrupt(path, "is empty (0 bytes): a recording holds at least one event", NMNIST)
        if size % 5:
            raise corrupt(path, f"{size} bytes is not a whole number of 5-byte events", NMNIST)
        if size > MAX_BIN_BYTES:
            raise corrupt(path, f"{size} bytes, far more than an N-MNIST recording (~30 kB)", NMNIST)
        events = read_mnist_file(str(path), dtype=TonicNMNIST.dtype)
    except OSError as exc:
        raise corrupt(path, f"cannot be read ({exc.strerror or type(exc).__name__})", NMNIST) from None
    w, h, _ = NMNIST_PIPELINE.sensor_size
    outside = (events["x"] >= w) | (events["y"] >= h)
    if outside.any():
        i = int(np.argmax(outside))
        raise corrupt(path, f"event {i} at x={int(events['x'][i])}, y={int(events['y'][i])} lies outside the {w}x{h} sensor", NMNIST)
    return events


def list_split(folder: Path) -> list[tuple[Path, int]]:
    """(file, digit) of every ``<digit>/*.bin`` under ``folder``, in sorted order."""
    if not folder.is_dir():
        raise DatasetNotFoundError(f"N-MNIST: {folder} is not a folder (it must hold <digit>/*.bin recordings); {NMNIST.how_to_get}")
    items = [(f, int(d.name)) for d in sorted(folder.iterdir()) if d.is_dir() and d.name in CLASSES for f in sorted(d.glob("*.bin"))]
    if not items:
        raise DatasetNotFoundError(f"N-MNIST: no <digit>/*.bin recordings in {folder}; {NMNIST.how_to_get}")
    return items


def locate_nmnist(root: Path | None = None) -> Path:
    """The folder holding N-MNIST's ``Train`` and ``Test``."""
    return locate_files(NMNIST, root)


@register("nmnist", "events", "N-MNIST saccade recordings of MNIST, 34x34, original .bin files", locate_nmnist)
def load_nmnist(
    root: Path | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    steps: int = NMNIST_PIPELINE.steps,
    cache: bool = True,
    frame_us: float | None = None,
    polarity: str | None = None,
    denoise_us: float | None = None,
    clamp: bool | None = None,
) -> DatasetSplits:
    """N-MNIST as uint8 ``[N, steps, P, 34, 34]`` (by default denoise 40 ms, 3 ms frames, polarity 0,
    clamp 1; the pipeline options of ``nmprivacy.data.events.configure`` change them)."""
    limit_train, limit_test = check_limit("limit_train", limit_train), check_limit("limit_test", limit_test)
    pipeline = configure(NMNIST_PIPELINE, steps, frame_us, polarity, denoise_us, clamp)
    folder = locate_nmnist(root)
    train, test = list_split(folder / "Train"), list_split(folder / "Test")
    return event_splits(
        "nmnist",
        train,
        test,
        read_nmnist_file,
        pipeline,
        CLASSES,
        source=str(folder),
        fingerprint=file_fingerprint([f for f, _ in train + test], folder),
        limit_train=limit_train,
        limit_test=limit_test,
        use_cache=cache,
        info={"full_sizes": [len(train), len(test)]},
    )
