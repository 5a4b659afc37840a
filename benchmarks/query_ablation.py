"""``python -m benchmarks.query_ablation``: bl-v2-query design variants on one target, scored.

Runs ``bl-v2-query`` with the preset defaults changed by each variant (a JSON list of
``BLv2QuerySettings`` field overrides, e.g. ``[{"grid": 14}, {"antithetic": false}]``) on every
class of a NetX file's emulation, for each seed, and scores the result and every trace snapshot
with the data set's cached evaluation classifiers (the audit's: ``runs/cache`` by default, seeds
1..N). Prints one line per run and writes the runs to ``--json``. docs/query-attack.md quotes
its output.

Usage: ``python -m benchmarks.query_ablation --dataset digits-28 --model runs/q/digits-28.net
--variants '[{}, {"grid": null}]' --seeds 0 1 --json FILE``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from typing import Any, Sequence


def run_variants(dataset: str, model_path: str, variants: Sequence[dict[str, Any]], seeds: Sequence[int], evaluators: int = 3,
                 cache: str | None = None, steps: int | None = None) -> list[dict[str, Any]]:
    """One record per (variant, seed): settings overrides, metrics, queries, seconds, leakage curve."""
    from hw_export.netx_emulation import load_netx
    from nmprivacy.attacks.blv2_query import BrainLeaksV2Query
    from nmprivacy.cache import cache_root
    from nmprivacy.trained import evaluator_kind, train_evaluators
    from nmprivacy.data import load_dataset
    from nmprivacy.evaluation.leakage import leakage_curve
    from nmprivacy.evaluation.scoring import score, summarize, target_confidence
    from nmprivacy.presets import preset_for

    splits = load_dataset(dataset)
    preset = preset_for(dataset)
    steps = steps or preset.steps
    judges = [tm.model for tm in train_evaluators(evaluator_kind(splits.domain), splits, preset, evaluators, 0, steps, cache_root(cache))]
    model = load_netx(model_path)
    classes = list(range(model.info.num_classes))
    records = []
    for variant in variants:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in variant.items()}
        settings = replace(preset.bl_v2_query, **fields)
        for seed in seeds:
            start = time.perf_counter()
            inv = BrainLeaksV2Query(settings, steps=steps).run(model, classes, seed=seed)
            seconds = time.perf_counter() - start
            metrics = summarize([[score(j, inv.reconstructions, classes, seed, steps) for j in judges]])
            curve = leakage_curve(judges, inv.trace, classes, seed, steps)
            record = {"variant": variant, "seed": seed, **metrics, "target_confidence": target_confidence(model, inv),
                      "queries": inv.queries, "seconds": seconds, "adoptions": inv.config.get("adoptions"),
                      "density": float(inv.probabilities.mean()), "leakage_vs_queries": curve}
            records.append(record)
            points = ", ".join(f"{p['queries']}: {100 * p['attack_acc']:.0f}" for p in curve)
            print(f"{json.dumps(variant)} seed {seed}: attack acc {100 * metrics['attack_acc']:.1f} top-3 {100 * metrics['top3_acc']:.1f} "
                  f"DAA {100 * metrics['daa']:.1f} | {inv.queries} queries, {seconds:.0f} s | attack acc after queries {{{points}}}", flush=True)
    return records


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks.query_ablation") -> int:
    """Command-line entry (module docstring)."""
    from nmprivacy.runinfo import atomic_write_json, run_metadata

    p = argparse.ArgumentParser(prog=prog, description="bl-v2-query design variants on one NetX target, scored by the cached evaluators.")
    p.add_argument("--dataset", required=True, help="data set the target was trained on (its evaluators judge)")
    p.add_argument("--model", required=True, help="NetX file of the target")
    p.add_argument("--variants", default="[{}]", help="JSON list of BLv2QuerySettings overrides (default: the preset)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="attack seeds (default 0)")
    p.add_argument("--evaluators", type=int, default=3, help="evaluators (default 3)")
    p.add_argument("--cache", default="runs/cache", help="checkpoint cache of the evaluators (default runs/cache)")
    p.add_argument("--json", help="write the records to this file")
    args = p.parse_args(argv)
    records = run_variants(args.dataset, args.model, json.loads(args.variants), args.seeds, args.evaluators, args.cache)
    if args.json:
        atomic_write_json(args.json, {"runs": records, **run_metadata(config=vars(args), seed=args.seeds[0])})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
