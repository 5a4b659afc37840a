"""``nmprivacy mia``: membership inference (LiRA, RMIA, loss, shadow models) against a target kind
or a network file, with reference models trained on a Dask cluster; writes mia.json, mia.md,
roc.png and scores.npz."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nmprivacy.commands.common import add_budget, add_data, add_dt, add_run, budget, command_line, data_options, overrides, parse_list


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``mia`` subcommand."""
    p = subparsers.add_parser(
        "mia",
        help="membership inference (LiRA, RMIA, loss, shadow) with reference models: mia.json + mia.md + roc.png",
        description="Measure how well an attacker tells a target's training records from others (docs/method.md §9). "
                    "Reference models of the target's kind are trained on random halves of the data set's train + test records "
                    "(on a Dask cluster, cached, resumable); each in turn is the target, the others its references. A NetX file "
                    "or NIR graph is the one target, with references trained by nmprivacy for its layer sizes. --set also takes the attacks' "
                    "settings: rmia.mode=offline, rmia.a=0.5, rmia.gamma=2, lira.variance=global, shadow.classifier=rf, shadow.per_class=false.",
    )
    add_data(p, default="digits")
    p.add_argument("--target", default="snn-lava", help="a kind to train (snn-lava, the default; snn-lava-conv; snn-norse; ann) or a network "
                   "trained elsewhere: a NetX file (*.net), a NIR graph (*.nir) or a checkpoint folder")
    add_dt(p)
    p.add_argument("--attacks", default=None, metavar="A,B", help="comma-separated attacks (default: all of lira, lira-offline, rmia, loss, shadow)")
    p.add_argument("--references", type=int, default=None, metavar="N", help="models trained on random halves (default 16; --quick 4); "
                   "for a kind, each is the target once (at least 4)")
    p.add_argument("--threat", choices=("counts", "label", "membrane"), default=None,
                   help="what the attacker sees: output spike counts (default; the chip's observable), the top-1 label, or the read-out membrane "
                        "(white box; an ann's logits, its default)")
    p.add_argument("--oracle", choices=("float", "emulation", "lava"), default=None,
                   help="what answers the queries: the float model, its bit-exact Loihi emulation (default for snn-lava and files) or Lava's "
                        "simulator (every query; slow)")
    p.add_argument("--queries", type=int, default=None, help="rate encodings queried per record (default 4; --quick 2; event data and ann: 1)")
    p.add_argument("--count-temperature", type=float, default=1.0, help="spikes per nat of the counts' softmax (default 1)")
    p.add_argument("--population", type=int, default=None, metavar="Z", help="test records no model trains on (RMIA's z; default 10 %% of the "
                   "records, at most 500 and half the test split, a quarter for a file target)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the confidence intervals (default 200; 0: none)")
    p.add_argument("--lava-check", type=int, default=None, metavar="K", help="records also run on Lava and compared with the emulation "
                   "(default 16; --quick 8; 0: off)")
    p.add_argument("--hidden", type=int, default=None, help="hidden size of the trained models (default: the preset's)")
    add_budget(p)
    p.add_argument("--workers", type=int, default=1, help="local Dask worker processes training references (default 1; 0: in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="train references on this Dask scheduler (tcp://host:8786); its workers "
                   "need nmprivacy and the same --cache path")
    add_run(p, seed_help="base seed (default 0)", threads_help="torch threads of this process (attacks, observing a file; Dask workers use 1 each)")
    p.add_argument("--training-seeds", default=None, metavar="S1,S2", help="one run per training seed into OUT/s<S> (instead of --seed), "
                   "then OUT/mia-seeds.json and mia-seeds.md: each seed's numbers and their mean ± std")
    p.add_argument("--out", required=True, help="output folder: mia.json, mia.md, roc.png, scores.npz")
    p.set_defaults(func=run, sets_are_preset=False)  # --set also names attack settings: run() checks the preset part


def split_sets(sets: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``--set`` values as (preset overrides, membership-attack settings by attack name): a name
    whose first part is a membership attack (``rmia.mode``) sets that attack, any other a preset
    field (``snn_train.epochs``)."""
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.membership import MEMBERSHIP_ATTACKS

    preset: dict[str, Any] = {}
    attacks: dict[str, dict[str, Any]] = {}
    for name, value in sets.items():
        head, _, rest = name.partition(".")
        if head in MEMBERSHIP_ATTACKS:
            if not rest:
                raise NmprivacyError(f"--set {name}: name one setting of attack '{head}' ({head}.<setting>=VALUE)")
            attacks.setdefault(head, {})[rest] = value
        else:
            preset[name] = value
    return preset, attacks


def run(args: argparse.Namespace) -> int:
    """Run membership inference and print the table's essentials."""
    from nmprivacy.membership import MEMBERSHIP_ATTACKS
    from nmprivacy.mia import MiaConfig, run_mia

    from nmprivacy.presets import check_overrides

    preset, settings = split_sets(overrides(args))
    check_overrides(preset)  # a bad preset setting fails before any data or model is loaded
    attacks = parse_list(args.attacks, "--attacks") or tuple(MEMBERSHIP_ATTACKS)
    config = MiaConfig(
        dataset=args.dataset, target=args.target, out=args.out, attacks=attacks, references=args.references, threat=args.threat,
        oracle=args.oracle, queries=args.queries, count_temperature=args.count_temperature, budget=budget(args), hidden=args.hidden,
        overrides=preset, attack_settings=settings, population=args.population, bootstrap=args.bootstrap, lava_check=args.lava_check,
        data_root=args.data_root, data_options=data_options(args), workers=args.workers, scheduler=args.scheduler, threads=args.threads,
        seed=args.seed, cache=args.cache, dt=args.dt,
    )
    if args.training_seeds is not None:
        return _run_seeds(args, config)
    mia = run_mia(config)
    t = mia["target"]
    print(f"target {t['spec']}: train acc {100 * t['train_acc']:.1f} %, test acc {100 * t['test_acc']:.1f} %; threat {mia['threat']}, oracle {mia['oracle']}")
    _print_table(mia["attacks"])
    check = mia.get("membrane_check")
    if check:
        from nmprivacy.mia.report import silent_share

        print(f"the outputs are silent on {silent_share(check['silent_output'])} of the queries; the same models through their membrane (white-box):")
        _print_table(check["attacks"])
    print(f"results: {args.out}/mia.json, report: {args.out}/mia.md, ROC: {args.out}/roc.png")
    return 0


def _run_seeds(args: argparse.Namespace, config: Any) -> int:
    """``--training-seeds``: one run per seed, then the summary over them (``nmprivacy.mia.seeds``)."""
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.mia.seeds import run_mia_seeds

    if args.seed != 0:
        raise NmprivacyError("give either --seed or --training-seeds (each training seed is the base seed of its run)")
    try:
        seeds = [int(s) for s in parse_list(args.training_seeds, "--training-seeds") or ()]
    except ValueError:
        raise NmprivacyError(f"--training-seeds {args.training_seeds}: give integers, e.g. 0,1,2") from None
    run_mia_seeds(config, seeds, command_line("mia"))
    print((Path(args.out) / "mia-seeds.md").read_text(), end="")
    print(f"summary: {args.out}/mia-seeds.json, per seed: {args.out}/s<seed>/mia.json")
    return 0


def _print_table(attacks: dict) -> None:
    """One line per membership attack: AUC, TPR at 0.1 % and 1 % FPR, balanced accuracy."""
    print("attack        AUC     TPR@0.1%FPR  TPR@1%FPR  bal.acc")
    for name, r in attacks.items():
        if r["auc"] is None:
            print(f"{name:<12}  n/a ({r.get('error', 'no pairs scored')})")
            continue
        tpr = r["tpr_at_fpr"]
        print(f"{name:<12}  {r['auc']:.3f}   {100 * tpr['0.001']:6.2f}       {100 * tpr['0.01']:6.2f}     {100 * r['balanced_acc']:.1f}")
