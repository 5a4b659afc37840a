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
Cases run in worker processes (restarted after a hang or crash), so a reader that loops or
allocates terabytes costs one case, not the run. Case ``i`` of a format depends only on
``(--seed, format, i)``: ``--only FORMAT:I`` replays it in-process with its traceback.

Adding a format (e.g. NetX, NIR) is one ``Format`` entry: a function writing a valid seed case
into a folder (``write_seed(case, variant)``), the files mutations may hit (``targets``), the
reader call (``read(case)``), optionally ``check(result, case)``, semantic mutations
(``semantic``: functions ``(rng, case) -> Mutation`` that break the file in format-aware ways),
the expected outcome of each generic mutation (``generic(name, target, variant)``), and the command line
(``cli``); then one line ``register(Format(...))`` in ``benchmarks/fuzz_formats.py``.

One module on purpose (~620 lines): the harness's parts (mutations, isolated worker processes
with their memory and time limits, the judging of each outcome, the table) share the case and
outcome types and are only meaningful together; the formats live in ``fuzz_formats``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
import traceback
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

WORKER_CAPS: list[int] = []  # address-space cap of each worker of the last ``run``
COLUMNS = ("cases", "ok", "refused", "tracebacks", "crashes", "memory", "hangs", "partial", "accepted", "valid_refused", "bad_messages")
FAILURES = ("tracebacks", "crashes", "memory", "hangs", "partial", "accepted")  # must all be 0
TEMP_SUFFIXES = (".tmp", ".old")


@dataclass(frozen=True)
class Mutation:
    """What a case did to its seed. ``must_fail``: True when a correct reader must refuse it,
    False when it must succeed (and pass ``check``), None when either is right. ``expect``: a
    word the error message must contain (e.g. "refused" for a pickle with code)."""

    name: str
    must_fail: bool | None
    expect: str | None = None


