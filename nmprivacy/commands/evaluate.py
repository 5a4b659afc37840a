"""``nmprivacy evaluate``: score reconstructions made elsewhere with evaluation classifiers."""

from __future__ import annotations

import argparse
import sys

from nmprivacy.commands.common import add_budget, add_data, add_run, budget, data_options, overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    p = subparsers.add_parser("evaluate", help="score reconstructions (attack accuracy, top-3, confidence, DAA)",
                              description="Score one reconstruction per class with independent evaluation classifiers.")
    p.add_argument("--reconstructions", required=True, help="inversion-*.pt file, or a tensor file [C,H,W] / [C,1,N] images or [C,T,1,N] spikes")
    add_data(p, required=True, what="data set the attacked model was trained on")
    p.add_argument("--evaluator", action="append", default=None, help="evaluator checkpoint folder (repeatable); default: train/reuse --evaluators of them")
    p.add_argument("--evaluators", type=int, default=3, help="evaluators to train or reuse when no --evaluator is given (default 3)")
    add_run(p, seed_help="seed of Bernoulli sampling and rate encoding (default 0)")
    p.add_argument("--steps", type=int, default=None, help="T for rate-encoding images for a spiking evaluator (default: preset)")
    add_budget(p)
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load reconstructions and evaluators, print (and optionally save) the metrics."""
    from nmprivacy.attacks.io import load_reconstructions
    from nmprivacy.trained import evaluator_kind, train_evaluators
    from nmprivacy.cache import cache_root
    from nmprivacy.data import load_dataset
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.evaluation.scoring import load_scorable, score, summarize
    from nmprivacy.presets import resolve
    from nmprivacy.runinfo import atomic_write_json, check_output, run_metadata

    if args.json:
        check_output(args.json)
    load_reconstructions(args.reconstructions)  # a bad file fails before the data set is loaded
    splits = load_dataset(args.dataset, root=args.data_root, **data_options(args))
    recon, classes = load_scorable(args.reconstructions, splits.input_shape, splits.num_classes, f"'{args.dataset}'")
    preset = resolve(args.dataset, budget(args), overrides=overrides(args))
    steps = args.steps or preset.steps
    if args.evaluator:
        from nmprivacy.models.checkpoint import load

        from nmprivacy.models.checkpoint import load_info

        judges = [load(d) for d in args.evaluator]
        accuracies = [load_info(d).get("val_acc") for d in args.evaluator]
        for d, j in zip(args.evaluator, judges):
            if tuple(j.info.input_shape) != tuple(splits.input_shape) or j.info.num_classes != splits.num_classes:
                raise NmprivacyError(f"evaluator {d} takes {tuple(j.info.input_shape)} inputs / {j.info.num_classes} classes but '{args.dataset}' has "
                                     f"{tuple(splits.input_shape)} / {splits.num_classes}: pass evaluators trained on '{args.dataset}'")
    else:
        kind = evaluator_kind(splits.domain)
        train_steps = steps if splits.domain == "image" else None
        trained = train_evaluators(kind, splits, preset, args.evaluators, 0, train_steps, cache_root(args.cache), budget(args))
        judges, accuracies = [tm.model for tm in trained], [tm.record.get("val_acc") for tm in trained]
    from nmprivacy.trained import WEAK_FACTOR, too_weak

    weak = [i + 1 for i, acc in enumerate(accuracies) if too_weak(acc, splits.num_classes)]
    for i in weak:
        print(f"warning: evaluator {i} reaches {100 * accuracies[i - 1]:.1f} % validation accuracy, below {WEAK_FACTOR:g}x chance: "
              "it is too weak to judge, so these scores do not measure leakage", file=sys.stderr)
    per = [score(j, recon, classes, args.seed, steps) for j in judges]
    metrics = summarize([per])
    from nmprivacy.results import METRIC_NAMES

    for name in METRIC_NAMES:
        spread = f" (± {100 * metrics[name + '_evaluator_std']:.2f} across evaluators)" if name + "_evaluator_std" in metrics else ""
        print(f"{name:<10} {100 * metrics[name]:6.2f} %{spread}")
    from nmprivacy.evaluation.leakage import leakage_curve, load_trace

    trace = load_trace(args.reconstructions)  # query attacks: the same metrics after each number of queries
    curve = leakage_curve(judges, trace, classes, args.seed, steps) if trace is not None else None
    for point in curve or []:
        print(f"after {point['queries']:>7} queries: attack_acc {100 * point['attack_acc']:6.2f} %, top3 {100 * point['top3_acc']:6.2f} %, "
              f"daa {100 * point['daa']:6.2f} %, attacker-visible confidence {point['visible_confidence']:.3f}")
    if args.json:
        atomic_write_json(args.json, {"reconstructions": args.reconstructions, "dataset": args.dataset, "per_evaluator": per, **metrics, "weak_evaluators": weak,
                                      **({"leakage_vs_queries": curve} if curve is not None else {}),
                                      **run_metadata(config=vars(args) | {"func": None, "overrides": overrides(args)}, seed=args.seed)})
    return 0
