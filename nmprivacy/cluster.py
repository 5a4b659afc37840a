"""The Dask cluster that runs a study's cells and a membership run's reference models.

A ``dask.distributed.LocalCluster`` of ``workers`` processes with one thread each by default, or
an existing scheduler (``scheduler="tcp://host:8786"``), whose workers must import nmprivacy and
see the output folder and the model cache at the same paths.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from nmprivacy.errors import NmprivacyError


@dataclass(frozen=True)
class StudyRun:
    """How a study's cells run: ``workers`` local processes (ignored with ``scheduler``), torch
    ``threads`` per cell, a scheduler address or None for a local cluster."""

    workers: int = 1
    threads: int = 1
    scheduler: str | None = None


@contextlib.contextmanager
def cluster_client(run: StudyRun):
    """A ``dask.distributed.Client`` on the given scheduler, or on a local cluster of
    ``run.workers`` single-threaded worker processes (closed on exit)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise NmprivacyError("nmprivacy study needs Dask distributed: pip install -c constraints.txt -e . (it is a dependency)") from None
    if run.scheduler:
        try:
            client = Client(run.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise NmprivacyError(f"cannot reach the Dask scheduler at {run.scheduler} ({exc}): start it (dask scheduler) or drop --scheduler") from None
        try:
            yield client
        finally:
            client.close()
        return
    if run.workers < 1 or run.threads < 1:
        raise NmprivacyError("--workers and --threads must be at least 1")
    threads = str(run.threads)
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads,
           "TQDM_DISABLE": "1"}  # bars of the cells' audits would only fill their log.txt
    # worker-ttl None: a scheduler that misses a local worker's heartbeats for 5 minutes removes it
    # and starts its task again elsewhere, so a suspended machine (laptop lid, SIGSTOP) threw away
    # every model in training; a local worker that dies is still seen at once by its nanny
    with dask.config.set({"distributed.worker.daemon": False, "distributed.logging.distributed": "error",
                          "distributed.scheduler.worker-ttl": None}):
        cluster = LocalCluster(n_workers=run.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               env=env, silence_logs=40)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
