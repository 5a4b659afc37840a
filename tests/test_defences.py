"""Defences in training (issue 25): DP-SGD (``TrainSettings.dp``) and the free defences
(``weight_decay``, ``dropout``, ``early_stopping``) by dotted name through ``resolve`` /
``with_overrides``, in ``train_model`` for every trainable kind, recorded in the report, the
checkpoint and the model records of ``train``, ``audit``, ``mia`` and ``study``. Tiny models."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nmprivacy.data import load_dataset
from nmprivacy.data.base import DatasetSplits, Split
from nmprivacy.dp import DPSettings, epsilon_for
from nmprivacy.errors import NmprivacyError
from nmprivacy.lava_import import import_lava
from nmprivacy.models import default_config
from nmprivacy.presets import TrainSettings, check_overrides, resolve
from nmprivacy.runinfo import to_jsonable
from nmprivacy.settings import with_overrides

pytest.importorskip("opacus")
import_lava()  # cli.main imports Lava, which must set the start method before any tqdm bar does




@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    splits = load_dataset("digits")
    return replace(splits, test=Split(splits.test.x[:40], splits.test.y[:40]))


# --- dotted settings ---------------------------------------------------------------------------


def test_dp_group_is_created_by_dotted_name_in_any_order() -> None:
    base = resolve("digits", "quick")
    assert base.snn_train.dp is None
    for order in (["snn_train.dp.max_grad_norm", "snn_train.dp.epsilon"], ["snn_train.dp.epsilon", "snn_train.dp.max_grad_norm"]):
        values = {"snn_train.dp.epsilon": 8, "snn_train.dp.max_grad_norm": 0.5}
        preset = resolve("digits", "quick", overrides={k: values[k] for k in order})
        assert preset.snn_train.dp == DPSettings(epsilon=8.0, max_grad_norm=0.5)
        assert preset.snn_train.epochs == base.snn_train.epochs and preset.ann_train.dp is None  # nothing else moved
    dp = resolve("digits", overrides={"ann_train.dp.noise_multiplier": 1.1, "ann_train.dp.delta": 1e-5, "ann_train.dp.accountant": "rdp"}).ann_train.dp
    assert dp == DPSettings(noise_multiplier=1.1, delta=1e-5, accountant="rdp")
    on = resolve("digits", overrides={"snn_train.dp.epsilon": 8})
    assert with_overrides(on, {"snn_train.dp": None}).snn_train.dp is None  # --set snn_train.dp=null turns it off
    switched = with_overrides(on, {"snn_train.dp.epsilon": None, "snn_train.dp.noise_multiplier": 2})  # one group, one check
    assert switched.snn_train.dp == DPSettings(noise_multiplier=2.0)
    assert with_overrides(on, {"snn_train.dp": {"noise_multiplier": 0.5}}).snn_train.dp == DPSettings(noise_multiplier=0.5)  # a whole group anew
    free = resolve("digits", overrides={"snn_train.weight_decay": 0.01, "snn_train.dropout": 0.2, "snn_train.early_stopping": 3})
    assert (free.snn_train.weight_decay, free.snn_train.dropout, free.snn_train.early_stopping) == (0.01, 0.2, 3)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"snn_train.dp.epsilon": 8, "snn_train.dp.noise_multiplier": 1.0}, "setting 'snn_train.dp.epsilon' is set together with noise_multiplier"),
    ({"snn_train.dp.max_grad_norm": 1.0}, "setting 'snn_train.dp.epsilon' is not set and neither is noise_multiplier"),
    ({"snn_train.dp.epsilon": 0}, "setting 'snn_train.dp.epsilon' is 0(\\.0)?: give a number above 0"),
    ({"snn_train.dp.noise_multiplier": -1}, "setting 'snn_train.dp.noise_multiplier' is -1(\\.0)?: give a number at least 0"),
    ({"snn_train.dp.epsilon": 8, "snn_train.dp.delta": 1}, "setting 'snn_train.dp.delta' is 1(\\.0)?: give a number in \\(0, 1\\)"),
    ({"snn_train.dp.epsilon": 8, "snn_train.dp.max_grad_norm": 0}, "setting 'snn_train.dp.max_grad_norm' is 0"),
    ({"snn_train.dp.epsilon": 8, "snn_train.dp.accountant": "gdp"}, "setting 'snn_train.dp.accountant' is 'gdp': choose one of 'rdp', 'prv'"),
    ({"snn_train.dp.epsilon": math.inf}, "setting 'snn_train.dp.epsilon' is inf: give a finite target epsilon"),
    ({"snn_train.dp.sigma": 1}, "unknown setting 'snn_train.dp.sigma'"),
    ({"snn_train.dp": 3}, "setting 'snn_train.dp' is a group of settings"),
    ({"evaluator_train.dp.epsilon": 8}, "setting 'evaluator_train.dp' cannot be set: evaluators judge the attacks"),
    ({"evaluator_train.dropout": 0.5}, "setting 'evaluator_train.dropout' cannot be set"),
    ({"snn_train.dropout": 1}, "setting 'snn_train.dropout' is 1(\\.0)?: give a number in \\[0, 1\\)"),
    ({"ann_train.weight_decay": -0.1}, "setting 'ann_train.weight_decay' is -0.1: give a number at least 0"),
    ({"snn_train.early_stopping": 0}, "setting 'snn_train.early_stopping' is 0: give a whole number at least 1"),
])
def test_bad_defence_settings_are_one_line_errors(overrides: dict, message: str) -> None:
    for check in (lambda: check_overrides(overrides), lambda: resolve("digits", overrides=overrides)):
        with pytest.raises(NmprivacyError, match=message) as err:
            check()
        assert "\n" not in str(err.value)


def test_defaults_leave_settings_json_and_cache_keys_as_before() -> None:
    """Settings added for the defences stay out of the JSON form (and so of every cache key) while off."""
    assert set(to_jsonable(TrainSettings())) == {"epochs", "batch_size", "lr", "grad_clip", "max_train_samples", "min_steps", "max_epochs"}
    on = to_jsonable(TrainSettings(dp=DPSettings(epsilon=8), dropout=0.1))
    assert on["dp"]["epsilon"] == 8.0 and on["dropout"] == 0.1 and "weight_decay" not in on


# --- training ---------------------------------------------------------------------------------

DP_KINDS = ["snn-lava", "snn-lava-conv", "snn-norse", "ann"]


def tiny_config(kind: str, splits: DatasetSplits):
    cfg = default_config(kind, splits.input_shape, splits.num_classes, "digits", hidden=8)
    if kind == "snn-lava-conv":
        cfg = replace(cfg, channels=(2, 3), kernels=(3, 3))
    return cfg


@pytest.mark.parametrize("kind", DP_KINDS)
def test_dp_training_records_the_accountants_epsilon(kind: str, digits: DatasetSplits) -> None:
    from nmprivacy.training import train_model

    dp = DPSettings(noise_multiplier=1.2, max_grad_norm=0.5, accountant="rdp")
    dropout = 0.2 if kind == "snn-lava" else 0.0  # DP-SGD and dropout together (snn-lava: on its sparse engine)
    settings = TrainSettings(epochs=2, batch_size=10, lr=1e-2, grad_clip=1.0, max_train_samples=40, dp=dp, dropout=dropout)
    model, report = train_model(kind, digits, tiny_config(kind, digits), settings, seed=0, steps=4, progress=False)
    rec = report.dp
    assert rec["steps"] == 2 * 4 and rec["sample_rate"] == 0.25 and rec["delta"] == 1 / 40 and rec["delta_rule"] == "1/N"
    assert rec["noise_multiplier"] == 1.2 and rec["max_grad_norm"] == 0.5 and rec["accountant"] == "rdp" and rec["epochs"] == 2
    assert rec["epsilon"] == pytest.approx(epsilon_for(1.2, 0.25, 8, 1 / 40, "rdp"), rel=1e-12) and 0 < rec["epsilon"] < math.inf
    assert report.defences["dp_sgd"] and len(report.val_accuracy) == 2
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())  # a plain model again
    assert all(getattr(p, "grad_sample", None) is None for p in model.parameters())
    if kind == "snn-lava":
        assert model.engine == report.engine == "sparse" and rec["per_sample_gradients"] == "engine"  # with dropout too
    json.dumps(to_jsonable(report), allow_nan=False)


def test_no_noise_records_infinite_epsilon_as_null_with_a_note(digits: DatasetSplits) -> None:
    from nmprivacy.training import train_model

    settings = TrainSettings(epochs=1, batch_size=20, max_train_samples=40, dp=DPSettings(noise_multiplier=0))
    _, report = train_model("ann", digits, tiny_config("ann", digits), settings, seed=0, progress=False)
    assert report.dp["epsilon"] is None and "infinite" in report.dp["note"]
    json.dumps(to_jsonable(report), allow_nan=False)


def test_evaluators_train_without_dp_or_dropout(digits: DatasetSplits) -> None:
    from nmprivacy.training import train_model

    cfg = default_config("evaluator", digits.input_shape, digits.num_classes, "digits")
    for settings in (TrainSettings(dp=DPSettings(epsilon=1)), TrainSettings(dropout=0.5)):
        with pytest.raises(NmprivacyError, match="'evaluator' is an evaluator: evaluators judge the attacks") as err:
            train_model("evaluator", digits, cfg, settings, seed=0, progress=False)
        assert "\n" not in str(err.value)


def test_weight_decay_is_adamw_and_shrinks_the_weights(digits: DatasetSplits) -> None:
    from nmprivacy.training import train_model

    settings = TrainSettings(epochs=2, batch_size=20, lr=1e-2, max_train_samples=100)
    norms, reports = {}, {}
    for wd in (0.0, 5.0):
        model, reports[wd] = train_model("ann", digits, tiny_config("ann", digits), replace(settings, weight_decay=wd), seed=0, progress=False)
        norms[wd] = float(model.net[1].weight.norm())
    assert reports[0.0].defences["optimizer"] == "Adam" and reports[5.0].defences["optimizer"] == "AdamW"
    assert norms[5.0] < 0.8 * norms[0.0], norms


@pytest.mark.parametrize("kind", DP_KINDS)
def test_dropout_acts_in_training_only(kind: str, digits: DatasetSplits) -> None:
    """Dropout (hooks; snn-lava: its sparse engine's masks) drops hidden activity in training mode,
    never in eval mode, and is gone after training."""
    from nmprivacy.models import build
    from nmprivacy.training import hidden_dropout, model_input

    torch.manual_seed(0)
    model = build(kind, tiny_config(kind, digits))
    gen = torch.Generator().manual_seed(0)
    x = model_input(model, digits.train.x[:6], 4, gen)
    model.eval()
    with torch.no_grad():
        plain = model(x)
        with hidden_dropout(model, 0.5, torch.Generator().manual_seed(1)) as fired:
            assert torch.equal(model(x), plain) and fired[0] == 0  # eval: unchanged
            model.train()
            dropped = model(x)
            assert fired[0] >= 1 and not torch.equal(dropped, plain)
    assert not any(m._forward_hooks for m in model.modules()) and getattr(model, "dropout_masks", None) is None
    model.train()
    with torch.no_grad():
        assert torch.equal(model(x), plain)  # hooks removed: training mode computes as before


def test_dropout_changes_training_and_is_recorded(digits: DatasetSplits) -> None:
    from nmprivacy.training import train_model

    settings = TrainSettings(epochs=1, batch_size=20, lr=1e-2, max_train_samples=60)
    cfg = tiny_config("snn-norse", digits)
    plain, _ = train_model("snn-norse", digits, cfg, settings, seed=0, steps=4, progress=False)
    dropped, report = train_model("snn-norse", digits, cfg, replace(settings, dropout=0.3), seed=0, steps=4, progress=False)
    assert not torch.equal(plain.fc1.weight, dropped.fc1.weight)
    assert report.defences["dropout"] == 0.3 and "hidden LIF spikes" in report.defences["dropout_on"]
    assert not any(m._forward_hooks for m in dropped.modules()) and not dropped.training


def test_snn_lava_trains_with_dropout_on_its_sparse_engine(digits: DatasetSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training forward of snn-lava with dropout runs on the sparse engine with a mask source
    (no fall-back to slayer's blocks), and dropout changes the trained weights."""
    from nmprivacy.models import sparse_cuba
    from nmprivacy.training import train_model

    calls: list[tuple[bool, bool]] = []  # (had a mask source, ran on the engine)
    run_stack = sparse_cuba.run_stack

    def counted(*args, **kwargs):
        result = run_stack(*args, **kwargs)
        calls.append((kwargs.get("dropout") is not None, result is not None))
        return result

    monkeypatch.setattr(sparse_cuba, "run_stack", counted)
    settings = TrainSettings(epochs=1, batch_size=20, lr=1e-2, max_train_samples=60)
    cfg = tiny_config("snn-lava", digits)
    plain, _ = train_model("snn-lava", digits, cfg, settings, seed=0, steps=4, progress=False)
    calls.clear()
    dropped, report = train_model("snn-lava", digits, cfg, replace(settings, dropout=0.3), seed=0, steps=4, progress=False)
    training = [ran for masked, ran in calls if masked]
    assert len(training) == 3 and all(training), calls  # 60 samples / batches of 20: 3 training forwards, all on the engine
    assert report.engine == "sparse" and report.defences["dropout"] == 0.3
    assert not torch.equal(plain.blocks[0].synapse.weight, dropped.blocks[0].synapse.weight)
    assert dropped.dropout_masks is None and not any(m._forward_hooks for m in dropped.modules())


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_epoch(digits: DatasetSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scripted validation accuracies 0.5, 0.7, 0.6, 0.6, ...: patience 2 stops after epoch 4 of
    10 and returns epoch 2's weights (those of a 2-epoch run); DP-SGD accounts the 4 epochs run."""
    from nmprivacy import training

    script = iter([0.5, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6])
    monkeypatch.setattr(training, "evaluate_accuracy", lambda *a, **k: next(script))
    dp = DPSettings(noise_multiplier=1.0, accountant="rdp")
    settings = TrainSettings(epochs=10, batch_size=20, lr=1e-2, max_train_samples=60, dp=dp, early_stopping=2)
    cfg = tiny_config("ann", digits)
    model, report = training.train_model("ann", digits, cfg, settings, seed=0, progress=False)
    assert report.val_accuracy == (0.5, 0.7, 0.6, 0.6) and report.final_val_accuracy == 0.7
    stop = report.defences["early_stopping"]
    assert stop["stopped_early"] and stop["epochs_run"] == 4 and stop["epoch_budget"] == 10 and stop["best_epoch"] == 2 and stop["restored_best"]
    assert "test split" in stop["monitor"]
    assert report.dp["steps"] == 4 * 3 and report.dp["epsilon"] == pytest.approx(epsilon_for(1.0, 1 / 3, 12, 1 / 60, "rdp"), rel=1e-12)
    script = iter([0.5, 0.7])
    two, _ = training.train_model("ann", digits, cfg, replace(settings, epochs=2, early_stopping=None), seed=0, progress=False)
    # the same seed draws the same batches and noise: the kept weights are those after epoch 2
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), two.state_dict().values()))


