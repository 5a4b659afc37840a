"""``nmprivacy validate``: check the exported network on Lava against the torch model attacked."""

from __future__ import annotations

import argparse

from nmprivacy.commands.common import add_data, add_dt, add_run, data_options, overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``validate`` subcommand."""
    p = subparsers.add_parser(
        "validate",
        help="run a target (and an attack's reconstructions) on the Lava simulator and compare with torch",
        description="Export fidelity (spike mismatches per layer, class agreement, accuracy: bit-exact emulation "
        "vs Lava's fixed-point simulator) and, with --inversion, attack validation (does Lava's output pick the "
        "attacked class for the reconstructions?). Writes validation.json and validation.md.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder, NetX file (*.net) or NIR graph (*.nir)")
    add_dt(p)
    p.add_argument("--inversion", help="attack or audit run folder (inversion.pt / inversion-*.pt) or one inversion file")
    p.add_argument("--samples", type=int, default=100, help="test inputs, and Bernoulli draws per attacked class, on the emulation (default %(default)s)")
    p.add_argument("--lava-samples", type=int, default=None, help="test inputs (and attack draws in total) run on Lava (default: all of them)")
    p.add_argument("--steps", type=int, help="time steps T (default: the model's, else the data set preset; --random: else 25)")
    add_data(p, what="data set to validate on (default: the one a checkpoint or nmprivacy's NetX metadata names)")
    p.add_argument("--inputs", help="validate on these inputs instead of a data set: a .npy file [B, T, *input_shape] of spikes or integers")
    p.add_argument("--random", type=int, metavar="N", help="validate on N seeded random inputs instead of a data set (Bernoulli spikes; "
                   "integers 0..--graded-max for a network whose input feeds neurons directly)")
    p.add_argument("--graded-max", type=int, default=255, help="largest value of --random graded inputs (default %(default)s)")
    p.add_argument("--out", default="validation", help="output folder (default: %(default)s)")
    add_run(p, seed_help="seed of the input encoding and Bernoulli draws (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate and print the headline numbers; results in ``<out>/validation.json`` and ``.md``."""
    from nmprivacy.validation import validate
    from nmprivacy.errors import NmprivacyError

    if args.steps is not None and args.steps < 1:
        raise NmprivacyError(f"--steps must be >= 1, got {args.steps}")
    if args.random is not None and args.random < 1:
        raise NmprivacyError(f"--random must be >= 1, got {args.random}")
    if args.graded_max < 1:
        raise NmprivacyError(f"--graded-max must be >= 1, got {args.graded_max}")
    result = validate(
        args.model, inversion=args.inversion, samples=args.samples, lava_samples=args.lava_samples, steps=args.steps,
        out=args.out, data_root=args.data_root, dataset=args.dataset, seed=args.seed,
        inputs=args.inputs, random=args.random, graded_max=args.graded_max, dt=args.dt, data_options=data_options(args), overrides=overrides(args),
    )
    e = result["export"]
    if e["lava_samples"]:
        accuracy = f", accuracy torch {e['accuracy_torch']:.4f} vs Lava {e['accuracy_lava']:.4f}" if e.get("labelled") else ""
        print(
            f"export fidelity on {e['lava_samples']} inputs ({result['dataset']}): {e['total_mismatches']} spike mismatches, "
            f"class agreement {e['class_agreement']:.4f}{accuracy}"
        )
    src = e.get("source_vs_emulation")
    if src:
        print(f"{src['kind']} vs its Loihi emulation: class agreement {src['class_agreement']:.4f} on {e['samples']} inputs")
    a = result.get("attack")
    if a and a["lava_hit_rate"] is not None:
        print(f"attack on Lava: hit rate {a['lava_hit_rate']:.4f} (torch {a['torch_hit_rate']:.4f}) on {a['samples_on_lava']} inputs")
    print(f"results: {args.out}/validation.json, {args.out}/validation.md")
    return 0
