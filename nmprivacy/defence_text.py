"""A trained model's defence record (``TrainReport.dp`` and ``.defences``, as in its run record) in
words: the lines the audit's ``report.md`` and membership's ``mia.md`` print under "Training defences"."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from nmprivacy.models.weight_grid import narrowest_bits


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


def adopted_weights_text(who: str, records: Sequence[Mapping[str, Any]]) -> str | None:
    """A sentence when the weights of ``who`` (the models of ``records``) were taken from cached
    models of another weight precision whose trainings were the same computation (each record's
    ``weights_from``, ``trained.adopt_other_precision``); None when every one was trained as asked."""
    sources = [r["weights_from"] for r in records if r.get("weights_from")]
    if not sources:
        return None
    widest = max(int(src["widest_mantissa"]) for src in sources)
    bits = "/".join(sorted({str(src["weight_bits"]) for src in sources}))
    whose = f"the weights of the cached {bits}-bit model {sources[0]['checkpoint']}" if len(sources) == 1 else \
        f"each the weights of its cached {bits}-bit model (`weights_from` in the record)"
    return (f"{who}: not trained again: {whose}, whose widest weight stayed within {widest} steps of slayer's 2/64 grid in every "
            f"layer throughout its training, so training at any precision from {narrowest_bits(widest)} bits up is the same "
            "computation (docs/method.md §2.3)")
