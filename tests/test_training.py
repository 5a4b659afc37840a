"""Training loop, accuracy, seeding and the ``nmprivacy train`` command on tiny models."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nmprivacy.data import load_dataset
from nmprivacy.data.base import DatasetSplits, Split
from nmprivacy.errors import NmprivacyError
from nmprivacy.models import default_config
from nmprivacy.models.checkpoint import load, load_info
from nmprivacy.presets import TrainSettings
from nmprivacy.training import evaluate_accuracy, model_seed, train_model

SETTINGS = TrainSettings(epochs=4, batch_size=25, lr=1e-2, grad_clip=1.0, max_train_samples=300)


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits")


def small_test(splits: DatasetSplits, n: int = 120) -> DatasetSplits:
    return replace(splits, test=Split(splits.test.x[:n], splits.test.y[:n]))


@pytest.mark.parametrize("kind", ["snn-norse", "snn-lava", "ann", "evaluator", "evaluator-snn"])
def test_tiny_model_loss_falls(kind: str, digits: DatasetSplits) -> None:
    cfg = default_config(kind, digits.input_shape, digits.num_classes, "digits", hidden=48)
    model, report = train_model(kind, small_test(digits), cfg, SETTINGS, seed=0, steps=8, progress=False)
    assert len(report.train_loss) == 4 and len(report.val_accuracy) == 4
    assert all(a > b for a, b in zip(report.train_loss, report.train_loss[1:])), report.train_loss
    assert report.train_loss[-1] < 0.85 * report.train_loss[0], report.train_loss
    assert report.final_val_accuracy > 0.4, report.val_accuracy  # chance is 0.1
    assert report.train_samples == 300 and report.samples_per_s > 0
    assert report.steps == (8 if model.info.domain == "spikes" else None)
    assert not model.training


def test_same_seed_same_weights_other_seed_differs(digits: DatasetSplits) -> None:
    cfg = default_config("snn-norse", digits.input_shape, digits.num_classes, "digits", hidden=16)
    settings = replace(SETTINGS, epochs=1, max_train_samples=100)
    runs = [train_model("snn-norse", small_test(digits, 20), cfg, settings, seed=s, steps=5, progress=False)[0] for s in (4, 4, 5)]
    a, b, c = (m.state_dict() for m in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc1.weight"], c["fc1.weight"])


def test_evaluators_never_share_the_target_seed() -> None:
    seeds = {model_seed(k, 0) for k in ("snn-norse", "evaluator", "evaluator-snn")}
    assert len(seeds) == 3 and model_seed("snn-norse", 0) == 0 and model_seed("snn-lava", 7) == 7
    assert model_seed("evaluator", 1) == model_seed("evaluator", 1) != model_seed("evaluator", 2)


def test_evaluate_accuracy_counts_predictions(digits: DatasetSplits) -> None:
    torch.manual_seed(0)
    cfg = default_config("ann", digits.input_shape, digits.num_classes, "digits", hidden=8)
    from nmprivacy.models import build

    model = build("ann", cfg).eval()
    split = Split(digits.test.x[:50], digits.test.y[:50])
    expected = float((model.predict(split.x) == split.y).float().mean())
    assert evaluate_accuracy(model, split, None, seed=0, batch_size=7) == pytest.approx(expected)
    relabelled = Split(split.x, model.predict(split.x))
    assert evaluate_accuracy(model, relabelled, None, seed=0) == 1.0


def event_splits() -> DatasetSplits:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 2
    x = torch.zeros(60, 10, 1, 4, 4, dtype=torch.uint8)
    noise = (torch.rand(60, 10, 1, 4, 4, generator=g) < 0.1).to(torch.uint8)
    x[y == 0, :, :, :2] = 1  # class 0 fires on the top half, class 1 on the bottom half
    x[y == 1, :, :, 2:] = 1
    x = x * (torch.rand(x.shape, generator=g) < 0.5).to(torch.uint8) | noise
    split = Split(x, y)
    return DatasetSplits("synthetic-events", "events", split, split, ("a", "b"), (1, 4, 4), "test")


def test_event_data_train_spiking_and_refuse_image_models() -> None:
    splits = event_splits()
    cfg = default_config("snn-norse", splits.input_shape, 2, "nmnist", hidden=16)
    model, report = train_model("snn-norse", splits, cfg, replace(SETTINGS, epochs=3, batch_size=20, max_train_samples=None), seed=0, progress=False)
    assert report.steps == 10 and report.final_val_accuracy > 0.8
    with pytest.raises(NmprivacyError, match="takes images but data set 'synthetic-events' holds events"):
        train_model("ann", splits, default_config("ann", (1, 4, 4), 2, hidden=4), SETTINGS, seed=0, progress=False)


def test_config_must_fit_the_data(digits: DatasetSplits) -> None:
    cfg = default_config("ann", (1, 28, 28), 10, hidden=4)
    with pytest.raises(NmprivacyError, match=r"expects input \(1, 28, 28\)"):
        train_model("ann", digits, cfg, SETTINGS, seed=0, progress=False)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process (the CLI imports Lava first, before anything fixes the start method)."""
    return subprocess.run([sys.executable, "-m", "nmprivacy", *args], capture_output=True, text=True, timeout=300)


