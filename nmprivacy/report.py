"""The audit's human-readable report: ``report.md`` plus PNG figures (matplotlib Agg).

Reads the ``results.json`` contract (see ``nmprivacy.audit``) and the attacks' ``Inversion``s;
puts our metrics side by side with the paper's (``nmprivacy.evaluation.paper``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from nmprivacy.attacks.base import Inversion
from nmprivacy.evaluation.metrics import METRICS
from nmprivacy.evaluation.paper import PAPER_ACCURACY, paper_attack
from nmprivacy.defence_text import adopted_weights_text, model_defence_lines
from nmprivacy.text import percent
from nmprivacy.runinfo import atomic_path, atomic_write_text

METRIC_LABELS = {"attack_acc": "attack accuracy", "top3_acc": "top-3 accuracy", "avg_conf": "average confidence", "daa": "DAA"}


def preview_images(inv: Inversion) -> torch.Tensor:
    """Per-class ``[K, H, W]`` picture of an inversion: rate-decoded X_p (BL-v2) or spikes (mean
    over T), images as they are; channels (e.g. event polarities) summed."""
    x = inv.probabilities if inv.probabilities is not None else inv.reconstructions
    x = x.float()
    if x.dim() == 5:  # [K, T, C, H, W]
        x = x.mean(dim=1)
    return x.sum(dim=1) if x.dim() == 4 else x


def time_bins(inv: Inversion, bins: int = 5) -> torch.Tensor:
    """``[K, bins, H, W]``: a spike-form inversion averaged within ``bins`` equal time windows."""
    x = (inv.probabilities if inv.probabilities is not None else inv.reconstructions).float()
    chunks = torch.tensor_split(x, bins, dim=1)
    return torch.stack([c.mean(dim=1).sum(dim=1) for c in chunks], dim=1)


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def _grid(rows: Mapping[str, torch.Tensor], col_labels: list[str], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(v) for v in rows.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.2 * n_cols + 1, 1.3 * n_rows + 0.6), squeeze=False)
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(imgs):  # one grey scale per row (0 .. row max) so noise does not look like structure
                ax.imshow(imgs[c].numpy(), cmap="gray", vmin=0.0, vmax=max(float(imgs.max()), 1e-12))
            if r == 0 and c < len(col_labels):
                ax.set_title(col_labels[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    plt.close(fig)
    return path


def confidence_figure(inversions: Mapping[str, Inversion], path: Path) -> Path:
    """Target-model confidence in the attacked class per iteration, one panel per attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(inversions), figsize=(4 * len(inversions), 3), squeeze=False)
    for ax, (name, inv) in zip(axes[0], inversions.items()):
        curve = inv.confidence_curve.float()
        ax.plot(curve.numpy(), color="0.75", linewidth=0.7)
        ax.plot(curve.mean(dim=1).numpy(), color="C0", linewidth=2, label="mean over classes")
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_ylabel("target confidence")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        if curve.shape[0] > 200:
            ax.set_xscale("log")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def write_figures(out: Path, inversions: Mapping[str, Inversion], class_names: list[str], events: bool) -> list[Path]:
    """All report figures for ``inversions`` under ``out``; returns their paths."""
    if not inversions:
        return []
    paths = [_grid({n: preview_images(i) for n, i in inversions.items()}, class_names, out / "reconstructions.png", "reconstruction per class")]
    if "mi-face" in inversions and "bl-v2" in inversions:
        rows = {"ANN (mi-face)": preview_images(inversions["mi-face"]), "SNN (bl-v2)": preview_images(inversions["bl-v2"])}
        paths.append(_grid(rows, class_names, out / "ann-vs-snn.png", "ANN vs SNN"))
    if events:
        for name, inv in inversions.items():
            if inv.reconstructions.dim() == 5:
                bins = time_bins(inv)
                rows = {class_names[c] if c < len(class_names) else str(c): bins[i] for i, c in enumerate(inv.classes)}
                labels = [f"bin {b + 1}/{bins.shape[1]}" for b in range(bins.shape[1])]
                paths.append(_grid(rows, labels, out / f"time-bins-{name}.png", f"{name}: X over time"))
    paths.append(confidence_figure(inversions, out / "confidence.png"))
    return paths


_pct = percent


