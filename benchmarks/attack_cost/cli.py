"""``nmprivacy bench attack-cost`` / ``python -m benchmarks.attack_cost``: options, run, write."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch

from benchmarks.attack_cost.config import CONFIGS, BenchOptions, CostConfig
from nmprivacy.errors import NmprivacyError
from nmprivacy.runinfo import atomic_write_json

DEFAULT_JSON = Path("runs/bench/attack-cost.json")


def build_parser(prog: str = "python -m benchmarks.attack_cost") -> argparse.ArgumentParser:
    """Options of the attack-cost benchmark."""
    p = argparse.ArgumentParser(prog=prog, description="Seconds per attack iteration: reference structure vs nmprivacy vs matmul roofline.")
    p.add_argument("--quick", action="store_true", help="smoke run (< 1 minute): 1 iteration, 1 reference sample, small sweeps")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"result file (default {DEFAULT_JSON}); the plot goes beside it")
    p.add_argument("--iterations", type=int, default=None, help="attack iterations per timed run (default: the preset's, a whole attack; quick 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement, the fastest is kept (default 3, quick 1)")
    p.add_argument("--reference-classes", type=int, default=None, help="classes timed for the reference structure")
    p.add_argument("--reference-samples", type=int, default=None, help="BL-v2 samples per timed reference class (default K)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--no-sweeps", action="store_true", help="skip the scaling sweeps")
    p.add_argument("--no-loihi", action="store_true", help="skip BL-v2 on the snn-lava (fixed-point) target")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--configs", default="mnist,nmnist", metavar="A,B",
                   help=f"configurations to time, the first also for the Loihi row and the sweeps (default mnist,nmnist; choose from {', '.join(CONFIGS)})")
    return p


def options_from(args: argparse.Namespace) -> BenchOptions:
    """The measurement options the command line asks for (NmprivacyError for a bad count)."""
    opts = BenchOptions.for_budget(args.quick)
    for field, value in (("iterations", args.iterations), ("repeats", args.repeats), ("reference_classes", args.reference_classes), ("reference_samples", args.reference_samples)):
        if value is not None:
            if value < 1:
                raise NmprivacyError(f"--{field.replace('_', '-')} {value} is invalid: give a positive number")
            opts = replace(opts, **{field: value})
    return replace(opts, seed=args.seed, sweeps=not args.no_sweeps, loihi=not args.no_loihi)


def configs_from(text: str) -> list[CostConfig]:
    """The configurations ``--configs`` names (NmprivacyError naming an unknown one)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        raise NmprivacyError(f"--configs {text!r}: choose from {', '.join(CONFIGS)} (comma-separated)")
    return [CONFIGS[n] for n in names]


def check_folder(folder: Path) -> None:
    """Create the result folder, or fail with a one-line error before minutes of measuring."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NmprivacyError(f"cannot create the result folder {folder} ({exc.strerror}): pass --json in a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise NmprivacyError(f"result folder {folder} is not writable: pass --json in a writable folder")


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks.attack_cost") -> int:
    """Run the benchmark, print the table, write JSON and the sweep plot; returns 0."""
    from benchmarks.attack_cost.measure import measure
    from benchmarks.attack_cost.report import format_table
    from benchmarks.attack_cost.sweeps import plot_sweeps

    args = build_parser(prog).parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise NmprivacyError(f"--threads {args.threads} is invalid: give a positive number of threads")
        torch.set_num_threads(args.threads)
    opts = options_from(args)
    configs = configs_from(args.configs)
    check_folder(args.json.parent)
    report = measure(opts, configs)
    if report.sweeps:
        png = args.json.with_suffix(".png")
        plot_sweeps(report.sweeps, report.peak, png)
        report.figures.append(str(png))
    result = report.to_json()
    atomic_write_json(args.json, result)
    print(format_table(result))
    print(f"wrote {args.json}")
    return 0
