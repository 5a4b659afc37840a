"""``nmprivacy study``: a grid of audits (attack, target and evaluator settings) on a Dask
cluster, resumable, written as study.json + study.md + study.png."""

from __future__ import annotations

import argparse

from nmprivacy.commands.common import add_budget, add_data, add_dt, add_run, command_line, data_options, parse_list, parse_value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand."""
    p = subparsers.add_parser(
        "study",
        help="a grid of audits over attack/target/evaluator settings on a Dask cluster: one table + plot",
        description="Run one audit per cell of a grid of settings (each with several seeds) on a Dask cluster, "
                    "skipping cells already done in --out, and write study.json, study.md and study.png. "
                    "A setting is an audit field (target, variant, hidden, dt, references, seed: the cell's training seed) or a dotted preset field "
                    "(bl_v2.lr, bl_v2.accumulator, bl_v2.keep, bl_v2.init, bl_v2.population, bl_v2.iterations, bl_v2.variant, "
                    "bl_v1.eta, bl_v1.mask, snn_train.epochs, target_config.reset, evaluator, ann_baseline, ...).",
    )
    p.add_argument("spec", nargs="?", default=None, help="study spec, YAML or JSON (dataset, seeds, base, grids: [{name, factors, base}]); "
                   "optional with --factor")
    p.add_argument("--out", default="runs/study", help="study folder: cells/ (one run folder per cell), study.json, study.md, study.png (default runs/study)")
    p.add_argument("--factor", action="append", default=[], metavar="NAME=V1,V2", help="a factor of one more grid (repeatable: their product)")
    p.add_argument("--grid", action="append", default=[], metavar="NAME", help="run only the spec's grid of this name (repeatable)")
    add_data(p, what="data set (overrides the spec's; default digits-28)")
    add_run(p, seed_help="base seed (overrides the spec's; default 0): the seed of every cell that does not set 'seed'", seed_default=None,
            threads_help="torch threads per cell (default 1)")
    p.add_argument("--training-seeds", default=None, metavar="S1,S2", help="training-seed replicates: add the factor seed=S1,S2,... to every grid "
                   "(overrides the spec's training_seeds); the tables show each cell's mean ± std over them")
    p.add_argument("--list", action="store_true", help="only list the cells (done in --out or to run) and exit; nothing runs")
    p.add_argument("--seeds", type=int, default=None, help="attack seeds per cell (overrides the spec's; default 3)")
    p.add_argument("--evaluators", type=int, default=None, help="evaluation classifiers per cell (overrides the spec's; default 3)")
    p.add_argument("--target", default=None, help="target kind of every cell unless a setting says otherwise (default snn-lava)")
    add_dt(p)
    p.add_argument("--hidden", type=int, default=None, help="hidden size of target and ANN")
    p.add_argument("--attacks", default=None, metavar="A,B", help="the audit's attacks each cell runs (overrides the spec's; default bl-v1,bl-v2)")
    add_budget(p)
    p.add_argument("--workers", type=int, default=1, help="local Dask worker processes (default 1; ignored with --scheduler)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run the cells on this Dask scheduler (e.g. tcp://host:8786) instead of a local "
                   "cluster; its workers need nmprivacy and the same paths for --out and --cache")
    p.set_defaults(func=run, sets_are_preset=False)


def training_seeds(text: str | None) -> list[object] | None:
    """``--training-seeds 0,1,2`` as its levels (numbers as YAML reads them; checked as the setting ``seed``), None when not given."""
    names = parse_list(text, "--training-seeds")
    return None if names is None else [parse_value(n) for n in names]


def run(args: argparse.Namespace) -> int:
    """Build the spec, run the study and print where its table is; non-zero when a cell failed."""
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.study import StudyRun, build_spec, load_spec, run_study
    from nmprivacy.study.spec import parse_assignment, with_cli

    spec = build_spec(load_spec(args.spec)) if args.spec else None
    options = data_options(args)
    spec = with_cli(
        spec,
        factors=[parse_assignment(f, many=True) for f in args.factor],
        sets=[parse_assignment(s, many=False) for s in args.sets] + ([("dt", args.dt)] if args.dt is not None else []),
        only=args.grid,
        dataset=args.dataset, data_root=args.data_root, data_options=options or None, seeds=args.seeds, evaluators=args.evaluators,
        seed=args.seed, target=args.target, hidden=args.hidden, budget=args.budget, cache=args.cache,
        attacks=parse_list(args.attacks, "--attacks"), training_seeds=training_seeds(args.training_seeds),
    )
    if spec.seeds < 1 or spec.evaluators < 1:
        raise NmprivacyError("--seeds and --evaluators must be at least 1")
    if args.list:
        from nmprivacy.study.run import list_cells

        print("\n".join(list_cells(spec, args.out)))
        return 0
    study = run_study(spec, args.out, StudyRun(workers=args.workers, threads=args.threads or 1, scheduler=args.scheduler), command=command_line("study"))
    counts = study["counts"]
    print(f"study: {counts['done']} cells run, {counts['reused']} reused, {counts['failed']} failed; table: {args.out}/study.md, plot: {args.out}/study.png")
    if counts["failed"]:
        raise NmprivacyError(f"{counts['failed']} cell(s) failed (see {args.out}/study.md); run the same command again to retry them")
    return 0