def defence_lines(models: Mapping[str, Any]) -> list[str]:
    """Report lines naming each model's training defences: DP-SGD's privacy spent (ε at δ, noise,
    clipping, steps, accountant) and the free defences (weight decay, dropout, early stopping)."""
    out: list[str] = []
    for name, label in (("target", "target SNN"), ("ann", "ANN baseline")):
        out += model_defence_lines(label, models.get(name) or {})
    return ["", "Training defences:", "", *out] if out else []


def model_source_lines(models: Mapping[str, Any]) -> list[str]:
    """Report lines on where models came from: evaluators that replace a collapsed training
    (``replaces``: ``trained.train_evaluators``), models whose weights another weight precision's
    training made (``weights_from``, not trained again), and a caution naming those that other
    nmprivacy code trained (``trained_by.same_code`` False: a fresh run may differ)."""
    named = [("target", models.get("target", {})), ("ANN baseline", models.get("ann", {}))]
    named += [(f"evaluator {i + 1}", ev) for i, ev in enumerate(models.get("evaluators", []))]
    other = [f"{label} (source {m['trained_by'].get('nmprivacy-source')})" for label, m in named
             if (m or {}).get("trained_by", {}).get("same_code") is False]
    replaced = [f"{label[0].upper() + label[1:]} is seed {m.get('seed')}, trained in place of "
                + " and ".join(f"seed {r.get('seed')} ({_pct(r.get('val_acc'))} %)" for r in m["replaces"])
                + ", whose training collapsed (too weak to judge: an instrument that failed, not a result)."
                for label, m in named if (m or {}).get("replaces")]
    adopted = [text for label, m in named if (text := adopted_weights_text(label[0].upper() + label[1:], [m or {}]))]
    lines = ["", *replaced, *adopted] if replaced or adopted else []
    if not other:
        return lines
    return lines + ["", "Reused from the model cache but trained by other nmprivacy code: " + ", ".join(other)
                    + ". A fresh training with this code may differ slightly (README, \"Repeating a number\")."]


