"""The fuzz harness over every reader (``benchmarks.fuzz``): a bounded seeded run, proof that the
harness sees each kind of failure, reproducible cases and the ``nmprivacy bench fuzz`` command.

``nmprivacy bench fuzz --cases 1000`` runs the full campaign on demand.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import fuzz
from nmprivacy.cli import main

CASES = 8  # per format: a few seconds in all, every format's seed and a spread of mutations


def test_bounded_fuzz_run_has_no_failures() -> None:
    formats = list(fuzz.load_formats())
    assert {"idx", "pgm", "olivetti", "dvs-gesture", "nmnist", "event-cache", "checkpoint", "reconstructions"} <= set(formats)
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
