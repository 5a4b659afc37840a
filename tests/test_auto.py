"""``bl-auto`` (nmprivacy.attacks.auto): its fixed members are the fixed attacks bit for bit, its
selection never reads an evaluator, its step rule halves on a plateau, and degenerate
reconstructions are flagged in every audit report instead of scoring low in silence."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from nmprivacy.attacks import get_attack
from nmprivacy.attacks.auto import BrainLeaksAuto, distinct_members, member_settings, select
from nmprivacy.attacks.blv1 import BrainLeaksV1
from nmprivacy.attacks.blv2 import BrainLeaksV2
from nmprivacy.attacks.state import BestSoFar
from nmprivacy.attacks.step_rule import HalvingStep
from nmprivacy.errors import NmprivacyError
from nmprivacy.evaluation.diagnostics import diagnose, flags_of
from nmprivacy.presets import BLAutoSettings

SHAPE, CLASSES, T = (1, 5, 6), [0, 1, 2, 3], 6


def lava_target():
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

    torch.manual_seed(0)
    return SNNLava(SNNLavaConfig(input_shape=SHAPE, num_classes=4, hidden=24, weight_scale=4, current_decay=0.25)).freeze()


SMALL = BLAutoSettings(adaptive_iterations=10, checkpoint=3, draws=4)


def test_members_are_the_fixed_attacks_bit_for_bit() -> None:
    model = lava_target()
    inv = get_attack("bl-auto", SMALL, steps=T).run(model, CLASSES, seed=3)
    fixed = [n for n in distinct_members(SMALL) if not n.endswith("adaptive")]
    assert {"bl-v1:default", "bl-v1:paper", "bl-v2:default", "bl-v2:reference", "bl-v2:paper"} <= set(fixed)
    for name in fixed:
        cls = BrainLeaksV1 if name.startswith("bl-v1") else BrainLeaksV2
        alone = cls(member_settings(SMALL, name), steps=T).run(lava_target(), CLASSES, seed=3)  # a fresh model and oracle
        member = inv.members[name].inversion
        assert torch.equal(member.reconstructions, alone.reconstructions), name
        assert (member.probabilities is None) == (alone.probabilities is None), name
        if alone.probabilities is not None:
            assert torch.equal(member.probabilities, alone.probabilities), name
        assert torch.equal(member.confidence_curve, alone.confidence_curve), name
    for k, winner in enumerate(inv.winners):  # each class is its winner's
        chosen = inv.members[winner].inversion
        assert torch.equal(inv.reconstructions[k], chosen.reconstructions[k])


def test_members_are_scored_by_the_targets_own_read_out() -> None:
    """The engine scores the members' candidates (fast path); replaying the same draws through
    ``model.probabilities`` gives the same confidences, bit for bit on a Loihi target."""
    from nmprivacy.attacks.auto import score_candidate

    model = lava_target()
    attack = get_attack("bl-auto", SMALL, steps=T)
    inv = attack.run(model, CLASSES, seed=2)
    assert hasattr(attack.oracle_for(model), "probabilities")  # the engine answered
    gen = torch.Generator().manual_seed(2 * 7919 + 17)  # the run's scoring stream, members in order
    for name, m in inv.members.items():
        conf, dens = score_candidate(model, m.candidate, torch.tensor(CLASSES), SMALL.draws, gen)
        assert torch.equal(conf, m.confidence), name
        assert torch.equal(dens, m.density), name
    assert any(float(m.confidence.max()) > 0.3 for m in inv.members.values())  # not a degenerate all-equal case


def test_selection_never_reads_an_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    import nmprivacy.evaluation.scoring as scoring

    def evaluator_used(*args: object, **kwargs: object) -> None:
        raise AssertionError("bl-auto's selection read an evaluator")

    for name in ("score", "confidence_matrix", "evaluator_input", "summarize"):
        monkeypatch.setattr(scoring, name, evaluator_used)
    assert list(inspect.signature(BrainLeaksAuto.run).parameters) == ["self", "model", "classes", "seed"]  # nothing to pass one in
    inv = get_attack("bl-auto", SMALL, steps=T).run(lava_target(), CLASSES, seed=0)
    assert len(inv.winners) == len(CLASSES)
    with pytest.raises(AssertionError, match="read an evaluator"):  # the guard does fire: reporting (summarise) may score, selection may not
        BrainLeaksAuto(SMALL, steps=T).summarise(inv, [object()], CLASSES, 0, T)


def test_selection_takes_the_most_confident_then_the_sparsest_or_the_domain_density() -> None:
    def member(conf: list[float], dens: list[float]) -> SimpleNamespace:
        return SimpleNamespace(confidence=torch.tensor(conf), density=torch.tensor(dens))

    members = {"a": member([0.90, 0.50, 0.3], [0.30, 0.30, 0.3]), "b": member([0.95, 0.49, 0.9], [0.20, 0.02, 0.01]),
               "c": member([0.80, 0.50, 0.2], [0.05, 0.10, 0.2]), "d": member([0.1, 0.5, 0.1], [0.9, 0.6, 0.9])}
    assert select(members, 0.02, None) == ["b", "a", "b"]  # class 0: b best; class 1: all within 0.02, a densest below saturation (d is not)
    assert select(members, 0.0, None) == ["b", "a", "b"]  # no margin: the most confident (class 1: a, c, d exactly tied)
    assert select(members, 0.02, 0.1) == ["b", "c", "b"]  # class 1: c's density is the domain's
    assert select({"d": members["d"]}, 0.02, None) == ["d", "d", "d"]  # a saturated candidate still wins when it is alone


def test_the_step_rule_halves_on_a_plateau_and_restarts() -> None:
    best = BestSoFar.start(torch.zeros(2, 3))
    rule = HalvingStep.start(2, 1.0)
    best.record(torch.tensor([0.2, 0.2]), torch.ones(2, 3))
    assert rule.check(best, 1e-3).tolist() == [False, False]  # first checkpoint: progress from nothing
    best.record(torch.tensor([0.5, 0.2]), torch.ones(2, 3))  # class 0 improves, class 1 plateaus
    assert rule.check(best, 1e-3).tolist() == [False, True] and rule.lr.tolist() == [1.0, 0.5]
    for _ in range(3):
        rule.check(best, 1e-3)
    assert rule.lr.tolist() == [0.125, 0.0625] and rule.halvings.tolist() == [3, 4]
    assert rule.converged(best, 1.0, 0.125, 0.999).tolist() == [False, True]


def test_the_adaptive_member_stops_on_convergence() -> None:
    """On a toy target whose confidence never moves (silent read-out) the step halves at every
    checkpoint and the member stops long before its iteration cap."""
    model = lava_target()
    with torch.no_grad():
        model.blocks[1].synapse.weight.zero_()  # the output layer never fires: every input scores the same
    settings = BLAutoSettings(members=("bl-v2:adaptive",), adaptive_iterations=60, checkpoint=2, draws=2)
    inv = get_attack("bl-auto", settings, steps=T).run(model, CLASSES, seed=0)
    adaptive = inv.members["bl-v2:adaptive"].inversion
    assert adaptive.iterations == 2 * 5  # the first check sees progress from nothing, then each halves: below 1/8 after the 5th
    assert all(h >= 3 for h in adaptive.config["halvings"])


def test_domain_prior_needs_the_domain_and_starts_there() -> None:
    settings = BLAutoSettings(members=("bl-v2:adaptive",), prior="domain", adaptive_iterations=2, draws=2)
    attack = get_attack("bl-auto", settings, steps=T)
    with pytest.raises(NmprivacyError, match="prior 'domain' needs the domain's mean spike density"):
        attack.run(lava_target(), CLASSES, seed=0)
    attack.prepare(SimpleNamespace(test=SimpleNamespace(x=torch.full((5, T, *SHAPE), 0.25))))
    inv = attack.run(lava_target(), CLASSES, seed=0)
    assert inv.domain_density == 0.25 and inv.members["bl-v2:adaptive"].inversion.config["init"] == 0.25


def test_degenerate_classes_are_flagged() -> None:
    assert flags_of(0.0, 0.1, 0.9, 0.1) == ["all-zero"]
    assert flags_of(0.7, 0.1, 0.9, 0.1) == ["saturated"]
    assert flags_of(0.1, 0.1, 0.15, 0.1) == ["target-unconvinced"]
    assert flags_of(0.1, 0.1, 0.9, 0.1) == []
    assert flags_of(0.01, 0.1, 0.9, 0.1) == ["too-sparse"]  # spikes, but a tenth of the data's density
    assert flags_of(0.03, 0.1, 0.9, 0.1) == []  # 0.3x the data's: judged
    x = torch.stack([torch.zeros(T, *SHAPE), torch.ones(T, *SHAPE), torch.full((T, *SHAPE), 0.1)])
    d = diagnose(x, torch.tensor([0.9, 0.9, 0.9]), [0, 1, 2], 0.1, 4)
    assert d["degenerate"] == {"0": ["all-zero"], "1": ["saturated"]} and d["per_class"][2]["flags"] == []


def test_audit_reports_auto_and_every_attacks_diagnostics(tmp_path: Path) -> None:
    from nmprivacy.cli import main

    out = tmp_path / "audit"
    assert main(["audit", "--dataset", "digits", "--quick", "--set", "hidden=16", "--evaluators", "1", "--attacks", "bl-v2,bl-auto",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    auto = results["attacks"]["bl-auto"]
    assert set(auto["winners"]) == {str(c) for c in range(10)} and set(auto["winners"].values()) <= set(BLAutoSettings().members)
    assert 0.0 <= auto["prior_alone"]["attack_acc"] <= 1.0 and auto["prior"] == "none"
    for name in ("bl-v2", "bl-auto"):
        d = results["attacks"][name]["diagnostics"]
        assert len(d["per_class"]) == 10 and 0.0 < d["data_density"] < 1.0
    report = (out / "report.md").read_text()
    assert "## Diagnostics" in report and "winning members" in report and "degenerate classes" in report
    assert "x one BL-v2 run" in report and "s per class" in report
    # every member is scored as the attack it is (the worst case counts them: test below)
    assert set(auto["parts"]) == set(distinct_members(BLAutoSettings())) and "each member alone" in report
    assert all(0.0 <= v["attack_acc"] <= 1.0 and 0.0 <= v["daa"] <= 1.0 for v in auto["parts"].values())


def test_the_worst_case_counts_an_ensembles_members_as_attacks() -> None:
    from nmprivacy.results import AttackResult, AuditResult

    def row(acc: float, daa: float, valid: bool = True, parts: dict | None = None) -> AttackResult:
        return AttackResult(scores={"attack_acc": acc, "daa": daa}, model="target", evaluator_kind="evaluator", iterations=1, seconds_per_iteration=0.0,
                            target_confidence=0.5, per_seed=[], settings={}, oracle=None, valid=valid, extra={"parts": parts} if parts else {})

    attacks = {"bl-v1": row(0.5, 0.6), "bl-auto": row(0.4, 0.7, parts={"bl-v1:reference": {"attack_acc": 0.8, "daa": 0.5}}),
               "bl-v2": row(0.9, 0.9, valid=False)}
    result = AuditResult(dataset="d", family="mnist", domain="image", classes=[], data_source="", budget="default", variant="default", seeds=[0],
                         steps=1, models={}, attacks=attacks, weak_models={})
    assert result.worst_case["attack_acc"] == {"value": 0.8, "attack": "bl-auto/bl-v1:reference"}  # a member alone
    assert result.worst_case["daa"] == {"value": 0.7, "attack": "bl-auto"}  # the invalid bl-v2 never counts


def test_auto_vs_fixed_headline_is_the_audits_worst_case_over_its_default_plan():
    """``benchmarks.auto_vs_fixed``: the headline column is the max over BL-v1/BL-v2 at the default variant, bl-auto
    and bl-auto's members alone (the audit's ``parts``), not over rows the audit does not score."""
    from benchmarks.auto_vs_fixed import Network, markdown, summary

    def res(v1, v2):
        return {"attacks": {"bl-v1": {"attack_acc": v1, "daa": v1}, "bl-v2": {"attack_acc": v2, "daa": v2, "seconds_per_iteration": 1.0, "iterations": 10}}}

    fixed = {"paper": res(0.9, 0.1), "reference": res(0.2, 0.3), "default": res(0.5, 0.6)}
    parts = {"bl-v1:default": {"attack_acc": 0.5, "daa": 0.5}, "bl-v2:reference": {"attack_acc": 0.3, "daa": 0.3}}  # a run whose members differ
    auto = {"models": {"target": {"val_acc": 0.9}}, "attacks": {"bl-auto": {"attack_acc": 0.4, "daa": 0.7, "seconds": 20.0, "parts": parts}}}
    row = summary(Network("n", "snn-lava", "digits-28"), fixed, auto)
    assert row["best"]["attack_acc"] == {"row": "bl-v1/paper", "mean": 0.9, "std": 0.0}
    assert row["headline"]["attack_acc"] == {"attack": "bl-v2/default", "mean": 0.6} and not row["headline_ge_best_attack_acc"]
    assert row["headline"]["daa"] == {"attack": "bl-auto", "mean": 0.7} and not row["auto_ge_best_daa"]
    assert "| 60.0 / 70.0 | no |" in markdown([row])
    # a run made before members were scored: its members are the fixed rows (bit-identical), so the headline reaches the best
    del auto["attacks"]["bl-auto"]["parts"]
    row = summary(Network("n", "snn-lava", "digits-28"), fixed, auto)
    assert row["headline"]["attack_acc"] == {"attack": "bl-auto/bl-v1:paper", "mean": 0.9} and row["headline_ge_best_attack_acc"]


def test_auto_vs_fixed_tabulates_study_cells_from_bl_autos_members(tmp_path: Path) -> None:
    """``benchmarks.auto_vs_fixed --studies``: each finished cell with bl-auto's ``parts`` is a network whose
    fixed rows are the members that are fixed variants (not ``bl-v2:adaptive``); a target shared by two cells counts once."""
    import json

    from benchmarks.auto_vs_fixed import main, study_rows

    def cell(study: str, key: str, checkpoint: str, auto: float, parts: dict[str, float]) -> None:
        folder = tmp_path / study / "cells" / f"cell-{key}"
        folder.mkdir(parents=True)
        (folder / "cell.json").write_text(json.dumps({"key": key, "settings": {"seed": 1, "target": "snn-lava", "references": 4}}))
        score = lambda v: {"attack_acc": v, "daa": v, "attack_acc_std": 0.0, "daa_std": 0.0}  # noqa: E731
        attacks = {"bl-v1": score(0.5), "bl-v2": {**score(0.4), "seconds_per_iteration": 0.1, "iterations": 10},
                   "bl-auto": {**score(auto), "seconds": 5.0, "parts": {k: score(v) for k, v in parts.items()}}}
        (folder / "results.json").write_text(json.dumps({"dataset": "digits", "models": {"target": {"val_acc": 0.9, "checkpoint": checkpoint}}, "attacks": attacks}))

    cell("a", "k1", "ck1", 0.6, {"bl-v1:default": 0.5, "bl-v2:paper": 0.7, "bl-v2:adaptive": 0.9})
    cell("b", "k2", "ck1", 0.6, {"bl-v1:default": 0.5})  # the same target in another study
    cell("b", "k3", "ck2", 0.8, {"bl-v1:default": 0.5, "bl-v2:adaptive": 0.9})
    rows = study_rows([tmp_path / "a", tmp_path / "b"])
    assert [r["target"] for r in rows] == ["study cell k1", "study cell k3"]
    assert rows[0]["best"]["attack_acc"]["row"] == "bl-v2/paper" and not rows[0]["auto_ge_best_attack_acc"]  # adaptive is no fixed row
    assert rows[0]["headline"]["attack_acc"] == {"attack": "bl-auto/bl-v2:adaptive", "mean": 0.9} and rows[0]["headline_ge_best_attack_acc"]
    assert rows[1]["auto_ge_best_attack_acc"] and rows[0]["network"] == "digits seed=1 snn-lava"
    assert main(["--out", str(tmp_path / "out"), "--studies", str(tmp_path / "a"), "--studies", str(tmp_path / "b")]) == 0
    assert "1/2 bl-auto >= best fixed attack_acc" in (tmp_path / "out" / "auto-vs-fixed.md").read_text()
    with pytest.raises(SystemExit, match="no finished study cell"):
        main(["--out", str(tmp_path / "out2"), "--studies", str(tmp_path / "nothing")])
    assert not (tmp_path / "out2").exists()
    with pytest.raises(SystemExit, match="runs nothing"):
        main(["--out", str(tmp_path / "out3"), "--studies", str(tmp_path / "a"), "--network", "snn-lava@digits"])
    assert not (tmp_path / "out3").exists()


def test_the_headline_carries_a_caution_when_most_of_its_classes_are_degenerate() -> None:
    from nmprivacy.report import degenerate_caution

    def attack(flagged: int) -> dict:
        per_class = [{"class": c, "flags": ["too-sparse"] if c < flagged else []} for c in range(4)]
        return {"diagnostics": {"per_class": per_class, "degenerate": {str(r["class"]): r["flags"] for r in per_class if r["flags"]}}}

    worst = {"attack_acc": {"value": 0.1, "attack": "bl-auto"}, "daa": {"value": 0.2, "attack": "bl-auto"}}
    assert "lower bound" in " ".join(degenerate_caution({"bl-auto": attack(2)}, worst))
    assert degenerate_caution({"bl-auto": attack(1)}, worst) == []
    # when another attack with sound reconstructions sets part of the headline, no caution
    mixed = {**worst, "daa": {"value": 0.9, "attack": "bl-v1"}}
    assert degenerate_caution({"bl-auto": attack(4), "bl-v1": attack(0)}, mixed) == []


def test_an_audit_runs_a_fixed_attack_once_when_its_ensemble_runs_it(tmp_path: Path) -> None:
    """With bl-auto in the plan, BL-v1 and BL-v2 at the members' settings are not run again: their
    rows are scored from the members' runs and equal, seed for seed, the rows of an audit without bl-auto."""
    from nmprivacy.cli import main

    base = ["audit", "--dataset", "digits", "--quick", "--set", "hidden=16", "--evaluators", "1", "--seeds", "2", "--variant", "default",
            "--no-progress"]
    assert main([*base, "--attacks", "bl-v1,bl-v2,bl-auto", "--out", str(tmp_path / "both")]) == 0
    assert main([*base, "--attacks", "bl-v1,bl-v2", "--out", str(tmp_path / "fixed")]) == 0
    both = json.loads((tmp_path / "both" / "results.json").read_text())["attacks"]
    fixed = json.loads((tmp_path / "fixed" / "results.json").read_text())["attacks"]
    assert list(both) == ["bl-v1", "bl-v2", "bl-auto"]  # the plan's order, though bl-auto ran first
    for name in ("bl-v1", "bl-v2"):
        assert both[name]["run_by"] == f"bl-auto/{name}:default" and "run_by" not in fixed[name]
        for key in ("per_seed", "attack_acc", "daa", "target_confidence", "iterations", "settings", "diagnostics"):
            assert both[name][key] == fixed[name][key], (name, key)
    assert "Run once, as `bl-auto/bl-v1:default`" in (tmp_path / "both" / "report.md").read_text()


