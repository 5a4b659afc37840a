"""A study's table and figure: one row per cell from its audit's results.json, each factor's
effect, written as ``study.json``, ``study.md`` and ``study.png``.

Per cell and attack (``bl-v1``, ``bl-v2``, and ``mi-face`` when the cells run it): the audit's
``attack_acc``, ``top3_acc``, ``avg_conf``, ``daa`` (mean over seeds and evaluators) with their
``<metric>_std`` across seeds, and ``target_confidence`` with its std across seeds (from the
audit's ``per_seed``). A factor's effect in a grid is, per attack and metric, the mean over the
grid's cells at each of its levels (the other factors averaged out) and the spread of those means.

Training-seed replicates (cells that differ only in the setting ``seed``) are pooled into one row
(``replicate_rows``, study.json's ``replicates`` beside the raw ``cells``): every number its mean
over the replicates with results and ``<name>_std`` its std across them, and ``n`` the count. The
grid tables, the privacy-utility table and its front are made of these rows; a row of one cell is
that cell's row (its ``_std`` over attack seeds, as without replicates).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from nmprivacy.mia.report import membrane_check
from nmprivacy.results import METRIC_NAMES as METRICS
from nmprivacy.runinfo import atomic_path, atomic_write_json, atomic_write_text, run_metadata
from nmprivacy.study.spec import Cell, StudySpec, cell_seed, study_grids

EFFECT_METRICS = ("attack_acc", "avg_conf", "target_confidence")


def attack_row(a: dict[str, Any]) -> dict[str, Any]:
    """The study's numbers of one attack entry of an audit's results.json."""
    row: dict[str, Any] = {}
    for m in METRICS:
        row[m] = a[m]
        row[f"{m}_std"] = a.get(f"{m}_std")
    confs = [s["target_confidence"] for s in a.get("per_seed", [])]
    row["target_confidence"] = a["target_confidence"]
    row["target_confidence_std"] = statistics.stdev(confs) if len(confs) > 1 else None
    row["iterations"] = a.get("iterations")
    row["valid"] = a.get("valid", True)
    if a.get("reason"):
        row["reason"] = a["reason"]
    return row


def model_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A trained model's record of results.json as the study keeps it: kind, test accuracy
    (``val_acc``), reset and the ε its DP-SGD spent (None: trained without)."""
    return {**{k: record.get(k) for k in ("kind", "val_acc", "reset")}, "epsilon": (record.get("dp") or {}).get("epsilon")}


def membership_entry(attack: dict[str, Any]) -> dict[str, Any]:
    """One membership attack's result of mia.json as the study keeps it: AUC, TPR at 1 % and 0.1 % FPR."""
    tpr = attack.get("tpr_at_fpr", {})
    return {"auc": attack.get("auc"), "tpr_at_1pct_fpr": tpr.get("0.01"), "tpr_at_0.1pct_fpr": tpr.get("0.001")}


def cell_row(cell: Cell, folder: Path, outcome: dict[str, Any], out: Path) -> dict[str, Any]:
    """One cell of study.json: settings, status, timings, models' accuracies and attack numbers."""
    row: dict[str, Any] = {"key": cell.key, "folder": str(folder.relative_to(out)), "settings": cell.settings,
                           "status": outcome["status"], "seconds": outcome.get("seconds")}
    if outcome.get("error"):
        row["error"] = outcome["error"]
    try:
        results = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return row
    models = results.get("models", {})
    row["models"] = {"target": model_summary(models.get("target", {})),
                     "evaluators": [{"kind": e.get("kind"), "val_acc": e.get("val_acc")} for e in models.get("evaluators", [])]}
    if models.get("ann"):
        row["models"]["ann"] = model_summary(models["ann"])
    row["attacks"] = {name: attack_row(a) for name, a in results.get("attacks", {}).items()}
    if results.get("membership"):
        mia = results["membership"]
        check = membrane_check(mia) or {}  # a counts run's white-box cross-check: the same models through the membrane, as their own measures
        row["membership"] = {**{name: membership_entry(a) for name, a in mia.get("attacks", {}).items()},
                             **{f"{name}[membrane]": membership_entry(a) for name, a in check.get("attacks", {}).items()}}
        row["membership_target"] = mia.get("target", {})
    try:
        record = json.loads((folder / "cell.json").read_text())
        row["cell_seconds"] = record.get("timings_s", {}).get("cell")
    except (OSError, ValueError):
        pass
    return row


