"""``nmprivacy bench <benchmark> [options]``: run one of the project's benchmarks.

Each benchmark is a module under ``benchmarks/`` with ``main(argv) -> int``; everything after
the benchmark name is passed to it (``nmprivacy bench attack-cost --help`` lists its options).
"""

from __future__ import annotations

import argparse
import importlib
import inspect

from nmprivacy.errors import NmprivacyError

BENCHMARKS: dict[str, tuple[str, str]] = {
    "attack-cost": ("benchmarks.attack_cost", "seconds per attack iteration: reference structure vs nmprivacy vs matmul roofline"),
    "lava-throughput": ("benchmarks.lava_throughput", "samples/s of the Lava CPU simulator path and its torch emulation"),
    "train-cost": ("benchmarks.train_cost", "samples/s of snn-lava training: sparse engine vs slayer's dense CPU path, idle and beside busy loops"),
    "query-throughput": ("benchmarks.query_throughput", "queries/s of bl-v2-query's emulation and Lava oracles"),
    "contention": ("benchmarks.contention", "slowdown of training, a BL-v2 attack and a Lava validation next to 1 and 3 busy processes"),
    "dp-cost": ("benchmarks.dp_cost", "seconds of one DP-SGD training epoch against a plain one (snn-lava on the sparse engine and on slayer, ann)"),
    "fuzz": ("benchmarks.fuzz", "mutated and hostile files through every reader: tracebacks, memory blow-ups, hangs, partial outputs"),
}


def load_benchmark(name: str):
    """The module of benchmark ``name``; NmprivacyError if unknown or not installed."""
    if name not in BENCHMARKS:
        raise NmprivacyError(f"unknown benchmark '{name}': choose one of {', '.join(BENCHMARKS)}")
    module_name = BENCHMARKS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (module_name, "benchmarks"):
            path = module_name.replace(".", "/") + ".py"
            raise NmprivacyError(
                f"benchmark '{name}' is not available: {path} is missing from this checkout (run from the repository with an editable install)"
            ) from None
        raise
    if not callable(getattr(module, "main", None)):
        raise NmprivacyError(f"benchmark '{name}' ({module_name}) has no main(argv): update the checkout")
    return module


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark with the remaining arguments."""
    module = load_benchmark(args.benchmark)
    argv = list(args.options)
    if "prog" in inspect.signature(module.main).parameters:
        return int(module.main(argv, prog=f"nmprivacy bench {args.benchmark}") or 0)
    return int(module.main(argv) or 0)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the CLI."""
    lines = "\n".join(f"  {name:16} {doc}" for name, (_, doc) in BENCHMARKS.items())
    p = subparsers.add_parser(
        "bench",
        help="run a benchmark (" + ", ".join(BENCHMARKS) + ")",
        description=f"Run a benchmark; options after its name go to it.\n\nbenchmarks:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("benchmark", choices=tuple(BENCHMARKS), help="which benchmark")
    p.add_argument("options", nargs=argparse.REMAINDER, help="options of the benchmark (e.g. --quick --json FILE)")
    p.set_defaults(func=run)