@dataclass(frozen=True)
class Format:
    """One fuzzed reader (see the module docstring)."""

    name: str
    write_seed: Callable[[Path, str], None]
    targets: Callable[[Path], list[Path]]
    read: Callable[[Path], Any]
    variants: tuple[str, ...] = ("default",)
    check: Callable[[Any, Path], None] | None = None
    semantic: tuple[Callable[[np.random.Generator, Path], Mutation], ...] = ()
    generic: Callable[[str, Path, str], bool | None] = lambda name, target, variant: True if name in ALWAYS_FAIL else None
    cli: Callable[[Path], list[str]] | None = None
    outputs: tuple[str, ...] = ("cache", "out")  # case sub-folders a successful run may write into
    warm: Callable[[Path], None] | None = None  # imports / one-off set-up before the memory limit


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add ``fmt`` to the fuzzed formats."""
    FORMATS[fmt.name] = fmt
    return fmt


def load_formats(selftest: bool = False) -> dict[str, Format]:
    """Every registered format (importing ``benchmarks.fuzz_formats`` registers them); with
    ``selftest`` also the deliberately broken readers that prove the harness sees each failure."""
    import benchmarks.fuzz_formats  # noqa: F401

    return {**FORMATS, **(SELFTEST if selftest else {})}


def _selftest_seed(case: Path, variant: str) -> None:
    case.mkdir(parents=True, exist_ok=True)
    (case / "f.bin").write_bytes(b"seed")


def _selftest(name: str, read: Callable[[Path], Any]) -> Format:
    return Format(f"selftest-{name}", _selftest_seed, lambda case: [case / "f.bin"], read,
                  semantic=(lambda rng, case: Mutation("must-fail", True),), generic=lambda n, t, v: True)


def _fail_after_writing(case: Path) -> None:
    from nmprivacy.errors import NmprivacyError

    (case / "out").mkdir(exist_ok=True)
    (case / "out" / "half.json").write_text("{")
    raise NmprivacyError(f"{case / 'f.bin'} is bad")


def _two_lines(case: Path) -> None:
    from nmprivacy.errors import NmprivacyError

    raise NmprivacyError(f"{case / 'f.bin'} is bad\nand this is a second line")


SELFTEST: dict[str, Format] = {f.name: f for f in (
    _selftest("traceback", lambda case: int("not a number")),
    _selftest("memory", lambda case: np.ones(1 << 40, dtype=np.uint8)),
    _selftest("hang", lambda case: time.sleep(3600)),
    _selftest("crash", lambda case: os.kill(os.getpid(), signal.SIGSEGV)),
    _selftest("partial", _fail_after_writing),
    _selftest("accepts", lambda case: None),
    _selftest("message", _two_lines),
)}


# --- generic byte-level mutations ------------------------------------------------------------

def _truncate(rng: np.random.Generator, p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: int(rng.integers(0, max(len(data), 1)))])


def _empty(rng: np.random.Generator, p: Path) -> None:
    p.write_bytes(b"")


def _flip(rng: np.random.Generator, p: Path, head: bool = False) -> None:
    data = bytearray(p.read_bytes())
    if not data:
        return
    span = min(len(data), 32) if head else len(data)
    for i in rng.integers(0, span, size=int(rng.integers(1, 9))):
        data[i] ^= int(rng.integers(1, 256))
    p.write_bytes(bytes(data))


def _magic(rng: np.random.Generator, p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(bytes(rng.integers(0, 256, size=4, dtype=np.uint8)) + data[4:])


def _append(rng: np.random.Generator, p: Path) -> None:
    with open(p, "ab") as fh:
        fh.write(bytes(rng.integers(0, 256, size=int(rng.integers(1, 4096)), dtype=np.uint8)))


def _random(rng: np.random.Generator, p: Path) -> None:
    p.write_bytes(bytes(rng.integers(0, 256, size=max(p.stat().st_size, 1), dtype=np.uint8)))


def _directory(rng: np.random.Generator, p: Path) -> None:
    p.unlink()
    (p / "inner").mkdir(parents=True)


def _delete(rng: np.random.Generator, p: Path) -> None:
    p.unlink()


GENERIC: dict[str, Callable[[np.random.Generator, Path], None]] = {
    "truncate": _truncate,
    "empty": _empty,
    "flip": _flip,
    "flip-header": lambda rng, p: _flip(rng, p, head=True),
    "magic": _magic,
    "append": _append,
    "random": _random,
    "directory": _directory,
    "delete": _delete,
}
ALWAYS_FAIL = ("empty", "directory", "delete")  # refused by any reader of a single file (see ``expect``)


def expect(table: dict[str, bool | None] | None = None) -> Callable[[str, Path, str], bool | None]:
    """A ``Format.generic``: ``table``'s expectation per generic mutation, the ``ALWAYS_FAIL``
    ones True unless ``table`` says otherwise, the rest None."""
    full = {**{name: True for name in ALWAYS_FAIL}, **(table or {})}
    return lambda name, target, variant: full.get(name)


# --- one case ----------------------------------------------------------------------------------

def case_rng(seed: int, fmt: str, index: int) -> np.random.Generator:
    """The generator of case ``index`` of format ``fmt``: depends on nothing else."""
    return np.random.default_rng([seed, zlib.crc32(fmt.encode()), index])


def _snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (p.is_dir(), st.st_size if not p.is_dir() else 0, st.st_mtime_ns if not p.is_dir() else 0)
    return out


def _judge_outputs(before: dict, after: dict, ok: bool, outputs: Sequence[str]) -> str | None:
    """Why the files after a run are wrong (temp files, writes into the data, outputs on failure), or None."""
    changed = sorted(k for k in after if before.get(k) != after[k])
    removed = sorted(k for k in before if k not in after)
    temps = [k for k in after if Path(k).name.startswith(".") and Path(k).name.endswith(TEMP_SUFFIXES)]
    if temps:
        return f"temporary files left: {temps[:3]}"
    allowed = [k for k in changed + removed if ok and k.split(os.sep)[0] in outputs]
    bad = [k for k in changed + removed if k not in allowed]
    if bad:
        return f"{'wrote' if ok else 'left behind on failure'}: {bad[:3]}"
    return None


@dataclass
class CaseResult:
    """The judged outcome of one case."""

    format: str
    index: int
    variant: str
    mutation: str
    cli: bool
    outcome: str  # ok, refused, or one of the failure columns
    detail: str = ""
    seconds: float = 0.0
    retried: bool = False  # re-run in a fresh worker after meeting the memory cap


def _cli_run(argv: list[str]) -> tuple[int, str]:
    from nmprivacy.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(argv)
    return code, err.getvalue()


def _is_memory(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "DefaultCPUAllocator" in text or "Cannot allocate memory" in text


def run_case(fmt: Format, index: int, seed: int, workdir: Path, templates: dict[tuple[str, str], Path], cli_every: int) -> CaseResult:
    """Build, mutate, run and judge case ``index`` of ``fmt`` inside ``workdir``."""
    from nmprivacy.errors import NmprivacyError

    rng = case_rng(seed, fmt.name, index)
    variant = fmt.variants[int(rng.integers(len(fmt.variants)))]
    key = (fmt.name, variant)
    if key not in templates:
        templates[key] = workdir / "templates" / f"{fmt.name}-{variant}"
        fmt.write_seed(templates[key], variant)
    case = workdir / f"case-{fmt.name}-{index}"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(templates[key], case, copy_function=shutil.copy2, symlinks=True)
    try:
        if fmt.semantic and rng.random() < 0.5:
            mutation = fmt.semantic[int(rng.integers(len(fmt.semantic)))](rng, case)
        else:
            targets = fmt.targets(case)
            target = targets[int(rng.integers(len(targets)))]
            name = list(GENERIC)[int(rng.integers(len(GENERIC)))]
            GENERIC[name](rng, target)
            mutation = Mutation(f"{name}:{target.name}", fmt.generic(name, target, variant))
        use_cli = fmt.cli is not None and cli_every > 0 and index % cli_every == 0
        result = CaseResult(fmt.name, index, variant, mutation.name, use_cli, "ok")
        before = _snapshot(case)
        os.environ["NMPRIVACY_CACHE"] = str(case / "cache")
        start = time.perf_counter()
        value, message = None, None
        try:
            if use_cli:
                code, err = _cli_run(fmt.cli(case))  # type: ignore[misc]
                lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
                if "Traceback" in err:
                    result.outcome, result.detail = "tracebacks", err.strip().splitlines()[-1][:200]
                elif code != 0:
                    message = lines[-1][len("error: "):] if lines else f"exit {code} without an error line"
                    result.outcome = "refused"
            else:
                value = fmt.read(case)
        except NmprivacyError as exc:
            result.outcome, message = "refused", str(exc)
        except BaseException as exc:  # everything else is what the fuzzer looks for
            if isinstance(exc, KeyboardInterrupt):
                raise
            result.outcome = "memory" if _is_memory(exc) else "tracebacks"
            tb = traceback.extract_tb(exc.__traceback__)
            where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
            result.detail = f"{type(exc).__name__} at {where}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        result.seconds = time.perf_counter() - start
        if result.outcome == "ok" and not use_cli and fmt.check is not None:
            try:
                fmt.check(value, case)
            except Exception as exc:
                result.outcome, result.detail = "accepted", f"result fails its check: {type(exc).__name__}: {exc}"[:200]
        if result.outcome == "ok" and mutation.must_fail:
            result.outcome, result.detail = "accepted", "bad input read without an error"
        if result.outcome == "refused":
            if mutation.must_fail is False:
                result.outcome, result.detail = "valid_refused", (message or "")[:200]
            elif message is None or "\n" in message or str(case) not in message or (mutation.expect and mutation.expect not in message):
                result.outcome, result.detail = "bad_messages", (message or "")[:300]
        if result.outcome in ("ok", "refused", "bad_messages", "valid_refused", "accepted"):
            problem = _judge_outputs(before, _snapshot(case), result.outcome in ("ok", "accepted"), fmt.outputs)
            if problem:
                result.outcome, result.detail = "partial", problem
        return result
    finally:
        shutil.rmtree(case, ignore_errors=True)


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
                        code, err = _cli_run(fmt.cli(trial))
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
        root = str(Path(__file__).resolve().parents[1])
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


@contextlib.contextmanager
def isolated(cache: Path | None = None) -> Iterator[None]:
    """Within the block data sets are looked for only in the ``root`` they are given and (with
    ``cache``) ``NMPRIVACY_CACHE`` is ``cache``; both are restored afterwards."""
    from nmprivacy.data import files

    roots, env = files.data_roots, os.environ.get("NMPRIVACY_CACHE")
    files.data_roots = lambda r=None: [Path(r)] if r is not None else []
    if cache is not None:
        os.environ["NMPRIVACY_CACHE"] = str(cache)
    try:
        yield
    finally:
        files.data_roots = roots
        if env is None:
            os.environ.pop("NMPRIVACY_CACHE", None)
        else:
            os.environ["NMPRIVACY_CACHE"] = env


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


if __name__ == "__main__":
    from benchmarks import fuzz as _module  # the registry lives in the imported module, not in __main__

    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        sys.exit(_module.worker_main(json.loads(sys.argv[2])))
    sys.exit(_module.main(sys.argv[1:], prog="python -m benchmarks.fuzz"))
