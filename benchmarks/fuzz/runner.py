"""The fuzz campaign: worker processes that run cases under a memory and time limit, the
per-format table, in-process replay of one case and the command line (``nmprivacy bench fuzz``).

Cases run in worker processes (restarted after a hang or crash), so a reader that loops or
allocates terabytes costs one case, not the run; each worker's address space is capped at its
size after warm-up + ``--memory-mb`` (``RLIMIT_AS``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from benchmarks.fuzz.case import COLUMNS, FAILURES, CaseResult, cli_run, run_case
from benchmarks.fuzz.core import FORMATS, Format, isolated
from benchmarks.fuzz.selftest import SELFTEST

WORKER_CAPS: list[int] = []  # address-space cap of each worker of the last ``run``


def load_formats(selftest: bool = False) -> dict[str, Format]:
    """Every registered format (importing ``benchmarks.fuzz.formats`` registers them); with
    ``selftest`` also the deliberately broken readers that prove the harness sees each failure."""
    import benchmarks.fuzz.formats  # noqa: F401

    return {**FORMATS, **(SELFTEST if selftest else {})}


# --- worker processes ----------------------------------------------------------------------------

def _limit_memory(headroom_mb: int) -> int:
    """Cap this process's address space at its current size + ``headroom_mb``; returns the cap."""
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    cap = vm + headroom_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash reports at once instead of dumping gigabytes
    return cap


def worker_main(config: dict[str, Any]) -> int:
    """Serve cases: one JSON request per stdin line, one JSON result per line on the result pipe."""
    result_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    if not config.get("verbose"):
        os.dup2(devnull, 2)
    import torch

    torch.set_num_threads(1)
    from nmprivacy.data import files

    files.data_roots = lambda r=None: [Path(r)] if r is not None else []  # only the case's data
    formats = load_formats(bool(config.get("selftest")))
    workdir = Path(config["workdir"])
    os.chdir(workdir)
    templates: dict[tuple[str, str], Path] = {}
    try:
        for name in config["formats"]:
            fmt = formats[name]
            if fmt.warm is not None:
                fmt.warm(workdir)
            for variant in fmt.variants:  # seeds are written and read once: they must be valid
                key = (name, variant)
                templates[key] = workdir / "templates" / f"{name}-{variant}"
                fmt.write_seed(templates[key], variant)
                if name not in SELFTEST:
                    os.environ["NMPRIVACY_CACHE"] = str(workdir / "warm-cache")
                    value = fmt.read(templates[key])
                    if fmt.check is not None:
                        fmt.check(value, templates[key])
                    if fmt.cli is not None:  # the command line imports more (Lava, scikit-learn): before the cap
                        trial = workdir / "warm-cli"
                        shutil.copytree(templates[key], trial, symlinks=True)
                        code, err = cli_run(fmt.cli(trial))
                        shutil.rmtree(trial)
                        if code != 0:
                            raise RuntimeError(f"the valid {name} seed ({variant}) fails on the command line: {err.strip()[-300:]}")
        cap = _limit_memory(int(config["memory_mb"]))
        os.write(result_fd, (json.dumps({"ready": True, "cap": cap}) + "\n").encode())
        for line in sys.stdin:
            req = json.loads(line)
            res = run_case(formats[req["format"]], int(req["index"]), int(config["seed"]), workdir, templates, int(config["cli_every"]))
            os.write(result_fd, (json.dumps(asdict(res)) + "\n").encode())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


