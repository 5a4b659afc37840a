"""``run_mia``: plan the run, get every reference model's observations (trained and observed,
or from the cache), observe a target file, run the Lava check, score each attack under the
protocol (leave-one-out over a kind's models, or the one file target) and write ``mia.json``
with ``mia.md``, ``roc.png`` and ``scores.npz``, atomically."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from nmprivacy.cache import cache_root
from nmprivacy.errors import NmprivacyError
from nmprivacy.membership import attack_settings, get_membership_attack
from nmprivacy.membership.metrics import FPR_TARGETS, auc, fpr_key, roc, summarize
from nmprivacy.membership.observables import Observations, attacker_view
from nmprivacy.membership.protocol import Pooled, leave_one_out, single_target
from nmprivacy.mia.config import MiaConfig, check_config, with_defaults
from nmprivacy.mia.oracles import observe_with, run_oracle_check
from nmprivacy.mia.plan import Plan, make_plan
from nmprivacy.mia.references import (
    dataset,
    read_observations,
    reference_jobs,
    train_references,
)
from nmprivacy.mia.report import fmt, markdown, notes, roc_figure, silent_note, write_scores
from nmprivacy.runinfo import (
    Stopwatch,
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    run_metadata,
    to_jsonable,
)


def run_mia(config: MiaConfig) -> dict[str, Any]:
    """Run membership inference as ``config`` says; returns the mia.json content also written
    (with mia.md, roc.png, scores.npz) into ``config.out``, atomically."""
    from nmprivacy.attacks.common import torch_threads

    check_config(config)
    config = with_defaults(config)
    dataset.cache_clear()  # reference jobs run in this process reuse the data within one run only
    with torch_threads(config.threads or torch.get_num_threads()):
        with atomic_dir(config.out) as out:
            return _mia_into(config, out)


def _mia_into(config: MiaConfig, out: Path) -> dict[str, Any]:
    sw = Stopwatch()
    with sw("plan"):
        plan = make_plan(config)
    jobs = reference_jobs(config, plan, cache_root(config.cache))
    with sw("references"):
        ref_records = train_references(config, jobs)
    observations = read_observations(jobs)
    a = plan.audited.size
    y_all = plan.pool_y[torch.as_tensor(plan.records)]
    _reference_accuracies(plan, ref_records, observations, y_all)
    target_obs, check = _target_and_check(config, plan, ref_records, sw)

    silent = _silent_output(plan, observations, target_obs)
    views = np.stack([attacker_view(o, plan.threat, config.count_temperature, config.label_smoothing) for o in observations])  # [N, A+Z, Q', C]
    target_view = None if target_obs is None else attacker_view(target_obs, plan.threat, config.count_temperature, config.label_smoothing)
    results, pooled = _score(config, plan, views, target_view, y_all[:a].numpy(), y_all[a:].numpy())
    membrane_check = _membrane_check(config, plan, observations, target_obs, y_all, silent)

    observed = [r for r in ref_records if not r.get("observations_cached")]  # observed by this run
    trained = [r for r in observed if not r.get("cached")]  # ... and trained by it (not reused from the model cache)
    mia = {
        "dataset": plan.splits.name, "domain": plan.splits.domain, "classes": list(plan.splits.classes), "steps": plan.steps,
        "target": {**_target_summary(config, plan, ref_records, target_obs, y_all), "silent_output": silent}, "references": plan.references,
        "references_per_target": plan.references - 1 if target_obs is None else plan.references,
        "reference_kind": plan.kind, "threat": plan.threat, "oracle": plan.oracle, "reference_oracle": plan.reference_oracle,
        "queries": plan.queries, "count_temperature": config.count_temperature, "label_smoothing": config.label_smoothing,
        "population": {"records": int(plan.pool_y.numel()), "audited": int(a), "z": int(plan.population.size),
                       "protocol": "leave-one-out" if target_obs is None else "single target"},
        "attacks": results, "membrane_check": membrane_check, "reference_models": ref_records, "oracle_check": check,
        "notes": list(plan.notes) + notes(config, plan, results, ref_records, silent),
        "timings": {"per_reference_model_s": float(np.mean([r["train_seconds"] + r["observe_seconds"] for r in trained])) if trained else None,
                    "reference_models_trained": len(trained), "reference_models_observed": len(observed),
                    "train_s_mean": float(np.mean([r["train_seconds"] for r in trained])) if trained else None,
                    "observe_s_mean": float(np.mean([r["observe_seconds"] for r in observed])) if observed else None,
                    "per_attack_s": {name: r["seconds"] for name, r in results.items()}},
    }
    mia.update(run_metadata(config=config, seed=config.seed, timings=sw.seconds))
    with sw("report"):
        write_scores(out / "scores.npz", pooled)
        roc_figure(out / "roc.png", pooled, f"{plan.splits.name}, {config.target}: threat {plan.threat}, oracle {plan.oracle}")
        atomic_write_text(out / "mia.md", markdown(mia))
    mia["timings_s"] = to_jsonable(sw.seconds)
    mia = to_jsonable(mia)
    atomic_write_json(out / "mia.json", mia)
    return mia


def _silent_output(plan: Plan, observations: list[Observations], target_obs: Observations | None) -> float | None:
    """Under the counts threat, the share of the target's answers (a kind: every model's, as each
    is the target once) without any output spike; warned about on stderr when it is most of them."""
    if plan.threat != "counts":
        return None
    shares = [s for s in (o.silent_share() for o in ([target_obs] if target_obs is not None else observations)) if s is not None]
    if not shares:
        return None
    share = float(np.mean(shares))
    if silent_note(share):
        tqdm.write(f"warning: the target's output neurons do not spike on {100 * share:.0f} % of the queries: the counts threat sees "
                   "ties there (see the notes; --threat membrane shows what the read-out holds)", file=sys.stderr)
    return share


def _membrane_check(config: MiaConfig, plan: Plan, observations: list[Observations], target_obs: Observations | None,
                    y_all: torch.Tensor, silent: float | None) -> dict[str, Any] | None:
    """Under the counts threat, the same observations scored again through the models' membrane
    (the white-box threat; one more scoring pass, no model run): ``mia.json``'s ``membrane_check``
    (None under another threat). The counts numbers stay the run's result (the chip's observable);
    this is what the read-out holds beyond them. A setting that makes outputs fall silent lowers
    what the counts show without lowering what the network memorised (measured on Fashion-MNIST:
    a higher threshold, fewer time steps, 2-bit weights), so a map of defences compares cells on
    both; when the counts are mostly silent (``silent_note``) the run says so on stderr."""
    if plan.threat != "counts":
        return None
    a = plan.audited.size
    if silent_note(silent):
        tqdm.write("the counts are mostly silent: scoring the same observations through the membrane (white-box) as well", file=sys.stderr)
    views = np.stack([attacker_view(o, "membrane") for o in observations])
    target_view = None if target_obs is None else attacker_view(target_obs, "membrane")
    results, _ = _score(config, plan, views, target_view, y_all[:a].numpy(), y_all[a:].numpy(), label="membrane ")
    keep = ("auc", "auc_ci", "tpr_at_fpr", "tpr_at_fpr_ci", "balanced_acc", "pairs")
    return {"threat": "membrane", "silent_output": silent,
            "attacks": {name: {k: r.get(k) for k in keep} for name, r in results.items()}}


def _accuracy(pred: torch.Tensor, y: torch.Tensor, mask: np.ndarray) -> float | None:
    m = torch.as_tensor(mask, dtype=torch.bool)
    return float((pred[m] == y[m]).double().mean()) if bool(m.any()) else None


def _reference_accuracies(plan: Plan, ref_records: list[dict[str, Any]], observations: list[Observations], y_all: torch.Tensor) -> None:
    """Each model's accuracy on its own training half and on the records it never saw, into its record."""
    for i, (rec, obs) in enumerate(zip(ref_records, observations)):
        seen = np.concatenate([plan.keep[i], np.zeros(plan.population.size, dtype=bool)])
        rec["train_acc"] = _accuracy(obs.pred, y_all, seen)
        rec["test_acc"] = _accuracy(obs.pred, y_all, ~seen)


