"""IBM DVS Gesture in the layout tonic 1.7 reads: ``ibmGestureTrain/user*_<lighting>/<label>.npy``.

Each ``.npy`` holds ``[n, 4]`` events (x, y, p, t in ms), one gesture per file, label = file
name. Files are decoded exactly as ``tonic.datasets.DVSGesture.__getitem__`` does; the class
itself is not used because it downloads unless the ``.tar.gz`` archives are present.
Class 10 ("Other gestures") is removed, leaving 10 classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.lib.recfunctions as rfn

from nmprivacy.cache import file_fingerprint
from nmprivacy.data.base import DatasetSplits, register
from nmprivacy.data.events import DVS_PIPELINE, configure, event_splits
from nmprivacy.data.files import FileSpec, corrupt, locate_files
from nmprivacy.data.npy import read_npy
from nmprivacy.data.subset import check_limit
from nmprivacy.errors import DatasetNotFoundError, NmprivacyError

DVS_GESTURE = FileSpec(
    title="DVS Gesture",
    subdirs=("DVSGesture", "dvs-gesture", "dvs_gesture"),
    required=(("ibmGestureTrain",), ("ibmGestureTest",)),
    how_to_get="unpack tonic's DVS Gesture archives ibmGestureTrain.tar.gz and ibmGestureTest.tar.gz "
    "(figshare files 38022171 and 38020584) into <root>/DVSGesture/",
)
OTHER_CLASS = 10
MAX_TIME_MS = 1 << 31  # ~25 days: far beyond a gesture (~6 s), and t * 1000 stays exact in int64


def classes() -> tuple[str, ...]:
    """The 10 kept gesture names (tonic's order, "Other gestures" removed)."""
    from tonic.datasets import DVSGesture

    return tuple(DVSGesture.classes[:OTHER_CLASS])


def read_dvs_gesture_file(path: Path) -> np.ndarray:
    """Events of one gesture file (tonic structured array ``x, y, p, t``; t in us)."""
    from tonic.datasets import DVSGesture

    events = read_npy(path, DVS_GESTURE)
    if events.ndim != 2 or events.shape[1] != 4:
        raise corrupt(path, f"shape {events.shape}, expected [n, 4] (x, y, p, t)", DVS_GESTURE)
    if events.dtype.kind not in "iuf":
        raise corrupt(path, f"dtype {events.dtype}, expected integer or float events (x, y, p, t)", DVS_GESTURE)
    wide = events.astype(np.float64 if events.dtype.kind == "f" else np.int64)
    if events.dtype.kind == "f" and not np.isfinite(wide).all():
        raise corrupt(path, "contains NaN or infinite values", DVS_GESTURE)
    x, y, p, t = wide.T
    w, h, _ = DVS_PIPELINE.sensor_size
    checks = (
        ((x < 0) | (x >= w) | (x != np.floor(x)), f"x outside the sensor's 0..{w - 1}"),
        ((y < 0) | (y >= h) | (y != np.floor(y)), f"y outside the sensor's 0..{h - 1}"),
        ((p != 0) & (p != 1), "polarity other than 0 or 1"),
        ((t < 0) | (t > MAX_TIME_MS), f"time stamps outside 0..{MAX_TIME_MS} ms"),
    )
    for bad, what in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise corrupt(path, f"event {i} has {what} ({wide[i].tolist()})", DVS_GESTURE)
    wide[:, 3] *= 1000  # ms -> us, as tonic does
    return rfn.unstructured_to_structured(wide, DVSGesture.dtype)


def list_split(folder: Path) -> tuple[list[tuple[Path, int]], int]:
    """(file, label) of every kept gesture under ``folder`` (sorted) and how many "other" were dropped."""
    if not folder.is_dir():
        raise DatasetNotFoundError(f"DVS Gesture: {folder} is not a folder; {DVS_GESTURE.how_to_get}")
    items: list[tuple[Path, int]] = []
    dropped = 0
    for user in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("user")):
        for f in sorted(user.glob("*.npy"), key=lambda p: (len(p.stem), p.stem)):
            if not f.stem.isdigit() or len(f.stem) > 2 or int(f.stem) > OTHER_CLASS:
                raise corrupt(f, "file name is not a gesture label 0..10", DVS_GESTURE)
            if int(f.stem) == OTHER_CLASS:
                dropped += 1
            else:
                items.append((f, int(f.stem)))
    if not items:
        raise DatasetNotFoundError(f"DVS Gesture: no user*/<label>.npy files in {folder}; {DVS_GESTURE.how_to_get}")
    return items, dropped


def locate_dvs_gesture(root: Path | None = None) -> Path:
    """The folder holding ``ibmGestureTrain`` and ``ibmGestureTest``."""
    return locate_files(DVS_GESTURE, root)


@register("dvs-gesture", "events", "IBM DVS Gesture, 128x128, 10 classes, tonic's .npy layout", locate_dvs_gesture)
def load_dvs_gesture(
    root: Path | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    steps: int = DVS_PIPELINE.steps,
    downsample: int = 1,
    cache: bool = True,
    frame_us: float | None = None,
    polarity: str | None = None,
    denoise_us: float | None = None,
    clamp: bool | None = None,
) -> DatasetSplits:
    """DVS Gesture as uint8 ``[N, steps, P, 128/d, 128/d]`` (by default merge, denoise 100 ms, 50 ms
    frames, clamp 1; the pipeline options of ``nmprivacy.data.events.configure`` change them)."""
    limit_train, limit_test = check_limit("limit_train", limit_train), check_limit("limit_test", limit_test)
    pipeline = configure(DVS_PIPELINE, steps, frame_us, polarity, denoise_us, clamp, downsample)
    if DVS_PIPELINE.sensor_size[0] % pipeline.downsample:
        raise NmprivacyError(f"downsample must divide 128 (1, 2, 4, 8, ...), got {pipeline.downsample}")
    folder = locate_dvs_gesture(root)
    train, dropped_train = list_split(folder / "ibmGestureTrain")
    test, dropped_test = list_split(folder / "ibmGestureTest")
    return event_splits(
        "dvs-gesture",
        train,
        test,
        read_dvs_gesture_file,
        pipeline,
        classes(),
        source=str(folder),
        fingerprint=file_fingerprint([f for f, _ in train + test], folder),
        limit_train=limit_train,
        limit_test=limit_test,
        use_cache=cache,
        info={"full_sizes": [len(train), len(test)], "removed_other": [dropped_train, dropped_test]},
    )