REPLICATED = ("models", "attacks", "membership")  # the parts of a cell row whose numbers replicates pool


def replicate_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group of replicates among ``rows`` (cells whose settings differ only in
    ``seed``), in order of first appearance (``replicate_row``)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(json.dumps(without_seed(r["settings"]), sort_keys=True, default=str), []).append(r)
    return [replicate_row(g) for g in groups.values()]


def without_seed(settings: dict[str, Any]) -> dict[str, Any]:
    """A cell's settings but ``seed``: what its replicates share."""
    return {k: v for k, v in settings.items() if k != "seed"}


def replicate_row(group: list[dict[str, Any]]) -> dict[str, Any]:
    """The row of one group of replicate cell rows: ``key`` (the cells' keys joined by ``+``),
    ``cells``, ``seeds``, the shared ``settings``, ``status``, ``n`` (replicates with results) and
    their ``models``, ``attacks`` and ``membership`` pooled (``pool``); one replicate with results
    gives its own numbers unchanged, and ``std_over`` says what the row's ``_std`` are over."""
    done = [r for r in group if "attacks" in r]
    row: dict[str, Any] = {"key": "+".join(r["key"] for r in group), "cells": [r["key"] for r in group], "seeds": [r.get("seed") for r in group],
                           "settings": without_seed(group[0]["settings"]), "status": "/".join(dict.fromkeys(r["status"] for r in group)),
                           "n": len(done), "std_over": "training seeds" if len(done) > 1 else "attack seeds"}
    for part in REPLICATED:
        values = [r[part] for r in done if part in r]
        if values:
            row[part] = values[0] if len(values) == 1 else pool(values)
    return row


def pool(values: list[Any]) -> Any:
    """Replicates' values of one field as one: mappings key by key (a number their mean, with
    ``<key>_std`` their std; the replicates' own ``<key>_std`` left out), lists of one length item
    by item, flags true when all are, anything else kept when all agree, else None."""
    if all(isinstance(v, dict) for v in values):
        out: dict[str, Any] = {}
        for k in dict.fromkeys(k for v in values for k in v if not k.endswith("_std")):
            items = [v.get(k) for v in values]
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in items):
                out[k], out[f"{k}_std"] = statistics.fmean(items), statistics.stdev(items)
            else:
                out[k] = pool(items)
        return out
    if all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        return [pool(list(items)) for items in zip(*values)]
    if all(isinstance(v, bool) for v in values):
        return all(values)
    return values[0] if all(v == values[0] for v in values) else None


