"""Event data sets: N-MNIST (fake and real recordings), DVS Gesture, the shared pipeline, the cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from formats import nmnist_bytes, write_dvs_gesture, write_nmnist
from nmprivacy.data import load_dataset
from nmprivacy.data import events as events_mod
from nmprivacy.data.events import DVS_PIPELINE, NMNIST_PIPELINE, event_frames, fit_length
from nmprivacy.data.nmnist import read_nmnist_file
from nmprivacy.errors import DatasetNotFoundError, NmprivacyError

EV = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])


def make_events(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    ev = np.array(rows, dtype=EV)
    return ev[np.argsort(ev["t"], kind="stable")]


def test_nmnist_bin_roundtrip_through_tonic_reader(tmp_path: Path) -> None:
    x, y, t, p = np.array([0, 33, 5]), np.array([1, 2, 33]), np.array([0, 70_000, 8_000_000]), np.array([1, 0, 1])
    (tmp_path / "a.bin").write_bytes(nmnist_bytes(x, y, t, p))
    ev = read_nmnist_file(tmp_path / "a.bin")
    assert ev["x"].tolist() == [0, 33, 5] and ev["y"].tolist() == [1, 2, 33]
    assert ev["t"].tolist() == [0, 70_000, 8_000_000] and ev["p"].tolist() == [1, 0, 1]
    (tmp_path / "b.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(DatasetNotFoundError, match=r"b\.bin.*not a whole number of 5-byte events"):
        read_nmnist_file(tmp_path / "b.bin")


def test_pipeline_frames_polarity_denoise_clamp_and_length() -> None:
    rows = []
    for k in range(5):  # pairs of neighbouring OFF (p=0) events survive denoising; repeated -> clamp
        t = 1000 + 3000 * k
        rows += [(10, 10, t, 0), (11, 10, t + 10, 0), (10, 10, t + 20, 0)]
    rows += [(20, 20, 2000, 1), (21, 20, 2010, 1)]  # ON events: other channel, dropped
    rows += [(30, 3, 400_000, 0)]  # isolated in space: removed by the 40 ms denoise filter
    frames = event_frames(make_events(rows), NMNIST_PIPELINE)
    assert frames.shape == (100, 1, 34, 34) and frames.dtype == np.uint8
    assert set(np.unique(frames)) <= {0, 1}
    assert frames[:, 0, 20, 20].sum() == 0 and frames[:, 0, 20, 21].sum() == 0
    assert frames[:, 0, 3, 30].sum() == 0
    active = frames[:, 0, 10, 10]
    # 3 ms frames from the first event; tonic drops the last, incomplete window
    assert active[:4].tolist() == [1, 1, 1, 1] and active[4:].sum() == 0
    assert frames[:, 0, 10, 11].sum() == 4
    assert event_frames(make_events([]), NMNIST_PIPELINE).sum() == 0  # empty stream -> zeros
    short = event_frames(make_events(rows[:6]), replace(NMNIST_PIPELINE, steps=3))
    assert short.shape[0] == 3
    x = np.ones((4, 1, 2, 2), dtype=np.uint8)
    assert fit_length(x, 6).shape[0] == 6 and fit_length(x, 6)[4:].sum() == 0 and fit_length(x, 2).shape[0] == 2


def test_dvs_pipeline_merges_polarities_and_downsamples() -> None:
    rows = [(64, 64, 0, 1), (65, 64, 10_000, 0), (64, 64, 60_000, 0), (65, 64, 60_010, 1)]
    rows += [(100, 100, 160_000, 0), (100, 101, 160_010, 0)]  # completes the second 50 ms window
    frames = event_frames(make_events(rows), DVS_PIPELINE)
    assert frames.shape == (100, 1, 128, 128)
    assert frames[0, 0, 64, 64] == 1 and frames[0, 0, 64, 65] == 1 and frames[1, 0, 64, 64] == 1
    small = event_frames(make_events(rows), replace(DVS_PIPELINE, downsample=4))
    assert small.shape == (100, 1, 32, 32) and small[0, 0, 16, 16] == 1 and small[:2, 0, 16, 16].sum() == 2
    assert small[:, 0, :, :16].sum() == 0  # x 64/65 -> 16 after /4


def test_pipeline_options_polarity_both_no_denoise_counts_and_window() -> None:
    rows = [(5, 5, 0, 0), (5, 5, 100, 0), (5, 5, 200, 1), (30, 3, 900, 1)]  # repeats, both polarities, an isolated event
    rows += [(1, 1, 9_000, 0), (1, 2, 9_010, 0)]  # closes the windows
    ev = make_events(rows)
    both = event_frames(ev, events_mod.configure(NMNIST_PIPELINE, 10, polarity="both", denoise_us=0, clamp=False))
    assert both.shape == (10, 2, 34, 34) and both.dtype == np.uint8
    assert both[0, 0, 5, 5] == 2 and both[0, 1, 5, 5] == 1  # counts per polarity channel, not clamped
    assert both[0, 1, 3, 30] == 1  # denoise_us=0 keeps the isolated event
    wide = event_frames(ev, events_mod.configure(NMNIST_PIPELINE, 10, frame_us=1_000, polarity="merge", denoise_us=0))
    assert wide.shape == (10, 1, 34, 34) and wide[0, 0, 5, 5] == 1 and wide[0, 0, 3, 30] == 1  # merged, clamped
    assert wide[1:, 0, 5, 5].sum() == 0  # 1 ms frames: all three at (5, 5) fall in the first
    default = event_frames(ev, replace(NMNIST_PIPELINE, steps=10))
    assert default[:, 0, 3, 30].sum() == 0 and default[0, 0, 5, 5] == 1  # the data set's own settings
    for bad, match in (
        (dict(polarity="on"), "polarity must be one of channel0, merge, both"),
        (dict(frame_us=0), "frame_us must be a positive number"),
        (dict(denoise_us=-1), "denoise_us must be a number of microseconds >= 0"),
        (dict(clamp="yes"), "clamp must be true or false"),
    ):
        with pytest.raises(NmprivacyError, match=match):
            events_mod.configure(NMNIST_PIPELINE, 10, **bad)


def test_loaders_take_the_pipeline_options(isolated_data: Path) -> None:
    write_nmnist(isolated_data / "NMNIST", {"Train": 1, "Test": 1})
    d = load_dataset("nmnist", steps=30, polarity="both", clamp=False, denoise_us=0, frame_us=1000)
    assert d.input_shape == (2, 34, 34) and d.train.x.shape == (10, 30, 2, 34, 34)
    assert d.info["pipeline"]["polarity"] == "both" and d.info["pipeline"]["clamp"] is False
    again = load_dataset("nmnist", steps=30, polarity="both", clamp=False, denoise_us=0, frame_us=1000)  # from the cache
    assert torch.equal(again.train.x, d.train.x)
    write_dvs_gesture(isolated_data / "DVSGesture", {"ibmGestureTrain": ["user01_led"], "ibmGestureTest": ["user02_led"]}, labels=range(2))
    g = load_dataset("dvs-gesture", steps=5, downsample=8, polarity="both")
    assert g.input_shape == (2, 16, 16)
    s = load_dataset("digits-saccade", limit_train=10, limit_test=10, steps=20, polarity="both")
    assert s.input_shape[0] == 2 and s.train.x.shape[1:3] == (20, 2)
    with pytest.raises(NmprivacyError, match="polarity must be one of"):
        load_dataset("nmnist", polarity="positive")


def test_nmnist_loader_on_written_files(isolated_data: Path) -> None:
    write_nmnist(isolated_data / "NMNIST", {"Train": 2, "Test": 1})
    d = load_dataset("nmnist")
    assert d.domain == "events" and d.input_shape == (1, 34, 34) and d.source == str(isolated_data / "NMNIST")
    assert d.train.x.shape == (20, 100, 1, 34, 34) and d.train.x.dtype == torch.uint8
    assert d.test.y.tolist() == list(range(10))
    assert int(d.train.x.max()) == 1 and int(d.train.x.sum()) > 0
    # blob position depends on the digit (x = 3 + 2*digit at the start)
    cols = d.test.x[:, :5].sum(dim=(1, 2, 3))  # [N, W] activity per column in the first frames
    first_col = (cols > 0).float().argmax(dim=1)
    assert first_col.tolist() == [3 + 2 * k for k in range(10)]
    small = load_dataset("nmnist", limit_train=10, limit_test=5, steps=40)
    assert small.train.x.shape == (10, 40, 1, 34, 34) and torch.bincount(small.train.y).tolist() == [1] * 10
    assert torch.equal(small.train.x, d.train.x[::2, :40])


def test_real_nmnist_recordings(nmnist_sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMPRIVACY_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "NMNIST"
    root.mkdir()
    (root / "Train").symlink_to(nmnist_sample / "Test")  # the sample has test recordings only
    (root / "Test").symlink_to(nmnist_sample / "Test")
    ev = read_nmnist_file(nmnist_sample / "Test" / "3" / "00019.bin")
    assert len(ev) > 1000 and ev["x"].max() <= 33 and ev["y"].max() <= 33
    assert 250_000 < ev["t"].max() < 400_000 and set(np.unique(ev["p"])) == {0, 1}  # three saccades ~300 ms
    d = load_dataset("nmnist", root=tmp_path)
    assert len(d.test) == 20 and torch.bincount(d.test.y).tolist() == [2] * 10
    x = d.test.x
    assert x.shape == (20, 100, 1, 34, 34) and set(torch.unique(x).tolist()) == {0, 1}
    per_sample = x.sum(dim=(1, 2, 3, 4))
    assert int(per_sample.min()) > 500  # real digits light up thousands of voxels
    active_steps = (x.sum(dim=(2, 3, 4)) > 0).sum(dim=1)
    assert int(active_steps.min()) >= 80  # ~300 ms / 3 ms ~ 100 frames of activity


def test_cache_reuse_invalidation_and_no_partial(isolated_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_nmnist(isolated_data / "NMNIST", {"Train": 1, "Test": 1})
    cache = Path(str(isolated_data.parent / "cache"))
    first = load_dataset("nmnist")
    files = sorted(cache.glob("nmnist-*.pt"))
    assert len(files) == 1 and first.info["cache"] == str(files[0])

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("preprocessing ran although the cache is valid")

    original = events_mod.frames_for
    monkeypatch.setattr(events_mod, "frames_for", boom)
    second = load_dataset("nmnist")
    assert torch.equal(second.train.x, first.train.x)
    monkeypatch.setattr(events_mod, "frames_for", original)
    load_dataset("nmnist", steps=50)  # settings change -> new file
    assert len(list(cache.glob("nmnist-*.pt"))) == 2
    with open(paths[0], "ab") as fh:  # file change -> new file
        fh.write(nmnist_bytes(np.array([1]), np.array([1]), np.array([5]), np.array([0])))
    load_dataset("nmnist")
    assert len(list(cache.glob("nmnist-*.pt"))) == 3
    paths[-1].write_bytes(b"\x01\x02\x03")  # corrupt -> one-line error and no cache written
    with pytest.raises(DatasetNotFoundError, match=str(paths[-1])):
        load_dataset("nmnist", steps=60)
    assert len(list(cache.glob("nmnist-*.pt"))) == 3 and not list(cache.glob(".*.tmp"))


def test_cache_goes_to_the_user_cache_folder_never_into_data(isolated_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NMPRIVACY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated_data.parent / "xdg"))  # platformdirs' user cache folder on Linux
    write_nmnist(isolated_data / "NMNIST", {"Train": 1, "Test": 1})
    before = sorted(isolated_data.rglob("*"))
    d = load_dataset("nmnist", limit_train=3, limit_test=3)
    assert sorted(isolated_data.rglob("*")) == before  # nothing written into the data folder
    assert [p.parent for p in (isolated_data.parent / "xdg").rglob("nmnist-*.pt")] == [isolated_data.parent / "xdg" / "nmprivacy"]
    assert d.info["cache"].startswith(str(isolated_data.parent / "xdg"))
    assert load_dataset("nmnist", limit_train=3, limit_test=3, cache=False).info["cache"] is None


def test_dvs_gesture_loader(isolated_data: Path) -> None:
    write_dvs_gesture(
        isolated_data / "DVSGesture",
        {"ibmGestureTrain": ["user01_fluorescent", "user02_led"], "ibmGestureTest": ["user24_natural"]},
    )
    d = load_dataset("dvs-gesture")
    assert d.num_classes == 10 and "Other gestures" not in d.classes and d.classes[0] == "Hand clapping"
    assert (len(d.train), len(d.test)) == (20, 10) and int(d.train.y.max()) == 9
    assert d.info["removed_other"] == [2, 1]
    assert d.train.x.shape == (20, 100, 1, 128, 128) and d.train.x.dtype == torch.uint8
    assert int(d.train.x.max()) == 1
    active = (d.test.x.sum(dim=(2, 3, 4)) > 0).sum(dim=1)
    assert int(active.min()) >= 100  # 6 s of gesture at 50 ms frames fills T = 100
    small = load_dataset("dvs-gesture", downsample=4, limit_test=3, steps=20)
    assert small.test.x.shape == (3, 20, 1, 32, 32) and small.input_shape == (1, 32, 32)
    with pytest.raises(NmprivacyError, match="downsample must divide 128"):
        load_dataset("dvs-gesture", downsample=3)


def test_dvs_corrupt_file(isolated_data: Path) -> None:
    write_dvs_gesture(isolated_data / "DVSGesture", {"ibmGestureTrain": ["user01_led"], "ibmGestureTest": ["user02_led"]}, labels=range(2))
    bad = isolated_data / "DVSGesture" / "ibmGestureTest" / "user02_led" / "1.npy"
    np.save(bad, np.zeros((5, 3)))
    with pytest.raises(DatasetNotFoundError, match=r"1\.npy: shape \(5, 3\)"):
        load_dataset("dvs-gesture", cache=False)


def test_refuses_frames_larger_than_memory(isolated_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_nmnist(isolated_data / "NMNIST", {"Train": 1, "Test": 1})
    monkeypatch.setattr(events_mod, "available_memory", lambda: 100_000)  # 10 x 100 x 34 x 34 = 1.16 MB needed
    with pytest.raises(NmprivacyError, match="use limit_train/limit_test") as exc:
        load_dataset("nmnist")
    assert "\n" not in str(exc.value)
    assert len(load_dataset("nmnist", limit_train=1, limit_test=1, steps=10).train) == 1  # 3.4 kB fits
