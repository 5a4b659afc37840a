"""Reference models (docs/method.md §9.4): one job per model, which trains it on its half of the
audited records (or reuses it through ``nmprivacy.trained.train_or_load``) and records its answers
to every observed record's queries into a cache entry (``mia-<data set>-<kind>-r<i>-<key>.pt``
beside the checkpoint folders). Jobs run on the study's Dask cluster (``workers`` local
processes or a scheduler) or in this process; cached ones are read back, so a run resumes where
it stopped and a second threat or attack on the same models only scores."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from nmprivacy.cache import cache_key, entry_path, load_entry, save_entry
from nmprivacy.errors import NmprivacyError
from nmprivacy.membership.observables import Observations
from nmprivacy.mia.config import MiaConfig
from nmprivacy.mia.oracles import observe_with
from nmprivacy.mia.plan import Plan
from nmprivacy.presets import with_overrides
from nmprivacy.progress import bar as progress_bar
from nmprivacy.progress import duration, step_line
from nmprivacy.runinfo import to_jsonable

ENTRY_FORMAT = 1  # bump when a cached observation entry changes meaning


def digest(idx: np.ndarray) -> str:
    """A short hash of an index array (which records a model trains on, or is asked about)."""
    return hashlib.sha256(np.ascontiguousarray(idx, dtype=np.int64).tobytes()).hexdigest()[:16]


def reference_jobs(config: MiaConfig, plan: Plan, cache: Path) -> list[dict[str, Any]]:
    """One job per model: what ``reference_job`` needs, and the key of its cache entry."""
    from nmprivacy.training import settings_for

    jobs = []
    records = plan.records
    for i in range(plan.references):
        train_idx, held_idx = plan.audited[plan.keep[i]], plan.audited[~plan.keep[i]]
        job = {
            "index": i, "dataset": config.dataset, "data_root": config.data_root, "data_options": dict(config.data_options),
            "kind": plan.kind, "hidden": plan.hidden, "preset": plan.preset, "budget": config.budget, "seed": config.seed + i,
            "steps": plan.steps, "train": train_idx, "held_out": held_idx, "records": records, "oracle": plan.reference_oracle,
            "queries": plan.queries, "observe_seed": config.seed, "cache": str(cache),
        }
        # what the model and its answers depend on: not the whole preset, whose attack settings do not matter here
        key = cache_key(purpose="mia-reference", format=ENTRY_FORMAT, source=plan.splits.source, schedule=settings_for(plan.kind, plan.preset),
                        target_config=plan.preset.target_config,
                        # post-training quantisation changes an ann reference's answers (in the key only when set, so older entries stay valid)
                        **({"ann_quantize": plan.preset.ann_quantize} if plan.kind == "ann" and plan.preset.ann_quantize else {}),
                        **{k: v for k, v in job.items() if k not in ("index", "train", "held_out", "records", "cache", "preset")},
                        train=digest(train_idx), held_out=digest(held_idx), observed=digest(records))
        job["entry"] = str(entry_path(f"mia-{config.dataset}-{plan.kind}-r{i}", key, cache))
        jobs.append(job)
    return jobs


@functools.lru_cache(maxsize=2)
def dataset(name: str, root: str | None, options: str) -> Any:
    """The data set ``name`` (``options``: its options as sorted JSON), loaded once per process
    (``run_mia`` clears it, so jobs run in this process reuse it within one run only)."""
    from nmprivacy.data import load_dataset

    return load_dataset(name, root=root, **json.loads(options))


def _check_entry(content: Any) -> None:
    logp = content["logp"]
    if not isinstance(logp, torch.Tensor) or logp.dim() != 3 or content["pred"].shape != logp.shape[:1]:
        raise ValueError("its observations have the wrong shape")
    json.loads(content["record"])


def load_observations(path: str | Path) -> tuple[Observations, dict[str, Any]] | None:
    """A reference model's cached observations and record, or None (absent or unusable)."""
    content = load_entry(Path(path), _check_entry)
    if content is None:
        return None
    counts = content.get("counts")
    return Observations(content["logp"], counts if isinstance(counts, torch.Tensor) else None, content["pred"]), json.loads(content["record"])