def factor_effects(grid_name: str, factors: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per factor of a grid and attack: the mean of each ``EFFECT_METRICS`` at each level and the
    spread (max - min) of those means; cells without results are left out."""
    done = [r for r in rows if "attacks" in r]
    out = []
    for f in factors:
        levels = list(dict.fromkeys(json.dumps(r["settings"].get(f)) for r in done))
        attacks = list(dict.fromkeys(a for r in done for a in r["attacks"]))
        for attack in attacks:
            entry: dict[str, Any] = {"grid": grid_name, "factor": f, "attack": attack, "levels": [json.loads(v) for v in levels]}
            for m in EFFECT_METRICS:
                means = []
                for v in levels:
                    vals = [r["attacks"][attack][m] for r in done if json.dumps(r["settings"].get(f)) == v and attack in r["attacks"]]
                    means.append(sum(vals) / len(vals) if vals else None)
                entry[m] = means
                known = [x for x in means if x is not None]
                entry[f"{m}_spread"] = (max(known) - min(known)) if known else None
            out.append(entry)
    return out


LEAKAGE_METRICS = {"attack_acc": "inversion attack accuracy", "auc": "membership AUC", "tpr_at_1pct_fpr": "membership TPR at 1 % FPR"}


def leakage_of(row: dict[str, Any], suffix: str = "") -> dict[str, float]:
    """A cell's leakage measures by name (``"bl-v2 attack_acc"``, ``"lira auc"``, ...): every
    inversion attack's accuracy and every membership attack's AUC and TPR at 1 % FPR (``suffix``
    ``"_std"``: their stds instead, where the row has them)."""
    out = {f"{name} attack_acc": a.get(f"attack_acc{suffix}") for name, a in row.get("attacks", {}).items()}
    for name, a in row.get("membership", {}).items():
        if not isinstance(a, dict):  # pooled over replicates of which only some had it (a membrane check): no measure
            continue
        for m in ("auc", "tpr_at_1pct_fpr"):
            out[f"{name} {m}"] = a.get(f"{m}{suffix}")
    return {k: v for k, v in out.items() if v is not None}


UTILITY = {"test acc": ("target", "val_acc"), "ε": ("target", "epsilon"), "ANN acc": ("ann", "val_acc"), "ANN ε": ("ann", "epsilon")}


def utility_of(row: dict[str, Any], suffix: str = "") -> dict[str, float | None]:
    """A row's test accuracy and ε (None: no DP-SGD) of the target and the ANN, by ``UTILITY``
    name, for the models it has (``suffix`` ``"_std"``: their stds instead)."""
    models = row.get("models", {})
    return {name: models[role].get(f"{field}{suffix}") for name, (role, field) in UTILITY.items() if role in models}


def utility_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The ``UTILITY`` names of a table of ``rows``: the target's always, the ANN's where a row has one."""
    return [u for u in UTILITY if UTILITY[u][0] == "target" or any(u in utility_of(r) for r in rows)]


def measures_of(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values, stds over training seeds) of a row's ``utility_of`` and ``leakage_of`` measures;
    no stds for a row of one replicate."""
    values = {**utility_of(row), **leakage_of(row)}
    return values, ({**utility_of(row, "_std"), **leakage_of(row, "_std")} if row.get("n", 1) > 1 else {})


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (accuracy, leakage) points: True where no other point is at least as accurate and
    leaks at most as much, better in one (the privacy-utility front)."""
    def dominated(i: int) -> bool:
        a, l = points[i]
        return any(b >= a and m <= l and (b > a or m < l) for j, (b, m) in enumerate(points) if j != i)
    return [not dominated(i) for i in range(len(points))]


def privacy_utility(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per leakage measure: the rows' (accuracy, leakage) points (of replicate rows: the means,
    with their stds and ``n``) and which are on the front."""
    done = [r for r in rows if r.get("models", {}).get("target", {}).get("val_acc") is not None]
    measures = sorted({m for r in done for m in leakage_of(r)})
    out = {}
    for m in measures:
        cells = [(r, *measures_of(r)) for r in done if m in leakage_of(r)]
        points = [(values["test acc"], values[m]) for _, values, _ in cells]
        out[m] = {"cells": [r["key"] for r, _, _ in cells], "accuracy": [p[0] for p in points], "leakage": [p[1] for p in points],
                  "accuracy_std": [stds.get("test acc") for _, _, stds in cells], "leakage_std": [stds.get(m) for _, _, stds in cells],
                  "n": [r.get("n", 1) for r, _, _ in cells], "front": pareto_front(points)}
    return out


def pareto_table(rows: list[dict[str, Any]], front: dict[str, Any], factors: list[str]) -> list[str]:
    """Markdown: per row (a cell, or replicates pooled: ``replicate_rows``) its settings, ``n``,
    test accuracy and ε of the target (and of the ANN where one is), every leakage measure (mean ±
    std over training seeds for n > 1), a star where the row is on that measure's front."""
    shown = [r for r in rows if r.get("models", {}).get("target", {}).get("val_acc") is not None]
    utility = utility_columns(shown)
    on = {(m, k) for m in front for k, f in zip(front[m]["cells"], front[m]["front"]) if f}
    head = [*factors, "n", *utility, *front]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in shown:
        values, stds = measures_of(r)
        cols = [_show(r["settings"].get(f)) for f in factors] + [str(r.get("n", 1))]
        cols += [show_measure(m, values, stds) + (" ★" if (m, r["key"]) in on else "") for m in [*utility, *front]]
        lines.append("| " + " | ".join(cols) + " |")
    return lines


def show_measure(name: str, values: dict[str, Any], stds: dict[str, Any]) -> str:
    """One measure of ``measures_of`` in a table: ε as ``∞`` when None (no DP-SGD), an AUC with 3
    decimals, anything else a percentage; ``± std`` where ``stds`` has one, ``–`` when absent."""
    if name not in values:
        return "–"
    value, std = values[name], stds.get(name)
    if name.endswith("ε"):
        return "∞" if value is None else f"{value:.2g}" + (f" ± {std:.2g}" if std is not None else "")
    if name.endswith("auc"):
        return f"{value:.3f}" + (f" ± {std:.3f}" if std is not None else "")
    return pct(value, std)


def plot_pareto(path: Path, front: dict[str, Any]) -> None:
    """pareto.png: test accuracy against each leakage measure, the front marked (error bars: std over training seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = list(front) or ["(no results)"]
    cols = min(3, len(measures))
    rows = -(-len(measures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.2 * rows), squeeze=False)
    for ax, m in zip(axes.flat, measures):
        f = front.get(m)
        if f:
            xs, ys = [100 * v for v in f["leakage"]], [100 * v for v in f["accuracy"]]
            xerr, yerr = ([100 * (s or 0.0) for s in f.get(k) or [None] * len(xs)] for k in ("leakage_std", "accuracy_std"))
            if any(xerr) or any(yerr):  # replicates: ± std over training seeds
                ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.75", elinewidth=0.8, zorder=0)
            ax.scatter(xs, ys, c=["tab:red" if on else "0.6" for on in f["front"]], s=18)
            pts = sorted((x, y) for x, y, on in zip(xs, ys, f["front"]) if on)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="tab:red", linewidth=1)
        ax.set_xlabel(f"{m} (%)", fontsize=8)
        ax.set_ylabel("test accuracy (%)", fontsize=8)
    for ax in list(axes.flat)[len(measures):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def pct(value: float | None, std: float | None = None) -> str:
    """A fraction as a percentage, with ``± std`` when given."""
    if value is None:
        return "–"
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std is not None else "")


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def grid_table(factors: list[str], rows: list[dict[str, Any]], attacks: tuple[str, ...]) -> list[str]:
    """Markdown lines of one grid (``rows``: its ``replicate_rows``): its factors' levels, per
    inversion attack acc / top-3 / conf / DAA / target conf, per membership attack AUC / TPR at 1 %
    FPR, the models' test accuracy and ε (``utility_columns``), ``n`` and the cell(s)."""
    from nmprivacy.membership import MEMBERSHIP_ATTACKS

    inversion = [a for a in attacks if a not in MEMBERSHIP_ATTACKS]
    membership = [f"{a} {m}" for a in attacks if a in MEMBERSHIP_ATTACKS for m in ("auc", "tpr_at_1pct_fpr")]
    utility = utility_columns(rows)
    head = [*factors]
    for a in inversion:
        head += [f"{a} acc", "top-3", "avg conf", "DAA", "target conf"]
    head += [*membership, *utility, "n", "cell"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cols = [_show(r["settings"].get(f)) for f in factors]
        for a in inversion:
            x = r.get("attacks", {}).get(a)
            if x is None:
                cols += [r["status"] if "attacks" not in r else "–"] + ["–"] * 4
                continue
            mark = "" if x.get("valid", True) else " (not valid)"
            cols += [pct(x[m], x.get(f"{m}_std")) + (mark if m == "attack_acc" else "") for m in METRICS]
            cols.append(pct(x["target_confidence"], x.get("target_confidence_std")))
        values, stds = measures_of(r)
        cols += [show_measure(m, values, stds) for m in [*membership, *utility]] + [str(r.get("n", 1)), " ".join(f"`{k}`" for k in r["cells"])]
        lines.append("| " + " | ".join(cols) + " |")
    return lines


def effects_table(effects: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: per grid, factor and attack, the metric means by level and their spread."""
    lines = ["| grid | factor | attack | levels | attack acc by level | spread | avg conf by level | spread | target conf by level |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in effects:
        by = {m: " / ".join(pct(v) for v in e[m]) for m in EFFECT_METRICS}
        lines.append(f"| {e['grid']} | {e['factor']} | {e['attack']} | {' / '.join(map(_show, e['levels']))} | {by['attack_acc']} | "
                     f"{pct(e['attack_acc_spread'])} | {by['avg_conf']} | {pct(e['avg_conf_spread'])} | {by['target_confidence']} |")
    return lines


def plot_effects(path: Path, effects: list[dict[str, Any]]) -> None:
    """``study.png``: one panel per (grid, factor), each attack's mean attack accuracy (solid),
    average confidence (dashed) and target confidence (dotted) at each level of the factor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((e["grid"], e["factor"]) for e in effects))
    if not panels:
        return
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    colours = {"bl-v1": "tab:blue", "bl-v2": "tab:orange", "mi-face": "tab:green"}
    for ax, (grid, factor) in zip(axes.flat, panels):
        for e in (e for e in effects if (e["grid"], e["factor"]) == (grid, factor)):
            x = range(len(e["levels"]))
            colour = colours.get(e["attack"], None)
            ax.plot(x, [100 * v if v is not None else float("nan") for v in e["attack_acc"]], "o-", color=colour, label=f"{e['attack']} acc")
            ax.plot(x, [100 * v if v is not None else float("nan") for v in e["avg_conf"]], "s--", color=colour, alpha=0.7, label=f"{e['attack']} conf")
            ax.plot(x, [100 * v if v is not None else float("nan") for v in e["target_confidence"]], "^:", color=colour, alpha=0.5,
                    label=f"{e['attack']} target conf")
            ax.set_xticks(list(x), [_show(v) for v in e["levels"]], fontsize=8)
        ax.set_title(f"{grid}: {factor}", fontsize=9)
        ax.set_ylim(-2, 102)
        ax.set_ylabel("%", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("factor effects: mean over the grid's other factors (solid: attack accuracy, dashed: average confidence, dotted: target confidence)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_study(out: Path, spec: StudySpec, cells: list[Cell], grids: dict[str, list[Cell]], folders: dict[str, Path],
                outcomes: dict[str, dict[str, Any]], cluster: dict[str, Any], timings: dict[str, float], command: str | None = None) -> dict[str, Any]:
    """Write ``study.json``, ``study.md`` and ``study.png`` into ``out``; returns the study.json content."""
    def row(c: Cell) -> dict[str, Any]:
        return {**cell_row(c, folders[c.key], outcomes.get(c.key, {"status": "missing"}), out), "seed": cell_seed(spec, c.settings)}

    rows = {c.key: row(c) for c in cells}
    effects: list[dict[str, Any]] = []
    grid_rows, pooled = {}, {}
    for grid in study_grids(spec):
        grid_rows[grid.name] = [{**rows[c.key], "settings": c.settings} for c in grids[grid.name]]
        pooled[grid.name] = replicate_rows(grid_rows[grid.name])
        effects += factor_effects(grid.name, list(grid.factors), grid_rows[grid.name])
    counts = {s: sum(1 for r in rows.values() if r["status"] == s) for s in ("done", "reused", "failed", "missing")}
    replicates = replicate_rows(list(rows.values()))
    front = privacy_utility(replicates)
    study = {"dataset": spec.dataset, "budget": spec.budget, "seeds": spec.seeds, "evaluators": spec.evaluators, "command": command,
             "spec": spec, "cluster": cluster, "counts": counts,
             "grids": {g.name: {"factors": g.factors, "base": g.base, "cells": [c.key for c in grids[g.name]],
                                "replicates": [r["key"] for r in pooled[g.name]]} for g in study_grids(spec)},
             "cells": list(rows.values()), "replicates": replicates, "effects": effects, "privacy_utility": front,
             **run_metadata(config=spec, seed=spec.seed, timings=timings)}
    atomic_write_json(out / "study.json", study)
    plot_effects(out / "study.png", effects)
    plot_pareto(out / "pareto.png", front)
    atomic_write_text(out / "study.md", markdown(study, spec, grid_rows, pooled, effects))
    return study


def markdown(study: dict[str, Any], spec: StudySpec, grid_rows: dict[str, list[dict[str, Any]]], pooled: dict[str, list[dict[str, Any]]],
             effects: list[dict[str, Any]]) -> str:
    """study.md: how it was made, each grid's table (``pooled``: its replicate rows; ``grid_rows``:
    its cells, for their errors), the privacy-utility table, the factor effects and the figures."""
    c = study["counts"]
    lines = [f"# Study: {spec.dataset}, {spec.budget} budget", "",
             f"{len(study['cells'])} cells (run now {c['done']}, reused {c['reused']}, failed {c['failed']}), each one audit with "
             f"{spec.seeds} seeds x {spec.evaluators} evaluators; percentages, mean ± std over the attack seeds, or over the training seeds "
             f"(setting `seed`) in a row that pools n > 1 replicates. Cluster: {study['cluster']['scheduler']}"
             + (f", {study['cluster']['workers']} worker(s)" if study["cluster"].get("workers") else "") + f", {study['cluster']['threads']} torch thread(s) per cell."]
    if study.get("command"):
        lines += ["", f"Command: `{study['command']}`"]
    base = {**spec.base}
    if base:
        lines += ["", "Settings of every cell: " + ", ".join(f"`{k}={_show(v)}`" for k, v in base.items())]
    first = next((r for r in study["cells"] if "models" in r), None)
    if first:
        t = first["models"]["target"]
        ev = ", ".join(pct(e["val_acc"]) for e in first["models"]["evaluators"])
        lines += ["", f"Models of the first cell: target {t['kind']} (reset {t['reset']}) {pct(t['val_acc'])} % validation accuracy; evaluators {ev} %."]
    for grid in study_grids(spec):
        lines += ["", f"## {grid.name}", ""]
        if grid.base:
            lines += ["Settings of this grid: " + ", ".join(f"`{k}={_show(v)}`" for k, v in grid.base.items()), ""]
        lines += grid_table(list(without_seed(grid.factors)), pooled[grid.name], spec.attacks)
        failed = [r for r in grid_rows[grid.name] if r.get("error")]
        lines += [f"- cell `{r['key']}` failed: {r['error']}" for r in failed]
    factors = list(without_seed(dict.fromkeys(f for g in spec.grids for f in g.factors)))
    lines += ["", "## Privacy-utility", "",
              "Per cell, or per n training-seed replicates pooled (mean ± std): the target's test accuracy, ε where it trained with "
              "DP-SGD (∞: without), the ANN's where there is one, and every leakage measure; ★ marks the rows on that measure's front "
              "(no other row is at least as accurate and leaks at most as much; on the means).", ""]
    lines += pareto_table(study["replicates"], study["privacy_utility"], factors)
    lines += ["", "![privacy-utility fronts](pareto.png)"]
    lines += ["", "## Factor effects", "",
              "Per factor, the mean over the grid's cells at each level (the other factors averaged out) and the spread of those means.", ""]
    lines += effects_table(effects)
    lines += ["", "![factor effects](study.png)", ""]
    return "\n".join(lines)
