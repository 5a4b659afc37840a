"""``nmprivacy train``: train one target model or evaluation classifier and save a checkpoint folder."""

from __future__ import annotations

import argparse
from dataclasses import replace

from nmprivacy.model_kinds import MODEL_KINDS

KINDS = tuple(MODEL_KINDS)  # the registry itself imports no torch, so --help stays fast


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train",
        help="train a target model or evaluation classifier and save a checkpoint",
        description="Train a model on a data set (paper topology and schedule from the presets) and "
        "write a checkpoint folder: weights.pt, config.json, run.json (validation accuracy, curves, versions).",
    )
    p.add_argument("--dataset", required=True, help="data set name (e.g. digits, mnist, fashion-mnist, nmnist)")
    p.add_argument("--model", required=True, choices=KINDS, help="model kind")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--budget", default="default", choices=("quick", "default", "paper"), help="preset schedule (default: %(default)s, fits a 2-core CPU)")
    p.add_argument("--epochs", type=int, help="epochs (default: from the preset)")
    p.add_argument("--hidden", type=int, help="hidden units of snn-norse/snn-lava/ann (default: preset, 3000 in the paper; snn-lava-conv has none)")
    p.add_argument("--steps", type=int, help="time steps T of the spike input (default: preset; event data keep their T)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: preset)")
    p.add_argument("--batch-size", type=int, help="batch size (default: preset)")
    p.add_argument("--max-train-samples", type=int, help="train on a seeded random subset of this size")
    p.add_argument("--seed", type=int, default=0, help="seed (evaluators derive their own from it; default %(default)s)")
    p.add_argument("--data-root", help="folder holding the data-set files (else $NMPRIVACY_DATA, ~/.nmprivacy/data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the data, train, evaluate and save; prints the validation accuracy."""
    import torch

    from nmprivacy.data import load_dataset
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.models import default_config
    from nmprivacy.models.checkpoint import check_replaceable, save
    from nmprivacy.presets import preset_for
    from nmprivacy.runinfo import Stopwatch
    from nmprivacy.training import settings_for, train_model

    for name in ("epochs", "hidden", "steps", "batch_size", "max_train_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise NmprivacyError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.lr is not None and not args.lr > 0:
        raise NmprivacyError(f"--lr must be > 0, got {args.lr}")
    check_replaceable(args.out)  # before any work: --out must be new, empty or an older checkpoint
    sw = Stopwatch()
    with sw("load_data"):
        splits = load_dataset(args.dataset, root=args.data_root)
    preset = preset_for(args.dataset, args.budget)
    settings = settings_for(args.model, preset)
    overrides = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "max_train_samples": args.max_train_samples}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    config = default_config(args.model, splits.input_shape, splits.num_classes, args.dataset, hidden=args.hidden or preset.hidden, budget=args.budget)
    steps = args.steps or (preset.steps if splits.domain == "image" else None)
    with sw("train"):
        model, report = train_model(args.model, splits, config, settings, args.seed, steps=steps, progress=not args.no_progress)
    extra = {
        "dataset": args.dataset,
        "data_source": splits.source,
        "budget": args.budget,
        "steps": report.steps,
        "val_acc": report.final_val_accuracy,
        "train_settings": settings,
        "report": report,
        "torch_threads": torch.get_num_threads(),
    }
    if getattr(config, "padding", 0):
        extra["deviation"] = f"evaluator convolutions use padding {config.padding}: input {tuple(config.input_shape)} is too small for two unpadded 5x5 convolutions"
    out = save(model, args.out, extra=extra, seed=args.seed, timings=sw.seconds)
    print(f"{args.model} on {args.dataset}: validation accuracy {report.final_val_accuracy:.4f} "
          f"({report.test_samples} test samples, {report.seconds:.1f} s, {report.samples_per_s:.0f} samples/s); checkpoint {out}")
    return 0
