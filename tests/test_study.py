"""``nmprivacy study``: a tiny grid (quick budget, digits, 2 cells x 2 seeds) on a local Dask
cluster, its table, and resuming: a completed cell folder is reused, a broken one recomputed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nmprivacy.cli import main
from nmprivacy.errors import NmprivacyError
from nmprivacy.lava_import import import_lava
from nmprivacy.presets import preset_for, with_overrides
from nmprivacy.study import build_spec, expand

import_lava()  # cli.main imports Lava, which must set the start method before any tqdm bar does

METRICS = ("attack_acc", "top3_acc", "avg_conf", "daa")


def study_args(out: Path, cache: Path) -> list[str]:
    return ["study", "--quick", "--dataset", "digits", "--hidden", "24", "--evaluators", "1", "--seeds", "2",
            "--factor", "bl_v2.keep=best,last", "--set", "ann_baseline=false", "--workers", "1",
            "--out", str(out), "--cache", str(cache)]


def cells_by_keep(study: dict) -> dict[str, dict]:
    return {c["settings"]["bl_v2.keep"]: c for c in study["cells"]}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("study")
    out, cache = root / "study", root / "cache"
    assert main(study_args(out, cache)) == 0
    return out, cache, json.loads((out / "study.json").read_text())


def test_study_runs_every_cell_as_an_audit(first_run: tuple[Path, Path, dict]) -> None:
    out, _, study = first_run
    assert study["counts"] == {"done": 2, "reused": 0, "failed": 0, "missing": 0}
    assert {"config", "versions", "machine", "timings_s", "command"} <= set(study) and study["cluster"]["scheduler"] == "local"
    by_keep = cells_by_keep(study)
    assert set(by_keep) == {"best", "last"}
    for keep, cell in by_keep.items():
        folder = out / cell["folder"]
        results = json.loads((folder / "results.json").read_text())
        record = json.loads((folder / "cell.json").read_text())
        assert record["key"] == cell["key"] and record["status"] == "done" and {"versions", "timings_s", "config"} <= set(record)
        assert "reusing cached" in (folder / "log.txt").read_text() or "training" in (folder / "log.txt").read_text()
        # the override reached the audit, and the study reports exactly the audit's numbers
        assert results["config"]["overrides"] == {"ann_baseline": False, "bl_v2.keep": keep}
        assert results["attacks"]["bl-v2"]["settings"]["keep"] == keep and set(results["attacks"]) == {"bl-v1", "bl-v2"}
        assert results["seeds"] == [0, 1]
        for attack in ("bl-v1", "bl-v2"):
            for m in METRICS:
                assert cell["attacks"][attack][m] == results["attacks"][attack][m]
                assert cell["attacks"][attack][f"{m}_std"] == results["attacks"][attack][f"{m}_std"]
            confs = [s["target_confidence"] for s in results["attacks"][attack]["per_seed"]]
            assert cell["attacks"][attack]["target_confidence"] == pytest.approx(sum(confs) / 2)
    # BL-v1 does not depend on BL-v2's keep: same numbers in both cells
    assert by_keep["best"]["attacks"]["bl-v1"] == by_keep["last"]["attacks"]["bl-v1"]
    md = (out / "study.md").read_text()
    assert "| bl_v2.keep | bl-v1 acc |" in md and "## Factor effects" in md and by_keep["last"]["key"] in md
    assert (out / "study.png").stat().st_size > 5000
    effects = [e for e in study["effects"] if e["factor"] == "bl_v2.keep"]
    assert {e["attack"] for e in effects} == {"bl-v1", "bl-v2"} and all(e["levels"] == ["best", "last"] for e in effects)


def test_completed_cell_is_reused_and_broken_cell_recomputed(first_run: tuple[Path, Path, dict], tmp_path: Path) -> None:
    out, cache, study = first_run
    by_keep = cells_by_keep(study)
    again = tmp_path / "again"
    # an interrupted study: one cell complete (with a marker value no run produces), one broken
    done, broken = by_keep["best"], by_keep["last"]
    shutil.copytree(out / done["folder"], again / done["folder"])
    results = json.loads((again / done["folder"] / "results.json").read_text())
    results["attacks"]["bl-v1"]["attack_acc"] = 0.123456
    (again / done["folder"] / "results.json").write_text(json.dumps(results))
    shutil.copytree(out / broken["folder"], again / broken["folder"])
    text = (again / broken["folder"] / "results.json").read_text()
    (again / broken["folder"] / "results.json").write_text(text[: len(text) // 2])  # cut short
    assert main(study_args(again, cache)) == 0
    study2 = json.loads((again / "study.json").read_text())
    assert study2["counts"] == {"done": 1, "reused": 1, "failed": 0, "missing": 0}
    by_keep2 = cells_by_keep(study2)
    assert by_keep2["best"]["status"] == "reused" and by_keep2["best"]["attacks"]["bl-v1"]["attack_acc"] == 0.123456
    assert by_keep2["last"]["status"] == "done"
    recomputed = json.loads((again / broken["folder"] / "results.json").read_text())
    assert recomputed["attacks"]["bl-v2"]["per_seed"] == json.loads((out / broken["folder"] / "results.json").read_text())["attacks"]["bl-v2"]["per_seed"]
    assert not [p for p in again.joinpath("cells").iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_cells_shared_by_grids_run_once_and_group_by_trained_models() -> None:
    spec = build_spec({"dataset": "digits", "budget": "quick", "seeds": 3, "grids": [
        {"name": "a", "factors": {"bl_v2.lr": [1.0, 0.1]}},
        {"name": "b", "factors": {"bl_v1.mask": ["threshold", "bernoulli"], "variant": ["default"]}},
        {"name": "c", "factors": {"snn_train.epochs": [1, 2]}},
    ]})
    cells = expand(spec)
    keys = {(g.name, json.dumps(c.settings, sort_keys=True)): c.key for g, c in cells}
    # lr=1.0, mask=bernoulli (the default variant's on digits) and epochs=1 are the defaults: a cell
    # without a variant runs the same default variant as the audit
    assert len(cells) == 6 and len({c.key for _, c in cells}) == 4
    groups = {c.group for _, c in cells}
    assert len(groups) == 2  # only snn_train.epochs=2 needs another trained target
    assert len(set(keys.values())) == 4


def test_weight_precisions_share_a_group_and_the_widest_trains_first() -> None:
    """Cells that differ only in ``target_config.weight_bits`` wait for one another (a precision
    whose training is the same computation adopts the first's models: tests/test_weight_grid.py),
    and the widest precision of a group runs first, whatever the order of the levels."""
    from nmprivacy.study.run import training_order

    spec = build_spec({"dataset": "digits", "budget": "quick", "grids": [
        {"name": "bits", "factors": {"target_config.weight_bits": [2, 4, 8, 6]}},
        {"name": "T", "factors": {"steps": [7, 9]}},
    ]})
    cells = [c for _, c in expand(spec)]
    assert len({c.key for c in cells}) == 6 and len({c.group for c in cells[:4]}) == 1 and len({c.group for c in cells}) == 3
    order = training_order(cells)
    assert [c.settings.get("target_config.weight_bits") for c in order[:4]] == [8, 6, 4, 2]
    assert order[4:] == cells[4:]  # other groups keep their places
    assert [c.settings["steps"] for c in training_order(cells[4:] + cells[:4])[:2]] == [7, 9]


@pytest.mark.parametrize(("settings", "message"), [
    ({"bl_v2.lrr": 1.0}, "unknown setting 'bl_v2.lrr'"),
    ({"bl_v2.keep": "first"}, "choose one of 'best', 'last'"),
    ({"bl_v2.iterations": 2.5}, "type int"),
    ({"bl_v2": 1}, "group of settings"),
])
def test_bad_settings_are_one_line_errors(settings: dict, message: str) -> None:
    with pytest.raises(NmprivacyError, match=message):
        with_overrides(preset_for("digits"), settings)
    with pytest.raises(NmprivacyError, match=message):
        expand(build_spec({"dataset": "digits", "grids": [{"factors": {k: [v] for k, v in settings.items()}}]}))


def test_study_cli_refuses_bad_specs_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: digits\ngrids: []\n")
    assert main(["study", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert main(["study", str(tmp_path / "missing.yaml")]) == 2
    assert main(["study", "--factor", "bl_v2.lr", "--out", str(tmp_path / "o")]) == 2
    bad.write_text("dataset: digits\ncolour: red\ngrids: [{factors: {bl_v2.lr: [1.0]}}]\n")
    assert main(["study", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)
    assert "no grids" in err[0] and "not found" in err[1] and "NAME=VALUE" in err[2] and "unknown keys ['colour']" in err[3]
    assert not (tmp_path / "o").exists()


def test_dt_is_an_audit_setting_of_a_cell() -> None:
    """``dt`` (a network file's time step) reaches the cell's audit and its key; a bad one is one line."""
    cells = expand(build_spec({"dataset": "digits", "grids": [{"factors": {"dt": [1e-3, 1e-4]}}]}))
    assert [c.settings["dt"] for _, c in cells] == [1e-3, 1e-4]
    assert len({c.key for _, c in cells}) == 2
    from nmprivacy.study.run import audit_config
    assert audit_config(build_spec({"dataset": "digits", "grids": [{"factors": {"dt": [1e-4]}}]}), cells[1][1], Path("x"), 1).dt == 1e-4
    with pytest.raises(NmprivacyError, match="setting 'dt' is 0"):
        expand(build_spec({"dataset": "digits", "grids": [{"factors": {"dt": [0]}}]}))


def test_exponent_numbers_are_floats_on_the_command_line_and_in_specs(tmp_path: Path) -> None:
    """``1e-4`` is a number (PyYAML alone reads it as a string), in ``--set`` and in a spec file."""
    from nmprivacy.study.spec import load_spec, parse_assignment

    assert parse_assignment("dt=1e-4", many=False) == ("dt", 1e-4)
    assert parse_assignment("bl_v2.lr=1e-3,0.1", many=True) == ("bl_v2.lr", [1e-3, 0.1])
    spec = tmp_path / "s.yaml"
    spec.write_text("dataset: digits\ngrids:\n  - factors: {bl_v2.lr: [1e-3, 1E-2]}\n", encoding="utf-8")
    assert [c.settings["bl_v2.lr"] for _, c in expand(build_spec(load_spec(str(spec))))] == [1e-3, 1e-2]


LAVA_IN_A_SPAWN_PROCESS = """
import multiprocessing
from nmprivacy.errors import NmprivacyError
from nmprivacy.lava_import import import_lava, use_fork_for_lava
multiprocessing.set_start_method("spawn")  # as a Dask worker has it
try:
    import_lava()
    print("imported at once")
except NmprivacyError:
    use_fork_for_lava()
    import_lava()
    print("refused, then imported")
"""


def test_a_spawn_worker_can_import_lava_for_netx_cells() -> None:
    """A process whose start method is 'spawn' (a Dask worker's) cannot import Lava as it is,
    and can after ``use_fork_for_lava`` (what every study cell calls first)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LAVA_IN_A_SPAWN_PROCESS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "refused, then imported"


def test_privacy_utility_front() -> None:
    from nmprivacy.study.table import pareto_front, privacy_utility

    assert pareto_front([(0.9, 0.5), (0.8, 0.2), (0.85, 0.6), (0.8, 0.2), (0.7, 0.1)]) == [True, True, False, True, True]
    rows = [{"key": k, "settings": {"x": k}, "models": {"target": {"val_acc": acc}}, "attacks": {"bl-v2": {"attack_acc": leak}},
             "membership": {"lira": {"auc": auc, "tpr_at_1pct_fpr": 0.01}}} for k, acc, leak, auc in
            [("a", 0.9, 1.0, 0.6), ("b", 0.8, 0.5, 0.7), ("c", 0.7, 0.6, 0.5)]]
    front = privacy_utility(rows)
    assert set(front) == {"bl-v2 attack_acc", "lira auc", "lira tpr_at_1pct_fpr"}
    assert front["bl-v2 attack_acc"]["front"] == [True, True, False] and front["lira auc"]["front"] == [True, False, True]


def keys_before_seed_settings(spec) -> list[tuple[str, str]]:
    """(key, group) of each cell of ``spec`` by the formula of ``expand`` before a cell could set
    ``seed`` (the spec's seed in both hashes): the keys of the cells of every study run so far."""
    from nmprivacy.attacks import attack_infos
    from nmprivacy.cache import cache_key
    from nmprivacy.runinfo import to_jsonable
    from nmprivacy.study.spec import resolve

    fields_of = {name: info.settings for name, info in attack_infos().items()}
    out = []
    for _, cell in expand(spec):
        audit, preset = resolve(spec, cell.settings)
        resolved = to_jsonable(preset)
        attacks = resolved.pop("attacks")
        used = {fields_of[a]: attacks[fields_of[a]] for a in spec.attacks if a in fields_of}
        old = {"dataset": spec.dataset, "data_options": spec.data_options, "budget": spec.budget, "evaluators": spec.evaluators,
               "seed": spec.seed, "target": audit["target"], "hidden": audit.get("hidden"), "dt": audit.get("dt")}
        refs = {"references": audit["references"]} if audit.get("references") is not None else {}
        out.append((cache_key(**old, **refs, seeds=spec.seeds, variant=audit["variant"], attacks=spec.attacks, preset={**resolved, "attacks": used})[:12],
                    cache_key(**old, models=resolved)))
    return out


def test_cells_without_a_seed_setting_keep_their_keys() -> None:
    """Finished studies are reused: a cell that does not set ``seed`` has the key and model group
    it had before cells could set one; a cell that sets the spec's seed is that same audit."""
    spec = build_spec({"dataset": "digits", "budget": "quick", "seed": 5, "attacks": ["bl-v1", "lira"], "base": {"references": 4}, "grids": [
        {"name": "a", "factors": {"bl_v2.lr": [1.0, 0.1], "snn_train.epochs": [1, 2]}},
        {"name": "b", "factors": {"variant": ["default", "paper"]}, "base": {"hidden": 24}},
    ]})
    cells = expand(spec)
    assert [(c.key, c.group) for _, c in cells] == keys_before_seed_settings(spec)
    same = expand(build_spec({"dataset": "digits", "budget": "quick", "seed": 5, "attacks": ["bl-v1", "lira"], "base": {"references": 4},
                              "training_seeds": [5, 6], "grids": [{"factors": {"bl_v2.lr": [1.0, 0.1], "snn_train.epochs": [1, 2]}}]}))
    assert [(c.key, c.group) for _, c in same if c.settings["seed"] == 5] == [(c.key, c.group) for _, c in cells[:4]]


def test_a_seed_factor_gives_each_cell_its_own_training_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``seed`` is an audit setting: a factor over it gives cells of distinct keys and model
    groups whose audits run with those seeds; ``training_seeds`` adds it to every grid."""
    from nmprivacy.study.run import audit_config
    from nmprivacy.study.spec import parse_assignment

    spec = build_spec({"dataset": "digits", "seed": 7, "grids": [{"factors": {"seed": [0, 1]}}]})
    cells = [c for _, c in expand(spec)]
    assert len({c.key for c in cells}) == 2 and len({c.group for c in cells}) == 2
    assert [audit_config(spec, c, tmp_path, 1).seed for c in cells] == [0, 1]
    assert "seed" not in audit_config(spec, cells[0], tmp_path, 1).overrides
    seedless = build_spec({"dataset": "digits", "seed": 7, "grids": [{"factors": {"bl_v2.lr": [0.1]}}]})
    assert audit_config(seedless, expand(seedless)[0][1], tmp_path, 1).seed == 7  # the spec's seed when the cell sets none

    replicated = build_spec({"dataset": "digits", "training_seeds": [0, 1, 2], "grids": [
        {"name": "lr", "factors": {"bl_v2.lr": [1.0, 0.1]}}, {"name": "own", "factors": {"seed": [4]}}]})
    by_grid: dict[str, list] = {}
    for g, c in expand(replicated):
        by_grid.setdefault(g.name, []).append((c.settings.get("bl_v2.lr"), c.settings["seed"]))
    assert by_grid == {"lr": [(1.0, 0), (1.0, 1), (1.0, 2), (0.1, 0), (0.1, 1), (0.1, 2)], "own": [(None, 4)]}

    assert parse_assignment("seed=0,1,2", many=True) == ("seed", [0, 1, 2])
    capsys.readouterr()
    assert main(["study", "--dataset", "digits", "--factor", "bl_v2.lr=1.0,0.1", "--training-seeds", "0,1", "--list", "--out", str(tmp_path / "o")]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("study: 4 cells, 0 already done") and listed.count("to run  ") == 4
    assert listed.count("seed=0") == 2 and listed.count("seed=1") == 2 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("seed", [-1, "a", 1.5, True, None])
def test_a_bad_seed_setting_is_one_line(seed: object) -> None:
    with pytest.raises(NmprivacyError, match="setting 'seed' is .*: give the cell's training seed, a whole number of at least 0") as caught:
        expand(build_spec({"dataset": "digits", "grids": [{"factors": {"seed": [0, seed]}}]}))
    assert "\n" not in str(caught.value)


def test_bad_seeds_on_the_command_line_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--dataset", "digits", "--list", "--out", str(tmp_path / "o")]
    capsys.readouterr()
    assert main(["study", "--factor", "seed=-1", *out]) == 2
    assert main(["study", "--factor", "bl_v2.lr=0.1", "--training-seeds", "0,a", *out]) == 2
    assert main(["study", "--factor", "bl_v2.lr=0.1", "--training-seeds", "1,1", *out]) == 2
    spec = tmp_path / "s.yaml"
    spec.write_text("dataset: digits\ntraining_seeds: 3\ngrids: [{factors: {bl_v2.lr: [0.1]}}]\n", encoding="utf-8")
    assert main(["study", str(spec), *out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: setting 'seed' is -1: give the cell's training seed, a whole number of at least 0",
                   "error: setting 'seed' is 'a': give the cell's training seed, a whole number of at least 0",
                   "error: --training-seeds needs distinct levels, got [1, 1]",
                   "error: study spec's training_seeds is 3: give a list of seeds, e.g. [0, 1, 2]"]


def fake_results(acc: float, leak: float, auc: float, epsilon: float | None) -> dict:
    """A results.json with what the study table reads: target (with ε), ANN, one evaluator,
    BL-v2 (every metric ``leak``, a std of 0.01 over attack seeds) and LiRA."""
    attack = {**{m: leak for m in METRICS}, **{f"{m}_std": 0.01 for m in METRICS}, "target_confidence": 0.9,
              "per_seed": [{"target_confidence": 0.9}] * 2, "iterations": 10, "valid": True}
    return {"models": {"target": {"kind": "snn-lava", "val_acc": acc, "reset": "zero", "dp": {"epsilon": epsilon}},
                       "ann": {"kind": "ann", "val_acc": acc - 0.1}, "evaluators": [{"kind": "cnn", "val_acc": 0.95}]},
            "attacks": {"bl-v2": attack}, "membership": {"attacks": {"lira": {"auc": auc, "tpr_at_fpr": {"0.01": auc / 10}}}}}


def test_replicates_are_pooled_into_mean_and_std_rows(tmp_path: Path) -> None:
    """Cells that differ only in ``seed`` make one row of every table (mean ± std over them, n);
    a cell without replicates keeps its numbers; study.json keeps the raw cells beside."""
    from statistics import stdev

    from nmprivacy.study.run import plan
    from nmprivacy.study.table import write_study

    spec = build_spec({"dataset": "digits", "attacks": ["bl-v2", "lira"], "grids": [
        {"name": "seeds", "factors": {"snn_train.epochs": [1], "seed": [0, 1]}}, {"name": "single", "factors": {"snn_train.epochs": [2]}}]})
    cells, grids = plan(spec)
    folders = {c.key: tmp_path / "cells" / c.folder for c in cells}
    numbers = [(0.8, 0.4, 0.6, 4.0), (0.9, 0.6, 0.7, 8.0), (0.7, 0.3, 0.55, None)]  # seed 0, seed 1, the single cell
    for c, n in zip(cells, numbers):
        folders[c.key].mkdir(parents=True)
        (folders[c.key] / "results.json").write_text(json.dumps(fake_results(*n)))
    study = write_study(tmp_path, spec, cells, grids, folders, {c.key: {"status": "done", "seconds": 1.0} for c in cells},
                        {"scheduler": "local", "workers": 1, "threads": 1}, {})
    assert [c["models"]["target"]["val_acc"] for c in study["cells"]] == [0.8, 0.9, 0.7]  # the raw cells stay
    pooled, single = study["replicates"]
    assert pooled["n"] == 2 and pooled["seeds"] == [0, 1] and pooled["cells"] == [c.key for c in cells[:2]] and "seed" not in pooled["settings"]
    target, bl_v2, lira = pooled["models"]["target"], pooled["attacks"]["bl-v2"], pooled["membership"]["lira"]
    assert (target["val_acc"], target["val_acc_std"]) == (pytest.approx(0.85), pytest.approx(stdev([0.8, 0.9])))
    assert (target["epsilon"], target["epsilon_std"]) == (pytest.approx(6.0), pytest.approx(stdev([4.0, 8.0])))
    assert pooled["models"]["ann"]["val_acc"] == pytest.approx(0.75)
    for m in (*METRICS, "target_confidence"):  # the std over training seeds, not the cells' std over attack seeds
        assert (bl_v2[m], bl_v2[f"{m}_std"]) == (pytest.approx({"target_confidence": 0.9}.get(m, 0.5)), pytest.approx(0.0 if m == "target_confidence" else stdev([0.4, 0.6])))
    assert (lira["auc"], lira["auc_std"], lira["tpr_at_1pct_fpr"]) == (pytest.approx(0.65), pytest.approx(stdev([0.6, 0.7])), pytest.approx(0.065))
    assert single["n"] == 1 and single["key"] == cells[2].key
    assert {k: single[k] for k in ("models", "attacks", "membership")} == {k: study["cells"][2][k] for k in ("models", "attacks", "membership")}
    front = study["privacy_utility"]["bl-v2 attack_acc"]  # on the means: 85 % at 50 % leakage, 70 % at 30 %
    assert front["cells"] == [pooled["key"], single["key"]] and front["accuracy"] == [pytest.approx(0.85), 0.7] and front["front"] == [True, True]
    assert front["n"] == [2, 1] and front["accuracy_std"] == [pytest.approx(stdev([0.8, 0.9])), None]
    md = (tmp_path / "study.md").read_text()
    assert "| snn_train.epochs | n | test acc | ε | ANN acc | ANN ε | bl-v2 attack_acc |" in md
    assert "| 1 | 2 | 85.0 ± 7.1 | 6 ± 2.8 | 75.0 ± 7.1 | ∞ | 50.0 ± 14.1 ★ |" in md and "| 2 | 1 | 70.0 | ∞ | 60.0 | ∞ | 30.0 ★ |" in md
    assert "| snn_train.epochs | bl-v2 acc | top-3 | avg conf | DAA | target conf | lira auc | lira tpr_at_1pct_fpr | test acc | ε | ANN acc | ANN ε | n |" in md
    # grid "seeds": std over training seeds; grid "single": as without replicates (std over attack seeds, none for the models)
    assert f"| 1 | {' | '.join(['50.0 ± 14.1'] * 4)} | 90.0 ± 0.0 | 0.650 ± 0.071 | 6.5 ± 0.7 | 85.0 ± 7.1 | 6 ± 2.8 | 75.0 ± 7.1 | ∞ | 2 |" in md
    assert f"| 2 | {' | '.join(['30.0 ± 1.0'] * 4)} | 90.0 ± 0.0 | 0.550 | 5.5 | 70.0 | ∞ | 60.0 | ∞ | 1 |" in md


def test_a_silent_counts_cell_maps_its_membrane_check_as_its_own_measures(tmp_path: Path) -> None:
    """A cell whose membership ran on mostly silent counts carries the membrane cross-check
    (``silent_check``) into the map as ``<attack>[membrane]`` measures; a cell without it does not."""
    from nmprivacy.study.run import plan
    from nmprivacy.study.table import write_study

    spec = build_spec({"dataset": "digits", "attacks": ["bl-v2", "lira"], "grids": [{"name": "dp", "factors": {"snn_train.epochs": [1, 2]}}]})
    cells, grids = plan(spec)
    folders = {c.key: tmp_path / "cells" / c.folder for c in cells}
    silent = fake_results(0.7, 0.5, 0.5, 4.0)
    silent["membership"]["silent_check"] = {"threat": "membrane", "silent_output": 0.9,
                                            "attacks": {"lira": {"auc": 0.58, "tpr_at_fpr": {"0.01": 0.03, "0.001": 0.005}}}}
    for c, results in zip(cells, (silent, fake_results(0.9, 0.6, 0.55, None))):
        folders[c.key].mkdir(parents=True)
        (folders[c.key] / "results.json").write_text(json.dumps(results))
    study = write_study(tmp_path, spec, cells, grids, folders, {c.key: {"status": "done", "seconds": 1.0} for c in cells},
                        {"scheduler": "local", "workers": 1, "threads": 1}, {})
    first, second = study["cells"]
    assert first["membership"]["lira[membrane]"] == {"auc": 0.58, "tpr_at_1pct_fpr": 0.03, "tpr_at_0.1pct_fpr": 0.005}
    assert first["membership"]["lira"]["auc"] == 0.5 and "lira[membrane]" not in second["membership"]
    front = study["privacy_utility"]["lira[membrane] auc"]
    assert front["cells"] == [first["key"]] and front["accuracy"] == [pytest.approx(0.7)]
    assert "lira[membrane] auc" in (tmp_path / "study.md").read_text()
    # replicates of which only one had the check: their pooled row has no membrane measure, the rest pools
    from nmprivacy.study.table import leakage_of, replicate_row

    pooled = replicate_row([{**first, "seed": 0}, {**second, "seed": 1, "settings": first["settings"]}])
    assert pooled["membership"]["lira[membrane]"] is None and pooled["n"] == 2
    assert set(leakage_of(pooled)) == {"bl-v2 attack_acc", "lira auc", "lira tpr_at_1pct_fpr"}


def test_a_study_runs_on_a_nir_graph_with_events_and_maps_its_membership(tmp_path: Path, nmnist_sample: Path) -> None:
    """The combination a user brings: a NIR graph trained elsewhere, real N-MNIST events, inversion
    and membership in one cell. Its outputs are silent (the chain's read-out never fires on these
    recordings), so the cell carries the membrane cross-check into the map."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import networks

    root = tmp_path / "data" / "NMNIST"
    root.mkdir(parents=True)
    for split in ("Train", "Test"):  # the sample has test recordings only
        (root / split).symlink_to(nmnist_sample / "Test")
    graph = networks.nir_chain(tmp_path / "chain.nir", 2 * 34 * 34)
    out = tmp_path / "study"
    assert main(["study", "--target", str(graph), "--dataset", "nmnist", "--data-root", str(tmp_path / "data"),
                 "--option", "steps=20", "--option", "polarity=both", "--quick", "--seeds", "1", "--evaluators", "1",
                 "--attacks", "bl-v1,lira,rmia,loss", "--set", "references=4", "--factor", "bl_v1.eta=0.2",
                 "--workers", "1", "--no-progress", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    study = json.loads((out / "study.json").read_text())
    (cell,) = study["cells"]
    assert cell["status"] == "done" and set(cell["attacks"]) == {"bl-v1"}
    results = json.loads((out / cell["folder"] / "results.json").read_text())
    assert results["membership"]["target"]["silent_output"] > 0.5
    assert set(results["membership"]["membrane_check"]["attacks"]) == {"lira", "rmia", "loss"}
    assert {"lira", "rmia", "loss", "lira[membrane]", "rmia[membrane]", "loss[membrane]"} <= set(cell["membership"])
    assert "lira[membrane] auc" in study["privacy_utility"] and "lira[membrane] auc" in (out / "study.md").read_text()


def test_a_running_cells_log_shows_its_lines_as_they_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell's ``.log`` is line-buffered: a stage line the audit prints is in the file while the
    audit still runs (a block-buffered file showed nothing until the cell ended), and the file
    becomes the cell's ``log.txt``."""
    import nmprivacy.audit
    from nmprivacy.study.run import run_cell

    spec = build_spec({"dataset": "digits", "grids": [{"factors": {"dt": [1e-3]}}]})
    (_, cell), = expand(spec)
    folder = tmp_path / "cells" / cell.folder
    seen: list[str] = []

    def fake_audit(config) -> None:
        print(f"training snn-lava (seed {config.seed}) on digits")
        seen.append((tmp_path / "cells" / f".{cell.folder}.log").read_text())
        Path(config.out).mkdir(parents=True)

    monkeypatch.setattr(nmprivacy.audit, "run_audit", fake_audit)
    assert run_cell(spec, cell, str(folder), 1)["status"] == "done"
    assert seen == [f"training snn-lava (seed {cell_seed_of(spec, cell)}) on digits\n"]
    assert (folder / "log.txt").read_text() == seen[0]


def cell_seed_of(spec, cell) -> int:
    from nmprivacy.study.spec import cell_seed
    return cell_seed(spec, cell.settings)


@pytest.mark.parametrize("spec_file", sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_study_spec_expands_into_cells(spec_file: Path) -> None:
    """Each ``studies/*.yaml`` loads and every grid's settings resolve against its preset, so a misspelt
    setting or level fails here, not hours into a run (cells shared by grids, e.g. a baseline level, share a key)."""
    from nmprivacy.study.spec import load_spec

    spec = build_spec(load_spec(spec_file))
    cells = expand(spec)
    assert {grid.name for grid, _ in cells} == {grid.name for grid in spec.grids}
    assert all(len(cell.key) == 12 for _, cell in cells)
