"""An evaluator whose training collapsed (too weak to judge) is replaced by a fresh training of
another seed, at most ``EVALUATOR_ATTEMPTS`` trainings, and the record and report say so
(``trained.train_evaluators``). Tiny models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nmprivacy import trained
from nmprivacy.audit import weak_models
from nmprivacy.cli import main
from nmprivacy.data import load_dataset
from nmprivacy.data.base import Split
from nmprivacy.presets import resolve
from nmprivacy.report import model_source_lines


def small_digits():
    digits = load_dataset("digits")
    return replace(digits, train=Split(digits.train.x[:80], digits.train.y[:80]), test=Split(digits.test.x[:40], digits.test.y[:40]))


def test_a_collapsed_evaluator_is_replaced_and_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Seed 2 collapses (at chance), its replacement seed 10002 does not: the set is seeds 1,
    10002, 3 and only the replacement's record and report line name the collapsed training."""
    asked = []

    def fake(kind, splits, preset, seed, *args, **kwargs):
        asked.append(seed)
        return trained.TrainedModel(None, {"kind": kind, "seed": seed, "val_acc": 0.1 if seed == 2 else 0.9})

    monkeypatch.setattr(trained, "train_or_load", fake)
    splits = small_digits()
    judges = trained.train_evaluators("evaluator", splits, None, 3, 0, None, tmp_path)
    assert asked == [1, 2, 2 + trained.REPLACEMENT_SEED_STRIDE, 3]
    assert [j.record["seed"] for j in judges] == [1, 10002, 3]
    assert judges[1].record["replaces"] == [{"seed": 2, "val_acc": 0.1}]
    assert "replaces" not in judges[0].record and "replaces" not in judges[2].record
    assert weak_models({}, judges, splits.num_classes) == {}
    text = " ".join(model_source_lines({"evaluators": [j.record for j in judges]}))
    assert "Evaluator 2 is seed 10002, trained in place of seed 2 (10.00 %)" in text and "Evaluator 1" not in text


def test_an_evaluator_that_always_collapses_is_kept_and_marked_weak(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real evaluator training that cannot learn (learning rate 1e4: the CNN collapses to chance
    whatever the seed) is tried EVALUATOR_ATTEMPTS times, then kept, and the audit's weak-model
    check still names it: no invalid judge is hidden by the replacement. ``nmprivacy evaluate``
    with it warns and lists it in its JSON."""
    splits = small_digits()
    preset = resolve("digits", "quick", overrides={"evaluator_train.lr": 1e4, "evaluator_train.epochs": 1})
    (judge,) = trained.train_evaluators("evaluator", splits, preset, 1, 0, None, tmp_path, "quick")
    stride = trained.REPLACEMENT_SEED_STRIDE
    assert [r["seed"] for r in judge.record["replaces"]] == [1, 1 + stride][: trained.EVALUATOR_ATTEMPTS - 1]
    assert judge.record["seed"] == 1 + stride * (trained.EVALUATOR_ATTEMPTS - 1)
    assert trained.too_weak(judge.record["val_acc"], splits.num_classes)
    assert "evaluator 1" in weak_models({}, [judge], splits.num_classes)
    assert len(list(tmp_path.glob("digits-evaluator-s*"))) == trained.EVALUATOR_ATTEMPTS  # each attempt cached under its own seed
    recon = tmp_path / "recon.pt"
    torch.save(torch.rand(splits.num_classes, 1, 8, 8), recon)
    out = tmp_path / "scores.json"
    assert main(["evaluate", "--reconstructions", str(recon), "--dataset", "digits", "--evaluator", judge.record["checkpoint"], "--json", str(out)]) == 0
    assert "evaluator 1 reaches" in capsys.readouterr().err and json.loads(out.read_text())["weak_evaluators"] == [1]
