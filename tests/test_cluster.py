"""The local Dask cluster that runs study cells and membership reference models."""

from __future__ import annotations

from nmprivacy.cluster import StudyRun, cluster_client


def _worker_ttl(dask_scheduler) -> object:  # noqa: ANN001 (Dask passes its Scheduler by this name)
    return dask_scheduler.worker_ttl


def test_local_scheduler_keeps_workers_that_miss_heartbeats() -> None:
    """No worker TTL: after a suspension longer than Dask's default 5 minutes (measured once with
    SIGSTOP on the process group for 330 s) the default scheduler dropped the worker and started its
    running task again on a new one; a local cluster must keep the task it had."""
    with cluster_client(StudyRun(workers=1)) as client:
        assert client.run_on_scheduler(_worker_ttl) is None
