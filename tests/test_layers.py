"""The layers read off the tree, pinned: no import runs the wrong way.

core (data, encoding, models, network, attacks, evaluation, presets, ...) <- hw_export (NetX,
Lava, spike comparisons) <- pipelines (audit, validation, targets, api, report) <- CLI (cli.py,
commands/); benchmarks are loaded only inside ``nmprivacy bench``. Every import is counted,
also those inside functions (lazy imports still make the lower layer depend on the upper one).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINES = {"nmprivacy.audit", "nmprivacy.validation", "nmprivacy.targets", "nmprivacy.api", "nmprivacy.report", "nmprivacy.study", "nmprivacy.mia"}
RANK = {"core": 0, "hw_export": 1, "pipeline": 2, "cli": 3, "benchmarks": 4}


def layer_of(module: str) -> str | None:
    """The layer of a project module name (None for third-party modules)."""
    top = module.split(".")[0]
    if top == "hw_export":
        return "hw_export"
    if top == "benchmarks":
        return "benchmarks"
    if top != "nmprivacy":
        return None
    if module in ("nmprivacy.cli", "nmprivacy.__main__") or module.startswith("nmprivacy.commands"):
        return "cli"
    if any(module == p or module.startswith(p + ".") for p in PIPELINES):
        return "pipeline"
    if module == "nmprivacy":
        return "pipeline"  # the package's lazy API names load nmprivacy.api
    return "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, at module level) of every import in ``path``."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from pkg import mod` depends on pkg.mod when that is a module
                sub = f"{node.module}.{alias.name}"
                is_module = (REPO / Path(*sub.split("."))).with_suffix(".py").is_file() or (REPO / Path(*sub.split("."))).is_dir()
                found.append((node.lineno, sub if is_module else node.module, id(node) in top_level))
    return found


def violations() -> list[str]:
    bad = []
    for folder in ("nmprivacy", "hw_export", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            mine = layer_of(module_name(path))
            for line, target, at_top in imports(path):
                theirs = layer_of(target)
                if theirs is None or mine == "benchmarks":
                    continue
                where = f"{path.relative_to(REPO)}:{line} ({mine}) imports {target} ({theirs})"
                if theirs == "benchmarks" and not (path.name == "bench.py" and not at_top):
                    bad.append(where + ": benchmarks load only inside `nmprivacy bench`")
                elif theirs != "benchmarks" and RANK[theirs] > RANK[mine] and not (mine == "pipeline" and module_name(path) == "nmprivacy"):
                    bad.append(where)
    return bad


def test_no_import_runs_up_the_layers():
    assert violations() == []


def test_the_checker_sees_a_wrong_import(tmp_path, monkeypatch):
    """A core module importing the hardware path is caught (the check can fail)."""
    assert layer_of("nmprivacy.attacks.engine") == "core" and layer_of("hw_export.lava_run") == "hw_export"
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from hw_export.lava_run import run_lava\n")
    (line, target, at_top), = imports(bad)
    assert target == "hw_export.lava_run" and not at_top and RANK[layer_of(target)] > RANK["core"]


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (every import, lazy ones too), for nmprivacy and hw_export."""
    graph = {}
    for folder in ("nmprivacy", "hw_export"):
        for path in sorted((REPO / folder).rglob("*.py")):
            graph[module_name(path)] = {target for _, target, _ in imports(path)}
    return {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one module (sorted)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        order[v] = low[v] = len(order)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return sorted(found)


def test_no_import_circles():
    """No two project modules need each other, not even through a lazy import (a circle makes the
    layers meaningless: report.py and mia/report.py had one, now both read nmprivacy.defence_text)."""
    assert circles(import_graph()) == []


def test_the_circle_checker_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert circles(graph) == [["a", "b", "c"]]
