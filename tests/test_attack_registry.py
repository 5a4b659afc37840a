"""An attack is one module plus one registry line: a toy attack registered only through
``$NMPRIVACY_ATTACKS`` runs from ``attack``, ``audit --attacks`` and ``study`` by its name alone,
and its settings are reachable (and checked) by ``--set``. Also: every registered attack is
reachable from the CLI, the audit and the study by its name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nmprivacy.cli import main

PLUGINS = Path(__file__).resolve().parent / "plugins"


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> str:
    """The toy attack registered by one entry; its module importable here and in Dask workers."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("NMPRIVACY_ATTACKS", "toy=toy_attack:ToyAttack")
    return "toy"


def test_every_registered_attack_is_reachable_by_name() -> None:
    from nmprivacy.attacks import ATTACKS, attack_infos
    from nmprivacy.audit import AuditConfig, attack_plan
    from nmprivacy.cli import build_parser
    from nmprivacy.presets import preset_for
    from nmprivacy.study.spec import build_spec

    attack_cli = build_parser()._subparsers._group_actions[0].choices["attack"]  # type: ignore[union-attr]
    choices = next(a.choices for a in attack_cli._actions if a.dest == "attack")
    assert tuple(choices) == tuple(ATTACKS)
    for name, info in attack_infos().items():
        assert [n for n, _, _ in attack_plan(preset_for("digits"), info.domain if info.model == "target" else "image",
                                                 AuditConfig(attacks=(name,), variant="default"))] == [name]
        assert build_spec({"grids": [{"factors": {"seed": [0]}}], "attacks": [name]}).attacks == (name,)
        assert isinstance(preset_for("digits").group(info.settings), info.settings_type)


def test_a_toy_attack_runs_everywhere_from_one_registry_line(toy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nmprivacy.presets import resolve

    assert resolve("digits", overrides={"toy.density": 0.5}).toy.density == 0.5  # its settings are a preset group
    common = ["--dataset", "digits", "--quick", "--set", "hidden=16", "--evaluators", "1"]
    ckpt = tmp_path / "target"
    assert main(["train", "--dataset", "digits", "--model", "snn-lava", "--quick", "--hidden", "16", "--out", str(ckpt)]) == 0
    assert main(["attack", "--attack", toy, "--model", str(ckpt), "--set", "toy.density=0.3", "--out", str(tmp_path / "toy.pt")]) == 0
    summary = json.loads((tmp_path / "toy.json").read_text())
    assert summary["attack"] == "toy" and summary["config"]["density"] == 0.3

    assert main(["audit", *common, "--variant", "default", "--attacks", f"bl-v1,{toy}", "--out", str(tmp_path / "audit")]) == 0
    results = json.loads((tmp_path / "audit" / "results.json").read_text())
    assert set(results["attacks"]) == {"bl-v1", "toy"} and 0.0 <= results["attacks"]["toy"]["attack_acc"] <= 1.0

    assert main(["study", *common, "--seeds", "1", "--attacks", toy, "--factor", "toy.density=0.1,0.9", "--out", str(tmp_path / "study")]) == 0
    study = json.loads((tmp_path / "study" / "study.json").read_text())
    assert study["counts"]["done"] == 2 and all("toy" in c["attacks"] for c in study["cells"])
    assert "toy acc" in (tmp_path / "study" / "study.md").read_text()

    capsys.readouterr()
    assert main(["attack", "--attack", toy, "--model", str(ckpt), "--set", "toy.density=2", "--out", str(tmp_path / "bad.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: setting 'toy.density' is 2.0: give a number in [0, 1]"] and not (tmp_path / "bad.pt").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--attack", "bl-v2", "--iterations", "-1"], "error: setting 'bl_v2.iterations' is -1: give a whole number at least 1"),
    (["--attack", "bl-v2", "--set", "bl_v2.population=0"], "error: setting 'bl_v2.population' is 0: give a whole number at least 1"),
    (["--attack", "bl-v1", "--set", "bl_v1.mask=coin"], "error: setting 'bl_v1.mask' is 'coin': choose one of 'threshold', 'bernoulli'"),
    (["--attack", "bl-v1", "--queries", "10"], "error: --queries only apply to query attacks: drop it or use --attack bl-v2-query"),
])
def test_bad_attack_settings_are_one_line_before_any_work(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-model"  # the settings are refused before the model is even looked for
    assert main(["attack", *argv, "--dataset", "digits", "--model", str(missing), "--out", str(tmp_path / "x.pt")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]


def test_settings_from_the_api_check_themselves() -> None:
    from nmprivacy import presets
    from nmprivacy.errors import NmprivacyError

    with pytest.raises(NmprivacyError, match="setting 'variant' is 'papr': choose one of 'paper', 'reference'"):
        presets.BLv2Settings(variant="papr")
    with pytest.raises(NmprivacyError, match="setting 'accumulator' is 'adam'"):
        presets.BLv2Settings(accumulator="adam")
    with pytest.raises(NmprivacyError, match="unknown attack variant 'auto2'"):
        presets.resolve("digits", variant="auto2")


def test_study_and_audit_resolve_the_same_preset() -> None:
    from nmprivacy.presets import resolve
    from nmprivacy.study.spec import build_spec, resolve as cell_resolve

    spec = build_spec({"dataset": "fashion-mnist-saccade", "grids": [{"factors": {"bl_v2.lr": [0.3]}}]})
    for variant in ("default", "paper", "reference"):
        _, preset = cell_resolve(spec, {"target": "snn-lava", "variant": variant, "bl_v2.lr": 0.3, "hidden": 64})
        assert preset == resolve("fashion-mnist-saccade", "default", variant, 64, {"bl_v2.lr": 0.3})
    _, default_cell = cell_resolve(spec, {"target": "snn-lava", "variant": "default"})
    from nmprivacy.study.spec import cell_settings

    assert cell_settings(spec, spec.grids[0], {})["variant"] == "default"  # no variant named: the audit's default
    assert default_cell == resolve("fashion-mnist-saccade")
