"""Hostile and broken files: one test per failure the fuzzing of issue 13 found, plus the atomic
outputs and the one cache. Every bad file is a one-line NmprivacyError naming it; nothing is left
behind; a damaged cache entry is rebuilt."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.fuzz.formats.common import Evil, gzip_bomb, npy_huge_header
from formats import IDX_NAMES, idx_bytes, write_dvs_gesture, write_idx_dataset, write_nmnist, write_olivetti, write_pgm
from nmprivacy.cli import main
from nmprivacy.data import load_dataset
from nmprivacy.errors import CheckpointError, DatasetNotFoundError, NmprivacyError


def one_line(exc: pytest.ExceptionInfo, *words: str) -> str:
    text = str(exc.value)
    assert "\n" not in text and all(w in text for w in words), text
    return text


# --- readers --------------------------------------------------------------------------------------

def test_idx_dimension_product_and_gzip_bomb(isolated_data: Path) -> None:
    folder = isolated_data / "mnist"
    write_idx_dataset(folder)
    images = folder / IDX_NAMES["train_images"]
    header = images.read_bytes()[:16]
    images.write_bytes(header[:4] + (2**32 - 1).to_bytes(4, "big") * 3 + images.read_bytes()[16:])  # product wraps int64
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("mnist")
    one_line(exc, str(images), "more than the")
    images.unlink()
    bomb = images.with_name(images.name + ".gz")
    bomb.write_bytes(gzip_bomb(header, gib=1))  # 1 GiB of zeros behind a 30x6x6 header
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("mnist")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    one_line(exc, str(bomb), "more data bytes than its header announces")
    assert peak < 64 << 20 and time.perf_counter() - start < 5  # inflated only up to the declared size


def test_pgm_ascii_with_a_non_digit_and_pixels_above_maxval(tmp_path: Path) -> None:
    from nmprivacy.data.faces import read_pgm

    bad = tmp_path / "a.pgm"
    bad.write_bytes(b"P2\n3 2\n255\n1 2 3\n4 x 6\n")
    with pytest.raises(DatasetNotFoundError) as exc:
        read_pgm(bad)
    one_line(exc, str(bad), "not a whole number")
    write_pgm(bad, np.full((2, 3), 200, dtype=np.uint8), maxval=100)
    with pytest.raises(DatasetNotFoundError) as exc:
        read_pgm(bad)
    one_line(exc, "above the header's maxval")
    bad.write_bytes(b"P5\n99999999 99999999\n255\n\x00")
    with pytest.raises(DatasetNotFoundError) as exc:
        read_pgm(bad)
    one_line(exc, "more than the")


def test_olivetti_refuses_pickles_nan_and_forged_shapes(isolated_data: Path) -> None:
    folder = isolated_data / "olivetti"
    images, targets = write_olivetti(folder, subjects=2, size=8)
    img = folder / "olivetti_faces.npy"
    np.save(img, np.array([Evil()] * len(targets), dtype=object), allow_pickle=True)
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("olivetti")
    one_line(exc, str(img), "refused", "pickled")
    bad = images.copy()
    bad[3, 2, 2] = np.nan
    np.save(img, bad)
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("olivetti")
    one_line(exc, "NaN")
    np.save(img, images)
    npy_huge_header(img, np.random.default_rng(0))  # header claims gigabytes, file holds 5 kB
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("olivetti")
    one_line(exc, str(img), "header announces")
    np.save(img, images.astype("U3"))
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("olivetti")
    one_line(exc, "not a plain numeric type")
    np.save(img, np.rint(images * 255).astype(np.uint8))  # the 0..255 form is fine
    assert load_dataset("olivetti").num_classes == 2


def test_dvs_refuses_bad_values_and_never_allocates_past_steps(isolated_data: Path) -> None:
    folder = isolated_data / "DVSGesture"
    write_dvs_gesture(folder, {"ibmGestureTrain": ["user01_led"], "ibmGestureTest": ["user02_led"]}, labels=range(2), n_events=100)
    path = folder / "ibmGestureTest" / "user02_led" / "1.npy"
    events = np.load(path)
    cases = {
        "time stamps outside": np.vstack([events, [[1, 1, 0, 2**40]]]),
        "x outside": np.vstack([events, [[128, 1, 0, 5]]]),
        "polarity other than 0 or 1": np.vstack([events, [[1, 1, 3, 5]]]),
        "NaN or infinite": np.vstack([events.astype(np.float16), [[1, 1, 0, np.inf]]]),
        "dtype bool": events > 0,
    }
    for word, bad in cases.items():
        np.save(path, bad)
        with pytest.raises(DatasetNotFoundError) as exc:
            load_dataset("dvs-gesture", cache=False)
        one_line(exc, str(path), word)
    far = events.copy()
    far[-1, 3] = 2**30  # 12 days: tonic would slice 21 M frames (1.3 PiB at 128x128)
    np.save(path, far)
    assert load_dataset("dvs-gesture", cache=False, steps=10).test.x.shape[1] == 10


def test_event_frames_bound_keeps_the_frames() -> None:
    import tonic.transforms as tt

    from nmprivacy.data.events import NMNIST_PIPELINE, event_frames, fit_length
    from formats import blob_events
    from tonic.datasets import NMNIST as TonicNMNIST

    for seed in range(5):
        x, y, t, p = blob_events(seed % 10, seed, duration_us=int(1e6))
        ev = np.zeros(len(t), dtype=TonicNMNIST.dtype)
        ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
        for steps in (20, 100, 400):
            pipeline = NMNIST_PIPELINE.__class__(**{**NMNIST_PIPELINE.settings(), "steps": steps})
            denoised = tt.Denoise(filter_time=pipeline.denoise_us)(ev)
            full = tt.ToFrame(sensor_size=(34, 34, 2), time_window=pipeline.frame_us)(denoised)[:, :1]
            assert np.array_equal(event_frames(ev, pipeline), fit_length(np.minimum(full, 1).astype(np.uint8), steps))


def test_nmnist_split_that_is_a_file_and_events_outside_the_sensor(isolated_data: Path) -> None:
    folder = isolated_data / "NMNIST"
    paths = write_nmnist(folder, {"Train": 1, "Test": 1})
    raw = bytearray(paths[0].read_bytes())
    raw[0] = 40  # x = 40 on a 34x34 sensor
    paths[0].write_bytes(bytes(raw))
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("nmnist", cache=False)
    one_line(exc, str(paths[0]), "outside the 34x34 sensor")
    for p in sorted((folder / "Test").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (folder / "Test").rmdir()
    (folder / "Test").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("nmnist", cache=False)
    one_line(exc, str(folder / "Test"), "not a folder")


def test_event_cache_with_wrong_content_is_rebuilt(isolated_data: Path) -> None:
    from nmprivacy.cache import DIGEST, content_digest

    write_nmnist(isolated_data / "NMNIST", {"Train": 1, "Test": 1})
    first = load_dataset("nmnist", steps=20)
    entry = Path(first.info["cache"])
    content = torch.load(entry, weights_only=True)
    body = {k: v for k, v in content.items() if k != DIGEST}
    forged = {**body, "x_train": torch.full_like(body["x_train"], 2)}  # loadable, self-consistent digest, impossible frames
    torch.save({**forged, DIGEST: content_digest(forged)}, entry)
    again = load_dataset("nmnist", steps=20)
    assert torch.equal(again.train.x, first.train.x)
    stale = {**body, "x_test": body["x_test"].clone()}
    stale["x_test"].view(-1)[0] ^= 1  # still binary: only the digest tells
    torch.save({**stale, DIGEST: content[DIGEST]}, entry)
    assert torch.equal(load_dataset("nmnist", steps=20).test.x, first.test.x)
    torch.save({**body, "x_train": Evil()}, entry)
    assert torch.equal(load_dataset("nmnist", steps=20).train.x, first.train.x)
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]  # rebuilt in place, no temp files


# --- checkpoints ----------------------------------------------------------------------------------

def tiny_checkpoint(folder: Path, kind: str = "snn-norse") -> Path:
    from nmprivacy.models import build, checkpoint, default_config

    torch.manual_seed(0)
    return checkpoint.save(build(kind, default_config(kind, (1, 8, 8), 10, "digits", hidden=6)), folder, extra={"dataset": "digits", "steps": 4})


def test_checkpoint_json_values_are_bounded_before_use(tmp_path: Path) -> None:
    from nmprivacy.models import checkpoint

    folder = tiny_checkpoint(tmp_path / "ck")
    config = json.loads((folder / "config.json").read_text())
    for value in (10**9, 10**30, -1, "6", 6.5, True, None):
        (folder / "config.json").write_text(json.dumps({**config, "config": {**config["config"], "hidden": value}}))
        start = time.perf_counter()
        with pytest.raises(CheckpointError) as exc:
            checkpoint.load(folder)
        one_line(exc, str(folder))
        assert time.perf_counter() - start < 5  # nothing of 10**9 hidden units was allocated
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError) as exc:
        checkpoint.load(folder)
    one_line(exc, "not valid JSON")
    run = json.loads((folder / "run.json").read_text())
    for key, value in (("steps", 10**9), ("steps", "25"), ("dataset", 5), ("val_acc", float("nan"))):
        (folder / "run.json").write_text(json.dumps({**run, key: value}))
        with pytest.raises(CheckpointError) as exc:
            checkpoint.load_info(folder)
        one_line(exc, str(folder / "run.json"), key)


def test_checkpoint_weights_refused_for_code_forgeries_and_damage(tmp_path: Path) -> None:
    from nmprivacy.models import checkpoint

    folder = tiny_checkpoint(tmp_path / "ck")
    weights = folder / "weights.pt"
    state = torch.load(weights, weights_only=True)
    config = json.loads((folder / "config.json").read_text())

    def write(obj: object) -> None:
        torch.save(obj, weights)
        (folder / "config.json").write_text(json.dumps({**config, "weights_sha256": checkpoint.file_sha256(weights)}))

    cases = [({**state, "fc1.weight": Evil()}, "refused: it contains code"),
             ({**state, "fc1.weight": torch.zeros(1).expand(10**5, 10**5)}, "storage holds only"),
             ({**state, "fc2.weight": state["fc2.weight"] * float("nan")}, "NaN"),
             ({**state, "fc1.weight": state["fc1.weight"].double()}, "does not match its config.json"),
             ([state["fc1.weight"]], "not a state dict")]
    for obj, words in cases:
        write(obj)
        with pytest.raises(CheckpointError) as exc:
            checkpoint.load(folder)
        one_line(exc, str(weights), words)
    write(state)
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0x40  # one flipped bit of a weight
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError) as exc:
        checkpoint.load(folder)
    one_line(exc, "sha256")


def test_checkpoint_save_is_atomic_and_never_replaces_foreign_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nmprivacy.models import checkpoint

    folder = tiny_checkpoint(tmp_path / "a" / "b" / "ck")
    tiny_checkpoint(folder, "ann")  # an older checkpoint is replaced as a whole
    assert checkpoint.checkpoint_kind(folder) == "ann" and sorted(p.name for p in folder.parent.iterdir()) == ["ck"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(CheckpointError, match="not a checkpoint's"):
        tiny_checkpoint(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"

    def broken_save(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError):
        tiny_checkpoint(tmp_path / "new" / "deep" / "ck")
    assert not (tmp_path / "new").exists()  # no half checkpoint, no empty folders


# --- reconstructions and outputs ------------------------------------------------------------------

def test_reconstruction_files(tmp_path: Path) -> None:
    from nmprivacy.attacks.io import load_reconstructions
    from nmprivacy.evaluation.scoring import load_scorable

    path = tmp_path / "r.pt"
    for obj, words in ((torch.full((10, 4, 1, 8, 8), float("nan")), "NaN"),
                       (torch.zeros(1).expand(10, 10**5, 10**5), "storage holds only"),
                       ({"reconstructions": torch.rand(10, 64), "classes": torch.zeros(10, dtype=torch.long)}, "distinct"),
                       ({"reconstructions": torch.rand(10, 64), "x": Evil()}, "refused")):
        torch.save(obj, path)
        with pytest.raises(NmprivacyError) as exc:
            load_reconstructions(path)
        one_line(exc, str(path), words)
    torch.save(torch.full((10, 4, 1, 8, 8), 2.0), path)
    with pytest.raises(NmprivacyError) as exc:
        load_scorable(str(path), (1, 8, 8), 10)
    one_line(exc, "probabilities in [0, 1]")


def test_outputs_are_checked_first_and_never_left_half(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nmprivacy.runinfo import atomic_dir, atomic_write_json

    folder = tiny_checkpoint(tmp_path / "ck")
    (tmp_path / "taken").mkdir()
    assert main(["attack", "--model", str(folder), "--attack", "bl-v1", "--quick", "--out", str(tmp_path / "taken")]) == 2
    assert "is a folder: give a file name" in capsys.readouterr().err
    assert main(["attack", "--model", str(folder), "--attack", "bl-v1", "--quick", "--out", str(tmp_path / "x.json")]) == 2
    assert "must not end in .json" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--model", "ann", "--out", str(tmp_path / "ck" / "weights.pt")]) == 2
    assert "existing file" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    with pytest.raises(NmprivacyError, match="is a file, not a folder"):
        atomic_write_json(tmp_path / "file" / "sub" / "r.json", {})
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "fresh" / "deeper" / "out") as tmp:
            (tmp / "half.json").write_text("{")
            raise RuntimeError("crash mid-way")
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "file", "taken"]


def test_one_cache_root_for_data_and_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nmprivacy import audit, cache, trained

    monkeypatch.delenv("NMPRIVACY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "nmprivacy"
    assert cache.cache_root("mine") == Path("mine")
    monkeypatch.setenv("NMPRIVACY_CACHE", str(tmp_path / "env"))
    assert cache.cache_root() == tmp_path / "env" and audit.cache_root is cache.cache_root and trained.cache_key is cache.cache_key
    assert cache.cache_key(a=1, b=[1, 2]) == cache.cache_key(b=(1, 2), a=1) != cache.cache_key(a=2, b=[1, 2])
