"""The ``nmprivacy`` command line: one module per subcommand under ``nmprivacy.commands``.

Each command module defines ``register(subparsers)`` which adds its parser and sets
``func=<callable taking the parsed args and returning an exit code>``. Adding a subcommand is
one new module plus one line in ``COMMANDS``. Heavy imports stay inside the command functions
so that ``--help`` is fast. User mistakes (``NmprivacyError``) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from nmprivacy.errors import NmprivacyError

COMMANDS = (
    "doctor",
    "data",
    "train",
    "attack",
    "evaluate",
    "audit",
    "export",
    "validate",
    "bench",
    "study",
    "mia",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="nmprivacy",
        description="Measure how much private training data leaks out of spiking neural networks.",
    )
    parser.add_argument("--threads", type=int, default=None, dest="global_threads", metavar="N",
                        help="threads to compute with (default: the CPUs this process may use that are not busy with other processes)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"nmprivacy.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"nmprivacy.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` and run the chosen subcommand; returns the exit code."""
    from nmprivacy.progress import flush_lines

    flush_lines()  # stage lines reach `> log.txt` as they happen (Python block-buffers a file)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        requested = getattr(args, "threads", None) or args.global_threads
        if requested is not None and requested < 1:
            raise NmprivacyError(f"--threads must be >= 1, got {requested}")
        from nmprivacy import resources
        from nmprivacy.commands.common import apply_run

        resources.choose(requested)  # before torch starts OpenMP (see nmprivacy.resources)
        apply_run(args)  # progress bars and the cache folder, process-wide
        if args.command != "data":
            from nmprivacy.lava_import import import_lava

            import_lava()
        return int(args.func(args) or 0)
    except NmprivacyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
