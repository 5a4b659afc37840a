"""``python -m benchmarks.auto_selection``: which attacker-visible rule should pick ``bl-auto``'s member per class?

``bl-auto`` runs, per class, every member (the family's fixed BL-v1 / BL-v2 variants and the
adaptive BL-v2) and keeps one by a rule that reads only the target. This study runs ``bl-auto``
once per seed on each network, keeps *every* member's reconstruction, scores each of them with
the evaluators (to judge rules, never inside one), and replays candidate selection rules on the
same runs: so rules are compared on identical reconstructions, and the rule the audit uses can be
chosen on some networks (``--split choose`` / ``choose2`` of ``benchmarks.foreign_zoo``) and
reported on others.

Features a rule may read, per member and class (all attacker-visible: the target's outputs and the
candidate itself): ``conf`` (the target's mean confidence in the class over fresh Bernoulli draws:
what ``bl-auto`` already computes), ``density``, ``robust`` (the same confidence after a random
half of the candidate's spikes are deleted: reconstructions that need a few exact spikes are the
adversarial ones), ``consensus`` (mean cosine similarity of the member's rate image to the other
members' for the class). Rows: each rule's attack accuracy and DAA (mean over evaluators, mean ±
std over seeds), beside each member alone, the best member alone (chosen with the evaluators after
the fact), and the per-class evaluator oracle (an upper bound no attacker reaches).

    python -m benchmarks.auto_selection --out runs/auto-select --zoo runs/zoo/zoo.json --split choose2
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

from benchmarks.auto_vs_fixed import Network, parse_network, zoo_networks

DROP = 0.5  # fraction of the candidate's spikes deleted for the ``robust`` feature
ROBUST_DRAWS = 8


def load_network(net: Network, evaluators: int, threads: int | None) -> tuple[Any, list[Any], Any, int, Any, Any]:
    """(target model, evaluator models, splits, T, preset, bl-auto settings) exactly as the audit builds them."""
    from nmprivacy.audit import AuditConfig, attack_plan, audit_models
    from nmprivacy.data import load_dataset
    from nmprivacy.presets import resolve

    overrides = {"steps": net.steps} if net.steps is not None and net.domain_is_image else {}
    config = AuditConfig(dataset=net.dataset, data_options=net.data_options, target=net.target, dt=net.dt, attacks=("bl-auto",), overrides=overrides,
                         evaluators=evaluators, threads=threads)
    splits = load_dataset(net.dataset, **net.data_options)
    preset = resolve(net.dataset, "default", "default", None, overrides)
    plan = attack_plan(preset, splits.domain, config)
    models, _, steps, _, judges = audit_models(config, splits, preset, plan)
    (_, _, settings), = plan
    return models["target"].model, [tm.model for tm in judges], splits, steps, preset, settings


@torch.no_grad()
def robust_confidence(model: Any, candidate: torch.Tensor, targets: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per class ``[K]``: the target's mean confidence in the class on draws of ``candidate``
    ``[K, T, ...]`` with a random ``DROP`` of its spikes deleted."""
    from nmprivacy.attacks.layout import to_model_layout

    k = candidate.shape[0]
    samples = candidate.unsqueeze(1).expand(k, ROBUST_DRAWS, *candidate.shape[1:]).contiguous()
    spikes = torch.bernoulli(samples, generator=gen) if not bool(((candidate == 0) | (candidate == 1)).all()) else samples
    kept = spikes * (torch.rand(spikes.shape, generator=gen) >= DROP)
    probs = model.probabilities(to_model_layout(kept.reshape(k * ROBUST_DRAWS, *candidate.shape[1:]), "spikes"))
    return probs.gather(1, targets.repeat_interleave(ROBUST_DRAWS)[:, None]).reshape(k, ROBUST_DRAWS).mean(dim=1)


