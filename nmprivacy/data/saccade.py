"""Saccade events: N-MNIST-style event streams simulated from any image data set.

As in the N-MNIST recordings (Orchard et al. 2015), the image moves along a triangle in three
saccades of ~100 ms each, (0, 0) -> (A/2, A) -> (A, 0) -> (0, 0) pixels, in front of a simulated
DVS pixel array of size (H + A) x (W + A) (28x28 -> 34x34 with the default A). Each pixel emits an
ON (p = 1) / OFF (p = 0) event whenever its log intensity moved by its contrast threshold since
its last event. The streams then go through the SAME pipeline as N-MNIST
(``nmprivacy.data.events.NMNIST_PIPELINE``: denoise 40 ms, 3 ms frames, polarity 0, clamp 1).
Registered as ``<image set>-saccade``; these events are simulated, not recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from nmprivacy.data import digits as _digits  # noqa: F401  (registers the image sets used below)
from nmprivacy.data import faces as _faces  # noqa: F401
from nmprivacy.data import idx as _idx  # noqa: F401
from nmprivacy.data.base import REGISTRY, DatasetSplits, register
from nmprivacy.data.events import NMNIST_PIPELINE, EventPipeline, configure, event_splits
from nmprivacy.errors import NmprivacyError

EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])  # tonic's N-MNIST dtype
BASES = ("digits", "digits-28", "mnist", "fashion-mnist", "att-faces", "olivetti")


@dataclass(frozen=True)
class SaccadeConfig:
    """Settings of the simulated saccades and sensor.

    ``amplitude``: side of the triangle in pixels (None: 6 px per 28 px of image size, as N-MNIST);
    ``threshold``: log-intensity change per event; ``threshold_sigma``: relative per-pixel spread of
    the threshold; ``log_eps``: offset inside ``log(I + eps)``; ``dt_us``: simulation step.
    """

    amplitude: int | None = None
    saccade_ms: float = 100.0
    dt_us: int = 1000
    threshold: float = 0.3  # gives digit-like images about the event density of real N-MNIST
    threshold_sigma: float = 0.03
    log_eps: float = 0.1
    seed: int = 0

    def amplitude_for(self, height: int, width: int) -> int:
        """Triangle side A in pixels for an image of ``height`` x ``width``."""
        if self.amplitude is not None:
            return int(self.amplitude)
        return max(2, round(6 * max(height, width) / 28))


def saccade_offsets(config: SaccadeConfig, amplitude: int) -> tuple[np.ndarray, np.ndarray]:
    """(times in us ``[S]``, image offsets (dx, dy) in pixels ``[S, 2]``) along the three saccades."""
    corners = np.array([[0.0, 0.0], [amplitude / 2, amplitude], [amplitude, 0.0], [0.0, 0.0]])
    per = int(round(config.saccade_ms * 1000 / config.dt_us))
    frac = np.arange(per) / per
    path = [corners[i] + frac[:, None] * (corners[i + 1] - corners[i]) for i in range(3)]
    offsets = np.concatenate([*path, corners[3:]])  # [3 * per + 1, 2]
    times = np.arange(offsets.shape[0], dtype=np.int64) * config.dt_us
    return times, offsets


def saccade_events(image: np.ndarray, config: SaccadeConfig, rng: np.random.Generator) -> np.ndarray:
    """Events ``x, y, t, p`` (t in us, p = 1 ON / 0 OFF) of ``image`` ``[H, W]`` in [0, 1] moving in saccades."""
    from scipy.ndimage import shift

    h, w = image.shape
    a = config.amplitude_for(h, w)
    canvas = np.zeros((h + a, w + a), dtype=np.float64)
    canvas[:h, :w] = image
    times, offsets = saccade_offsets(config, a)
    thresh = config.threshold * np.clip(1 + config.threshold_sigma * rng.standard_normal(canvas.shape), 0.25, None)
    ref = np.log(canvas + config.log_eps)
    chunks = []
    for t, (dx, dy) in zip(times[1:], offsets[1:]):
        level = np.log(shift(canvas, (dy, dx), order=1, mode="constant", cval=0.0) + config.log_eps)
        diff = level - ref
        count = np.floor(np.abs(diff) / thresh).astype(np.int64)
        ys, xs = np.nonzero(count)
        if ys.size == 0:
            continue
        n = count[ys, xs]
        ref[ys, xs] += np.sign(diff[ys, xs]) * n * thresh[ys, xs]
        ys, xs = np.repeat(ys, n), np.repeat(xs, n)
        ev = np.empty(ys.size, dtype=EVENT_DTYPE)
        ev["x"], ev["y"] = xs, ys
        ev["p"] = (diff[ys, xs] > 0).astype(np.int64)
        ev["t"] = t - rng.integers(0, config.dt_us, size=ys.size)  # spread inside the step
        chunks.append(ev)
    if not chunks:
        return np.empty(0, dtype=EVENT_DTYPE)
    events = np.concatenate(chunks)
    return events[np.argsort(events["t"], kind="stable")]


def saccade_pipeline(height: int, width: int, config: SaccadeConfig, base: EventPipeline = NMNIST_PIPELINE) -> EventPipeline:
    """``base`` (N-MNIST's pipeline, with any options) on the simulated sensor of an ``height`` x ``width`` image."""
    a = config.amplitude_for(height, width)
    return replace(base, sensor_size=(width + a, height + a, 2))


def _content_hash(base: DatasetSplits) -> str:
    h = hashlib.sha256()
    for split in (base.train, base.test):
        h.update(split.x.numpy().tobytes())
        h.update(split.y.numpy().tobytes())
    return h.hexdigest()[:16]


def load_saccade(
    base_name: str,
    root: Path | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    steps: int = NMNIST_PIPELINE.steps,
    cache: bool = True,
    seed: int = 0,
    threshold: float = SaccadeConfig.threshold,
    amplitude: int | None = None,
    frame_us: float | None = None,
    polarity: str | None = None,
    denoise_us: float | None = None,
    clamp: bool | None = None,
) -> DatasetSplits:
    """Saccade events of image set ``base_name``: uint8 ``[N, steps, P, H + A, W + A]``, seeded
    (N-MNIST's pipeline; its options as in ``nmprivacy.data.events.configure``).

    Sample ``i`` of a split draws its sensor mismatch and event jitter from the seed sequence
    ``(seed, split is train, i)``: the same settings always give the same events.
    """
    options = configure(NMNIST_PIPELINE, steps, frame_us, polarity, denoise_us, clamp)  # all checked before loading images
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise NmprivacyError(f"seed must be a whole number, got {seed!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold > 0:
        raise NmprivacyError(f"threshold must be a positive log-intensity step (e.g. 0.3), got {threshold!r}")
    if amplitude is not None and (isinstance(amplitude, bool) or not isinstance(amplitude, int) or amplitude < 1):
        raise NmprivacyError(f"amplitude must be a positive whole number of pixels, got {amplitude!r}")
    config = SaccadeConfig(seed=int(seed), threshold=float(threshold), amplitude=amplitude)
    base = REGISTRY[base_name].loader(root, limit_train=limit_train, limit_test=limit_test)
    _, height, width = base.input_shape
    pipeline = saccade_pipeline(height, width, config, options)
    images = {"train": base.train.x.mean(dim=1).numpy(), "test": base.test.x.mean(dim=1).numpy()}  # [N, H, W]

    def read(sample: tuple[str, int]) -> np.ndarray:
        split, i = sample
        rng = np.random.default_rng([config.seed, int(split == "train"), i])
        return saccade_events(images[split][i], config, rng)

    def items(split: str) -> list[tuple[tuple[str, int], int]]:
        labels = getattr(base, split).y.tolist()
        return [((split, i), lab) for i, lab in enumerate(labels)]

    name = f"{base_name}-saccade"
    return event_splits(
        name,
        items("train"),
        items("test"),
        read,
        pipeline,
        base.classes,
        source=f"simulated saccade events from {base_name} ({base.source})",
        fingerprint={"base": base_name, "content_sha256": _content_hash(base), "saccade": asdict(config)},
        use_cache=cache,
        info={
            "simulated": True,
            "base_dataset": base_name,
            "saccade": asdict(config),
            "amplitude_px": config.amplitude_for(height, width),
            **{k: v for k, v in base.info.items() if k in ("subject_of_class", "class_order")},
        },
    )


for _base in BASES:
    _entry = REGISTRY[_base]
    register(
        f"{_base}-saccade",
        "events",
        f"simulated N-MNIST-style saccade events of {_base}",
        _entry.locate,
    )(partial(load_saccade, _base))
