"""Run a study's cells on a Dask cluster and collect them; completed cells are never recomputed.

Each cell is one ``nmprivacy.audit.run_audit`` written into ``<out>/cells/<cell>/`` (the audit
builds its folder aside and moves it into place): the audit's own files (``results.json``, ``report.md``, figures,
inversions), ``cell.json`` (the cell's settings, key, worker, timings, run record) and
``log.txt`` (what the audit printed). A folder whose ``cell.json`` and ``results.json`` are
complete and carry the cell's key is done; anything else there (an interrupted or damaged
cell) is computed again. Cells that need the same trained models (``Cell.group``) run after the
first of them, so that only one worker trains each model into the shared cache.

Cluster: ``nmprivacy.cluster`` (a local cluster of ``workers`` processes, or an existing
scheduler whose workers see ``out`` and the model cache at the same paths).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from nmprivacy.progress import bar as progress_bar
from nmprivacy.progress import duration, step_line
from nmprivacy.runinfo import Stopwatch, atomic_write_json, run_metadata, to_jsonable
from nmprivacy.cluster import StudyRun, cluster_client
from nmprivacy.study.spec import Cell, StudySpec, cell_seed, expand, split_settings

CELL_RECORD = "cell.json"
RESULTS = "results.json"


def cell_done(folder: Path, cell: Cell) -> bool:
    """True when ``folder`` holds a complete run of ``cell`` (its record with the cell's key and
    a results file with attack metrics)."""
    try:
        record = json.loads((folder / CELL_RECORD).read_text())
        results = json.loads((folder / RESULTS).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("key") == cell.key and record.get("status") == "done"
            and isinstance(results, dict) and isinstance(results.get("attacks"), dict) and bool(results["attacks"]))


def audit_config(spec: StudySpec, cell: Cell, out: Path, threads: int) -> Any:
    """The ``AuditConfig`` of one cell (with the cell's seed, ``cell_seed``), writing into ``out``."""
    from nmprivacy.audit import AuditConfig

    audit, overrides = split_settings(cell.settings)
    audit["seed"] = cell_seed(spec, cell.settings)
    return AuditConfig(dataset=spec.dataset, data_root=spec.data_root, data_options=dict(spec.data_options), out=str(out),
                       seeds=spec.seeds, evaluators=spec.evaluators, budget=spec.budget, cache=spec.cache,
                       threads=threads, overrides=overrides, attacks=tuple(spec.attacks), **audit)


def run_cell(spec: StudySpec, cell: Cell, folder: str, threads: int, after: Any = None) -> dict[str, Any]:
    """Run one cell's audit into ``folder`` (atomically) on this worker; returns
    ``{"key", "status": "done"|"failed", "error", "seconds"}``. ``after`` (the result of the cell
    that trains this cell's models) only orders the work."""
    from nmprivacy.audit import run_audit
    from nmprivacy.lava_import import use_fork_for_lava

    use_fork_for_lava()  # a cell on a NetX file imports Lava, which needs fork; Dask spawned this worker
    start, started = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)  # the study's cells/ folder
    log_path = folder.parent / f".{folder.name}.log"
    try:
        # the audit builds its folder aside and moves it into place itself (run_audit); the cell is
        # complete once its record is written last, so an interrupted cell is recomputed; the log
        # is line-buffered so `tail` on a running cell's .log shows its stage lines as they come
        with open(log_path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            run_audit(audit_config(spec, cell, folder, threads))
        os.replace(log_path, folder / "log.txt")
        record = {"key": cell.key, "status": "done", "folder": str(folder), "settings": cell.settings,
                  "worker": f"{socket.gethostname()}:{os.getpid()}", "started": started,
                  **run_metadata(config={"spec": spec, "cell": cell.settings, "threads": threads}, seed=cell_seed(spec, cell.settings),
                                 timings={"cell": time.perf_counter() - start})}
        atomic_write_json(folder / CELL_RECORD, record)
    except Exception as exc:  # a failed cell is reported in the table and tried again by the next run
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log_path.unlink(missing_ok=True)
        return {"key": cell.key, "status": "failed", "error": f"{type(exc).__name__}: {first}", "seconds": time.perf_counter() - start}
    return {"key": cell.key, "status": "done", "error": None, "seconds": time.perf_counter() - start}


def plan(spec: StudySpec) -> tuple[list[Cell], dict[str, list[Cell]]]:
    """The study's distinct cells (by key, in order of first appearance) and, per grid name, its
    cells with the grid's own settings."""
    cells: dict[str, Cell] = {}
    grids: dict[str, list[Cell]] = {}
    for grid, cell in expand(spec):
        cells.setdefault(cell.key, cell)
        grids.setdefault(grid.name, []).append(cell)
    return list(cells.values()), grids


def list_cells(spec: StudySpec, out: str | Path) -> list[str]:
    """What ``run_study`` would do, as lines: a count, then per grid its cells (folder, done in
    ``out/cells`` or to run, settings); nothing runs."""
    cells, grids = plan(spec)
    done = {c.key for c in cells if cell_done(Path(out) / "cells" / c.folder, c)}
    lines = [f"study: {len(cells)} cells, {len(done)} already done in {out}, {len(cells) - len(done)} to run ({spec.seeds} attack seeds each)"]
    for name, grid_cells in grids.items():
        lines.append(f"grid '{name}':")
        lines += [f"  {c.folder}  {'done  ' if c.key in done else 'to run'}  " + " ".join(f"{k}={json.dumps(v)}" for k, v in c.settings.items())
                  for c in grid_cells]
    return lines


def training_order(cells: list[Cell]) -> list[Cell]:
    """``cells`` in their order, except that the cells of one model group (``Cell.group``) take
    the group's places widest weight precision first (``target_config.weight_bits``, default 8):
    the group's first cell trains, and a narrower precision whose training is the same
    computation adopts its models from the cache (``nmprivacy.models.weight_grid``)."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.group, []).append(cell)
    ordered = {g: iter(sorted(members, key=lambda c: -int(c.settings.get("target_config.weight_bits", 8)))) for g, members in groups.items()}
    return [next(ordered[cell.group]) for cell in cells]


def run_study(spec: StudySpec, out: str | Path, run: StudyRun = StudyRun(), command: str | None = None) -> dict[str, Any]:
    """Run every cell of ``spec`` not yet done in ``out/cells`` on a Dask cluster, then write
    ``study.json``, ``study.md`` and ``study.png`` into ``out`` (``command``: how it was started,
    quoted in study.md); returns the study.json content."""
    from nmprivacy.study.table import write_study

    sw = Stopwatch()
    out = Path(out)
    cells, grids = plan(spec)
    folders = {c.key: out / "cells" / c.folder for c in cells}
    todo = training_order([c for c in cells if not cell_done(folders[c.key], c)])
    outcomes: dict[str, dict[str, Any]] = {c.key: {"key": c.key, "status": "reused", "error": None, "seconds": 0.0} for c in cells if c not in todo}
    from nmprivacy.audit import check_training_settings

    for cell in todo:  # a setting that cannot apply to a cell is one line before any cell runs
        check_training_settings(audit_config(spec, cell, folders[cell.key], run.threads))
    tqdm.write(f"study: {len(cells)} cells, {len(cells) - len(todo)} already done, {len(todo)} to run ({spec.seeds} seeds each)")
    if todo:
        from distributed import as_completed

        with sw("cells"), cluster_client(run) as client:
            futures, first_of_group = [], {}
            for cell in todo:  # the first cell of each model group trains; the group's others wait for it
                after = first_of_group.get(cell.group)
                fut = client.submit(run_cell, spec, cell, str(folders[cell.key]), run.threads, after, key=f"cell-{cell.key}-{time.time_ns()}", pure=False)
                first_of_group.setdefault(cell.group, fut)
                futures.append(fut)
            with progress_bar(total=len(futures), desc="study cells", unit="cell") as bar:
                for done, fut in enumerate(as_completed(futures), 1):
                    result = fut.result()
                    outcomes[result["key"]] = result
                    bar.update(1)
                    if result["status"] == "failed":
                        tqdm.write(f"cell {result['key']} failed: {result['error']}")
                    else:
                        step_line(bar, f"cell {result['key']} done in {duration(result['seconds'])} ({done} of {len(futures)})")
    study = write_study(out, spec, cells, grids, folders, outcomes,
                        {"workers": run.workers if not run.scheduler else None, "scheduler": run.scheduler or "local", "threads": run.threads}, sw.seconds, command)
    return to_jsonable(study)
