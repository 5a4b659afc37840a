"""``nmprivacy data``: ``info`` (counts, shape, domain, where found) and ``list`` (registered sets)."""

from __future__ import annotations

import argparse
from typing import Any

from nmprivacy.commands.common import add_data, add_run, data_options


def info_lines(splits: Any, density: float) -> list[str]:
    """Human-readable summary of a loaded ``DatasetSplits`` whose input density is ``density``."""
    import torch

    from nmprivacy.data import dataset_names, loader_options

    what = "spikes per voxel" if splits.domain == "events" else "mean pixel value"
    lines = [
        f"data set     {splits.name}",
        f"domain       {splits.domain}",
        f"found at     {splits.source}",
        f"input shape  {'x'.join(map(str, splits.input_shape))} (C, H, W)"
        + (f", T = {splits.train.x.shape[1]} steps" if splits.domain == "events" else ""),
        f"classes      {splits.num_classes}",
        f"samples      train {len(splits.train)}, test {len(splits.test)}",
        *([f"options      {', '.join(loader_options(splits.name))} (--option KEY=VALUE)"] if splits.name in dataset_names() else []),
        *([f"pipeline     {', '.join(f'{k}={v}' for k, v in splits.info['pipeline'].items())}"] if "pipeline" in splits.info else []),
        f"density      {density:.4f} {what} (test split; the `data` value of an audit's diagnostics)",
        f"{'class':<24} {'train':>7} {'test':>7}",
    ]
    n = splits.num_classes
    train_counts = torch.bincount(splits.train.y, minlength=n).tolist()
    test_counts = torch.bincount(splits.test.y, minlength=n).tolist()
    for i, name in enumerate(splits.classes):
        lines.append(f"{i:>3} {name:<20} {train_counts[i]:>7} {test_counts[i]:>7}")
    return lines


def run_info(args: argparse.Namespace) -> int:
    """Load the data set and print counts per split and class, shape, domain and location."""
    import torch

    from nmprivacy.data import load_dataset
    from nmprivacy.evaluation.diagnostics import data_density
    from nmprivacy.runinfo import Stopwatch, atomic_write_json, check_output, run_metadata

    options = data_options(args)
    if args.json:
        check_output(args.json)
    sw = Stopwatch()
    with sw("load"):
        splits = load_dataset(args.dataset, root=args.data_root, **options)
    density = data_density(splits)
    print("\n".join(info_lines(splits, density)))
    if args.json:
        n = splits.num_classes
        record = {
            "dataset": splits.name,
            "domain": splits.domain,
            "source": splits.source,
            "input_shape": list(splits.input_shape),
            "classes": list(splits.classes),
            "train_size": len(splits.train),
            "test_size": len(splits.test),
            "train_per_class": torch.bincount(splits.train.y, minlength=n).tolist(),
            "test_per_class": torch.bincount(splits.test.y, minlength=n).tolist(),
            "info": splits.info,
            "density": density,
            **run_metadata(config={"dataset": args.dataset, "data_root": args.data_root, "options": options}, timings=sw.seconds),
        }
        atomic_write_json(args.json, record)
        print(f"wrote {args.json}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print every registered data set, its domain and whether its files were found."""
    from nmprivacy.data import dataset_status
    from nmprivacy.data.base import REGISTRY

    for name, found, where in dataset_status(args.data_root):
        entry = REGISTRY[name]
        status = "found" if found else "missing"
        detail = where if found else where.split(";")[0]
        print(f"{name:<22} {entry.domain:<7} {status:<8} {detail}")
        if args.verbose:
            print(f"{'':<22} {entry.description}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data info`` and ``data list`` to the CLI."""
    p = subparsers.add_parser("data", help="inspect the data sets (counts, shapes, where the files are)")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    info = sub.add_parser("info", help="counts per split and class, input shape, domain, where the files were found")
    add_data(info, required=True)
    add_run(info, settings=False)
    info.add_argument("--json", help="also write the summary and run record to this JSON file")
    info.set_defaults(func=run_info)
    lst = sub.add_parser("list", help="all registered data sets and whether their files were found")
    lst.add_argument("--data-root", help="extra folder to look for data sets in")
    lst.add_argument("-v", "--verbose", action="store_true", help="also print each data set's description")
    lst.set_defaults(func=run_list)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
