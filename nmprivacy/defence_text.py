"""A trained model's defence record (``TrainReport.dp`` and ``.defences``, as in its run record) in
words: the lines the audit's ``report.md`` and membership's ``mia.md`` print under "Training defences"."""

from __future__ import annotations

from typing import Any, Mapping


def model_defence_lines(label: str, record: Mapping[str, Any]) -> list[str]:
    """The defence lines (``- label: ...``) of one trained model's record: DP-SGD's privacy spent
    and its mechanism, then the free defences; none for a model trained without any. A loaded
    target's lines (``training_declared``) say they are what its source declares."""
    out: list[str] = []
    dp, free = record.get("dp"), record.get("defences") or {}
    if dp:
        eps = "∞ (noise multiplier 0: no guarantee)" if dp.get("epsilon") is None else f"{dp['epsilon']:.2f}"
        out.append(f"- {label}: DP-SGD, ε = {eps} at δ = {dp['delta']:.2g} ({dp.get('delta_rule', '')}; noise multiplier "
                   f"{dp['noise_multiplier']:.3g}, clipping {dp['max_grad_norm']:g}, {dp['steps']} steps at sample rate "
                   f"{dp['sample_rate']:.3g}, {dp['accountant'].upper()} accountant{'' if dp.get('poisson', True) else ', shuffled batches: no formal guarantee'})")
    parts = [f"weight decay {free['weight_decay']:g} (AdamW)"] if free.get("weight_decay") else []
    if free.get("dropout"):
        parts.append(f"dropout {free['dropout']:g}" + (f" on {free['dropout_on']}" if free.get("dropout_on") else ""))
    stop = free.get("early_stopping")
    if stop:
        parts.append(f"early stopping (patience {stop['patience']}: {stop['epochs_run']} of {stop['epoch_budget']} epochs run, "
                     f"best epoch {stop['best_epoch']}{' restored' if stop.get('restored_best') else ''})")
    if parts:
        out.append(f"- {label}: {', '.join(parts)}")
    if record.get("training_declared"):
        out = [f"{line} (declared by its file or checkpoint, not verified)" for line in out]
    return out
