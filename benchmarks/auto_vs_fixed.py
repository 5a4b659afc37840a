"""``python -m benchmarks.auto_vs_fixed``: ``bl-auto`` against every fixed attack variant, per network.

For each network (an nmprivacy target kind on a data set, or a file of ``benchmarks.foreign_zoo``'s
``zoo.json``), runs the audit's BL-v1 and BL-v2 with the ``paper``, ``reference`` and ``default``
variants and, once, ``bl-auto``, each over ``--seeds`` seeds scored by ``--evaluators``
evaluators, then tabulates per network the best fixed row (the attack and variant with the highest
attack accuracy, and separately DAA: chosen with the evaluators, which an attacker cannot do)
beside ``bl-auto`` (chosen without them). Writes ``<out>/auto-vs-fixed.json`` and ``.md``; every
audit's folder stays under ``<out>/runs/`` (reruns reuse finished ones).

    python -m benchmarks.auto_vs_fixed --out runs/auto --network snn-lava@digits-28 \\
        --zoo runs/zoo/zoo.json --split choose --seeds 3 --evaluators 3

``--studies DIR`` (repeatable) runs nothing: it tabulates the finished cells of ``nmprivacy study``
folders that ran ``bl-auto``, each cell a network (the cell's trained target), with the fixed rows
taken from ``bl-auto``'s members scored alone (its ``parts``: each member is bit for bit the fixed
attack it wraps, so these are the fixed variants' rows on the same seeds and evaluators).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VARIANTS = ("paper", "reference", "default")
METRICS = ("attack_acc", "daa")
AUDIT_PLAN = ("bl-v1/default", "bl-v2/default")  # the fixed rows the audit's default plan runs beside bl-auto


def member_rows(fixed: dict[str, dict], auto_attack: dict) -> dict[str, dict[str, float]]:
    """bl-auto's members scored alone, as the audit counts them in its worst case: the audit's
    ``parts`` when the run has them, else the fixed rows of the same variants (each member is
    bit-for-bit the fixed attack it wraps, with the same seeds and evaluators: tests/test_auto.py)."""
    if auto_attack.get("parts"):
        return dict(auto_attack["parts"])
    return {f"{attack}:{variant}": res["attacks"][attack] for variant, res in fixed.items() for attack in ("bl-v1", "bl-v2")}


@dataclass(frozen=True)
class Network:
    """One network to compare on: ``target`` (kind or file), data set and loader options."""

    name: str
    target: str
    dataset: str
    data_options: dict[str, Any] = field(default_factory=dict)
    dt: float | None = None
    split: str = "ours"
    steps: int | None = None  # T to attack at (a zoo member's own; None: the target's or the preset's)

    @property
    def domain_is_image(self) -> bool:
        """True for image data (T is a choice), False for events (T comes with the data)."""
        from nmprivacy.presets import family_of

        return family_of(self.dataset) in ("mnist", "faces")


def zoo_networks(path: Path, split: str | None) -> list[Network]:
    """The members of a ``benchmarks.foreign_zoo`` ``zoo.json`` (only ``split``'s when given)."""
    zoo = json.loads(path.read_text())
    members = zoo.get("members", zoo)
    out = []
    for name, m in members.items():
        if split and m.get("split") != split or not m.get("file"):
            continue
        out.append(Network(name, str(Path(m["file"])), m["dataset"], dict(m.get("data_options") or {}), m.get("dt"), m.get("split", "?"), m.get("steps")))
    return out


def parse_network(text: str) -> Network:
    """``KIND@DATASET`` or ``FILE@DATASET`` (``[...]?opt=v&opt=v`` for loader options)."""
    head, _, opts = text.partition("?")
    target, sep, dataset = head.rpartition("@")
    if not sep:
        raise SystemExit(f"--network {text!r}: write TARGET@DATASET")
    options = dict(o.split("=", 1) for o in opts.split("&") if o)
    parsed = {k: (int(v) if v.isdigit() else v) for k, v in options.items()}
    return Network(f"{Path(target).stem}@{dataset}", target, dataset, parsed)


def run(net: Network, variant: str, attacks: tuple[str, ...], out: Path, seeds: int, evaluators: int, threads: int | None, overrides: dict) -> dict:
    """One audit's results.json (reused when its folder is already complete)."""
    from nmprivacy.audit import AuditConfig, run_audit

    tag = "auto" if attacks == ("bl-auto",) else variant
    folder = out / "runs" / net.name / tag
    done = folder / "results.json"
    if done.is_file():
        return json.loads(done.read_text())
    if net.steps is not None and net.domain_is_image:
        overrides = {"steps": net.steps, **overrides}
    config = AuditConfig(dataset=net.dataset, data_options=net.data_options, out=str(folder), seeds=seeds, evaluators=evaluators, target=net.target,
                         variant=variant, attacks=attacks, dt=net.dt, threads=threads, overrides=overrides)
    return run_audit(config)


def scores(attack: dict) -> dict[str, tuple[float, float]]:
    """An attack's row as (mean, std over seeds) per metric."""
    return {m: (attack[m], attack.get(f"{m}_std", 0.0)) for m in METRICS}


def auto_columns(auto: dict) -> dict[str, Any]:
    """bl-auto's columns of a row: its scores, the classes its diagnostics flag, its winners and seconds."""
    return {"auto": scores(auto), "auto_degenerate": auto.get("diagnostics", {}).get("degenerate", {}),
            "auto_winners": auto.get("winners"), "auto_seconds": auto.get("seconds")}


def judge(row: dict[str, Any], plan: dict[str, dict]) -> None:
    """Fill ``row`` per metric: its best fixed row (``row["fixed"]``, chosen with the evaluators), whether
    bl-auto reaches it, and the audit headline, the worst case over ``plan`` (attack name -> its scores)."""
    for m in METRICS:
        name, (mean, std) = max(((k, v[m]) for k, v in row["fixed"].items()), key=lambda kv: kv[1][0])
        row["best"][m] = {"row": name, "mean": mean, "std": std}
        row[f"auto_ge_best_{m}"] = row["auto"][m][0] >= mean - 1e-9
        head, value = max(((k, v[m]) for k, v in plan.items()), key=lambda kv: kv[1])
        row["headline"][m] = {"attack": head, "mean": value}
        row[f"headline_ge_best_{m}"] = value >= mean - 1e-9


def summary(net: Network, fixed: dict[str, dict], auto: dict) -> dict:
    """Per metric: every fixed (attack, variant) mean ± std, the best of them, and bl-auto's."""
    row: dict[str, Any] = {"network": net.name, "target": net.target, "dataset": net.dataset, "split": net.split,
                           "target_acc": auto["models"]["target"].get("val_acc"), "fixed": {}, "auto": {}, "best": {}, "headline": {}}
    for variant, res in fixed.items():
        for attack in ("bl-v1", "bl-v2"):
            row["fixed"][f"{attack}/{variant}"] = scores(res["attacks"][attack])
    a = auto["attacks"]["bl-auto"]
    row.update(auto_columns(a))
    row["prior_alone"] = a.get("prior_alone")
    # what `nmprivacy audit` headlines with its default plan: the worst case over BL-v1, BL-v2 (default variant),
    # bl-auto and each of bl-auto's members alone
    plan = {k: {m: v[m][0] for m in METRICS} for k, v in row["fixed"].items() if k in AUDIT_PLAN} | {"bl-auto": a} | \
        {f"bl-auto/{p}": v for p, v in member_rows(fixed, a).items()}
    judge(row, plan)
    row["seconds_bl_v2_default"] = fixed.get("default", {}).get("attacks", {}).get("bl-v2", {}).get("seconds_per_iteration", math.nan) * \
        fixed.get("default", {}).get("attacks", {}).get("bl-v2", {}).get("iterations", math.nan)
    return row


def cell_name(settings: dict[str, Any]) -> str:
    """A study cell's settings as a short network name (``target seed=1 snn_train.dp={'epsilon': 8}``)."""
    skip = ("references", "variant", "ann_baseline")
    return " ".join(f"{k}={v}" if k != "target" else str(v) for k, v in settings.items() if k not in skip) or "base"


def study_rows(folders: list[Path]) -> list[dict]:
    """One ``summary``-shaped row per finished study cell that ran ``bl-auto`` with its members' ``parts``:
    the fixed rows are the members that are fixed variants (``bl-v2:adaptive`` is not one). A target two
    cells share (the same cached checkpoint, e.g. a baseline cell in two studies) counts once."""
    rows = []
    seen: set[str] = set()
    for folder in folders:
        for res_file in sorted(Path(folder).glob("cells/*/results.json")):
            res = json.loads(res_file.read_text())
            auto = res.get("attacks", {}).get("bl-auto")
            if not auto or not auto.get("parts"):
                continue
            checkpoint = str(res["models"]["target"].get("checkpoint") or res_file)
            if checkpoint in seen:
                continue
            seen.add(checkpoint)
            cell = json.loads((res_file.parent / "cell.json").read_text())
            fixed = {name.replace(":", "/"): scores(p) for name, p in auto["parts"].items() if name.split(":")[1] in VARIANTS}
            row: dict[str, Any] = {"network": f"{res['dataset']} {cell_name(cell.get('settings', {}))}", "target": "study cell " + cell.get("key", "?"),
                                   "dataset": res["dataset"], "split": "own", "target_acc": res["models"]["target"].get("val_acc"),
                                   "fixed": fixed, "best": {}, "headline": {}, **auto_columns(auto)}
            plan = {k: res["attacks"][k] for k in ("bl-v1", "bl-v2") if k in res["attacks"]} | {"bl-auto": auto} | \
                {f"bl-auto/{k}": p for k, p in auto["parts"].items()}
            judge(row, plan)
            v2 = res["attacks"].get("bl-v2", {})
            row["seconds_bl_v2_default"] = v2.get("seconds_per_iteration", math.nan) * v2.get("iterations", math.nan)
            rows.append(row)
    return rows


def pct(mean: float, std: float) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def markdown(rows: list[dict]) -> str:
    """The comparison table: best fixed vs bl-auto, attack accuracy and DAA."""
    lines = ["| network | split | target acc | best fixed acc (row) | bl-auto acc | best fixed DAA (row) | bl-auto DAA | auto >= best | audit headline acc / DAA | headline >= best | degenerate (auto) | s auto / s BL-v2 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b, a = r["best"], r["auto"]
        ok = "yes" if r["auto_ge_best_attack_acc"] and r["auto_ge_best_daa"] else ("acc" if r["auto_ge_best_attack_acc"] else ("DAA" if r["auto_ge_best_daa"] else "no"))
        ratio = r["auto_seconds"] / r["seconds_bl_v2_default"] if r.get("auto_seconds") and r["seconds_bl_v2_default"] == r["seconds_bl_v2_default"] else float("nan")
        lines.append(f"| {r['network']} | {r['split']} | {100 * (r['target_acc'] or 0):.1f} | {pct(b['attack_acc']['mean'], b['attack_acc']['std'])} ({b['attack_acc']['row']}) | "
                     f"{pct(*a['attack_acc'])} | {pct(b['daa']['mean'], b['daa']['std'])} ({b['daa']['row']}) | {pct(*a['daa'])} | {ok} | "
                     f"{100 * r['headline']['attack_acc']['mean']:.1f} / {100 * r['headline']['daa']['mean']:.1f} | "
                     f"{'yes' if r['headline_ge_best_attack_acc'] and r['headline_ge_best_daa'] else 'no'} | "
                     f"{len(r['auto_degenerate'])} | {ratio:.1f} |")
    return "\n".join(lines) + "\n"


def totals(rows: list[dict]) -> str:
    """How many rows have bl-auto (and the audit headline) at or above the best fixed row, per metric."""
    n = len(rows)
    parts = [f"{sum(r[f'{who}_ge_best_{m}'] for r in rows)}/{n} {label} {m}" for who, label in (("auto", "bl-auto >= best fixed"), ("headline", "headline >= best fixed")) for m in METRICS]
    return "\n" + "; ".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write ``auto-vs-fixed.json`` / ``.md``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.auto_vs_fixed", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--studies", action="append", default=[], metavar="DIR", help="tabulate the finished cells of these study folders (runs nothing)")
    p.add_argument("--network", action="append", default=[], help="TARGET@DATASET[?opt=v&...] (repeatable)")
    p.add_argument("--zoo", default=None, help="a benchmarks.foreign_zoo zoo.json")
    p.add_argument("--split", default=None, help="only the zoo members of this split (choose, report)")
    p.add_argument("--only", action="append", default=[], help="only these network names (repeatable)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--evaluators", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="preset setting of every audit (e.g. bl_auto.tie=0.05)")
    args = p.parse_args(argv)
    from nmprivacy.commands.common import parse_pairs

    overrides = parse_pairs(args.set, "--set")
    nets = [parse_network(n) for n in args.network] + (zoo_networks(Path(args.zoo), args.split) if args.zoo else [])
    if args.only:
        nets = [n for n in nets if n.name in args.only]
    if args.studies and (args.network or args.zoo):
        raise SystemExit("--studies tabulates finished study cells and runs nothing: give it without --network / --zoo")
    for d in args.studies:
        if not list(Path(d).glob("cells/*/results.json")):
            raise SystemExit(f"--studies {d}: no finished study cell in it (cells/*/results.json): give the --out folder of `nmprivacy study`")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.studies:
        rows = study_rows([Path(d) for d in args.studies])
        (out / "auto-vs-fixed.json").write_text(json.dumps(rows, indent=1))
        text = markdown(rows) + totals(rows)
        (out / "auto-vs-fixed.md").write_text(text)
        print(text, flush=True)
        return 0
    rows = []
    for net in nets:
        print(f"== {net.name} ({net.target} on {net.dataset})", flush=True)
        fixed = {v: run(net, v, ("bl-v1", "bl-v2"), out, args.seeds, args.evaluators, args.threads, overrides) for v in VARIANTS}
        auto = run(net, "default", ("bl-auto",), out, args.seeds, args.evaluators, args.threads, overrides)
        rows.append(summary(net, fixed, auto))
        (out / "auto-vs-fixed.json").write_text(json.dumps(rows, indent=1))
        (out / "auto-vs-fixed.md").write_text(markdown(rows))
        print(markdown(rows[-1:]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
