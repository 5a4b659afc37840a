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
