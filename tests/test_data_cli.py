"""``nmprivacy data info`` / ``data list`` on small written data sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from formats import write_idx_dataset, write_nmnist
from nmprivacy.cli import main


def test_info_counts_shape_source_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_idx_dataset(tmp_path / "mnist", n_train=40, n_test=20, size=6)
    out_json = tmp_path / "out" / "info.json"
    assert main(["data", "info", "--dataset", "mnist", "--data-root", str(tmp_path), "--limit-train", "30", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "domain       image" in out and "1x6x6" in out and str(tmp_path / "mnist") in out
    assert "train 30, test 20" in out
    rec = json.loads(out_json.read_text())
    assert rec["train_size"] == 30 and rec["test_per_class"] == [2] * 10 and rec["input_shape"] == [1, 6, 6]
    assert rec["versions"]["torch"] and rec["config"]["options"] == {"limit_train": 30}
    from nmprivacy.data import load_dataset

    expected = float(load_dataset("mnist", root=str(tmp_path), limit_train=30).test.x.float().mean())
    assert 0.0 < expected < 1.0 and rec["density"] == pytest.approx(expected)
    assert f"density      {expected:.4f} mean pixel value" in out


def test_info_events_with_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMPRIVACY_CACHE", str(tmp_path / "cache"))
    write_nmnist(tmp_path / "NMNIST", {"Train": 1, "Test": 1})
    assert main(["data", "info", "--dataset", "nmnist", "--data-root", str(tmp_path), "--option", "steps=30"]) == 0
    out = capsys.readouterr().out
    assert "domain       events" in out and "1x34x34 (C, H, W), T = 30 steps" in out and "train 10, test 10" in out
    assert "polarity, denoise_us, clamp" in out and "polarity=channel0" in out  # the options and the pipeline they set
    density = float(next(line for line in out.splitlines() if line.startswith("density")).split()[1])
    assert 0.0 < density < 1.0 and "spikes per voxel" in out
    assert main(["data", "info", "--dataset", "nmnist", "--data-root", str(tmp_path), "--option", "steps=30", "--option", "polarity=both"]) == 0
    assert "2x34x34 (C, H, W)" in capsys.readouterr().out
    assert main(["data", "info", "--dataset", "nmnist", "--data-root", str(tmp_path), "--option", "polarity=on"]) == 2
    assert "polarity must be one of channel0, merge, both" in capsys.readouterr().err


def test_list_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_idx_dataset(tmp_path / "mnist")
    assert main(["data", "list", "--data-root", str(tmp_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "found" in lines["mnist"] and str(tmp_path / "mnist") in lines["mnist"]
    assert "found" in lines["digits"] and "events" in lines["digits-saccade"]
    assert "missing" in lines["dvs-gesture"]
    assert main(["data", "info", "--dataset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown data set 'nope'") and err.count("\n") == 1
    assert main(["data", "info", "--dataset", "digits", "--option", "steps"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["data", "info", "--dataset", "digits", "--option", "steps=3"]) == 2
    assert "has no option steps" in capsys.readouterr().err