def _target_and_check(config: MiaConfig, plan: Plan, ref_records: list[dict[str, Any]], sw: Stopwatch) -> tuple[Observations | None, dict[str, Any] | None]:
    """(a target file's observations through its oracle, or None for a kind; the Lava check or None)."""
    target_obs = check = None
    workdir = Path(tempfile.mkdtemp(prefix="nmprivacy-mia-"))
    try:
        if plan.foreign is not None:
            with sw("target"):
                model = plan.foreign.float_model if plan.oracle == "float" and plan.foreign.float_model is not None else plan.foreign.model
                x = plan.pool_x[torch.as_tensor(plan.records)]
                target_obs = observe_with(model, plan.oracle, x, plan.splits.domain, plan.steps, plan.queries, config.seed, workdir,
                                          foreign=plan.foreign, progress=True)
        if config.lava_check and plan.kind != "ann":
            with sw("oracle_check"):
                check = run_oracle_check(plan, int(config.lava_check), config.seed, ref_records[0].get("checkpoint"), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target_obs, check


def _score(config: MiaConfig, plan: Plan, views: np.ndarray, target_view: np.ndarray | None, labels: np.ndarray,
           pop_labels: np.ndarray, label: str = "") -> tuple[dict[str, Any], dict[str, Pooled]]:
    """Every attack's pooled scores and its ``mia.json`` entry (metrics with intervals, timing);
    ``label`` prefixes the progress line."""
    a = plan.audited.size
    results: dict[str, Any] = {}
    pooled: dict[str, Pooled] = {}
    for name in config.attacks:
        attack = get_membership_attack(name, attack_settings(name, config.attack_settings.get(name)))
        start = time.perf_counter()
        if target_view is None:
            pooled[name] = leave_one_out(attack, views[:, :a], plan.keep, labels, views[:, a:], pop_labels)
        else:
            pooled[name] = single_target(attack, target_view[:a], plan.in_train_split[plan.audited], views[:, :a], plan.keep, labels,
                                         target_view[a:], views[:, a:], pop_labels)
        seconds = time.perf_counter() - start
        results[name] = _attack_result(pooled[name], attack, seconds, config, plan)
        tqdm.write(f"{label}{name}: AUC {fmt(results[name]['auc'])}, TPR at 1 % FPR {fmt(results[name]['tpr_at_fpr'][fpr_key(0.01)])} ({seconds:.1f} s)")
    return results, pooled


def _attack_result(pooled: Pooled, attack: Any, seconds: float, config: MiaConfig, plan: Plan) -> dict[str, Any]:
    empty = {"auc": None, "auc_ci": None, "tpr_at_fpr": {fpr_key(t): None for t in FPR_TARGETS}, "tpr_at_fpr_ci": {fpr_key(t): None for t in FPR_TARGETS},
             "balanced_acc": None, "balanced_acc_ci": None, "pairs": int(pooled.scores.size), "members": int(pooled.members.sum()),
             "non_members": int((~pooled.members).sum()), "bootstrap": config.bootstrap}
    try:
        metrics = summarize(pooled.scores, pooled.members, bootstrap=config.bootstrap, seed=config.seed)
    except NmprivacyError as exc:
        metrics = {**empty, "error": str(exc)}
    per_target = []
    if plan.foreign is None:
        for t in range(plan.references):
            mine = pooled.target == t
            ok = mine.any() and pooled.members[mine].any() and not pooled.members[mine].all()
            per_target.append(auc(roc(pooled.scores[mine], pooled.members[mine])) if ok else None)
    return {**metrics, "auc_per_target": per_target, "unscored": pooled.unscored, "seconds": seconds, "settings": attack.settings}


def _target_summary(config: MiaConfig, plan: Plan, ref_records: list[dict[str, Any]], target_obs: Observations | None,
                    y_all: torch.Tensor) -> dict[str, Any]:
    """``mia.json``'s ``target``: a kind's mean (and spread of) train / test accuracy over its
    models, or the file's accuracy on the training split and on the other records."""
    if target_obs is None:
        train_accs = [r["train_acc"] for r in ref_records]
        test_accs = [r["test_acc"] for r in ref_records]
        return {"spec": config.target, "kind": plan.kind, "file": None, "models": plan.references,
                "train_acc": float(np.mean(train_accs)), "test_acc": float(np.mean(test_accs)),
                "train_acc_std": float(np.std(train_accs, ddof=1)), "test_acc_std": float(np.std(test_accs, ddof=1)),
                "membership": "each model's own training half (leave-one-out over the models)"}
    seen = np.concatenate([plan.in_train_split[plan.audited], np.zeros(plan.population.size, dtype=bool)])
    model = plan.foreign.model
    return {"spec": config.target, "kind": model.info.kind, "file": plan.foreign.source, "models": 1,
            "train_acc": _accuracy(target_obs.pred, y_all, seen), "test_acc": _accuracy(target_obs.pred, y_all, ~seen),
            "membership": "the data set's training split (assumed: the file's own training data)",
            "network": (lambda n: n.describe() if n is not None else None)(model.network()),
            **({"training": plan.foreign.meta["training"]} if plan.foreign.meta.get("training") else {})}  # as the file declares it
