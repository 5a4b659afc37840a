"""``nmprivacy attack``: run one model-inversion attack on a checkpoint or NetX file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nmprivacy.commands.common import add_budget, add_data, add_dt, add_run, add_variant, budget, overrides, variant


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``attack`` subcommand (its ``--attack`` choices are the registry's names)."""
    from nmprivacy.attacks import registry

    names = tuple(registry())
    p = subparsers.add_parser("attack", help=f"invert a trained model for every class ({', '.join(names)})",
                              description="Run a model-inversion attack and save its reconstructions (tensors only).")
    p.add_argument("--model", required=True, help="checkpoint folder (nmprivacy train), NetX file (*.net) or NIR graph (*.nir)")
    add_dt(p)
    p.add_argument("--attack", required=True, choices=names, help="attack to run")
    p.add_argument("--oracle", choices=("emulation", "lava"), default="emulation",
                   help="query attacks (bl-v2-query): query the bit-exact emulation (default) or the NetX file on Lava's fixed_pt simulator")
    p.add_argument("--queries", type=int, default=None, help="query attacks: total query budget over all classes (= --set <attack>.query_budget=N)")
    p.add_argument("--threat", choices=("counts", "label", "membrane"), default=None,
                   help="query attacks: what the attacker sees per query: output spike counts (default), top-1 label, output membrane")
    add_data(p, what="data set whose preset settings to use (default: the checkpoint's)")
    p.add_argument("--classes", default=None, help="comma-separated class indices (default: all)")
    add_run(p, seed_help="attack seed (default 0)")
    p.add_argument("--steps", type=int, default=None, help="time steps T of spike inputs (default: checkpoint's, else preset)")
    p.add_argument("--iterations", type=int, default=None, help="override the preset's iterations (= --set <attack>.<its iterations field>=N; mi-face: its maximum)")
    add_variant(p)
    add_budget(p)
    p.add_argument("--out", default="inversion.pt", help="output file (default inversion.pt; a .json summary is written beside it)")
    p.set_defaults(func=run)


def load_model(path: str, dt: float | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, metadata with ``dataset``/``steps`` when known) from a checkpoint folder, a NetX file
    or a NIR graph (``nmprivacy.targets.load_target``)."""
    from nmprivacy.targets import load_target

    target = load_target(path, dt=dt)
    return target.model, {"dataset": target.dataset, "steps": target.steps, "netx": target.netx}


def attack_overrides(args: argparse.Namespace, info: Any) -> dict[str, Any]:
    """The dotted settings the attack's own flags ask for (``--iterations``, ``--queries``,
    ``--threat``), named by the attack's ``AttackInfo``; one line for a flag the attack has no use for."""
    from nmprivacy.errors import NmprivacyError

    out: dict[str, Any] = {}
    if args.iterations is not None:
        out[f"{info.settings}.{info.iterations}"] = args.iterations
    query_flags = {"--queries": args.queries, "--threat": args.threat, "--oracle lava": args.oracle == "lava" or None}
    if not info.queries:
        given = [flag for flag, value in query_flags.items() if value is not None]
        if given:
            raise NmprivacyError(f"{', '.join(given)} only apply to query attacks: drop {'them' if len(given) > 1 else 'it'} or use --attack bl-v2-query")
        return out
    if args.queries is not None and args.iterations is not None:
        raise NmprivacyError(f"--queries and --iterations both set the length of {args.attack}: give one of them")
    if args.iterations is not None:
        out[f"{info.settings}.query_budget"] = None  # --iterations sets the length
    if args.queries is not None:
        if args.queries < 1:
            raise NmprivacyError(f"--queries {args.queries} must be a positive number of queries")
        out[f"{info.settings}.query_budget"] = args.queries
    if args.threat is not None:
        out[f"{info.settings}.threat"] = args.threat
    return out


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
    from nmprivacy.attacks import attack_class, get_attack
    from nmprivacy.attacks.common import require_domain
    from nmprivacy.attacks.io import save_inversion
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.presets import check_loaded_target, check_overrides, resolve
    from nmprivacy.runinfo import atomic_write_json, check_output, run_metadata

    out = check_output(args.out)  # before any work
    summary_path = out.with_suffix(".json")
    if summary_path == out:
        raise NmprivacyError(f"--out {args.out} must not end in .json: the JSON summary is written beside the inversion file")
    check_output(summary_path)
    if variant(args) == "auto":
        raise NmprivacyError("--variant auto runs the bl-auto ensemble beside BL-v1/BL-v2 in an audit: here run --attack bl-auto, "
                             "or choose --variant default, paper or reference")
    info = attack_class(args.attack).info
    chosen = {**overrides(args), **attack_overrides(args, info)}
    check_overrides(chosen)  # bad settings fail before the model is loaded
    check_loaded_target(args.model, chosen)
    model, meta = load_model(args.model, args.dt)
    dataset = args.dataset or meta.get("dataset")
    if not dataset:
        raise NmprivacyError(f"cannot tell which data set {args.model} belongs to: pass --dataset NAME")
    preset = resolve(dataset, budget(args), variant(args), overrides=chosen)
    settings = preset.group(info.settings)
    require_domain(model, info.domain, args.attack)  # one line naming the attacks that fit, before the attack is built
    options = {}
    if info.domain == "spikes":
        options["steps"] = args.steps or meta.get("steps") or preset.steps
    if info.queries:
        options["oracle"] = query_oracle(args, model, meta.get("netx"))
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
        **run_metadata(config={**inv.config, "variant": variant(args), "budget": budget(args), "overrides": overrides(args)}, seed=args.seed),
    }
    save_inversion(out, inv)
    try:
        atomic_write_json(summary_path, summary)
    except BaseException:
        out.unlink(missing_ok=True)  # never an inversion file without its summary
        raise
    conf = f", mean target confidence at the last iteration {float(final.mean()):.4f}" if final is not None else ""
    queries = f", {inv.queries} queries to the {inv.oracle} oracle ({inv.threat})" if info.queries else ""
    print(f"{inv.attack}: {len(classes)} classes, {inv.iterations} iterations, {inv.seconds_per_iteration:.4f} s/iteration{queries}{conf}; wrote {out}")
    return 0


def query_oracle(args: argparse.Namespace, model: Any, netx: Any = None) -> Any:
    """A query attack's oracle factory: the emulation of ``model``, or Lava running the NetX file
    ``netx`` the model emulates (any other model is exported to a temporary NetX file first)."""
    if args.oracle == "emulation":
        from nmprivacy.attacks.blv2_query import emulation_oracle

        return emulation_oracle
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

    return lambda _model, threat, _tmp=tmp: LavaOracle(netx, threat)


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
