"""``dp-cost``: wall time of one DP-SGD training epoch against a plain one, per model kind.

For each kind (default ``snn-lava`` and ``ann``, the pair the defences map compares), trains one
epoch of ``digits`` (1437 images, batch 100: 15 optimiser steps; the audit's hidden width 3000,
T = 25 for spiking kinds) three ways with ``nmprivacy.training.train_model``, each timed by the
report's own ``seconds`` (training loop only, data loading excluded):

- ``plain``: no defence (``snn-lava`` on its default sparse engine);
- ``plain-slayer``: ``snn-lava`` only, on slayer's blocks (``NMPRIVACY_LAVA_ENGINE=slayer``);
- ``dp``: DP-SGD with ``noise_multiplier`` 1.0, clipping 1.0 (Poisson batches, PRV accountant);
  ``snn-lava`` on its sparse engine, whose backward forms the per-sample gradients itself;
- ``dp-slayer``: ``snn-lava`` only, DP-SGD on slayer's blocks, per-sample gradients from Opacus's
  hooks (what ``NMPRIVACY_LAVA_ENGINE=slayer`` runs, and DP-SGD's only path before the engine did).

Every configuration runs ``--repeats`` times (fastest kept; the first DP run also pays Opacus's
import) in this one process, so ratios come from the same conditions. ``--json FILE`` writes the
seconds, ratios and the run record.

Usage: ``nmprivacy bench dp-cost [--kinds snn-lava,ann] [--repeats 2] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence
from unittest import mock

DEFAULT_JSON = Path("runs/bench/dp-cost.json")


def time_epoch(kind: str, mode: str, splits: Any, hidden: int, steps: int, seed: int) -> float:
    """Seconds of one training epoch of ``kind`` in ``mode`` (plain, plain-slayer, dp, dp-slayer)."""
    from nmprivacy.dp_settings import DPSettings
    from nmprivacy.models import default_config, kind_entry
    from nmprivacy.models.snn_lava import ENGINE_ENV
    from nmprivacy.presets import TrainSettings
    from nmprivacy.training import train_model

    config = default_config(kind, splits.input_shape, splits.num_classes, dataset=splits.name, hidden=hidden)
    settings = TrainSettings(epochs=1, batch_size=100, lr=1e-3)
    if mode.startswith("dp"):
        settings = replace(settings, dp=DPSettings(noise_multiplier=1.0, max_grad_norm=1.0))
    spiking = kind_entry(kind).domain == "spikes"
    engine = {ENGINE_ENV: "slayer"} if mode.endswith("-slayer") else {}  # SNNLava reads it when built; restored after
    with mock.patch.dict(os.environ, engine):
        _, report = train_model(kind, splits, config, settings, seed, steps=steps if spiking else None, progress=False)
    return float(report.seconds)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Time plain and DP-SGD epochs per kind; print a table and write ``--json``."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--kinds", default="snn-lava,ann", help="model kinds (default snn-lava,ann)")
    p.add_argument("--dataset", default="digits", help="data set (default digits: 1437 training images)")
    p.add_argument("--hidden", type=int, default=3000)
    p.add_argument("--steps", type=int, default=25, help="T of spiking kinds (default 25)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: nmprivacy.resources)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = p.parse_args(argv)

    import torch

    from nmprivacy import resources
    from nmprivacy.data import load_dataset
    from nmprivacy.runinfo import atomic_write_json, run_metadata

    plan = resources.choose(args.threads)
    splits = load_dataset(args.dataset)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        modes = ("plain", "plain-slayer", "dp", "dp-slayer") if kind.startswith("snn-lava") else ("plain", "dp")
        row: dict[str, Any] = {}
        for mode in modes:
            times = [time_epoch(kind, mode, splits, args.hidden, args.steps, args.seed) for _ in range(args.repeats)]
            row[f"{mode}_s"] = min(times)
            row[f"{mode}_all_s"] = times
        row["dp_over_plain"] = row["dp_s"] / row["plain_s"]
        extra = ""
        if "plain-slayer_s" in row:
            row["dp_over_plain_slayer"] = row["dp_s"] / row["plain-slayer_s"]
            row["dp_slayer_over_dp"] = row["dp-slayer_s"] / row["dp_s"]
            extra = (f"; on slayer's blocks: plain {row['plain-slayer_s']:.2f} s, DP-SGD {row['dp-slayer_s']:.2f} s "
                     f"({row['dp_slayer_over_dp']:.2f}x the sparse engine's DP-SGD)")
        results[kind] = row
        print(f"{kind:10} one epoch of {args.dataset} ({len(splits.train)} samples, batch 100): plain {row['plain_s']:.2f} s, "
              f"DP-SGD {row['dp_s']:.2f} s ({row['dp_over_plain']:.1f}x plain){extra}", flush=True)
    config = {**vars(args), "json": str(args.json), "threads": plan.threads, "threads_reason": plan.reason, "torch_threads": torch.get_num_threads()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.json, {"results": results, "run": run_metadata(config=config, seed=args.seed, timings={"total": time.perf_counter() - started})})
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