def test_dp_models_are_cached_apart_and_records_keep_epsilon(digits: DatasetSplits, tmp_path: Path) -> None:
    from nmprivacy.trained import train_or_load

    small = replace(digits, train=Split(digits.train.x[:60], digits.train.y[:60]))
    plain = resolve("digits", "quick", hidden=8, overrides={"ann_train.epochs": 1})
    private = with_overrides(plain, {"ann_train.dp.noise_multiplier": 1.0, "ann_train.dp.accountant": "rdp"})
    a = train_or_load("ann", small, plain, 0, None, tmp_path, "quick")
    b = train_or_load("ann", small, private, 0, None, tmp_path, "quick")
    assert a.record["checkpoint"] != b.record["checkpoint"] and a.record["dp"] is None
    assert b.record["dp"]["epsilon"] == pytest.approx(epsilon_for(1.0, 1.0, 1, 1 / 60, "rdp"), rel=1e-12)
    again = train_or_load("ann", small, private, 0, None, tmp_path, "quick")
    assert again.record["cached"] and again.record["checkpoint"] == b.record["checkpoint"] and again.record["dp"] == b.record["dp"]
    run = json.loads((Path(b.record["checkpoint"]) / "run.json").read_text())
    assert run["train_report"]["dp"] == b.record["dp"] and run["train_report"]["settings"]["dp"]["noise_multiplier"] == 1.0


