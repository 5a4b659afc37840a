"""Worker helpers of the attack core: parts that meet at a barrier stop together when one fails."""

from __future__ import annotations

import threading

import pytest
import torch

from nmprivacy.attacks.threads import chunks, run_parts


def test_parts_run_concurrently_on_one_torch_thread_each() -> None:
    parts = chunks(10, 4)
    seen: dict[int, tuple[int, int]] = {}
    barrier = threading.Barrier(len(parts))

    def part(i: int, s: slice) -> None:
        barrier.wait(timeout=10)  # all three parts run at once, or this times out
        seen[i] = (s.stop - s.start, torch.get_num_threads())

    run_parts(part, parts, barrier)
    assert seen == {0: (4, 1), 1: (4, 1), 2: (2, 1)}


def test_a_failing_part_stops_the_others_and_its_error_is_raised() -> None:
    parts = chunks(3, 1)
    barrier = threading.Barrier(len(parts))
    rounds = [0, 0, 0]

    def part(i: int, _: slice) -> None:
        for step in range(100):
            if i == 1 and step == 2:
                raise RuntimeError("part 1 failed")
            rounds[i] += 1
            barrier.wait()

    with pytest.raises(RuntimeError, match="part 1 failed"):
        run_parts(part, parts, barrier)
    assert rounds[1] == 2 and rounds[0] in (2, 3) and rounds[2] in (2, 3)  # the others left at their next meeting
