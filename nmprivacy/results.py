"""The results the pipelines write, as types: the schema of ``results.json`` and ``validation.json``.

Each result is a small dataclass whose ``to_json()`` gives the stable keys of its file, in their
order (tests pin them); nested parts that are their own data (model records, spike comparisons,
the run record of ``nmprivacy.runinfo.run_metadata``) stay plain dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nmprivacy.runinfo import to_jsonable

# the attack metrics of every results.json entry (``nmprivacy.evaluation.metrics.METRICS``'s keys, kept torch-free here)
METRIC_NAMES: tuple[str, ...] = ("attack_acc", "top3_acc", "avg_conf", "daa")


@dataclass
class AttackResult:
    """One attack of an audit over its seeds and evaluators (``results.json`` ``attacks.<name>``).

    ``scores``: ``attack_acc``, ``top3_acc``, ``avg_conf``, ``daa`` (fractions), with
    ``<metric>_std`` over seeds and ``<metric>_evaluator_std`` across evaluators when there are
    several (``nmprivacy.evaluation.scoring.summarize``); ``extra``: what only some attacks have
    (BL-v2's Bernoulli re-draw spread, a query attack's queries)."""

    scores: dict[str, float]
    model: str
    evaluator_kind: str
    iterations: float
    seconds_per_iteration: float
    target_confidence: float
    per_seed: list[dict]
    settings: Any
    oracle: str | None
    valid: bool = True
    invalid_reason: str | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            **self.scores, "model": self.model, "evaluator_kind": self.evaluator_kind, "iterations": self.iterations,
            "seconds_per_iteration": self.seconds_per_iteration, "target_confidence": self.target_confidence,
            "per_seed": self.per_seed, "settings": self.settings, "oracle": self.oracle, **self.extra, "valid": self.valid,
        }
        if self.invalid_reason:
            out["invalid_reason"] = self.invalid_reason
        return to_jsonable(out)


@dataclass
class AuditResult:
    """What ``nmprivacy audit`` writes to ``results.json`` (``record``: config, seed, versions,
    machine, timings, created)."""

    dataset: str
    family: str
    domain: str
    classes: list[str]
    data_source: str
    budget: str
    variant: str
    seeds: list[int]
    steps: int
    models: dict[str, Any]
    attacks: dict[str, AttackResult]
    weak_models: dict[str, str]
    hardware: dict | None = None
    membership: dict | None = None  # nmprivacy mia's mia.json, when --attacks names membership attacks
    record: dict = field(default_factory=dict)

    @property
    def worst_case(self) -> dict[str, dict[str, Any]]:
        """Per metric, the most any valid attack on the target leaked and which attack: the
        audit's headline, so one weak attack never speaks for the network (MI-Face attacks the ANN).
        An ensemble's members (``extra["parts"]``, e.g. bl-auto's fixed variants) count as attacks
        of their own, named ``<attack>/<member>``: each is a whole attack an attacker can run."""
        out: dict[str, dict[str, Any]] = {}
        for name, a in self.attacks.items():
            if a.model != "target" or not a.valid:
                continue
            rows = {name: a.scores, **{f"{name}/{part}": scores for part, scores in (a.extra.get("parts") or {}).items()}}
            for label, scores in rows.items():
                for m in METRIC_NAMES:
                    if m in scores and (m not in out or scores[m] > out[m]["value"]):
                        out[m] = {"value": scores[m], "attack": label}
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": self.dataset, "family": self.family, "domain": self.domain, "classes": self.classes,
            "data_source": self.data_source, "budget": self.budget, "variant": self.variant, "seeds": self.seeds,
            "steps": self.steps, "models": self.models, "attacks": {name: a.to_json() for name, a in self.attacks.items()},
            "weak_models": self.weak_models, "worst_case": self.worst_case,
        }
        if self.hardware is not None:
            out["hardware"] = self.hardware
        if self.membership is not None:
            out["membership"] = self.membership
        return to_jsonable({**out, **self.record})


@dataclass
class ValidationResult:
    """What ``nmprivacy validate`` writes to ``validation.json``: the NetX file, the network, the
    inputs, the export report, the export fidelity (``export``: spike mismatches per layer, class
    agreement, accuracies), the attack validation (``attack``) and ``samples_on_lava``."""

    netx_file: str | None
    network: dict[str, Any]
    dataset: str
    inputs: dict[str, Any]
    export_report: Any
    export: dict[str, Any]
    attack: dict[str, Any] | None
    record: dict = field(default_factory=dict)

    @property
    def samples_on_lava(self) -> int:
        return int(self.export["lava_samples"] + (self.attack["samples_on_lava"] if self.attack else 0))

    def to_json(self) -> dict[str, Any]:
        return to_jsonable({
            "netx_file": self.netx_file, "network": self.network, "dataset": self.dataset, "inputs": self.inputs,
            "export_report": self.export_report, "export": self.export, "attack": self.attack,
            "samples_on_lava": self.samples_on_lava, **self.record,
        })