# --- every entry point ------------------------------------------------------------------------


def test_cli_train_records_epsilon(tmp_path: Path) -> None:
    from nmprivacy.cli import main
    from nmprivacy.models.checkpoint import load_info

    out = tmp_path / "ck"
    assert main(["train", "--dataset", "digits", "--model", "snn-lava", "--quick", "--hidden", "16", "--steps", "5", "--limit-train", "100",
                 "--set", "snn_train.dp.epsilon=8", "--set", "snn_train.dp.accountant=rdp", "--no-progress", "--out", str(out)]) == 0
    info = load_info(out)
    dp = info["report"]["dp"]
    assert info["overrides"]["snn_train.dp.epsilon"] == 8 and dp["target_epsilon"] == 8.0
    assert 8.0 - 0.1 <= dp["epsilon"] <= 8.0 + 1e-9 and dp["steps"] == 1 and dp["sample_rate"] == 1.0
    assert dp["epsilon"] == pytest.approx(epsilon_for(dp["noise_multiplier"], 1.0, 1, 1 / 100, "rdp"), rel=1e-12)

    # the checkpoint and its NetX export declare the privacy spent; a loaded target's report says so, marked as declared
    from nmprivacy.defence_text import model_defence_lines
    from nmprivacy.targets import load_target

    assert main(["export", "--model", str(out), "--out", str(tmp_path / "ck.net")]) == 0
    assert main(["export", "--model", str(out), "--out", str(tmp_path / "ck.nir")]) == 0
    for source in (out, tmp_path / "ck.net", tmp_path / "ck.nir"):
        training = load_target(str(source)).meta["training"]
        assert training["dp"] == dp and "defences" not in training
        (line,) = model_defence_lines("target SNN", {**training, "training_declared": True})
        assert line.startswith(f"- target SNN: DP-SGD, ε = {dp['epsilon']:.2f}") and line.endswith("(declared by its file or checkpoint, not verified)")


