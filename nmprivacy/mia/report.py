"""The run's files beside ``mia.json``: ``mia.md`` (one row per attack, the target's train /
test accuracy beside it, the Lava check, notes, timings), ``roc.png`` (the ROC curves on log-log
axes, LiRA's plot) and ``scores.npz`` (the pooled scores); and the notes ``mia.json`` carries."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nmprivacy.membership.protocol import Pooled
from nmprivacy.defence_text import adopted_weights_text, model_defence_lines
from nmprivacy.runinfo import atomic_path
from nmprivacy.text import percent
from nmprivacy.trained import WEAK_FACTOR, too_weak

SILENT_WARN = 0.5  # the counts threat's observations are mostly silence: say so (note, and a warning line)


def fmt(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, "–" for None or NaN."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _ci(ci: list[float] | None, pct: bool = False) -> str:
    if not ci:
        return ""
    lo, hi = ci
    return f" [{percent(lo)}, {percent(hi)}]" if pct else f" [{lo:.3f}, {hi:.3f}]"


def silent_note(silent: float | None) -> str | None:
    """The caution for counts that are mostly silence (``silent``: share of the target's answers
    without an output spike), or None below ``SILENT_WARN``."""
    if silent is None or silent < SILENT_WARN:
        return None
    return (f"the target's output neurons do not spike on {100 * silent:.0f} % of the queries (all counts 0): the counts threat sees a tie "
            "there, so these numbers say little about leakage; a read-out that does not spike (e.g. a leaky-integrator output "
            "layer) still holds the information in its membrane: --threat membrane (white-box) measures it")


def notes(config: Any, plan: Any, results: dict[str, Any], refs: list[dict[str, Any]], silent: float | None = None) -> list[str]:
    """What a reader needs to read the numbers: the protocol, the population, the threat's
    observable (and how much of it is silence: ``silent``, the share of the target's answers
    without an output spike), a coarse TPR at 0.1 % FPR, reference models that learned little."""
    out = [
        "protocol: " + (f"each of the {plan.references} models in turn is the target, the other {plan.references - 1} its references (trained on "
                        "independent random halves of the audited records); the (record, member?) pairs of all targets are pooled"
                        if plan.foreign is None else
                        f"the file is the one target; {plan.references} reference models trained on independent random halves of the audited records"),
        f"{plan.population.size} test records are trained on by no model: RMIA's population samples z (not audited)",
    ]
    if plan.threat == "counts":
        out.append(f"counts threat: the attacker sees output spike counts only; class probabilities are softmax(counts / {config.count_temperature:g}) "
                   "(tied counts get equal probability; the membrane is not used)")
    caution = silent_note(silent)
    if caution:
        out.append(caution)
    if plan.threat == "label":
        out.append(f"label threat: the attacker sees the top-1 label of each of the {plan.queries} queries; probabilities are their "
                   f"smoothed empirical distribution (pseudo-count {config.label_smoothing:g} per class)")
    non_members = [r["non_members"] for r in results.values() if r.get("non_members")]
    if non_members and min(non_members) < 1000:
        out.append(f"TPR at 0.1 % FPR rests on {min(non_members)} non-member pairs (< 1000): it is coarse (resolution 1/{min(non_members)})")
    adopted = [r for r in refs if r.get("weights_from")]
    if adopted:
        out.append(adopted_weights_text(("model " if len(adopted) == 1 else "models ") + ", ".join(str(r["index"]) for r in adopted), adopted))
    weak = [r["index"] for r in refs if too_weak(r.get("test_acc"), plan.splits.num_classes)]
    if weak:
        out.append(f"reference model(s) {', '.join(map(str, weak))} reach below {WEAK_FACTOR:g}x chance on records they never saw: train longer "
                   "(--set snn_train.epochs=N) for meaningful numbers")
    return out


def training_defence_lines(mia: Mapping[str, Any]) -> list[str]:
    """The training defences of the run's trained models (DP-SGD's ε at δ and mechanism, the free
    defences), one line per distinct setting with the models it applies to; none without any. On a
    foreign target these are the references' (the file's own training is not known), after what
    the file declares of its training, if it does."""
    refs = mia.get("reference_models") or []
    groups: dict[str, list[int]] = {}
    for ref in refs:
        for line in model_defence_lines("\0", ref):
            groups.setdefault(line, []).append(ref["index"])
    target = mia["target"]
    declared = model_defence_lines(f"the target {target.get('file')}", {**target["training"], "training_declared": True}) if target.get("training") else []
    if not groups and not declared:
        return []
    everyone = "every model (targets and references)" if not target.get("file") else "every reference model"
    out = ["Training defences:", "", *declared]
    for line, models in groups.items():
        who = everyone if len(models) == len(refs) else ("model " if len(models) == 1 else "models ") + ", ".join(map(str, models))
        out.append(line.replace("\0", who, 1))
    if target.get("file") and groups and not declared:
        out.append("- the target file's own training is not known to nmprivacy: the lines above are the references' training")
    dp = (target.get("training") or {}).get("dp")
    if dp and dp.get("epsilon") is not None and not any(ref.get("dp") for ref in refs):
        out.append(f"- the references trained without DP-SGD although the file declares it: --set snn_train.dp.epsilon={dp['epsilon']:.3g} "
                   "trains them as it declares (reference models should be trained like the target)")
    return out + [""]


def markdown(mia: dict[str, Any]) -> str:
    """``mia.md``: the setting, one row per attack (with the target's train/test accuracy beside
    it), the oracle check, notes and timings."""
    t = mia["target"]
    acc = f"{percent(t['train_acc'])} / {percent(t['test_acc'])}"
    lines = [
        f"# Membership inference: {mia['dataset']}, target {t['spec']}",
        "",
        f"Target: {t['kind']}" + (f" ({t['file']})" if t.get("file") else f", {t['models']} models") +
        f"; train / test accuracy {acc} %; membership: {t['membership']}.",
        f"References: {mia['references']} {mia['reference_kind']} models ({mia['references_per_target']} per target); threat **{mia['threat']}**, "
        f"oracle **{mia['oracle']}** (references: {mia['reference_oracle']}); {mia['queries']} queries per record; T = {mia['steps']}.",
        f"Records: {mia['population']['audited']} audited, {mia['population']['z']} population (z) of {mia['population']['records']}.",
        "",
        *training_defence_lines(mia),
        "| attack | AUC [95 % CI] | TPR @ 0.1 % FPR | TPR @ 1 % FPR | balanced acc. | pairs | target train / test acc. | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in mia["attacks"].items():
        tpr, tci = r["tpr_at_fpr"], r["tpr_at_fpr_ci"]
        lines.append(
            f"| {name} | {fmt(r['auc'])}{_ci(r['auc_ci'])} | {percent(tpr['0.001'])}{_ci(tci['0.001'], True)} | {percent(tpr['0.01'])}{_ci(tci['0.01'], True)} | "
            f"{percent(r['balanced_acc'])}{_ci(r['balanced_acc_ci'], True)} | {r['pairs']} | {acc} | {r['seconds']:.1f} |")
    lines += ["", "TPR and balanced accuracy in %; intervals: bootstrap over the pooled pairs. TPR at a fixed FPR is the highest TPR of a ROC point "
              "at or below that FPR (no interpolation). `roc.png`: the ROC curves on log-log axes.", ""]
    lines += membrane_check_lines(membrane_check(mia))
    lines += _check_lines(mia.get("oracle_check"))
    lines += ["Notes:", ""] + [f"- {n}" for n in mia["notes"]]
    timing = mia["timings"]
    lines += ["", f"Time per reference model: training {fmt(timing['train_s_mean'], 1)} s ({timing['reference_models_trained']} trained here), "
              f"observing every record {fmt(timing['observe_s_mean'], 1)} s ({timing['reference_models_observed']} observed here; the rest "
              "from the cache; Dask workers in parallel); attacks (scoring, without the bootstrap): " +
              ", ".join(f"{k} {v:.1f} s" for k, v in timing["per_attack_s"].items()) + "."]
    return "\n".join(lines) + "\n"


def membrane_check(mia: Mapping[str, Any]) -> dict[str, Any] | None:
    """A counts run's white-box cross-check (``membrane_check``; ``silent_check`` in runs made
    when it ran only on mostly silent counts), or None."""
    return mia.get("membrane_check") or mia.get("silent_check")


def silent_share(silent: float | None) -> str:
    """The share of silent answers as ``"36 %"`` ("? %" when unknown)."""
    return f"{fmt(None if silent is None else 100 * silent, 0).replace('–', '?')} %"


def membrane_check_lines(check: dict[str, Any] | None) -> list[str]:
    """The white-box cross-check of the counts (``membrane_check``) as a paragraph and a table;
    none when it did not run."""
    if not check:
        return []
    silent = check.get("silent_output")
    why = (f"because the output neurons are silent on {silent_share(silent)} of the queries, so the counts above may under-report what "
           "the network holds" if silent_note(silent) else
           f"beside the counts (output neurons silent on {silent_share(silent)} of the queries): what "
           "the read-out holds beyond what the chip's counts show")
    lines = [f"**The same models through their membrane (white-box)**, scored {why}:", "",
             "| attack | AUC [95 % CI] | TPR @ 0.1 % FPR | TPR @ 1 % FPR |", "|---|---|---|---|"]
    for name, r in check["attacks"].items():
        tpr, tci = r["tpr_at_fpr"], r["tpr_at_fpr_ci"]
        lines.append(f"| {name} | {fmt(r['auc'])}{_ci(r['auc_ci'])} | {percent(tpr['0.001'])}{_ci(tci['0.001'], True)} | "
                     f"{percent(tpr['0.01'])}{_ci(tci['0.01'], True)} |")
    return lines + [""]


def _check_lines(check: dict[str, Any] | None) -> list[str]:
    """The Lava check's lines of ``mia.md`` (none when it did not run)."""
    if not check:
        return []
    if "error" in check:
        return [f"Lava check: not run ({check['error']}).", ""]
    lv = check["lava_vs_emulation"]
    lines = [f"Lava check ({check['records']} records, query 0): Lava vs bit-exact emulation: {lv['count_mismatch_records']} records with "
             f"different output spike counts, {lv['label_mismatches']} different labels, largest phi difference at this threat "
             f"{lv['threat_phi_max_abs_diff']:.3g}."]
    if "float_vs_emulation" in check:
        fe = check["float_vs_emulation"]
        lines.append(f"Float model vs emulation: {fe['count_mismatch_records']} records with different counts, {fe['label_mismatches']} different labels.")
    return lines + [""]


def write_scores(path: Path, pooled: dict[str, Pooled]) -> None:
    """``scores.npz``: ``<attack>.scores``, ``<attack>.members``, ``<attack>.target`` per attack."""
    arrays = {}
    for name, p in pooled.items():
        arrays.update({f"{name}.scores": p.scores, f"{name}.members": p.members, f"{name}.target": p.target})
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def roc_figure(path: Path, pooled: dict[str, Pooled], title: str) -> None:
    """``roc.png``: every attack's ROC on log-log axes (LiRA's plot), with chance as the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nmprivacy.membership.metrics import auc, roc

    fig, ax = plt.subplots(figsize=(5, 5))
    low = 1e-4
    for name, p in pooled.items():
        if p.members.all() or not p.members.any():
            continue
        curve = roc(p.scores, p.members)
        low = max(min(low, 1.0 / max(int((~p.members).sum()), 1)), 1e-5)
        ax.plot(np.maximum(curve.fpr, 1e-6), np.maximum(curve.tpr, 1e-6), label=f"{name} (AUC {auc(curve):.3f})")
    ax.plot([1e-6, 1], [1e-6, 1], "k--", lw=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
