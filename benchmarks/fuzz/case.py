"""One fuzz case: copy a format's valid seed, apply one seeded mutation, run the reader (or the
command line) and judge the outcome into one column of the table (``COLUMNS``)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from benchmarks.fuzz.core import GENERIC, Format, Mutation, case_rng

COLUMNS = ("cases", "ok", "refused", "tracebacks", "crashes", "memory", "hangs", "partial", "accepted", "valid_refused", "bad_messages")
FAILURES = ("tracebacks", "crashes", "memory", "hangs", "partial", "accepted")  # must all be 0
TEMP_SUFFIXES = (".tmp", ".old")


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


def cli_run(argv: list[str]) -> tuple[int, str]:
    """``nmprivacy.cli.main(argv)`` with its output captured: (exit code, stderr)."""
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
                code, err = cli_run(fmt.cli(case))  # type: ignore[misc]
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