class Worker:
    """A worker process running cases under a memory limit; restarted after a hang or a crash."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.cap = 0

    def start(self) -> None:
        self.config = {**self.config, "workdir": tempfile.mkdtemp(prefix="nmprivacy-fuzz-")}
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "TQDM_DISABLE": "1",
               "MALLOC_ARENA_MAX": "2"}  # few malloc arenas: threads do not reserve address space the cap would count
        root = str(Path(__file__).resolve().parents[2])  # the repository: benchmarks/fuzz/runner.py
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.fuzz", "--worker", json.dumps(self.config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=root, start_new_session=True)
        line = self._readline(float(self.config.get("startup_timeout", 300)))
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"fuzz worker failed to start (exit {code}); rerun with --verbose to see why")
        self.cap = json.loads(line)["cap"]

    def _readline(self, timeout: float) -> bytes | None:
        """The worker's next line, b"" when it died, None when it said nothing for ``timeout`` s."""
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline()

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            shutil.rmtree(self.config["workdir"], ignore_errors=True)  # what a killed worker left
        self.proc = None

    def run(self, fmt: str, index: int, timeout: float) -> CaseResult:
        """The judged case; a memory blow-up counts only if the case repeats it in a fresh worker
        (the first may have met the cap because of what earlier cases left in the heap)."""
        result = self._run(fmt, index, timeout)
        if result.outcome == "memory":
            self.stop()
            again = self._run(fmt, index, timeout)
            again.retried, again.detail = True, again.detail or f"in a fresh worker; first run: {result.detail}"[:300]
            return again
        return result

    def _run(self, fmt: str, index: int, timeout: float) -> CaseResult:
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps({"format": fmt, "index": index}) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._readline(timeout)
        if line:
            return CaseResult(**json.loads(line))
        hung = line is None
        code = None if hung else self.proc.wait()
        self.stop()
        if hung:
            return CaseResult(fmt, index, "?", "?", False, "hangs", f"no answer within {timeout:g} s")
        outcome = "memory" if code == -signal.SIGKILL else "crashes"  # SIGKILL: the kernel's out-of-memory killer
        return CaseResult(fmt, index, "?", "?", False, outcome, f"worker died (exit {code})")


# --- the run and its table ----------------------------------------------------------------------

