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
                    "weak_models", "config", "seed", "versions", "machine", "timings_s", "created"]
    result.hardware = {"export": {}}
    assert list(result.to_json())[11:13] == ["weak_models", "hardware"]


def test_validation_result_keys():
    result = ValidationResult(None, {}, "digits", {"kind": "dataset"}, None, {"lava_samples": 5}, {"samples_on_lava": 7}, record={"config": {}})
    assert list(result.to_json()) == ["netx_file", "network", "dataset", "inputs", "export_report", "export", "attack", "samples_on_lava", "config"]
    assert result.to_json()["samples_on_lava"] == 12