def test_cli_train_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "ck"
    proc = run_cli("train", "--dataset", "digits", "--model", "snn-lava", "--hidden", "16", "--epochs", "1", "--steps", "5",
                   "--max-train-samples", "100", "--seed", "2", "--progress", "--out", str(out),
                   "--set", "target_config.extra_hidden=[8]", "--set", "target_config.surrogate=arctan")  # as the audit builds its target
    assert proc.returncode == 0, proc.stderr
    assert "validation accuracy" in proc.stdout and "snn-lava epoch 1/1" in proc.stderr  # tqdm progress, asked for
    assert "warning: --max-train-samples is deprecated" in proc.stderr and "use --limit-train" in proc.stderr  # the old spelling still works
    model = load(out, "snn-lava")
    assert model.config.hidden == 16 and model.config.extra_hidden == (8,) and model.config.surrogate == "arctan"
    assert model.network().sizes == (64, 16, 8, 10)
    info = load_info(out)
    assert info["seed"] == 2 and info["steps"] == 5 and 0.0 <= info["val_acc"] <= 1.0
    assert info["report"]["settings"]["epochs"] == 1 and info["dataset"] == "digits"
    assert "train" in info["timings_s"] and json.loads((out / "config.json").read_text())["kind"] == "snn-lava"


def test_cli_train_user_errors_are_one_line(tmp_path: Path) -> None:
    proc = run_cli("train", "--dataset", "digits", "--model", "ann", "--epochs", "0", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith("error: --epochs must be >= 1") and proc.stderr.count("\n") == 1


def test_cli_model_choices_are_the_registry() -> None:
    from nmprivacy.commands.train import KINDS
    from nmprivacy.models import MODEL_KINDS

    assert KINDS == tuple(MODEL_KINDS)


def test_small_data_sets_get_a_budget_in_optimiser_steps() -> None:
    """The default budget sets least steps, not epochs: 320 samples get many epochs, 60000 keep theirs."""
    from nmprivacy.presets import DEFAULT_MIN_STEPS, preset_for

    snn = preset_for("fashion-mnist").snn_train  # 1 epoch on MNIST-size data
    assert snn.epochs_for(60000) == 1  # 600 steps >= the least steps: not over-trained
    assert snn.epochs_for(1000) == -(-DEFAULT_MIN_STEPS["snn"] // 10)  # 10 steps per epoch -> 30 epochs
    assert snn.epochs_for(320) == min(snn.max_epochs, -(-DEFAULT_MIN_STEPS["snn"] // 4))
    evaluator = preset_for("nmnist").snn_evaluator_train
    assert evaluator.epochs_for(1000) * -(-1000 // evaluator.batch_size) >= DEFAULT_MIN_STEPS["snn_evaluator"]
    assert preset_for("digits").snn_train.epochs_for(1437) == 6  # data sets with their own measured schedule keep it