def summarize(results: list[CaseResult], formats: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per format: the count of each outcome column and the first examples of every failure."""
    table: dict[str, dict[str, Any]] = {}
    for name in formats:
        rows = [r for r in results if r.format == name]
        entry: dict[str, Any] = {c: 0 for c in COLUMNS}
        entry["cases"] = len(rows)
        entry["cli_cases"] = sum(r.cli for r in rows)
        entry["memory_retried"] = sum(r.retried for r in rows)
        examples: dict[str, list[str]] = {}
        for r in rows:
            entry[r.outcome] = entry.get(r.outcome, 0) + 1
            if r.outcome not in ("ok", "refused"):
                examples.setdefault(r.outcome, [])
                if len(examples[r.outcome]) < 5:
                    examples[r.outcome].append(f"#{r.index} {r.variant} {r.mutation}{' (cli)' if r.cli else ''}: {r.detail}")
        entry["examples"] = examples
        entry["seconds"] = round(sum(r.seconds for r in rows), 2)
        entry["mutations"] = dict(sorted(Counter(r.mutation.split(":")[0] for r in rows).items()))
        table[name] = entry
    return table


def table_text(table: dict[str, dict[str, Any]]) -> str:
    """The per-format table as aligned text."""
    cols = ("format",) + COLUMNS
    rows = [[name] + [str(entry[c]) for c in COLUMNS] for name, entry in table.items()]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(cols)] + [line(r) for r in rows])


def run(formats: Sequence[str], cases: int, seed: int = 0, workers: int = 1, timeout: float = 60.0, memory_mb: int = 1024,
        cli_every: int = 10, verbose: bool = False, progress: bool = True) -> tuple[dict[str, dict[str, Any]], list[CaseResult]]:
    """Run ``cases`` mutated cases of each of ``formats``; returns (table, every case's result).
    ``WORKER_CAPS`` then holds each worker's address-space cap in bytes."""
    selftest = any(f in SELFTEST for f in formats)
    config = {"formats": list(formats), "seed": seed, "memory_mb": memory_mb, "cli_every": cli_every, "verbose": verbose, "selftest": selftest}
    jobs = [(f, i) for i in range(cases) for f in formats]
    pool = [Worker(config) for _ in range(max(1, workers))]
    results: list[CaseResult] = []
    try:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="fuzz cases", unit="case", disable=not progress)
        if len(pool) == 1:
            for f, i in jobs:
                results.append(pool[0].run(f, i, timeout))
                bar.update()
        else:
            from concurrent.futures import ThreadPoolExecutor

            chunks = [jobs[k:: len(pool)] for k in range(len(pool))]

            def serve(k: int) -> list[CaseResult]:
                out = []
                for f, i in chunks[k]:
                    out.append(pool[k].run(f, i, timeout))
                    bar.update()
                return out

            with ThreadPoolExecutor(len(pool)) as ex:
                for part in ex.map(serve, range(len(pool))):
                    results.extend(part)
        bar.close()
    finally:
        WORKER_CAPS[:] = [w.cap for w in pool]
        for w in pool:
            w.stop()
    return summarize(results, formats), results


def replay(name: str, index: int, seed: int, cli_every: int) -> CaseResult:
    """Run one case in this process (no memory limit, no worker)."""
    fmt = load_formats(selftest=True)[name]
    with isolated(), tempfile.TemporaryDirectory(prefix="nmprivacy-fuzz-") as tmp:
        if fmt.warm is not None:
            fmt.warm(Path(tmp))
        return run_case(fmt, index, seed, Path(tmp), {}, cli_every)


def main(argv: Sequence[str] | None = None, prog: str = "nmprivacy bench fuzz") -> int:
    """Command line of the fuzz run (``nmprivacy bench fuzz --help``)."""
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.runinfo import atomic_write_json, check_output, run_metadata

    p = argparse.ArgumentParser(prog=prog, description="Fuzz every file reader with seeded mutations of valid files in the real formats.")
    p.add_argument("--cases", type=int, default=1000, help="mutated cases per format (default %(default)s)")
    p.add_argument("--formats", default=None, help="comma-separated formats (default: all: " + ", ".join(load_formats()) + ")")
    p.add_argument("--seed", type=int, default=0, help="base seed (default %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default %(default)s)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a case counts as a hang (default %(default)s)")
    p.add_argument("--memory-mb", type=int, default=1024, help="address space a case may add before it counts as a blow-up (default %(default)s)")
    p.add_argument("--cli-every", type=int, default=10, help="run every N-th case through the command line (0: never; default %(default)s)")
    p.add_argument("--json", default=None, help="write the table, examples and run record to this JSON file")
    p.add_argument("--only", default=None, metavar="FORMAT:INDEX", help="replay one case in-process and print its outcome")
    p.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    args = p.parse_args(argv)
    names = list(load_formats()) if not args.formats else [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise NmprivacyError(f"unknown fuzz format(s) {', '.join(unknown)}: choose from {', '.join(FORMATS)}")
    if args.cases < 1 or args.workers < 1 or args.timeout <= 0 or args.memory_mb < 64:
        raise NmprivacyError("--cases and --workers must be >= 1, --timeout > 0 and --memory-mb >= 64")
    if args.only:
        name, _, idx = args.only.partition(":")
        if name not in FORMATS or not idx.isdigit():
            raise NmprivacyError(f"--only expects FORMAT:INDEX with FORMAT one of {', '.join(FORMATS)}, got '{args.only}'")
        print(json.dumps(asdict(replay(name, int(idx), args.seed, args.cli_every)), indent=2))
        return 0
    if args.json:
        check_output(args.json)
    start = time.perf_counter()
    table, results = run(names, args.cases, args.seed, args.workers, args.timeout, args.memory_mb, args.cli_every, args.verbose)
    print(table_text(table))
    print(f"workers' address-space cap: {', '.join(f'{c / 2**30:.1f} GiB' for c in WORKER_CAPS)} (their size after warm-up + {args.memory_mb} MiB)")
    for name, entry in table.items():
        for outcome, examples in entry["examples"].items():
            for ex in examples:
                print(f"  {name} {outcome}: {ex}")
    failures = sum(entry[c] for entry in table.values() for c in FAILURES)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "only")}
        atomic_write_json(args.json, {"table": table, "failures": failures, "columns": list(COLUMNS), "worker_memory_caps": WORKER_CAPS,
                                      **run_metadata(config=settings | {"formats": names}, seed=args.seed, timings={"total": time.perf_counter() - start})})
        print(f"wrote {args.json}")
    return 1 if failures else 0
