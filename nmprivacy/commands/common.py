"""The options every subcommand shares, defined once.

Each group is added by one function and read back by one function, so a flag means the same on
every subcommand that has it (README's command table lists them once):

- data (``add_data``/``data_options``): ``--dataset``, ``--data-root``, ``--option KEY=VALUE``
  (loader options), ``--limit-train``, ``--limit-test``;
- run (``add_run``/``apply_run``): ``--seed``, ``--set NAME=VALUE`` (dotted settings of the
  data set's preset, the same names as ``nmprivacy study``), ``--cache``, ``--threads``,
  ``--progress``/``--no-progress`` (default: bars only when stderr is a terminal, tqdm's rule);
- budget (``add_budget``): ``--budget quick|default|paper`` with the shortcuts ``--quick``/``--paper``;
- variant (``add_variant``): the attack settings' variant;
- NIR (``add_dt``): ``--dt``, the time step of a NIR graph read or written.

Old spellings keep working for one release and print one deprecation line (``deprecated``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from nmprivacy.errors import NmprivacyError

BUDGETS = ("quick", "default", "paper")
VARIANTS = ("default", "paper", "reference", "auto")  # nmprivacy.presets.VARIANTS (kept here so --help imports no torch)


def parse_value(text: str) -> Any:
    """A command-line value as YAML reads it: ``0.1`` or ``1e-4`` a float, ``10`` an int,
    ``true`` a bool, ``null`` None, else the string."""
    from nmprivacy.study.spec import parse_value as _parse

    return _parse(text)


def parse_pairs(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``; one-line error naming ``flag`` for a pair without ``=``."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise NmprivacyError(f"{flag} expects KEY=VALUE, got '{pair}' (e.g. {flag} {'steps=50' if flag == '--option' else 'bl_v2.lr=0.1'})")
        out[key.strip()] = parse_value(raw)
    return out


class _Deprecated(argparse.Action):
    """An old flag: stores into ``dest`` like the new one and says, once, which flag replaces it."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(*args, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        deprecated(f"{option} is deprecated and will be removed in the next release: use {self.new}")
        setattr(namespace, self.dest, values)


def deprecated(message: str) -> None:
    """Print one deprecation line to stderr."""
    print(f"warning: {message}", file=sys.stderr)


def add_data(p: argparse.ArgumentParser, required: bool = False, default: str | None = None, what: str = "data set name") -> None:
    """``--dataset``, ``--data-root``, ``--option``, ``--limit-train``, ``--limit-test``."""
    hint = f" (default: {default})" if default else ""
    p.add_argument("--dataset", required=required, default=default, help=f"{what}, e.g. digits, digits-28, fashion-mnist, att-faces, nmnist, "
                   f"fashion-mnist-saccade ('nmprivacy data list'){hint}")
    p.add_argument("--data-root", default=None, help="folder holding the data-set files (else $NMPRIVACY_DATA, ~/.nmprivacy/data, /usr/share/datasets)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="loader option, e.g. steps=50, polarity=both, frame_us=1000, "
                   "denoise_us=0, clamp=false, downsample=4, seed=1, variant=olivetti (repeatable; 'nmprivacy data info' lists a set's options)")
    p.add_argument("--limit-train", type=int, default=None, metavar="N", help="at most N class-balanced training samples")
    p.add_argument("--limit-test", type=int, default=None, metavar="N", help="at most N class-balanced test samples")


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The loader options of ``add_data``'s flags (``--option`` pairs plus the limits)."""
    options = {k.replace("-", "_"): v for k, v in parse_pairs(getattr(args, "option", None), "--option").items()}
    for name in ("limit_train", "limit_test"):
        value = getattr(args, name, None)
        if value is not None:
            if value < 1:
                raise NmprivacyError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
            options[name] = value
    return options


