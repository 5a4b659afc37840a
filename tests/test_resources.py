"""The thread count follows what the machine offers: affinity, cgroup quota, busy CPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmprivacy import resources


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NMPRIVACY_THREADS", raising=False)

    def set_machine(cpus: int, busy: int, quota: float | None = None) -> None:
        monkeypatch.setattr(resources.os, "sched_getaffinity", lambda pid: set(range(cpus)))
        monkeypatch.setattr(resources, "cgroup_cpu_quota", lambda root=None: quota)
        monkeypatch.setattr(resources, "runnable_elsewhere", lambda samples=5: busy)

    return set_machine


@pytest.mark.parametrize(
    "cpus, busy, quota, threads, policy",
    [(2, 0, None, 2, "default"), (2, 1, None, 1, "passive"), (2, 3, None, 1, "passive"), (8, 2, None, 6, "passive"), (8, 0, 2.5, 2, "default")],
)
def test_threads_are_the_free_usable_cpus(machine, cpus, busy, quota, threads, policy):
    machine(cpus, busy, quota)
    plan = resources.plan_threads()
    assert (plan.threads, plan.wait_policy) == (threads, policy)
    assert str(cpus if quota is None else int(quota)) in plan.reason and f"{busy} busy" in plan.reason


def test_an_explicit_count_wins_and_is_recorded(machine, monkeypatch):
    machine(2, 3)
    assert resources.plan_threads(2).threads == 2 and resources.plan_threads(2).reason == "--threads 2"
    monkeypatch.setenv("NMPRIVACY_THREADS", "1")
    assert resources.plan_threads().threads == 1


def test_cgroup_quota_is_read_from_v2_and_v1(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert resources.cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert resources.cgroup_cpu_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert resources.cgroup_cpu_quota(v1) == 0.5


def test_the_run_record_says_what_was_chosen(machine, monkeypatch):
    import torch

    from nmprivacy.runinfo import machine_info

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # restored after the test, as the thread count below
    monkeypatch.setattr(resources, "_CURRENT", None)
    before = torch.get_num_threads()
    machine(2, 1)
    try:
        resources.choose()
        plan = machine_info()["thread_plan"]
        assert plan["threads"] == 1 == torch.get_num_threads() and plan["busy_elsewhere"] == 1 and "busy" in plan["reason"]
    finally:
        torch.set_num_threads(before)
