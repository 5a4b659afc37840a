"""Fuzzing every file reader with seeded mutations of valid files written in the real formats.

``nmprivacy bench fuzz [--cases N] [--formats a,b] [--json FILE]`` runs N mutated cases per
format and prints one table row per format: cases, tracebacks, crashes, memory blow-ups, hangs,
partial outputs, silently accepted bad inputs, valid inputs refused, bad messages. A case is:
copy a valid seed case (written once per worker in the real format), apply one seeded mutation
(generic byte-level ones or the format's own semantic ones), run the reader (every
``--cli-every``-th case the command line via ``nmprivacy.cli.main``) and judge the outcome:
- a valid result (checked by the format's ``check``), or an ``NmprivacyError`` whose message is
  one line naming a file of the case (and, for mutations with ``expect``, saying e.g. "refused");
- never another exception, a hang (``--timeout``), an allocation beyond the worker's address
  space limit (``RLIMIT_AS`` = size after warm-up + ``--memory-mb``), a file left behind on
  failure, or a temporary file left at all; a mutation with ``must_fail`` must be refused.
Case ``i`` of a format depends only on ``(--seed, format, i)``: ``--only FORMAT:I`` replays it
in-process with its traceback.

The package, with imports in one direction (no cycle):
- ``core``: ``Mutation``, ``Format``, the registry, generic byte-level mutations, ``isolated``;
- ``case``: one case, built, mutated, run and judged;
- ``runner``: worker processes, the campaign, its table and the command line (``main``);
- ``selftest``: deliberately broken readers proving the harness sees each failure;
- ``formats``: one module per fuzzed reader (``idx``, ``pgm``, ``olivetti``, ``dvs_gesture``,
  ``nmnist``, ``event_cache``, ``checkpoint``, ``reconstructions``, ``netx``, ``nir_graph``),
  each ending in its ``FORMAT = Format(...)``, and ``formats/common.py`` for shared helpers.

Adding a reader is one module in ``benchmarks/fuzz/formats/`` (a function writing a valid seed
case, the files mutations may hit, the reader call, optionally a ``check``, semantic mutations
and the expected outcome of each generic mutation, the command line) and one line
``register(_format("<module>"))`` in ``benchmarks/fuzz/formats/__init__.py``.
"""

from __future__ import annotations

from benchmarks.fuzz.case import COLUMNS, FAILURES, CaseResult, run_case
from benchmarks.fuzz.core import ALWAYS_FAIL, FORMATS, GENERIC, Format, Mutation, case_rng, expect, isolated, register
from benchmarks.fuzz.runner import WORKER_CAPS, load_formats, main, replay, run, summarize, table_text
from benchmarks.fuzz.selftest import SELFTEST

__all__ = [
    "ALWAYS_FAIL", "COLUMNS", "FAILURES", "FORMATS", "GENERIC", "SELFTEST", "WORKER_CAPS", "CaseResult", "Format", "Mutation",
    "case_rng", "expect", "isolated", "load_formats", "main", "register", "replay", "run", "run_case", "summarize", "table_text",
]