def markdown(results: Mapping[str, Any], figures: list[Path]) -> str:
    """The report text for ``results`` (the results.json dict) and the figure files."""
    fam = results.get("family", "")
    attacks: Mapping[str, Any] = results.get("attacks", {})
    models: Mapping[str, Any] = results.get("models", {})
    lines = [
        f"# nmprivacy audit: {results.get('dataset')}",
        "",
        f"Budget `{results.get('budget')}`, target `{models.get('target', {}).get('kind')}` "
        f"(reset: {models.get('target', {}).get('reset')}), seeds {results.get('seeds')}, "
        f"{len(models.get('evaluators', []))} evaluator(s). Paper figures are for the `{fam}` family "
        "(BrainLeaks Tables 1-4); the paper's targets use subtractive reset and its full training schedules.",
        "",
        "## Models (validation accuracy, %)",
        "",
        "| model | kind | ours | paper |",
        "|---|---|---|---|",
    ]
    paper_acc = PAPER_ACCURACY.get(fam, {})
    target = models.get("target", {})
    lines.append(f"| target SNN | {target.get('kind')} | {_pct(target.get('val_acc'))} | {_pct(paper_acc.get('snn'))} |")
    if "ann" in models:
        lines.append(f"| ANN baseline | ann | {_pct(models['ann'].get('val_acc'))} | {_pct(paper_acc.get('ann'))} |")
    for i, ev in enumerate(models.get("evaluators", [])):
        key = "evaluator_snn" if ev.get("kind") == "evaluator-snn" else "evaluator_ann"
        lines.append(f"| evaluator {i + 1} | {ev.get('kind')} | {_pct(ev.get('val_acc'))} | {_pct(paper_acc.get(key))} |")
    lines += defence_lines(models)
    lines += model_source_lines(models)
    names = list(attacks)
    worst = results.get("worst_case") or {}
    if worst:
        lines += ["", "## Worst case over the attacks on the target", "",
                  "The most any attack leaked, per metric (the audit's headline; each attack's own row below): "
                  + ", ".join(f"{METRIC_LABELS[m]} {_pct(w['value'])} % ({w['attack']})" for m, w in worst.items() if m in METRIC_LABELS) + "."]
        lines += degenerate_caution(attacks, worst)
    lines += ["", "## Attacks (%; ours as mean ± std over seeds, paper ± over Bernoulli re-draws)", ""]
    invalid = [n for n in names if not attacks[n].get("valid", True)]
    if invalid:
        lines += [f"**Not valid: {', '.join(invalid)}.** " + "; ".join(dict.fromkeys(attacks[n].get("invalid_reason", "") for n in invalid))
                  + ". These numbers are shown, but they do not measure leakage.", ""]
    lines.append("| metric | " + " | ".join(f"{n} ours{' (NOT VALID)' if n in invalid else ''} | {n} paper" for n in names) + " |")
    lines.append("|---|" + "---|---|" * len(names))
    for m in METRICS:
        cells = []
        for n in names:
            a = attacks[n]
            p = (paper_attack(fam, n) or {}).get(m)
            cells += [_pct(a.get(m), a.get(f"{m}_std")), _pct(*p) if p else "–"]
        lines.append(f"| {METRIC_LABELS[m]} | " + " | ".join(cells) + " |")
    for key, label, fmt in (
        ("target_confidence", "target confidence", lambda v: _pct(v)),
        ("iterations", "iterations", lambda v: f"{v}"),
        ("seconds_per_iteration", "seconds / iteration", lambda v: f"{v:.3f}"),
        ("queries", "queries (query attacks)", lambda v: f"{v}"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{fmt(attacks[n][key])} | –" if key in attacks[n] else "– | –" for n in names) + " |")
    spread = [n for n in names if "attack_acc_evaluator_std" in attacks[n]]
    if spread:
        lines += ["", "Spread across evaluators (std of attack accuracy): " + ", ".join(f"{n} {_pct(attacks[n]['attack_acc_evaluator_std'])}" for n in spread) + "."]
    redraw = [n for n in names if "attack_acc_redraw_std" in attacks[n]]
    if redraw:
        lines += ["", "Bernoulli re-draws of X_p (the paper's ±): " + ", ".join(
            f"{n} attack acc {_pct(attacks[n]['attack_acc_redraw_mean'], attacks[n]['attack_acc_redraw_std'])}, "
            f"top-3 {_pct(attacks[n]['top3_acc_redraw_mean'], attacks[n]['top3_acc_redraw_std'])}" for n in redraw) + "."]
    lines += diagnostic_lines(attacks, names)
    lines += ["", "## Notes", ""] + notes(results)
    if "hardware" in results:
        lines += ["", "## Hardware validation (NetX export on the Lava simulator)", ""] + hardware_lines(results["hardware"])
    if "membership" in results:
        lines += ["", "## Membership inference", ""] + membership_lines(results["membership"])
    if figures:
        lines += ["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures]
    timings = results.get("timings_s", {})
    if timings:
        lines += ["", "## Timings (s)", "", ", ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    return "\n".join(lines) + "\n"


def degenerate_caution(attacks: Mapping[str, Any], worst: Mapping[str, Any]) -> list[str]:
    """A warning under the headline when at least half the classes of every attack that sets it
    are degenerate (``nmprivacy.evaluation.diagnostics``): the figure is then a lower bound the
    evaluators could not judge, not evidence that little leaks."""
    heads = dict.fromkeys(w["attack"] for m, w in worst.items() if m in METRIC_LABELS)
    notes = []
    for n in heads:
        d = (attacks.get(n) or {}).get("diagnostics")
        if not d or not d.get("per_class"):
            return []  # a headline attack without diagnostics (e.g. MI-Face): nothing to warn from
        bad, total = len(d["degenerate"]), len(d["per_class"])
        if 2 * bad < total:
            return []
        kinds = sorted({f for flags in d["degenerate"].values() for f in flags})
        notes.append(f"{n}: {bad} of {total} classes ({', '.join(kinds)})")
    return ["", "**Caution: the headline is a lower bound here.** Most classes of the attacks behind it are degenerate ("
            + "; ".join(notes) + "): the evaluators cannot judge such reconstructions, so a low figure is not evidence that "
            "little leaks: the attacks found only inputs the target accepts but no evaluator recognises (see Diagnostics)."] if notes else []


def ensemble_cost(result: Mapping[str, Any], classes: int) -> str:
    """One line on what ``bl-auto`` cost (first seed): the whole ensemble, per class, and as a
    multiple of its ``bl-v2:default`` member (one fixed BL-v2 run, timed in the same process), with
    each member's seconds."""
    total = float(result.get("seconds", 0.0))
    members = result.get("member_seconds") or {}
    text = f"{total:.1f} s for the ensemble's members ({total / max(classes, 1):.2f} s per class"
    one = members.get("bl-v2:default")
    if one:
        text += f"; {total / one:.1f}x one BL-v2 run, its `bl-v2:default` member's {one:.2f} s"
    text += ")"
    if members:
        text += "; members " + ", ".join(f"{m} {sec:.2f} s" for m, sec in members.items())
    return text


def diagnostic_lines(attacks: Mapping[str, Any], names: list[str]) -> list[str]:
    """The per-class diagnostics of the spiking attacks (``nmprivacy.evaluation.diagnostics``):
    degenerate reconstructions named, never a silent low score; bl-auto's winners and its prior alone."""
    lines: list[str] = []
    for n in names:
        d = attacks[n].get("diagnostics")
        if not d:
            continue
        dens = [r["density"] for r in d["per_class"]]
        bad = d["degenerate"]
        what = ("; ".join(f"class {c}: {', '.join(f)}" for c, f in bad.items())) if bad else "none"
        lines.append(f"- {n}: reconstruction density {min(dens):.3f}-{max(dens):.3f} (data {d['data_density']:.3f}); degenerate classes: {what}")
        if "winners" in attacks[n]:
            counts: dict[str, int] = {}
            for w in attacks[n]["winners"].values():
                counts[w] = counts.get(w, 0) + 1
            prior = attacks[n].get("prior_alone", {})
            lines.append(f"  - winning members (chosen by target confidence, prior `{attacks[n].get('prior')}`): "
                         + ", ".join(f"{w} x{c}" for w, c in counts.items())
                         + f"; the prior alone scores attack accuracy {_pct(prior.get('attack_acc'))} %, DAA {_pct(prior.get('daa'))} %;"
                         + f" {ensemble_cost(attacks[n], len(attacks[n]['winners']))}")
        parts = attacks[n].get("parts") or {}
        if parts:
            lines.append("  - each member alone (the fixed attack it is; counted in the worst case): "
                         + ", ".join(f"{p} {_pct(v.get('attack_acc'))} / {_pct(v.get('daa'))} %" for p, v in parts.items())
                         + " (attack accuracy / DAA)")
    return ["", "## Diagnostics", ""] + lines if lines else []


def notes(results: Mapping[str, Any]) -> list[str]:
    """Known deviations from the paper's set-up that the numbers above depend on."""
    models = results.get("models", {})
    target = models.get("target", {})
    out = [
        f"- Target neurons reset {target.get('reset')} (Loihi/Lava); the paper's snnTorch target subtracts the threshold.",
        f"- Budget `{results.get('budget')}`: training schedules from `nmprivacy.presets` (`--paper` for the published ones).",
    ]
    pads = {e.get("config", {}).get("padding") for e in models.get("evaluators", []) if isinstance(e.get("config"), dict)}
    if pads - {0, None}:
        out.append(f"- Evaluator convolutions use padding {sorted(pads - {0, None})}: the input is too small for two unpadded 5x5 convolutions.")
    attacks = results.get("attacks", {})
    variant = results.get("variant")
    named = "`default` settings of the `auto` variant" if variant == "auto" else f"`{variant}` attack variant"

    def run_by(name: str) -> str:
        by = attacks.get(name, {}).get("run_by")
        return f" Run once, as `{by}` (bit for bit this attack), and scored as both." if by else ""

    v1 = attacks.get("bl-v1", {}).get("settings")
    if isinstance(v1, Mapping):
        mask = "Bernoulli(P)" if v1.get("mask") == "bernoulli" else f"threshold 1[P >= {v1.get('eta')}]"
        out.append(f"- BL-v1 ({named}, docs/method.md §5.7): mask {mask}, {v1.get('iterations')} iterations.{run_by('bl-v1')}")
    if variant == "auto" and "bl-auto" in attacks:
        out.append("- Variant `auto`: no attack variant is chosen; `bl-auto` runs every variant of BL-v1 and BL-v2 per class "
                   "(docs/method.md §5.8) and each of its members counts in the worst case.")
    v2 = attacks.get("bl-v2", {}).get("settings")
    if isinstance(v2, Mapping):
        out.append(
            f"- BL-v2 ({named}): lr {v2.get('lr')}, X_p starts at {v2.get('init')}, accumulator "
            f"`{v2.get('accumulator')}`, population weights `{v2.get('variant')}`, loss `{v2.get('loss')}`; "
            f"the reconstruction is one Bernoulli sample of the {'best-scoring' if v2.get('keep', 'last') == 'best' else 'final'} X_p "
            f"per class (see the confidence curves).{run_by('bl-v2')}"
        )
    if results.get("domain") == "image":
        out.append("- Image evaluators judge spike reconstructions rate-decoded (mean over T); MI-Face images are min-max scaled to [0, 1].")
    else:
        out.append("- Spiking evaluators judge the spike reconstructions directly (per-step softmax of the output membrane, averaged over T).")
    return out


def membership_lines(mia: Mapping[str, Any]) -> list[str]:
    """Key figures of ``nmprivacy mia``'s result (details in membership/mia.md beside the report)."""
    t = mia.get("target", {})
    lines = [f"Threat `{mia.get('threat')}`, oracle `{mia.get('oracle')}`, {mia.get('references')} reference models; target train / test accuracy "
             f"{_pct(t.get('train_acc'))} / {_pct(t.get('test_acc'))} %.", "",
             "| attack | AUC | TPR at 0.1 % FPR | TPR at 1 % FPR |", "|---|---|---|---|"]
    for name, a in mia.get("attacks", {}).items():
        tpr = a.get("tpr_at_fpr", {})
        lines.append(f"| {name} | {a.get('auc', float('nan')):.3f} | {_pct(tpr.get('0.001'))} % | {_pct(tpr.get('0.01'))} % |")
    from nmprivacy.mia.report import membrane_check, silent_note

    caution = silent_note(t.get("silent_output"))
    lines += ["", f"Caution: {caution}."] if caution else []
    check = membrane_check(mia)
    if check:
        why = "scored because the counts are mostly silent" if caution else "what the read-out holds beyond the counts"
        lines += ["", f"Through the membrane (white-box; {why}): " + "; ".join(
            f"{name} AUC {a.get('auc', float('nan')):.3f}, TPR at 1 % FPR {_pct(a.get('tpr_at_fpr', {}).get('0.01'))} %"
            for name, a in check.get("attacks", {}).items()) + "."]
    return lines + ["", "Details: [membership/mia.md](membership/mia.md)."]


def hardware_lines(hw: Mapping[str, Any]) -> list[str]:
    """Key figures of ``hw_export.validate``'s result (details in validation.md beside the report)."""
    e = hw.get("export") or {}
    lines = [
        f"- export fidelity on {e.get('lava_samples')} test inputs: {e.get('total_mismatches')} spike mismatches, "
        f"output-class agreement {_pct(e.get('class_agreement'))} %, accuracy torch {_pct(e.get('accuracy_torch'))} % vs Lava {_pct(e.get('accuracy_lava'))} %",
    ]
    a = hw.get("attack")
    if a:
        lines.append(f"- BL-v2 reconstructions on Lava: attacked class hit {_pct(a.get('lava_hit_rate'))} % (emulation {_pct(a.get('torch_hit_rate'))} %), "
                     f"{a.get('samples_on_lava')} samples on Lava")
    lines.append("- details: [validation.md](validation.md)")
    return lines


def write_report(out: Path, results: Mapping[str, Any], inversions: Mapping[str, Inversion], class_names: list[str], events: bool) -> Path:
    """Write the figures and ``report.md`` into ``out``; returns the report's path."""
    figures = write_figures(out, inversions, class_names, events)
    curves = {n: a["leakage_vs_queries"] for n, a in results.get("attacks", {}).items() if a.get("leakage_vs_queries")}
    if curves:  # query attacks: evaluator metrics after 1e2, 1e3, ... chip queries
        from nmprivacy.evaluation.leakage import leakage_figure

        figures.append(leakage_figure(curves, out / "leakage-vs-queries.png", chance=1 / max(len(class_names), 1)))
    return atomic_write_text(out / "report.md", markdown(results, figures))
