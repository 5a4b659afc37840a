"""``nmprivacy train``: train one target model or evaluation classifier and save a checkpoint folder."""

from __future__ import annotations

import argparse
from dataclasses import replace

from nmprivacy.commands.common import add_budget, add_data, add_deprecated, add_device, add_run, budget, data_options, overrides
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
    add_data(p, required=True)
    p.add_argument("--model", required=True, choices=KINDS, help="model kind")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    add_budget(p)
    p.add_argument("--epochs", type=int, help="epochs (default: from the preset; = --set <schedule>.epochs=N)")
    p.add_argument("--hidden", type=int, help="hidden units of snn-norse/snn-lava/ann (default: preset, 3000 in the paper; snn-lava-conv has none)")
    p.add_argument("--steps", type=int, help="time steps T of the spike input (default: preset; event data keep their T)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: preset)")
    p.add_argument("--batch-size", type=int, help="batch size (default: preset)")
    add_deprecated(p, "--max-train-samples", "--limit-train N (a class-balanced subset)", dest="limit_train", type=int)
    add_run(p, seed_help="seed (evaluators derive their own from it; default 0)")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the data, train, evaluate and save; prints the validation accuracy."""
    import torch

    from nmprivacy.trained import model_config
    from nmprivacy.data import load_dataset
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.models.checkpoint import check_replaceable, save
    from nmprivacy.presets import resolve
    from nmprivacy.runinfo import Stopwatch
    from nmprivacy.training import resolve_device, settings_for, train_model

    for name in ("epochs", "hidden", "steps", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise NmprivacyError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.lr is not None and not args.lr > 0:
        raise NmprivacyError(f"--lr must be > 0, got {args.lr}")
    check_replaceable(args.out)  # before any work: --out must be new, empty or an older checkpoint
    resolve_device(args.device)  # a missing GPU is one line before the data are loaded
    sw = Stopwatch()
    with sw("load_data"):
        splits = load_dataset(args.dataset, root=args.data_root, **data_options(args))
    preset = resolve(args.dataset, budget(args), hidden=args.hidden, overrides=overrides(args))
    flags = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size}
    settings = replace(settings_for(args.model, preset), **{k: v for k, v in flags.items() if v is not None})
    config = model_config(args.model, splits, preset, budget(args))  # with --set target_config.* / ann_quantize, as the audit trains it
    steps = args.steps or (preset.steps if splits.domain == "image" else None)
    with sw("train"):
        model, report = train_model(args.model, splits, config, settings, args.seed, steps=steps, device=args.device)
    extra = {
        "dataset": args.dataset,
        "data_source": splits.source,
        "budget": budget(args),
        "overrides": overrides(args),
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