def add_run(p: argparse.ArgumentParser, seed_help: str = "seed (default 0)", threads_help: str | None = None, seed_default: int | None = 0,
            settings: bool = True) -> None:
    """``--seed`` and ``--set`` (unless ``settings`` is False: a command that uses no preset),
    ``--cache``, ``--threads``, ``--progress``/``--no-progress``."""
    if settings:
        p.add_argument("--seed", type=int, default=seed_default, help=seed_help)
        p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="sets",
                       help="a setting of the data set's preset by dotted name, e.g. bl_v2.lr=0.1, bl_v1.eta=0.2, snn_train.epochs=3, "
                       "hidden=128, steps=50 (repeatable; the names of 'nmprivacy study')")
    p.add_argument("--cache", default=None, help="cache folder for preprocessed data and trained models "
                   "(default: $NMPRIVACY_CACHE, else the user cache folder, e.g. ~/.cache/nmprivacy)")
    p.add_argument("--threads", type=int, default=None, help=threads_help or "torch threads (default: the CPUs this process may use that "
                   "are not busy with other processes)")
    bars = p.add_mutually_exclusive_group()
    bars.add_argument("--progress", dest="progress", action="store_const", const=True, help="progress bars even when stderr is not a terminal")
    bars.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no progress bars")
    p.set_defaults(progress=None)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--set`` settings as ``{dotted name: value}`` (``nmprivacy.presets.resolve``'s overrides)."""
    return parse_pairs(getattr(args, "sets", None), "--set")


def apply_run(args: argparse.Namespace) -> None:
    """Make the run options process-wide before any work: the progress mode and the cache folder
    (``$NMPRIVACY_CACHE``, which the data and model caches read); check the ``--set`` settings."""
    from nmprivacy.progress import set_progress

    set_progress(getattr(args, "progress", None))
    if getattr(args, "cache", None):
        os.environ["NMPRIVACY_CACHE"] = str(args.cache)
    if getattr(args, "sets", None) and getattr(args, "sets_are_preset", True):  # a study's --set may also name audit fields; it checks its cells itself
        from nmprivacy.presets import check_overrides

        check_overrides(overrides(args))  # a bad --set fails before any data or model is loaded


def add_budget(p: argparse.ArgumentParser) -> None:
    """``--budget quick|default|paper`` and its shortcuts ``--quick``, ``--paper``."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--budget", choices=BUDGETS, default=None, help="training schedules and attack lengths (default: default, fits a 2-core CPU)")
    group.add_argument("--quick", dest="budget", action="store_const", const="quick", help="= --budget quick: a tiny smoke run")
    group.add_argument("--paper", dest="budget", action="store_const", const="paper", help="= --budget paper: the paper's full schedules")


def budget(args: argparse.Namespace) -> str:
    """The budget the flags ask for (``default`` when none)."""
    return getattr(args, "budget", None) or "default"


def add_variant(p: argparse.ArgumentParser, audit: bool = False) -> None:
    """``--variant``: which attack settings (``nmprivacy.presets.attack_variant``); ``auto`` (the
    audit's default) only where a run can hold the ``bl-auto`` ensemble (audit, study)."""
    text = ("attack settings: auto (the default: BL-v1 and BL-v2 with the default settings, plus bl-auto, the per-class ensemble over "
            "every variant, whose members count in the worst case), default (chosen by measurement, docs/method.md §5.7), paper (as "
            "written) or reference (the published code's)") if audit else (
        "attack settings: default (chosen by measurement, docs/method.md §5.7; the default), paper (as written) or reference (the "
        "published code's); auto is the audit's (or use --attack bl-auto)")
    p.add_argument("--variant", choices=VARIANTS, default=None, help=text)


def variant(args: argparse.Namespace, default: str | None = None) -> str:
    """The variant the flags ask for (``default``, else ``nmprivacy.presets.DEFAULT_VARIANT``, when none)."""
    from nmprivacy.presets import DEFAULT_VARIANT

    return getattr(args, "variant", None) or default or DEFAULT_VARIANT


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``: where models train (cpu, the default: snn-lava's sparse engine; cuda: slayer's CUDA path)."""
    p.add_argument("--device", default="cpu", help="where models train: cpu (default) or cuda / cuda:N (a GPU, when torch sees one)")


def add_dt(p: argparse.ArgumentParser) -> None:
    """``--dt``: the time step of a NIR graph (NIR has none)."""
    p.add_argument("--dt", type=float, default=None, help="time step in seconds of a NIR graph read or written (default 1e-3, Norse's; "
                   "snnTorch exports for 1e-4)")


def add_deprecated(p: argparse.ArgumentParser, old: str, new: str, dest: str, type: Any = None) -> None:
    """An old spelling ``old`` of ``new`` (same ``dest``), hidden from --help, with a deprecation line when used."""
    p.add_argument(old, dest=dest, type=type, action=_Deprecated, new=new, help=argparse.SUPPRESS)


def command_line(subcommand: str) -> str | None:
    """The command this process runs, shell-quoted (``nmprivacy study spec.yaml --out ...``), to
    record beside its results; None when it was not started as ``nmprivacy ... <subcommand> ...``
    (called from Python)."""
    import shlex

    return "nmprivacy " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if subcommand in sys.argv[1:] else None


def parse_list(text: str | None, flag: str) -> tuple[str, ...] | None:
    """``"a,b"`` -> ``("a", "b")`` (None stays None); one-line error for an empty list."""
    if text is None:
        return None
    items = tuple(a.strip() for a in text.split(",") if a.strip())
    if not items:
        raise NmprivacyError(f"{flag} is empty: give a comma-separated list")
    return items
