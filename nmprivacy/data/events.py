"""The one event pipeline: tonic transforms from an event stream to fixed-length binary frames.

Used by N-MNIST, DVS Gesture and the saccade versions of image data sets (docs/method.md §3):
- N-MNIST style: ``Denoise(40 ms)`` -> ``ToFrame(3 ms)`` -> keep polarity channel 0 -> clamp 1;
- DVS Gesture: ``MergePolarities`` -> ``Denoise(100 ms)`` -> optional ``Downsample`` ->
  ``ToFrame(50 ms)`` -> clamp 1.
Every event data set takes the pipeline's settings as loader options (``--option KEY=VALUE``),
so a foreign model gets the preprocessing it was trained with: ``frame_us`` (frame window),
``polarity`` (``channel0``, ``merge`` or ``both`` = two channels), ``denoise_us`` (0 = no
denoising), ``clamp`` (true: binary frames; false: event counts, saturating at 255), ``steps``.
Events are tonic-style structured arrays with fields ``x, y, t, p`` (t in microseconds).
Frames are uint8 ``[T, P, H, W]`` (P = 2 for ``both``, else 1) with T cut or zero-padded to
``steps``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Literal, Sequence, TypeVar, get_args

import numpy as np
import torch

from nmprivacy.data.base import DatasetSplits, Split
from nmprivacy.cache import cache_key, entry_path, load_entry, save_entry
from nmprivacy.data.subset import balanced_indices
from nmprivacy.errors import NmprivacyError
from nmprivacy.progress import bar
from nmprivacy.runinfo import to_jsonable

Sample = TypeVar("Sample")
Polarity = Literal["channel0", "merge", "both"]
POLARITIES: tuple[str, ...] = get_args(Polarity)


@dataclass(frozen=True)
class EventPipeline:
    """Settings of the event-to-frame pipeline.

    ``sensor_size`` is tonic's ``(W, H, P)``; ``polarity`` is "channel0" (keep only p == 0),
    "merge" (both polarities into one channel) or "both" (one channel each); ``denoise_us`` 0
    skips denoising; ``clamp`` False keeps event counts (saturating at 255) instead of 0/1;
    ``downsample`` divides x and y (1 = native).
    """

    sensor_size: tuple[int, int, int]
    denoise_us: float
    frame_us: float
    polarity: Polarity
    steps: int = 100
    downsample: int = 1
    clamp: bool = True

    @property
    def frame_hw(self) -> tuple[int, int]:
        """``(H, W)`` of one output frame."""
        return self.sensor_size[1] // self.downsample, self.sensor_size[0] // self.downsample

    @property
    def channels(self) -> int:
        """Channels P of one output frame."""
        return self.sensor_size[2] if self.polarity == "both" else 1

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """``(P, H, W)`` of one output frame."""
        return (self.channels, *self.frame_hw)

    @property
    def max_value(self) -> int:
        """The largest value a frame can hold (1 when clamped, else 255)."""
        return 1 if self.clamp else 255

    def settings(self) -> dict:
        """The settings as a plain dictionary (for cache keys and run records)."""
        return asdict(self)


NMNIST_PIPELINE = EventPipeline(sensor_size=(34, 34, 2), denoise_us=40_000, frame_us=3_000, polarity="channel0")
DVS_PIPELINE = EventPipeline(sensor_size=(128, 128, 2), denoise_us=100_000, frame_us=50_000, polarity="merge")


def check_pipeline_options(steps: object, downsample: object = 1) -> tuple[int, int]:
    """Validated ``steps`` and ``downsample`` options (positive whole numbers)."""
    for name, value in (("steps", steps), ("downsample", downsample)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise NmprivacyError(f"{name} must be a positive whole number, got {value!r}")
    return int(steps), int(downsample)  # type: ignore[arg-type]


def configure(
    base: EventPipeline,
    steps: object,
    frame_us: object = None,
    polarity: object = None,
    denoise_us: object = None,
    clamp: object = None,
    downsample: object = 1,
) -> EventPipeline:
    """``base`` with the loader options a user gave (None keeps the data set's own setting),
    each validated with a one-line error naming the option and what it accepts."""
    steps, downsample = check_pipeline_options(steps, downsample)
    changes: dict = {"steps": steps, "downsample": downsample}
    for name, value, low in (("frame_us", frame_us, 0.0), ("denoise_us", denoise_us, None)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) \
                or (value <= 0 if low is not None else value < 0):
            need = "a positive number of microseconds" if low is not None else "a number of microseconds >= 0 (0 = no denoising)"
            raise NmprivacyError(f"{name} must be {need}, got {value!r}")
        changes[name] = float(value)
    if polarity is not None:
        if polarity not in POLARITIES:
            raise NmprivacyError(f"polarity must be one of {', '.join(POLARITIES)}, got {polarity!r}")
        if polarity == "both" and base.sensor_size[2] != 2:
            raise NmprivacyError(f"polarity=both needs a sensor with 2 polarities; this one has {base.sensor_size[2]}")
        changes["polarity"] = polarity
    if clamp is not None:
        if not isinstance(clamp, bool):
            raise NmprivacyError(f"clamp must be true or false, got {clamp!r}")
        changes["clamp"] = clamp
    return replace(base, **changes)


def fit_length(frames: np.ndarray | torch.Tensor, steps: int) -> np.ndarray | torch.Tensor:
    """``frames`` ``[T, ...]`` (a numpy array or a torch tensor) cut to, or zero-padded at the end
    to, ``steps`` steps (the one rule for fitting event data and spike trains to a length)."""
    if frames.shape[0] >= steps:
        return frames[:steps]
    if isinstance(frames, torch.Tensor):
        return torch.cat([frames, frames.new_zeros((steps - frames.shape[0], *frames.shape[1:]))])
    pad = np.zeros((steps - frames.shape[0], *frames.shape[1:]), dtype=frames.dtype)
    return np.concatenate([frames, pad])


def event_frames(events: np.ndarray, pipeline: EventPipeline) -> np.ndarray:
    """One event stream -> frames uint8 ``[steps, P, H, W]`` through tonic's transforms."""
    import tonic.transforms as tt

    w, h, p = pipeline.sensor_size
    inside = (events["x"] >= 0) & (events["x"] < w) & (events["y"] >= 0) & (events["y"] < h)
    events = events[inside]
    fh, fw = pipeline.frame_hw
    empty = np.zeros((pipeline.steps, *pipeline.frame_shape), dtype=np.uint8)
    if events.size == 0:
        return empty
    steps: list[Callable[[np.ndarray], np.ndarray]] = []
    channels = p
    if pipeline.polarity == "merge":
        steps.append(tt.MergePolarities())
        channels = 1
    if pipeline.denoise_us > 0:
        steps.append(tt.Denoise(filter_time=pipeline.denoise_us))
    if pipeline.downsample > 1:
        steps.append(tt.Downsample(spatial_factor=1.0 / pipeline.downsample))
    if steps:
        events = tt.Compose(steps)(events)
    if events.size == 0:
        return empty
    # Frames past ``steps`` are cut anyway: ending the slicing there bounds tonic's allocation by
    # ``steps`` frames whatever the time stamps claim (the kept frames are the same).
    end = min(float(events["t"][-1]), float(events["t"][0]) + pipeline.steps * pipeline.frame_us)
    frames = tt.ToFrame(sensor_size=(fw, fh, channels), time_window=pipeline.frame_us, end_time=end)(events)  # [T, P, H, W]
    frames = frames[:, : pipeline.channels]  # channel 0 ("channel0"), the merged channel, or both
    return fit_length(np.minimum(frames, pipeline.max_value).astype(np.uint8), pipeline.steps)


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(n: int, pipeline: EventPipeline, name: str) -> None:
    """Refuse (one line) to allocate dense frames larger than the available memory."""
    need = n * pipeline.steps * math.prod(pipeline.frame_shape)
    free = available_memory()
    if free is not None and need > 0.8 * free:
        raise NmprivacyError(
            f"{name}: {n} samples of {pipeline.steps}x{'x'.join(map(str, pipeline.frame_shape))} frames need {need / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB are available; use limit_train/limit_test (--limit-train/--limit-test) or downsample"
        )


def frames_for(
    samples: Sequence[Sample], read: Callable[[Sample], np.ndarray], pipeline: EventPipeline, desc: str
) -> torch.Tensor:
    """Frames of every sample: uint8 ``[N, steps, P, H, W]`` (``read`` returns its events)."""
    check_memory(len(samples), pipeline, desc)
    out = torch.zeros((len(samples), pipeline.steps, *pipeline.frame_shape), dtype=torch.uint8)
    for i, sample in enumerate(bar(samples, desc=desc, unit="sample", leave=False)):
        out[i] = torch.from_numpy(event_frames(read(sample), pipeline))
    return out


def check_frames(
    content: object, expected: dict[str, tuple[int, ...]], num_classes: int, settings_json: str, max_value: int = 1
) -> None:
    """Raise ``ValueError`` unless ``content`` is exactly a frames entry: ``x_<split>`` uint8
    ``[N, T, P, H, W]`` of values up to ``max_value`` with the ``expected`` shapes, ``y_<split>``
    int64 ``[N]`` in ``range(num_classes)``, and the ``settings_json`` it was built for."""
    from nmprivacy.tensorfile import check_tensor

    if not isinstance(content, dict):
        raise ValueError(f"holds {type(content).__name__}, not a dict of frames")
    keys = {*(f"{v}_{s}" for s in expected for v in "xy"), "settings_json"}
    if set(content) != keys:
        raise ValueError(f"holds keys {sorted(map(str, content))}, expected {sorted(keys)}")
    if content["settings_json"] != settings_json:
        raise ValueError("was built for other settings")
    for split, shape in expected.items():
        x = check_tensor(content[f"x_{split}"], f"x_{split}", kinds=("int",), ndim=5)
        y = check_tensor(content[f"y_{split}"], f"y_{split}", kinds=("int",), ndim=1)
        if x.dtype != torch.uint8 or tuple(x.shape) != shape or y.dtype != torch.int64 or tuple(y.shape) != shape[:1]:
            raise ValueError(f"{split} frames {tuple(x.shape)} {x.dtype} / labels {tuple(y.shape)} {y.dtype}, expected {shape} uint8 / {shape[:1]} int64")
        if x.numel() and int(x.max()) > max_value:
            raise ValueError(f"x_{split} holds values above {max_value}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise ValueError(f"y_{split} holds labels outside 0..{num_classes - 1}")


def cached(
    name: str,
    settings: dict,
    inputs: object,
    build: Callable[[], dict],
    check: Callable[[object, str], None],
    use_cache: bool = True,
) -> tuple[dict, Path | None]:
    """``build()``'s result, loaded from or saved to the cache keyed by ``settings`` and ``inputs``.

    ``check(content, settings_json)`` raises ``ValueError`` for an entry that is not what
    ``build()`` would give: such an entry is rebuilt. Returns (content, cache file or None when
    caching is off or the cache cannot be written).
    """
    if not use_cache:
        return build(), None
    settings_json = json.dumps(to_jsonable({"settings": settings, "inputs": inputs}))
    path = entry_path(name, cache_key(settings=settings, inputs=inputs))
    content = load_entry(path, lambda c: check(c, settings_json))
    if content is None:
        content = {**build(), "settings_json": settings_json}
        if not save_entry(path, content):
            return content, None  # read-only everywhere: still usable, just not cached
    return content, path


def event_splits(
    name: str,
    train: Sequence[tuple[Sample, int]],
    test: Sequence[tuple[Sample, int]],
    read: Callable[[Sample], np.ndarray],
    pipeline: EventPipeline,
    classes: tuple[str, ...],
    source: str,
    fingerprint: object,
    limit_train: int | None = None,
    limit_test: int | None = None,
    use_cache: bool = True,
    info: dict | None = None,
) -> DatasetSplits:
    """An event data set from (sample, label) lists: limits, pipeline, cache, ``DatasetSplits``.

    ``fingerprint`` identifies the inputs (file list with sizes and times, or a content hash) for
    the cache (``nmprivacy.cache``); a cached entry that is not exactly what the pipeline would
    build (``check_frames``) is rebuilt.
    """
    def limited(items: Sequence[tuple[Sample, int]], limit: int | None) -> list[tuple[Sample, int]]:
        idx = balanced_indices(np.array([lab for _, lab in items], dtype=np.int64), limit)
        return [items[i] for i in idx]

    train, test = limited(train, limit_train), limited(test, limit_test)
    settings = {"name": name, "pipeline": pipeline.settings(), "limit_train": limit_train, "limit_test": limit_test}

    def build() -> dict:
        out = {}
        for split, items in (("train", train), ("test", test)):
            out[f"x_{split}"] = frames_for([s for s, _ in items], read, pipeline, f"{name} {split}")
            out[f"y_{split}"] = torch.tensor([lab for _, lab in items], dtype=torch.int64)
        return out

    shapes = {split: (len(items), pipeline.steps, *pipeline.frame_shape) for split, items in (("train", train), ("test", test))}

    def check(content: object, settings_json: str) -> None:
        check_frames(content, shapes, len(classes), settings_json, pipeline.max_value)

    content, cache_file = cached(name, settings, fingerprint, build, check, use_cache)
    return DatasetSplits(
        name=name,
        domain="events",
        train=Split(content["x_train"], content["y_train"]),
        test=Split(content["x_test"], content["y_test"]),
        classes=classes,
        input_shape=pipeline.frame_shape,
        source=source,
        info={**(info or {}), "pipeline": pipeline.settings(), "cache": str(cache_file) if cache_file else None},
    )