def reference_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train (or reuse) reference model ``job["index"]`` on its half and record its answers to
    every observed record's queries into its cache entry; returns its record (run on a Dask
    worker or in this process)."""
    if _on_worker():  # the main process reports progress; a worker's training lines would only interleave there
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return _reference_job(job)
    return _reference_job(job)


def _on_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _reference_job(job: dict[str, Any]) -> dict[str, Any]:
    from nmprivacy.trained import train_or_load
    from nmprivacy.data.base import DatasetSplits, Split

    cached = load_observations(job["entry"])
    if cached is not None:
        return {**cached[1], "observations_cached": True}
    from nmprivacy.lava_import import use_fork_for_lava

    use_fork_for_lava()  # a Dask worker is spawned, and exporting or running NetX imports Lava, which needs fork
    splits = dataset(job["dataset"], job["data_root"], json.dumps(job["data_options"], sort_keys=True))
    pool_x = torch.cat([splits.train.x, splits.test.x])
    pool_y = torch.cat([splits.train.y, splits.test.y])
    train, held = torch.as_tensor(job["train"]), torch.as_tensor(job["held_out"])
    half = DatasetSplits(
        name=splits.name, domain=splits.domain, train=Split(pool_x[train], pool_y[train]), test=Split(pool_x[held], pool_y[held]),
        classes=splits.classes, input_shape=splits.input_shape,
        source=f"{splits.source}; membership reference {job['index']} (half {digest(job['train'])})", info=splits.info,
    )
    preset = with_overrides(job["preset"], {"hidden": job["hidden"]}) if job["hidden"] is not None else job["preset"]
    trained = train_or_load(job["kind"], half, preset, job["seed"], job["steps"], Path(job["cache"]), job["budget"])
    model = trained.model.eval()
    start = time.perf_counter()
    x = pool_x[torch.as_tensor(job["records"])]
    with tempfile.TemporaryDirectory(prefix="nmprivacy-mia-") as tmp:
        obs = observe_with(model, job["oracle"], x, splits.domain, job["steps"], job["queries"], job["observe_seed"], Path(tmp))
    seconds = time.perf_counter() - start
    record = to_jsonable({**trained.record, "index": job["index"], "observe_seconds": seconds, "oracle": job["oracle"]})
    content: dict[str, Any] = {"logp": obs.logp, "pred": obs.pred, "record": json.dumps(record)}
    if obs.counts is not None:
        content["counts"] = obs.counts
    save_entry(Path(job["entry"]), content)
    return {**record, "observations_cached": False}


def train_references(config: MiaConfig, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every job's record: cached ones read here, the rest run on the Dask cluster (``workers``
    local processes, or ``scheduler``) or, with ``workers == 0``, in this process."""
    records: dict[int, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        cached = load_observations(job["entry"])
        if cached is not None:
            records[job["index"]] = {**cached[1], "observations_cached": True}
        else:
            todo.append(job)
    tqdm.write(f"membership references: {len(jobs)} models, {len(jobs) - len(todo)} cached, {len(todo)} to train and observe")
    if not todo:
        return [records[j["index"]] for j in jobs]
    bar = progress_bar(total=len(todo), desc="reference models", unit="model")
    if config.workers == 0 and not config.scheduler:
        for done, job in enumerate(todo, 1):
            start = time.perf_counter()
            records[job["index"]] = reference_job(job)
            bar.update(1)
            step_line(bar, f"reference model {job['index']} done in {duration(time.perf_counter() - start)} ({done} of {len(todo)})")
    else:
        from distributed import as_completed

        from nmprivacy.cluster import StudyRun, cluster_client

        start = time.perf_counter()
        with cluster_client(StudyRun(workers=max(config.workers, 1), threads=1, scheduler=config.scheduler)) as client:
            futures = {client.submit(reference_job, job, key=f"mia-ref-{job['index']}-{Path(job['entry']).stem}-{time.time_ns()}", pure=False): job
                       for job in todo}
            for done, fut in enumerate(as_completed(list(futures)), 1):
                job = futures[fut]
                try:
                    records[job["index"]] = fut.result()
                except NmprivacyError as exc:
                    raise NmprivacyError(f"reference model {job['index']}: {exc}") from None
                except Exception as exc:  # a worker's failure, in one line
                    first = str(exc).splitlines()[0] if str(exc) else ""
                    raise NmprivacyError(f"reference model {job['index']} failed on its worker ({type(exc).__name__}: {first}); run again to resume") from None
                bar.update(1)
                step_line(bar, f"reference model {job['index']} done after {duration(time.perf_counter() - start)} ({done} of {len(todo)})")
    bar.close()
    return [records[j["index"]] for j in jobs]


def read_observations(jobs: list[dict[str, Any]]) -> list[Observations]:
    """Every job's observations, read back from its cache entry (a one-line error where one cannot be)."""
    observations = []
    for job in jobs:
        loaded = load_observations(job["entry"])
        if loaded is None:
            raise NmprivacyError(f"the observations of reference model {job['index']} could not be read back from {job['entry']}: check the cache folder (--cache)")
        observations.append(loaded[0])
    return observations
