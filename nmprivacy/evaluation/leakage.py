"""Leakage vs queries: a query attack's trace snapshots scored by the evaluation classifiers.

A ``QueryTrace`` (``nmprivacy.attacks.query_oracle``) holds the X_p a query attack would have
returned after ``queries[s]`` chip queries; each snapshot is scored like a finished attack (one
Bernoulli sample, every evaluator), which answers "how many queries until the training classes
leak". ``leakage_figure`` draws the curves of several runs (attack accuracy and DAA against
queries, log scale).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from nmprivacy.attacks.query_oracle import QueryTrace
from nmprivacy.evaluation.scoring import coerce_reconstructions, score, summarize
from nmprivacy.models.base import TargetModel
from nmprivacy.runinfo import atomic_path


def leakage_curve(judges: Sequence[TargetModel], trace: QueryTrace, classes: Sequence[int], seed: int, steps: int | None = None) -> list[dict[str, Any]]:
    """Per snapshot: ``queries`` (total, all classes), ``visible_confidence`` (the attacker's
    mean confidence in the attacked class) and the evaluator metrics (``attack_acc``,
    ``top3_acc``, ``avg_conf``, ``daa``; mean over ``judges``, ``<m>_evaluator_std`` with several)."""
    curve = []
    shape = judges[0].info.input_shape
    for s, queries in enumerate(trace.queries.tolist()):
        xp = coerce_reconstructions(trace.probabilities(s), shape, len(classes), "the query trace")  # e.g. a flat NetX input -> the judges' images
        metrics = summarize([[score(j, xp, classes, seed, steps) for j in judges]])
        curve.append({"queries": int(queries), "visible_confidence": float(trace.confidence[s].mean()), **metrics})
    return curve


def load_trace(path: str | Path) -> QueryTrace | None:
    """The ``QueryTrace`` saved in an inversion file (``nmprivacy.attacks.io``), None if it has none."""
    import torch

    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or "trace_rates" not in data:
        return None
    rates = data["trace_rates"].float()
    return QueryTrace(queries=data["trace_queries"], confidence=data["trace_confidence"], rates=rates,
                      steps=int(data["reconstructions"].shape[1]), bins=int(rates.shape[2]))


def leakage_figure(curves: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, chance: float | None = None) -> Path:
    """PNG of attack accuracy and DAA against queries (log x), one line per named curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric, label in zip(axes, ("attack_acc", "daa"), ("attack accuracy", "DAA")):
        for name, curve in curves.items():
            q = [p["queries"] for p in curve]
            ax.plot(q, [100 * p[metric] for p in curve], marker="o", label=name)
        if chance is not None:
            ax.axhline(100 * chance, color="0.6", linestyle=":", linewidth=1, label="chance")
        ax.set_xscale("log")
        ax.set_xlabel("chip queries (all classes)")
        ax.set_ylabel(f"{label} (%)")
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("leakage vs queries", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