def test_only_a_member_with_the_same_settings_stands_for_a_fixed_attack() -> None:
    from dataclasses import replace

    from nmprivacy.audit import AuditConfig, attack_plan, ensemble_members
    from nmprivacy.presets import resolve

    plan = attack_plan(resolve("digits", "default", "default"), "image", AuditConfig(attacks=("bl-v1", "bl-v2", "bl-auto")))
    assert ensemble_members(plan) == {"bl-v1": "bl-v1:default", "bl-v2": "bl-v2:default"}
    paper = attack_plan(resolve("digits", "default", "paper"), "image", AuditConfig(attacks=("bl-v1", "bl-v2", "bl-auto"), variant="paper"))
    assert ensemble_members(paper) == {"bl-v1": "bl-v1:paper", "bl-v2": "bl-v2:paper"}
    changed = [(n, r, replace(s, iterations=s.iterations + 1) if n == "bl-v2" else s) for n, r, s in plan]  # e.g. --set bl_v2.iterations=11
    assert ensemble_members(changed) == {"bl-v1": "bl-v1:default"}
    assert ensemble_members([p for p in plan if p[0] != "bl-auto"]) == {}


def test_variant_auto_is_the_audits_default_and_always_brings_the_ensemble(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from nmprivacy.audit import AuditConfig, attack_plan
    from nmprivacy.cli import main
    from nmprivacy.commands.common import VARIANTS as CLI_VARIANTS
    from nmprivacy.presets import VARIANTS, resolve

    assert CLI_VARIANTS == VARIANTS and AuditConfig().variant == "auto"
    preset = resolve("digits", "default", "auto")
    assert preset == resolve("digits", "default", "default")  # the fixed rows run with the default settings
    names = lambda config: [n for n, _, _ in attack_plan(preset, "image", config)]  # noqa: E731
    assert names(AuditConfig(attacks=("bl-v1",))) == ["bl-v1", "bl-auto"]
    assert names(AuditConfig(attacks=("bl-v2", "mi-face"))) == ["bl-v2", "mi-face", "bl-auto"]
    assert names(AuditConfig(attacks=("mi-face",))) == ["mi-face"]
    assert names(AuditConfig(attacks=("bl-v1",), variant="default")) == ["bl-v1"]
    assert "bl-auto" in names(AuditConfig())
    # one attack has no ensemble to hold: one line, no traceback
    assert main(["attack", "--model", "missing", "--attack", "bl-v1", "--variant", "auto", "--out", "x.pt"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--attack bl-auto" in err[0] and "Traceback" not in err[0]
    # the audit says so when it adds the ensemble to the attacks named, and runs BL-v1 once, inside it
    assert main(["audit", "--dataset", "digits", "--quick", "--set", "hidden=16", "--evaluators", "1", "--attacks", "bl-v1", "--no-progress",
                 "--out", str(tmp_path / "audit")]) == 0
    assert "variant auto: bl-auto runs beside BL-v1/BL-v2" in capsys.readouterr().out
    results = json.loads((tmp_path / "audit" / "results.json").read_text())
    assert results["variant"] == "auto" and list(results["attacks"]) == ["bl-v1", "bl-auto"]
    assert results["attacks"]["bl-v1"]["run_by"] == "bl-auto/bl-v1:default"


def test_the_report_gives_the_ensembles_cost_against_one_bl_v2_run() -> None:
    from nmprivacy.report import ensemble_cost

    line = ensemble_cost({"seconds": 3.0, "member_seconds": {"bl-v1:default": 0.5, "bl-v2:default": 0.6, "bl-v2:adaptive": 1.9}}, 10)
    assert line.startswith("3.0 s for the ensemble's members (0.30 s per class; 5.0x one BL-v2 run")
    assert "bl-v2:adaptive 1.90 s" in line
    assert "x one BL-v2 run" not in ensemble_cost({"seconds": 1.0, "member_seconds": {"bl-v1:default": 1.0}}, 4)  # no BL-v2 member: no ratio