def test_declared_training_takes_only_well_formed_records() -> None:
    """What a file says of its training is shown only in the form nmprivacy writes it (a foreign file's metadata may be anything)."""
    from nmprivacy.targets import declared_training

    dp = {"epsilon": 8.0, "delta": 1e-3, "noise_multiplier": 0.5, "max_grad_norm": 1.0, "sample_rate": 0.1, "steps": 15, "accountant": "prv"}
    stop = {"patience": 2, "epochs_run": 5, "epoch_budget": 20, "best_epoch": 3}
    assert declared_training({"dp": dp}) == {"dp": dp}
    assert declared_training(json.dumps({"dp": dp})) == {"dp": dp}  # a NIR graph's metadata holds it as JSON text
    assert declared_training({"dp": None, "defences": {"weight_decay": 0.01, "early_stopping": stop}}) == {"dp": None, "defences": {"weight_decay": 0.01, "early_stopping": stop}}
    assert declared_training({"dp": {**dp, "epsilon": None}})["dp"]["epsilon"] is None  # noise 0: ε infinite, written as null
    for bad in (None, "DP", {"dp": None}, {"dp": {**dp, "epsilon": "8"}}, {"dp": {**dp, "steps": float("nan")}}, {"dp": {k: v for k, v in dp.items() if k != "accountant"}},
                {"defences": {"dropout": "0.3"}}, {"defences": {"early_stopping": {"patience": 2}}}, {"defences": []}):
        assert declared_training(bad) is None, bad


