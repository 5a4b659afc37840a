"""How many threads to compute with, from what the machine offers right now.

A multi-threaded torch (OpenMP) op waits at a barrier for all its threads; on a machine where
other processes hold cores, a descheduled thread makes every op wait for it, and spinning
waiters burn the time the others need. So the thread count is chosen at start from the CPUs
this process may use (its affinity mask and its cgroup's CPU quota) minus the CPUs other
processes are busy on (the kernel's count of runnable tasks, sampled a few times), never below
1; waiting threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, set before torch
starts OpenMP) when the machine is shared. ``--threads N`` (or ``NMPRIVACY_THREADS``) overrides
the count. The choice and its reason are recorded with every run (``runinfo.machine_info``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SAMPLES = 5  # readings of the runnable-task count
SAMPLE_GAP_S = 0.02


@dataclass(frozen=True)
class ThreadPlan:
    """The chosen thread count, what it was chosen from and why."""

    threads: int
    cpus: int  # CPUs this process may use (affinity, cgroup quota)
    busy_elsewhere: int  # CPUs other processes were running on at start
    wait_policy: str  # "passive" (sleep at barriers) or "default"
    reason: str

    def record(self) -> dict:
        """The plan as a run-record entry."""
        return asdict(self)


def usable_cpus() -> tuple[int, str]:
    """CPUs this process may use and where the bound comes from."""
    try:
        cpus, source = len(os.sched_getaffinity(0)), "affinity"
    except (AttributeError, OSError):
        cpus, source = os.cpu_count() or 1, "cpu count"
    quota = cgroup_cpu_quota()
    if quota is not None and quota < cpus:
        return max(1, math.floor(quota)), f"cgroup quota {quota:g} CPUs"
    return cpus, source


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup's CPU quota in CPUs (cgroup v2 ``cpu.max`` or v1 ``cfs_quota_us``), None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def runnable_elsewhere(samples: int = SAMPLES) -> int:
    """Tasks other than this one that are runnable now (``/proc/loadavg``'s running count minus
    this process), the median of a few readings; 0 where unknown."""
    counts = []
    for i in range(samples):
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(max(0, running - 1))
        if i + 1 < samples:
            time.sleep(SAMPLE_GAP_S)
    return sorted(counts)[len(counts) // 2]


def plan_threads(requested: int | None = None) -> ThreadPlan:
    """The thread count for this run: ``requested`` if given, else the usable CPUs not busy elsewhere."""
    cpus, source = usable_cpus()
    busy = runnable_elsewhere()
    policy = "passive" if busy > 0 else "default"
    if requested is None and os.environ.get("NMPRIVACY_THREADS", "").isdigit() and int(os.environ["NMPRIVACY_THREADS"]) > 0:
        return ThreadPlan(int(os.environ["NMPRIVACY_THREADS"]), cpus, busy, policy, "NMPRIVACY_THREADS")
    if requested is not None:
        return ThreadPlan(int(requested), cpus, busy, policy, f"--threads {requested}")
    threads = max(1, min(cpus, cpus - busy))
    reason = f"{cpus} usable CPUs ({source}), {busy} busy with other processes at start"
    return ThreadPlan(threads, cpus, busy, policy, reason)


def prepare_environment(plan: ThreadPlan) -> None:
    """Settings that must precede torch's OpenMP start: sleeping waiters on a shared machine
    (a user's own ``OMP_WAIT_POLICY`` is kept)."""
    if plan.wait_policy == "passive":
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def apply(plan: ThreadPlan) -> None:
    """Use ``plan.threads`` threads in torch (and so in the attack engine's workers)."""
    import torch

    torch.set_num_threads(plan.threads)


_CURRENT: ThreadPlan | None = None


def current() -> ThreadPlan | None:
    """The plan this process runs with (None before the CLI or the API chose one)."""
    return _CURRENT


def choose(requested: int | None = None) -> ThreadPlan:
    """Plan, prepare and apply the thread count for this process; returns the plan."""
    global _CURRENT
    plan = plan_threads(requested)
    prepare_environment(plan)
    apply(plan)
    _CURRENT = plan
    return plan
