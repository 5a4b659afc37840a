"""``nmprivacy audit``: the end-to-end privacy audit (train or reuse, attack, evaluate, report)."""

from __future__ import annotations

import argparse

from nmprivacy.commands.common import (add_budget, add_data, add_device, add_dt, add_run, add_variant, budget, data_options, overrides,
                                       parse_list, variant)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audit`` subcommand."""
    p = subparsers.add_parser(
        "audit",
        help="train/reuse target, ANN and evaluators, run BL-v1, BL-v2 and MI-Face, write results.json + report.md",
        description="Audit how much training data a spiking network leaks through model inversion.",
    )
    add_data(p, default="digits", what="data-set name (digits is bundled with scikit-learn)")
    p.add_argument("--out", default="runs/audit", help="output folder (default: runs/audit)")
    p.add_argument("--seeds", type=int, default=1, help="repeat every attack over N seeds (mean ± std)")
    p.add_argument("--evaluators", type=int, default=3, help="independently trained evaluation classifiers (default 3)")
    p.add_argument("--target", default="snn-lava", help="a target kind to train (snn-lava, the default; snn-lava-conv; snn-norse), or your own "
                   "network to audit: a NetX file (*.net), a NIR graph (*.nir) or a checkpoint folder")
    add_dt(p)
    add_budget(p)
    add_variant(p, audit=True)
    p.add_argument("--hardware", action="store_true", help="also export the target to NetX and validate it on the Lava simulator")
    p.add_argument("--lava-samples", type=int, default=None, help="--hardware: inputs (test inputs, and attack draws in total) run on Lava (default: all; --quick: 20)")
    p.add_argument("--allow-weak", action="store_true", help="exit 0 even when a target or evaluator is too weak to judge "
                   "(below 2x chance; its attack rows are marked invalid either way)")
    add_run(p, seed_help="base seed (default 0)", threads_help="torch threads (default: torch's, all cores; 1 is faster on a machine shared with other jobs)")
    add_device(p)
    p.add_argument("--hidden", type=int, default=None, help="override the hidden size of target and ANN (= --set hidden=N)")
    p.add_argument("--references", type=int, default=None, help="membership attacks: reference models (default 16; --quick 4)")
    p.add_argument("--redraws", type=int, default=None, help="BL-v2: Bernoulli re-draws of X_p for the paper's ± (default: 1000 with --paper, else 0)")
    p.add_argument("--attacks", default=None, help="comma-separated attacks to run (default: bl-v1,bl-v2, mi-face on image data, "
                   "and bl-v2-query on Loihi targets: snn-lava and NetX files); membership attacks (lira, lira-offline, rmia, loss, "
                   "shadow) add a membership section (nmprivacy mia) under membership/")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the audit and print where the results are."""
    from nmprivacy.audit import AuditConfig, run_audit
    from nmprivacy.presets import AUDIT_VARIANT

    redraws = args.redraws if args.redraws is not None else (1000 if budget(args) == "paper" else 0)
    config = AuditConfig(
        dataset=args.dataset,
        data_root=args.data_root,
        data_options=data_options(args),
        out=args.out,
        seeds=args.seeds,
        evaluators=args.evaluators,
        target=args.target,
        budget=budget(args),
        variant=variant(args, AUDIT_VARIANT),
        hardware=args.hardware,
        lava_samples=args.lava_samples,
        seed=args.seed,
        hidden=args.hidden,
        redraws=redraws,
        cache=args.cache,
        threads=args.threads,
        attacks=parse_list(args.attacks, "--attacks"),
        dt=args.dt,
        overrides=overrides(args),
        device=args.device,
        references=args.references,
    )
    results = run_audit(config)
    print(summary_table(results))
    print(f"results: {args.out}/results.json, report: {args.out}/report.md")
    weak = results.get("weak_models") or {}
    if weak and not args.allow_weak and budget(args) != "quick":
        from nmprivacy.errors import NmprivacyError

        raise NmprivacyError(f"{next(iter(weak.values()))}; the attack rows are marked invalid in results.json: train longer or pass --allow-weak")
    return 0


def summary_table(results: dict) -> str:
    """A short plain-text table of the attack metrics in percent."""
    rows = ["attack    acc     top3    conf    DAA     target-conf"]
    for name, a in results["attacks"].items():
        rows.append(
            f"{name:<9} {100 * a['attack_acc']:6.2f}  {100 * a['top3_acc']:6.2f}  {100 * a['avg_conf']:6.2f}  "
            f"{100 * a['daa']:6.2f}  {100 * a['target_confidence']:6.2f}" + ("  NOT VALID (model too weak to judge)" if not a.get("valid", True) else "")
        )
    mia = results.get("membership")
    if mia:
        rows.append(f"membership (threat {mia.get('threat')}): " + _membership_line(mia.get("attacks", {})))
        from nmprivacy.mia.report import membrane_check, silent_share

        check = membrane_check(mia)
        if check:
            rows.append(f"membership through the membrane (outputs silent on {silent_share(check.get('silent_output'))} of the queries): "
                        + _membership_line(check.get("attacks", {})))
    return "\n".join(rows)


def _membership_line(attacks: dict) -> str:
    """``name AUC x, TPR@1%FPR y %`` per membership attack, "; "-separated."""
    def one(name: str, a: dict) -> str:
        if a.get("auc") is None:
            return f"{name} n/a"
        return f"{name} AUC {a['auc']:.3f}, TPR@1%FPR {100 * a['tpr_at_fpr']['0.01']:.2f} %"
    return "; ".join(one(n, a) for n, a in attacks.items())
