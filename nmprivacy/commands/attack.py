"""``nmprivacy attack``: run one model-inversion attack on a checkpoint or NetX file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``attack`` subcommand."""
    p = subparsers.add_parser("attack", help="invert a trained model for every class (bl-v1, bl-v2, bl-v2-query, mi-face)",
                              description="Run a model-inversion attack and save its reconstructions (tensors only).")
    p.add_argument("--model", required=True, help="checkpoint folder (nmprivacy train), NetX file (*.net) or NIR graph (*.nir)")
    p.add_argument("--dt", type=float, default=None, help="time step in seconds of a NIR --model (default 1e-3)")
    p.add_argument("--attack", required=True, choices=("bl-v1", "bl-v2", "bl-v2-query", "mi-face"), help="attack to run")
    p.add_argument("--oracle", choices=("emulation", "lava"), default="emulation",
                   help="bl-v2-query: query the bit-exact emulation (default) or the NetX file on Lava's fixed_pt simulator")
    p.add_argument("--queries", type=int, default=None, help="bl-v2-query: total query budget over all classes (default: the preset's iterations)")
    p.add_argument("--threat", choices=("counts", "label", "membrane"), default=None,
                   help="bl-v2-query: what the attacker sees per query: output spike counts (default), top-1 label, output membrane")
    p.add_argument("--dataset", default=None, help="data set whose preset settings to use (default: the checkpoint's)")
    p.add_argument("--classes", default=None, help="comma-separated class indices (default: all)")
    p.add_argument("--seed", type=int, default=0, help="attack seed (default 0)")
    p.add_argument("--steps", type=int, default=None, help="time steps T of spike inputs (default: checkpoint's, else preset)")
    p.add_argument("--iterations", type=int, default=None, help="override the preset's iterations (mi-face: maximum)")
    p.add_argument("--variant", choices=("default", "paper", "reference"), default="default",
                   help="attack settings: default (chosen by measurement), paper (as written) or reference (the published code's)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--quick", dest="budget", action="store_const", const="quick", help="smoke-run settings")
    budget.add_argument("--paper", dest="budget", action="store_const", const="paper", help="paper settings")
    p.set_defaults(budget="default")
    p.add_argument("--out", default="inversion.pt", help="output file (default inversion.pt; a .json summary is written beside it)")
    p.set_defaults(func=run)


def load_model(path: str, dt: float | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, metadata with ``dataset``/``steps`` when known) from a checkpoint folder, a NetX file
    or a NIR graph (``nmprivacy.targets.load_target``)."""
    from nmprivacy.targets import load_target

    target = load_target(path, dt=dt)
    return target.model, {"dataset": target.dataset, "steps": target.steps, "netx": target.netx}


def attack_settings(name: str, preset: Any, iterations: int | None) -> Any:
    """The preset's settings of attack ``name`` with an optional iteration override."""
    from dataclasses import replace

    settings = {"bl-v1": preset.bl_v1, "bl-v2": preset.bl_v2, "bl-v2-query": preset.bl_v2_query, "mi-face": preset.mi_face}[name]
    if iterations is None:
        return settings
    return replace(settings, max_iterations=iterations) if name == "mi-face" else replace(settings, iterations=iterations)


def parse_classes(text: str | None, num_classes: int) -> list[int]:
    """Class indices from ``"0,3,5"`` (None: all classes)."""
    from nmprivacy.errors import NmprivacyError

    if text is None:
        return list(range(num_classes))
    try:
        classes = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise NmprivacyError(f"--classes '{text}' is not a comma-separated list of integers (e.g. 0,1,2)") from None
    if not classes or len(set(classes)) != len(classes) or not all(0 <= c < num_classes for c in classes):
        raise NmprivacyError(f"--classes '{text}' must list distinct classes of 0..{num_classes - 1}")
    return classes


