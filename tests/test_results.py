"""The result files' schemas live in nmprivacy/results.py: their keys, in order, are pinned here."""

from __future__ import annotations

from nmprivacy.results import AttackResult, AuditResult, ValidationResult

SCORES = {"attack_acc": 1.0, "top3_acc": 1.0, "avg_conf": 0.9, "daa": 1.0}


def attack(**kw) -> AttackResult:
    return AttackResult(scores=dict(SCORES), model="target", evaluator_kind="evaluator", iterations=10, seconds_per_iteration=0.02,
                        target_confidence=0.8, per_seed=[], settings={"iterations": 10}, oracle="fast-lif", **kw)


def test_attack_result_keys():
    assert list(attack().to_json()) == [*SCORES, "model", "evaluator_kind", "iterations", "seconds_per_iteration", "target_confidence",
                                         "per_seed", "settings", "oracle", "valid"]
    invalid = attack(valid=False, invalid_reason="too weak", extra={"queries": 100})
    assert list(invalid.to_json())[-4:] == ["oracle", "queries", "valid", "invalid_reason"]


def test_audit_result_keys():
    result = AuditResult("digits", "mnist", "image", ["0"], "sklearn", "default", "default", [0], 25, {"target": {}}, {"bl-v1": attack()}, {},
                         record={"config": {}, "seed": 0, "versions": {}, "machine": {}, "timings_s": {}, "created": ""})
    keys = list(result.to_json())
    assert keys == ["dataset", "family", "domain", "classes", "data_source", "budget", "variant", "seeds", "steps", "models", "attacks",
                    "weak_models", "worst_case", "config", "seed", "versions", "machine", "timings_s", "created"]
    result.hardware = {"export": {}}
    assert list(result.to_json())[11:14] == ["weak_models", "worst_case", "hardware"]


def test_worst_case_is_the_most_any_valid_target_attack_leaked():
    weak = attack()
    weak.scores = {**SCORES, "attack_acc": 0.3, "daa": 0.9}
    strong = attack()
    strong.scores = {**SCORES, "attack_acc": 0.8, "daa": 0.5}
    invalid = attack(valid=False, invalid_reason="too weak")
    invalid.scores = {**SCORES, "attack_acc": 1.0}
    ann = AttackResult(scores={**SCORES, "attack_acc": 1.0}, model="ann", evaluator_kind="evaluator", iterations=1, seconds_per_iteration=0.0,
                       target_confidence=1.0, per_seed=[], settings={}, oracle="autograd")
    result = AuditResult("digits", "mnist", "image", ["0"], "sklearn", "default", "default", [0], 25, {"target": {}},
                         {"bl-v1": weak, "bl-v2": strong, "x": invalid, "mi-face": ann}, {})
    worst = result.to_json()["worst_case"]
    assert worst["attack_acc"] == {"value": 0.8, "attack": "bl-v2"} and worst["daa"] == {"value": 0.9, "attack": "bl-v1"}


def test_validation_result_keys():
    result = ValidationResult(None, {}, "digits", {"kind": "dataset"}, None, {"lava_samples": 5}, {"samples_on_lava": 7}, record={"config": {}})
    assert list(result.to_json()) == ["netx_file", "network", "dataset", "inputs", "export_report", "export", "attack", "samples_on_lava", "config"]
    assert result.to_json()["samples_on_lava"] == 12


def test_metric_names_are_the_evaluations_metrics():
    """``results.METRIC_NAMES`` (torch-free, read by the worst case, the study table and ``evaluate``) names exactly
    the metrics ``nmprivacy.evaluation.metrics`` computes, in its order."""
    from nmprivacy.evaluation.metrics import METRICS
    from nmprivacy.results import METRIC_NAMES

    assert METRIC_NAMES == tuple(METRICS)
