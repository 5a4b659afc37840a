"""Saccade events simulated from image data sets, through N-MNIST's pipeline."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from formats import write_idx_dataset
from nmprivacy.data import load_dataset
from nmprivacy.data.events import NMNIST_PIPELINE
from nmprivacy.data.saccade import SaccadeConfig, saccade_events, saccade_offsets, saccade_pipeline


def square(size: int = 28, lo: int = 9, hi: int = 19) -> np.ndarray:
    img = np.zeros((size, size))
    img[lo:hi, lo:hi] = 1.0
    return img


def test_triangle_path_of_three_saccades() -> None:
    times, offsets = saccade_offsets(SaccadeConfig(), amplitude=6)
    assert times[-1] == 300_000 and offsets.shape == (301, 2)
    assert offsets[0].tolist() == [0, 0] and offsets[100].tolist() == [3, 6]
    assert offsets[200].tolist() == [6, 0] and offsets[300].tolist() == [0, 0]


def test_events_of_a_moving_square() -> None:
    cfg = SaccadeConfig()
    ev = saccade_events(square(), cfg, np.random.default_rng(0))
    assert ev.dtype.names == ("x", "y", "t", "p")
    assert np.all(np.diff(ev["t"]) >= 0) and 0 <= ev["t"].min() and ev["t"].max() <= 300_000
    assert set(np.unique(ev["p"])) == {0, 1} and ev["x"].max() < 34 and ev["y"].max() < 34
    # first saccade moves down-right: ON events on the leading (bottom/right) edges, OFF on trailing ones
    first = ev[ev["t"] < 100_000]
    on, off = first[first["p"] == 1], first[first["p"] == 0]
    assert on["x"].mean() > off["x"].mean() and on["y"].mean() > off["y"].mean()
    # events only where the square's edges pass (none in the far corner, none inside the plateau)
    assert not np.any((ev["x"] > 27) & (ev["y"] < 5)) and not np.any((ev["x"] == 14) & (ev["y"] == 14) & (ev["t"] < 30_000))
    assert len(saccade_events(np.zeros((28, 28)), cfg, np.random.default_rng(0))) == 0
    assert len(saccade_events(square(), SaccadeConfig(threshold=0.6), np.random.default_rng(0))) < len(ev)


def test_uses_the_nmnist_pipeline() -> None:
    p = saccade_pipeline(28, 28, SaccadeConfig())
    assert p.sensor_size == (34, 34, 2)  # 28x28 -> N-MNIST's 34x34 sensor
    d = asdict(p)
    d.pop("sensor_size")
    n = asdict(NMNIST_PIPELINE)
    n.pop("sensor_size")
    assert d == n


def test_digits_saccade_dataset_seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMPRIVACY_CACHE", str(tmp_path / "cache"))
    a = load_dataset("digits-saccade", limit_train=10, limit_test=10)
    assert a.name == "digits-saccade" and a.domain == "events" and "simulated" in a.source
    assert a.info["simulated"] is True and a.info["base_dataset"] == "digits"
    assert a.train.x.shape == (10, 100, 1, 10, 10) and a.input_shape == (1, 10, 10) and a.train.x.dtype == torch.uint8
    assert set(torch.unique(a.train.x).tolist()) == {0, 1}
    active = a.train.x.sum(dim=(2, 3, 4)) > 0  # [N, T]
    assert int(active.sum(dim=1).min()) >= 60 and bool(active[:, 95:].any(dim=1).all())  # ~300 ms of 3 ms frames
    b = load_dataset("digits-saccade", limit_train=10, limit_test=10, cache=False)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    c = load_dataset("digits-saccade", limit_train=10, limit_test=10, seed=1, cache=False)
    assert not torch.equal(a.train.x, c.train.x)
    assert len(list((tmp_path / "cache").glob("digits-saccade-*.pt"))) == 1


def test_image_set_saccade_from_files(isolated_data: Path) -> None:
    write_idx_dataset(isolated_data / "fashion-mnist", n_train=10, n_test=10, size=28)
    d = load_dataset("fashion-mnist-saccade", limit_train=5)
    assert d.train.x.shape == (5, 100, 1, 34, 34) and d.classes[0] == "T-shirt/top"
    assert str(isolated_data / "fashion-mnist") in d.source