def test_cli_audit_records_epsilon_of_the_target_only(tmp_path: Path) -> None:
    from nmprivacy.cli import main

    out = tmp_path / "audit"
    assert main(["audit", "--dataset", "digits", "--quick", "--set", "hidden=16", "--evaluators", "1", "--variant", "default", "--attacks", "bl-v1", "--limit-train", "100",
                 "--set", "snn_train.dp.noise_multiplier=1.0", "--set", "snn_train.dp.accountant=rdp", "--no-progress",
                 "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    models = json.loads((out / "results.json").read_text())["models"]
    assert models["target"]["dp"]["epsilon"] == pytest.approx(epsilon_for(1.0, 1.0, 1, 1 / 100, "rdp"), rel=1e-12)
    assert [e["dp"] for e in models["evaluators"]] == [None]


def test_cli_mia_records_epsilon_of_every_reference(tmp_path: Path) -> None:
    from nmprivacy.cli import main

    out = tmp_path / "mia"
    assert main(["mia", "--dataset", "digits", "--target", "ann", "--quick", "--hidden", "8", "--attacks", "loss", "--workers", "0",
                 "--bootstrap", "0", "--limit-train", "60", "--limit-test", "20", "--set", "ann_train.dp.noise_multiplier=1.0",
                 "--set", "ann_train.dp.accountant=rdp", "--no-progress", "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    refs = json.loads((out / "mia.json").read_text())["reference_models"]
    assert len(refs) == 4 and all(0 < r["dp"]["epsilon"] < math.inf and r["dp"]["noise_multiplier"] == 1.0 for r in refs)


def test_study_varies_dp_by_dotted_name(tmp_path: Path) -> None:
    """A study factor over ``snn_train.dp`` (off, or a group) and over ``snn_train.dp.epsilon``
    gives distinct cells that need distinct models; a one-cell study records the target's epsilon."""
    from nmprivacy.cli import main
    from nmprivacy.study import build_spec, expand

    spec = build_spec({"dataset": "digits", "budget": "quick", "grids": [
        {"name": "off or on", "factors": {"snn_train.dp": [None, {"epsilon": 8}]}},
        {"name": "budget", "factors": {"snn_train.dp.epsilon": [1, 8]}},
    ]})
    cells = expand(spec)
    assert len(cells) == 4 and len({c.key for _, c in cells}) == 3 and len({c.group for _, c in cells}) == 3  # {epsilon: 8} == epsilon 8
    out = tmp_path / "study"
    assert main(["study", "--quick", "--dataset", "digits", "--hidden", "16", "--evaluators", "1", "--seeds", "1", "--attacks", "bl-v1",
                 "--limit-train", "100", "--factor", "snn_train.dp.noise_multiplier=1.0", "--set", "snn_train.dp.accountant=rdp",
                 "--set", "ann_baseline=false", "--workers", "1", "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    (cell,) = json.loads((out / "study.json").read_text())["cells"]
    results = json.loads((out / cell["folder"] / "results.json").read_text())
    assert results["models"]["target"]["dp"]["epsilon"] == pytest.approx(epsilon_for(1.0, 1.0, 1, 1 / 100, "rdp"), rel=1e-12)
