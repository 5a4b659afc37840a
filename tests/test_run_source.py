"""Every run record names the code that ran (``runinfo.source_version``), and a model reused from
the cache says which code trained it (``trained.trained_by_code``). Tiny models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nmprivacy import runinfo
from nmprivacy.data import load_dataset
from nmprivacy.data.base import Split
from nmprivacy.presets import resolve


def _fingerprint(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(runinfo, "PACKAGE_DIR", folder)
    return runinfo.source_version.__wrapped__()


def test_source_fingerprint_follows_content_and_paths_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "notes.txt").write_text("not code")
    first = _fingerprint(pkg, monkeypatch)
    assert set(first) == {"nmprivacy-source"} and len(first["nmprivacy-source"]) == 16  # no git work tree here
    (pkg / "notes.txt").write_text("changed, still not code")
    assert _fingerprint(pkg, monkeypatch) == first
    copy = tmp_path / "copy"
    (copy / "sub").mkdir(parents=True)
    (copy / "a.py").write_text("x = 1\n")
    (copy / "sub" / "b.py").write_text("y = 2\n")
    assert _fingerprint(copy, monkeypatch) == first  # another checkout of the same code
    (pkg / "a.py").write_text("x = 2\n")
    assert _fingerprint(pkg, monkeypatch) != first
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").rename(pkg / "b.py")
    assert _fingerprint(pkg, monkeypatch) != first


def test_run_records_carry_the_running_code() -> None:
    versions = runinfo.run_metadata()["versions"]
    assert versions["nmprivacy-source"] == runinfo.source_version()["nmprivacy-source"]
    if "nmprivacy-git" in versions:
        assert len(versions["nmprivacy-git"].removesuffix("+dirty")) == 40


def test_cached_model_from_other_code_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nmprivacy.trained import train_or_load

    digits = load_dataset("digits")
    small = replace(digits, train=Split(digits.train.x[:60], digits.train.y[:60]), test=Split(digits.test.x[:20], digits.test.y[:20]))
    preset = resolve("digits", "quick", hidden=8, overrides={"ann_train.epochs": 1})
    fresh = train_or_load("ann", small, preset, 0, None, tmp_path, "quick")
    assert "trained_by" not in fresh.record
    run_file = Path(fresh.record["checkpoint"]) / "run.json"
    run = json.loads(run_file.read_text())
    now = runinfo.source_version()["nmprivacy-source"]
    assert run["versions"]["nmprivacy-source"] == now
    same = train_or_load("ann", small, preset, 0, None, tmp_path, "quick")
    assert same.record["trained_by"] == {"nmprivacy-source": now, "torch_threads": run["machine"]["torch_threads"], "same_code": True}
    assert "other nmprivacy code" not in capsys.readouterr().out
    run["versions"]["nmprivacy-source"] = "0" * 16
    run_file.write_text(json.dumps(run))
    other = train_or_load("ann", small, preset, 0, None, tmp_path, "quick")
    assert other.record["cached"] and other.record["trained_by"]["same_code"] is False
    assert f"other nmprivacy code (source {'0' * 16}, now {now})" in capsys.readouterr().out
    del run["versions"]["nmprivacy-source"]  # a record older than the fingerprint: unknown, not "other"
    run_file.write_text(json.dumps(run))
    assert train_or_load("ann", small, preset, 0, None, tmp_path, "quick").record["trained_by"]["same_code"] is None


def test_report_names_models_trained_by_other_code() -> None:
    from nmprivacy.report import model_source_lines

    same = {"kind": "snn-lava", "trained_by": {"nmprivacy-source": "a" * 16, "same_code": True}}
    other = {"kind": "evaluator", "trained_by": {"nmprivacy-source": "b" * 16, "same_code": False}}
    assert model_source_lines({"target": same, "evaluators": [same]}) == []
    assert model_source_lines({"target": {"kind": "ann"}}) == []  # trained in this run: no trained_by
    text = " ".join(model_source_lines({"target": same, "evaluators": [same, other]}))
    assert f"evaluator 2 (source {'b' * 16})" in text and "target" not in text.split("code:")[1]
