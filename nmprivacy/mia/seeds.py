"""Membership inference over training seeds (``nmprivacy mia --training-seeds 0,1,2``).

One ``run_mia`` per seed into ``<out>/s<S>`` (each a complete run with its own ``mia.json``;
reference models are cached, so a stopped run resumes), then ``<out>/mia-seeds.json`` and
``<out>/mia-seeds.md``: per seed, the membership models' accuracy on their own training half and on
the held-out records, the share of silent outputs, and each attack's AUC and TPR at 0.1 % / 1 %
FPR through the threat's view and (when the run made one) through the read-out membrane; then the
mean ± std (sample std) over the seeds, pooled by ``nmprivacy.study.table.pool`` as the study's
training-seed replicates are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nmprivacy.errors import NmprivacyError
from nmprivacy.mia.config import MiaConfig, check_config
from nmprivacy.mia.report import fmt, silent_share
from nmprivacy.runinfo import Stopwatch, atomic_write_json, atomic_write_text, run_metadata


def seed_row(mia: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one ``mia.json`` that are compared over seeds: ``target`` (``train_acc``,
    ``test_acc``, ``silent_output``, ``epsilon``: the largest ε of the run's DP-SGD models, None
    without DP-SGD), ``attacks`` and ``membrane`` (per attack ``auc`` and ``tpr_at_fpr``;
    ``membrane`` empty without a membrane check)."""
    def scores(attacks: dict[str, Any]) -> dict[str, Any]:
        return {name: {"auc": r["auc"], "tpr_at_fpr": dict(r["tpr_at_fpr"])} for name, r in attacks.items()}

    t = mia["target"]
    check = mia.get("membrane_check") or {}
    spent = [r["dp"]["epsilon"] for r in mia.get("reference_models") or [] if r.get("dp") and r["dp"].get("epsilon") is not None]
    return {"seed": mia["seed"], "target": {"train_acc": t["train_acc"], "test_acc": t["test_acc"], "silent_output": t.get("silent_output"),
                                            "epsilon": max(spent) if spent else None},
            "attacks": scores(mia["attacks"]), "membrane": scores(check.get("attacks", {}))}


def summarize_seeds(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``mia-seeds.json``'s content for the ``mia.json`` contents ``runs`` (one per training seed):
    ``seeds``, ``per_seed`` (``seed_row`` each) and ``mean`` (their pooled mean, each number with
    a ``<key>_std`` sibling: the sample std over the seeds; one seed gives its own numbers)."""
    from nmprivacy.study.table import pool

    rows = [seed_row(m) for m in runs]
    parts = [{k: v for k, v in r.items() if k != "seed"} for r in rows]
    return {"seeds": [r["seed"] for r in rows], "n": len(rows), "per_seed": rows,
            "mean": parts[0] if len(parts) == 1 else pool(parts), "std_over": "training seeds"}


def _cell(entry: dict[str, Any] | None, key: str = "auc", percent: bool = False) -> str:
    """``mean ± std`` (or one value) of ``entry[key]``, an AUC with 3 decimals or a percentage;
    ``key`` ``"0.01"`` reads the TPR at 1 % FPR."""
    from nmprivacy.study.table import pct

    if not entry:
        return "–"
    holder = entry["tpr_at_fpr"] if key in ("0.001", "0.01") else entry
    value, std = holder.get(key), holder.get(f"{key}_std")
    if percent:
        return pct(value, std)
    return fmt(value) + ("" if std is None else f" ± {fmt(std)}")


def seeds_markdown(summary: dict[str, Any], command: str | None = None) -> str:
    """``mia-seeds.md``: one row per seed and a mean ± std row; per attack AUC / TPR at 1 % FPR
    through the threat's view, then through the membrane."""
    names = list(summary["per_seed"][0]["attacks"])
    membrane = list(summary["per_seed"][0]["membrane"])
    private = any(r["target"].get("epsilon") is not None for r in summary["per_seed"])
    head = ["seed", "target(s) train / held-out (%)"] + (["ε (DP-SGD)"] if private else []) + ["outputs silent"] + [f"{a} AUC / TPR@1 %" for a in names] + [f"membrane {a} AUC / TPR@1 %" for a in membrane]
    lines = [f"# Membership inference over {summary['n']} training seeds", ""]
    if command:
        lines += [f"`{command}`", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(label: str, r: dict[str, Any]) -> str:
        t = r["target"]
        silent = t.get("silent_output")
        spread = t.get("silent_output_std")
        shown = "–" if silent is None else silent_share(silent) if spread is None else f"{100 * silent:.0f} ± {100 * spread:.0f} %"
        eps = [] if not private else ["–" if t.get("epsilon") is None else f"{t['epsilon']:.2f}"]
        cells = [label, f"{_cell(t, 'train_acc', True)} / {_cell(t, 'test_acc', True)}", *eps, shown]
        cells += [f"{_cell(r['attacks'].get(a))} / {_cell(r['attacks'].get(a), '0.01', True)}" for a in names]
        cells += [f"{_cell(r['membrane'].get(a))} / {_cell(r['membrane'].get(a), '0.01', True)}" for a in membrane]
        return "| " + " | ".join(cells) + " |"

    lines += [row(str(r["seed"]), r) for r in summary["per_seed"]]
    if summary["n"] > 1:
        lines.append(row(f"mean ± std (n = {summary['n']})", summary["mean"]))
    lines += ["", "Each seed's full report: `s<seed>/mia.md`; std: sample std over the training seeds."]
    return "\n".join(lines) + "\n"


def run_mia_seeds(config: MiaConfig, seeds: Sequence[int], command: str | None = None) -> dict[str, Any]:
    """Run ``config`` once per training seed in ``seeds`` into ``<config.out>/s<S>`` and write
    ``mia-seeds.json`` and ``mia-seeds.md`` into ``config.out``; returns the summary."""
    from nmprivacy.mia.run import run_mia

    check_config(config)  # a bad setting fails before any run writes a folder
    if not seeds or len(set(seeds)) != len(seeds):
        raise NmprivacyError(f"--training-seeds {','.join(map(str, seeds))}: give distinct seeds, e.g. 0,1,2")
    sw = Stopwatch()
    runs = []
    for s in seeds:
        with sw(f"seed {s}"):
            runs.append(run_mia(dataclasses.replace(config, seed=s, out=str(Path(config.out) / f"s{s}"))))
    summary = summarize_seeds(runs)
    summary.update(run_metadata(config, seed=None, timings=sw.seconds))
    summary["config"]["seed"] = list(seeds)  # the training seeds, one run each
    atomic_write_json(Path(config.out) / "mia-seeds.json", summary)
    atomic_write_text(Path(config.out) / "mia-seeds.md", seeds_markdown(summary, command))
    return summary
