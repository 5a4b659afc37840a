"""The fuzz harness over every reader (``benchmarks.fuzz``): a bounded seeded run, proof that the
harness sees each kind of failure, reproducible cases, the ``nmprivacy bench fuzz`` command and
the package's shape (one module per format, no import cycle).

``nmprivacy bench fuzz --cases 1000`` runs the full campaign on demand.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from benchmarks import fuzz
from benchmarks.fuzz.core import FORMATS
from nmprivacy.cli import main

CASES = 8  # per format: a few seconds in all, every format's seed and a spread of mutations


def test_bounded_fuzz_run_has_no_failures() -> None:
    formats = list(fuzz.load_formats())
    assert {"idx", "pgm", "olivetti", "dvs-gesture", "nmnist", "event-cache", "checkpoint", "reconstructions", "netx", "nir"} <= set(formats)
    table, results = fuzz.run(formats, CASES, seed=1, cli_every=3, progress=False)
    problems = {name: {c: entry[c] for c in (*fuzz.FAILURES, "valid_refused", "bad_messages") if entry[c]} for name, entry in table.items()}
    examples = {name: entry["examples"] for name, entry in table.items() if entry["examples"]}
    assert not any(problems.values()), (problems, examples)
    assert all(entry["cases"] == CASES for entry in table.values())
    assert all(table[name]["refused"] > 0 for name in formats if name != "event-cache"), table  # the mutations bite
    assert table["event-cache"]["ok"] == CASES  # a damaged cache entry is rebuilt, never an error
    assert any(r.cli for r in results) and len({r.mutation for r in results}) > len(formats)


def test_harness_sees_every_kind_of_failure() -> None:
    expected = {"traceback": "tracebacks", "memory": "memory", "partial": "partial", "accepts": "accepted",
                "message": "bad_messages", "crash": "crashes", "hang": "hangs"}  # crash and hang last: they restart the worker
    names = [f"selftest-{k}" for k in expected]
    table, _ = fuzz.run(names, 1, timeout=3, progress=False, memory_mb=256)
    for key, column in expected.items():
        entry = table[f"selftest-{key}"]
        assert entry[column] == 1, (key, entry)
        assert sum(entry[c] for c in fuzz.COLUMNS if c not in ("cases", column)) == 0, (key, entry)


def test_cases_are_reproducible() -> None:
    a = fuzz.replay("olivetti", 5, seed=3, cli_every=0)
    b = fuzz.replay("olivetti", 5, seed=3, cli_every=0)
    c = fuzz.replay("olivetti", 6, seed=3, cli_every=0)
    assert (a.mutation, a.outcome) == (b.mutation, b.outcome)
    assert fuzz.case_rng(3, "olivetti", 5).random() != fuzz.case_rng(3, "olivetti", 6).random() and c.format == "olivetti"


def test_bench_fuzz_command_writes_the_table(tmp_path: Path, capsys) -> None:
    out = tmp_path / "fuzz.json"
    assert main(["bench", "fuzz", "--cases", "2", "--formats", "idx,reconstructions", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tracebacks" in printed and "reconstructions" in printed
    result = json.loads(out.read_text())
    assert result["failures"] == 0 and result["table"]["idx"]["cases"] == 2 and "versions" in result
    assert main(["bench", "fuzz", "--formats", "bogus"]) == 2
    assert "unknown fuzz format" in capsys.readouterr().err


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that the file ``path`` imports (also inside functions, and by
    ``importlib`` through ``_format("name")`` in ``formats/__init__.py``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    found |= {f"benchmarks.fuzz.formats.{m}" for m in re.findall(r'_format\("(\w+)"\)', path.read_text())}
    return found & modules


def test_one_module_per_format_and_no_import_cycle() -> None:
    root = Path(fuzz.__file__).parent
    paths = {".".join(("benchmarks", *p.relative_to(root.parent).with_suffix("").parts)).removesuffix(".__init__"): p for p in root.rglob("*.py")}
    graph = {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        assert state.get(name) != 1, f"import cycle: {' -> '.join(trail + [name])}"
        if state.get(name) == 2:
            return
        state[name] = 1
        for other in graph[name]:
            visit(other, trail + [name])
        state[name] = 2

    for name in graph:
        visit(name, [])
    format_modules = [n for n in paths if n.startswith("benchmarks.fuzz.formats.") and n != "benchmarks.fuzz.formats.common"]
    assert len(format_modules) == len(FORMATS) >= 10
    registered = {id(f) for f in FORMATS.values()}
    for name in format_modules:
        module = __import__(name, fromlist=["FORMAT"])
        assert id(module.FORMAT) in registered, f"{name}.FORMAT is not registered in benchmarks/fuzz/formats/__init__.py"