def consensus(candidates: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per member ``[K]``: mean cosine similarity of its rate image (mean over T) to the other members'."""
    names = list(candidates)
    flat = torch.stack([candidates[n].float().mean(dim=1).reshape(candidates[n].shape[0], -1) for n in names])  # [M, K, D]
    unit = flat / flat.norm(dim=2, keepdim=True).clamp_min(1e-9)
    sim = torch.einsum("mkd,nkd->kmn", unit, unit)  # [K, M, M]
    m = len(names)
    mean_other = (sim.sum(dim=2) - 1.0) / max(m - 1, 1)  # [K, M]
    return {n: mean_other[:, i] for i, n in enumerate(names)}


def tied_pick(primary: torch.Tensor, tie: float, key: torch.Tensor) -> torch.Tensor:
    """Per class (columns of ``[M, K]``): among members within ``tie`` of the best ``primary``, the one with the largest ``key``."""
    tied = primary >= primary.max(dim=0).values - tie
    return torch.where(tied, key, torch.full_like(key, -math.inf)).argmax(dim=0)


def rules(f: dict[str, torch.Tensor], names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Candidate selection rules: name -> chosen member index per class ``[K]`` from features ``[M, K]``
    (and, given the members' ``names``, rules that prefer BL-v1, the best single member on the report networks)."""
    conf, dens, robust, cons = f["conf"], f["density"], f["robust"], f["consensus"]
    densest = torch.where(dens < 0.5, dens, -dens)  # bl-auto's tie-break: densest below half of all voxels
    out = {f"conf, tie {t}, densest": tied_pick(conf, t, densest) for t in (0.0, 0.02, 0.05, 0.1)}
    out |= {f"robust, tie {t}, densest": tied_pick(robust, t, densest) for t in (0.0, 0.02, 0.05)}
    out["conf + robust"] = (conf + robust).argmax(dim=0)
    out["min(conf, robust), tie 0.02, densest"] = tied_pick(torch.minimum(conf, robust), 0.02, densest)
    out |= {f"conf, tie {t}, consensus": tied_pick(conf, t, cons) for t in (0.02, 0.1, 0.2)}
    out |= {f"robust, tie {t}, consensus": tied_pick(robust, t, cons) for t in (0.02, 0.1)}
    out["consensus (conf >= 0.5)"] = tied_pick(conf, 0.5, cons)
    if names is not None and "bl-v1:default" in names:
        v1 = torch.tensor([n.startswith("bl-v1") for n in names], dtype=conf.dtype)[:, None]
        out |= {f"conf, tie {t}, BL-v1 then densest": tied_pick(conf, t, densest + 10.0 * v1) for t in (0.05, 0.2)}
        base, first = out["conf, tie 0.02, densest"], names.index("bl-v1:default")
        for margin in (0.02, 0.1, 0.3):  # BL-v1 default unless another member is more confident by more than the margin
            beaten = conf.max(dim=0).values - conf[first] > margin
            out[f"BL-v1 default unless beaten by {margin}"] = torch.where(beaten, base, torch.full_like(base, first))
    return out


def replay(result: dict) -> dict:
    """``result`` (one network of a stored run) with every rule's metrics recomputed from its stored
    features and evaluator rows (no attack is run): rules added after the run are compared on the same reconstructions."""
    from nmprivacy.evaluation.scoring import summarize

    per_rule: dict[str, list[list[dict[str, float]]]] = {}
    for seed in result["seeds"]:
        names = seed["members"]
        feats = {k: torch.tensor(seed[k]) for k in ("conf", "density", "robust", "consensus")}
        rows = torch.tensor(seed["rows"])  # [E, M, K, C]
        classes = list(range(rows.shape[2]))
        picks = rules(feats, names) | {f"member {n}": torch.full((len(classes),), i) for i, n in enumerate(names)}
        picks["bl-auto as run"] = torch.as_tensor([names.index(w) for w in seed["winners"]])
        picks["oracle (evaluators; upper bound)"] = torch.tensor(seed["correct"]).argmax(dim=0)
        for rule, pick in picks.items():
            per_rule.setdefault(rule, []).append([assemble(rows[e], pick, classes) for e in range(rows.shape[0])])
    return {**result, "rules": {rule: summarize(table) for rule, table in per_rule.items()}}


def assemble(rows: torch.Tensor, pick: torch.Tensor, classes: list[int]) -> dict[str, float]:
    """Metrics of the confidence matrix whose row ``k`` is member ``pick[k]``'s (``rows`` ``[M, K, C]``)."""
    from nmprivacy.evaluation.metrics import all_metrics
    from nmprivacy.evaluation.scoring import square

    chosen = rows[pick, torch.arange(rows.shape[1])]
    return all_metrics(square(chosen, classes))


def study_network(net: Network, seeds: int, evaluators: int, threads: int | None) -> dict[str, Any]:
    """Every member's rows under every evaluator and the features, per seed; each rule's metrics (``replay``)."""
    from nmprivacy.attacks import get_attack
    from nmprivacy.evaluation.scoring import confidence_matrix

    target, judges, splits, steps, _, settings = load_network(net, evaluators, threads)
    classes = list(range(splits.num_classes))
    seeds_out = []
    for seed in range(seeds):
        attack = get_attack("bl-auto", settings, steps=steps)
        attack.prepare(splits)
        inv = attack.run(target, classes, seed=seed)
        names = list(inv.members)
        targets = torch.as_tensor(inv.classes)
        gen = torch.Generator().manual_seed(1000 + seed)
        feats = {
            "conf": torch.stack([inv.members[n].confidence for n in names]),
            "density": torch.stack([inv.members[n].density for n in names]),
            "robust": torch.stack([robust_confidence(target, inv.members[n].candidate, targets, gen) for n in names]),
        }
        cons = consensus({n: inv.members[n].candidate for n in names})
        feats["consensus"] = torch.stack([cons[n] for n in names])
        # [E, M, K, C]: evaluator e's probabilities for member m's reconstruction of class k (as the audit scores it)
        rows = torch.stack([torch.stack([confidence_matrix(j, inv.members[n].inversion.reconstructions, torch.Generator().manual_seed(seed), steps)
                                         for n in names]) for j in judges])
        correct = rows.argmax(dim=3) == torch.as_tensor(classes)[None, None, :]  # [E, M, K]
        seeds_out.append({"seed": seed, "members": names, "winners": inv.winners, **{k: v.tolist() for k, v in feats.items()},
                          "correct": correct.float().mean(dim=0).tolist(), "rows": rows.tolist(),
                          "member_seconds": {n: inv.members[n].seconds for n in names}})
    return replay({"network": net.name, "split": net.split, "dataset": net.dataset, "seeds": seeds_out})


def best_member(result: dict, metric: str) -> tuple[str, float]:
    """The member alone with the highest mean ``metric`` (chosen with the evaluators, after the fact)."""
    return max(((r, s[metric]) for r, s in result["rules"].items() if r.startswith("member ")), key=lambda kv: kv[1])


def member_per_seed(result: dict, metric: str) -> torch.Tensor:
    """``[S, M]``: each member alone, ``metric`` per seed (mean over evaluators), from the stored rows."""
    from nmprivacy.evaluation.metrics import METRICS

    classes = list(range(len(result["seeds"][0]["rows"][0][0])))
    out = []
    for seed in result["seeds"]:
        rows = torch.tensor(seed["rows"])  # [E, M, K, C]
        out.append([sum(METRICS[metric](rows[e, m][:, classes]) for e in range(rows.shape[0])) / rows.shape[0] for m in range(rows.shape[1])])
    return torch.tensor(out, dtype=torch.float64)


def cross_fitted_best(result: dict, metric: str) -> float:
    """The best member alone without the winner's curse: the member chosen with the evaluators on
    one half of the seeds, measured on the other half (both ways, averaged over all seeds). The
    hindsight best of several noisy rows is biased upwards; this is what choosing it costs."""
    v = member_per_seed(result, metric)
    n = v.shape[0]
    if n < 2:
        return float("nan")
    a, b = v[: n // 2], v[n // 2 :]
    best_a, best_b = int(a.mean(0).argmax()), int(b.mean(0).argmax())
    return float((b[:, best_a].sum() + a[:, best_b].sum()) / n)


def reaching_best(accs: list[float], results: list[dict]) -> tuple[int, int]:
    """On how many of ``results`` the attack accuracies ``accs`` reach the best member alone: (in hindsight, cross-fitted)."""
    return (sum(a >= best_member(r, "attack_acc")[1] - 1e-9 for a, r in zip(accs, results)),
            sum(a >= cross_fitted_best(r, "attack_acc") - 1e-9 for a, r in zip(accs, results)))


def markdown(results: list[dict]) -> str:
    """Per rule: attack accuracy / DAA on every network, and how many networks it matches the best member alone on."""
    nets = [r["network"] for r in results]
    rule_names = [n for n in results[0]["rules"] if not n.startswith("member ")]
    head = "| rule | " + " | ".join(f"{n} ({r['split']}) acc / DAA" for n, r in zip(nets, results)) + " | mean acc | nets >= best member (acc): hindsight / cross-fitted |"
    lines = [head, "|" + "---|" * (len(nets) + 3)]
    best_row = "| best member alone (evaluators) | " + " | ".join(
        f"{100 * best_member(r, 'attack_acc')[1]:.1f} / {100 * best_member(r, 'daa')[1]:.1f}" for r in results) + " | " + \
        f"{100 * sum(best_member(r, 'attack_acc')[1] for r in results) / len(results):.1f} | – |"
    lines.append(best_row)
    lines.append("| best member, chosen on the other half of the seeds | " + " | ".join(
        f"{100 * cross_fitted_best(r, 'attack_acc'):.1f} / {100 * cross_fitted_best(r, 'daa'):.1f}" for r in results) + " | " +
        f"{100 * sum(cross_fitted_best(r, 'attack_acc') for r in results) / len(results):.1f} | – |")
    for rule in rule_names:
        accs = [r["rules"][rule]["attack_acc"] for r in results]
        ok, ok_cf = reaching_best(accs, results)
        cells = " | ".join(f"{100 * r['rules'][rule]['attack_acc']:.1f} ± {100 * r['rules'][rule].get('attack_acc_std', 0.0):.1f} / "
                           f"{100 * r['rules'][rule]['daa']:.1f}" for r in results)
        lines.append(f"| {rule} | {cells} | {100 * sum(accs) / len(accs):.1f} | {ok}/{len(results)} / {ok_cf}/{len(results)} |")
    return "\n".join(lines) + "\n"


RULE = "conf, tie 0.02, densest"  # bl-auto's rule (tests/test_auto_selection.py: equal to nmprivacy.attacks.auto.select)
ABLATIONS = ((), ("bl-v1:paper",), ("bl-v2:reference",), ("bl-v2:paper",), ("bl-v2:adaptive",), ("bl-v2:reference", "bl-v2:paper"))


def without(result: dict, drop: tuple[str, ...], metric: str) -> float:
    """``metric`` of bl-auto's rule replayed on the stored runs with the members ``drop`` removed (mean over seeds and evaluators)."""
    vals = []
    for seed in result["seeds"]:
        keep = [i for i, n in enumerate(seed["members"]) if n not in drop]
        feats = {k: torch.tensor(seed[k])[keep] for k in ("conf", "density", "robust", "consensus")}
        pick = rules(feats)[RULE]
        rows = torch.tensor(seed["rows"])[:, keep]
        classes = list(range(rows.shape[2]))
        vals += [assemble(rows[e], pick, classes)[metric] for e in range(rows.shape[0])]
    return sum(vals) / len(vals)


def ablation(results: list[dict]) -> str:
    """Per split: bl-auto's attack accuracy / DAA without each member (what each member adds; its cost is in results.json's member_seconds)."""
    splits = sorted({r["split"] for r in results})
    lines = ["| members removed | " + " | ".join(f"{s}: acc / DAA" for s in splits) + " |", "|" + "---|" * (len(splits) + 1)]
    for drop in ABLATIONS:
        cells = []
        for s in splits:
            group = [r for r in results if r["split"] == s]
            cells.append(" / ".join(f"{100 * sum(without(r, drop, m) for r in group) / len(group):.1f}" for m in ("attack_acc", "daa")))
        lines.append(f"| {', '.join(drop) or 'none'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def split_summary(results: list[dict]) -> str:
    """Per rule and split: mean attack accuracy and DAA over the split's networks, and on how many
    networks the rule reaches the best member alone (hindsight / cross-fitted)."""
    splits = sorted({r["split"] for r in results})
    rule_names = [n for n in results[0]["rules"] if not n.startswith("member ")]
    head = "| rule | " + " | ".join(f"{s} ({sum(r['split'] == s for r in results)} nets): acc / DAA, nets >= best member" for s in splits) + " |"
    lines = [head, "|" + "---|" * (len(splits) + 1)]

    def cell(group: list[dict], value: Any, mark: bool = True) -> str:
        accs = [value(r, "attack_acc") for r in group]
        daas = [value(r, "daa") for r in group]
        text = f"{100 * sum(accs) / len(accs):.1f} / {100 * sum(daas) / len(daas):.1f}"
        if mark:
            ok, ok_cf = reaching_best(accs, group)
            text += f", {ok}/{len(group)} / {ok_cf}/{len(group)}"
        return text

    groups = {s: [r for r in results if r["split"] == s] for s in splits}
    lines.append("| best member alone (hindsight) | " + " | ".join(cell(g, lambda r, m: best_member(r, m)[1], False) for g in groups.values()) + " |")
    lines.append("| best member alone (cross-fitted) | " + " | ".join(cell(g, cross_fitted_best, False) for g in groups.values()) + " |")
    for rule in rule_names:
        lines.append(f"| {rule} | " + " | ".join(cell(g, lambda r, m, rule=rule: r["rules"][rule][m]) for g in groups.values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the study on the networks asked for; write ``<out>/auto-selection.json`` / ``.md``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.auto_selection", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--network", action="append", default=[], help="TARGET@DATASET[?opt=v&...] (repeatable)")
    p.add_argument("--zoo", default=None)
    p.add_argument("--split", action="append", default=[], help="zoo split(s) to run (choose, choose2, report)")
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--evaluators", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--merge", action="append", default=[], help="also tabulate the results of these earlier --out folders (no runs)")
    p.add_argument("--replay", action="store_true", help="recompute every rule's metrics from the stored runs (rules added since they ran)")
    args = p.parse_args(argv)
    from nmprivacy.attacks.common import torch_threads
    from nmprivacy.runinfo import atomic_write_json, atomic_write_text, run_metadata

    nets = [parse_network(n) for n in args.network]
    if args.zoo:
        nets += [n for n in zoo_networks(Path(args.zoo), None) if not args.split or n.split in args.split]
    if args.only:
        nets = [n for n in nets if n.name in args.only]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "auto-selection.json"
    done: dict[str, dict] = {r["network"]: r for r in json.loads(path.read_text())["results"]} if path.exists() else {}
    with torch_threads(args.threads):
        for net in nets:
            if net.name in done:
                continue
            print(f"== {net.name}", flush=True)
            done[net.name] = study_network(net, args.seeds, args.evaluators, args.threads)
            atomic_write_json(path, {"results": list(done.values()), **run_metadata(config=vars(args))})
    results = list(done.values())
    for folder in args.merge:
        results += [r for r in json.loads((Path(folder) / "auto-selection.json").read_text())["results"] if r["network"] not in done]
    if args.replay:
        results = [replay(r) for r in results]
    text = markdown(results) + "\n" + split_summary(results) + "\n" + ablation(results)
    atomic_write_text(out / "auto-selection.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__: list[str] = ["consensus", "main", "replay", "robust_confidence", "rules", "study_network"]