def run(args: argparse.Namespace) -> int:
    """Run the attack, write the inversion file and its JSON summary."""
    from nmprivacy.attacks import get_attack
    from nmprivacy.attacks.io import save_inversion
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.presets import attack_variant, preset_for
    from nmprivacy.runinfo import atomic_write_json, check_output, run_metadata

    out = check_output(args.out)  # before any work
    summary_path = out.with_suffix(".json")
    if summary_path == out:
        raise NmprivacyError(f"--out {args.out} must not end in .json: the JSON summary is written beside the inversion file")
    check_output(summary_path)
    model, meta = load_model(args.model, args.dt)
    dataset = args.dataset or meta.get("dataset")
    if not dataset:
        raise NmprivacyError(f"cannot tell which data set {args.model} belongs to: pass --dataset NAME")
    preset = preset_for(dataset, args.budget)
    preset = attack_variant(dataset, preset, args.variant)
    settings = attack_settings(args.attack, preset, args.iterations)
    options = {}
    if model.info.domain == "spikes":
        options["steps"] = args.steps or meta.get("steps") or preset.steps
    if args.attack == "bl-v2-query":
        settings, options["oracle"] = query_setup(args, model, settings, meta.get("netx"))
    attack = get_attack(args.attack, settings, **options)
    classes = parse_classes(args.classes, model.info.num_classes)
    inv = attack.run(model, classes, seed=args.seed)
    final = inv.confidence_curve[-1] if len(inv.confidence_curve) else None
    summary = {
        "attack": inv.attack,
        "model": str(args.model),
        "dataset": dataset,
        "classes": inv.classes,
        "iterations": inv.iterations,
        "seconds_per_iteration": inv.seconds_per_iteration,
        "last_iteration_confidence": final.tolist() if final is not None else None,
        **query_summary(inv),
        **run_metadata(config={**inv.config, "variant": args.variant, "budget": args.budget}, seed=args.seed),
    }
    save_inversion(out, inv)
    try:
        atomic_write_json(summary_path, summary)
    except BaseException:
        out.unlink(missing_ok=True)  # never an inversion file without its summary
        raise
    conf = f", mean target confidence at the last iteration {float(final.mean()):.4f}" if final is not None else ""
    queries = f", {inv.queries} queries to the {inv.oracle} oracle ({inv.threat})" if getattr(inv, "trace", None) is not None else ""
    print(f"{inv.attack}: {len(classes)} classes, {inv.iterations} iterations, {inv.seconds_per_iteration:.4f} s/iteration{queries}{conf}; wrote {out}")
    return 0


def query_setup(args: argparse.Namespace, model: Any, settings: Any, netx: Any = None) -> tuple[Any, Any]:
    """bl-v2-query's settings with ``--queries``/``--threat`` applied, and its oracle factory:
    the emulation of ``model``, or Lava running the NetX file ``netx`` the model emulates (any
    other model is exported to a temporary NetX file first)."""
    from dataclasses import replace

    from nmprivacy.errors import NmprivacyError

    if args.queries is not None and args.iterations is not None:
        raise NmprivacyError("--queries and --iterations both set the length of bl-v2-query: give one of them")
    if args.iterations is not None:
        settings = replace(settings, query_budget=None)  # --iterations already applied
    if args.queries is not None:
        if args.queries < 1:
            raise NmprivacyError(f"--queries {args.queries} must be a positive number of queries")
        settings = replace(settings, query_budget=args.queries)
    if args.threat is not None:
        settings = replace(settings, threat=args.threat)
    if args.oracle == "emulation":
        from nmprivacy.attacks.blv2_query import emulation_oracle

        return settings, emulation_oracle
    if netx is None and Path(args.model).suffix in (".net", ".h5", ".hdf5"):
        netx = args.model
    if netx is not None:
        netx, tmp = Path(netx), None
    else:
        import tempfile

        from hw_export import export_netx

        tmp = tempfile.TemporaryDirectory(prefix="nmprivacy-query-")  # removed with the factory that holds it
        netx = Path(tmp.name) / "target.net"
        export_netx(model, netx)
    from hw_export.lava_oracle import LavaOracle

    return settings, lambda _model, threat, _tmp=tmp: LavaOracle(netx, threat)


def query_summary(inv: Any) -> dict[str, Any]:
    """The JSON summary fields of a query attack (queries, oracle, threat, leakage-vs-queries
    trace of the attacker-visible confidence); empty for other attacks."""
    trace = getattr(inv, "trace", None)
    if trace is None:
        return {}
    return {
        "queries": inv.queries,
        "oracle": inv.oracle,
        "threat": inv.threat,
        "trace": {"queries": trace.queries.tolist(), "confidence": trace.confidence.mean(dim=1).tolist()},
    }
