"""The attack executor: classes split into one part per oracle lane, the stop rule decided once
per iteration over all parts, and BL-v1 / BL-v2 giving the same result on any split."""

from __future__ import annotations

import threading

import pytest
import torch

from nmprivacy.attacks.executor import ClassParts, oracle_lanes


class Lane:
    def __init__(self, index: int) -> None:
        self.index = index


class LaneOracle:
    """An oracle with ``lanes`` lanes that records which lanes were handed out."""

    def __init__(self, lanes: int) -> None:
        self.lanes = lanes
        self.handed: list[int] = []

    def lane(self, index: int) -> Lane:
        self.handed.append(index)
        return Lane(index)


def test_parts_follow_the_oracle_lanes() -> None:
    assert oracle_lanes(object()) == 1 and oracle_lanes(LaneOracle(3)) == 3
    plain = object()
    assert [(p.classes, p.oracle) for p in ClassParts(plain, 5).parts] == [(slice(0, 5), plain)]
    lanes = LaneOracle(2)
    parts = ClassParts(lanes, 5).parts
    assert [p.classes for p in parts] == [slice(0, 3), slice(3, 5)] and [p.oracle.index for p in parts] == [0, 1]
    assert [p.classes for p in ClassParts(LaneOracle(4), 2).parts] == [slice(0, 1), slice(1, 2)]  # at most one part per class
    one = LaneOracle(4)
    assert [p.oracle for p in ClassParts(one, 6, split=False).parts] == [one] and one.handed == []


@pytest.mark.parametrize("lanes,classes", [(1, 3), (3, 3), (3, 1)])
def test_run_meets_once_per_iteration_and_stops_on_the_rule(lanes: int, classes: int) -> None:
    parts = ClassParts(LaneOracle(lanes), classes)
    seen: list[tuple[int, int, int]] = []  # (part, iteration, torch threads)
    lock = threading.Lock()
    stops: list[int] = []

    def step(index: int):
        def run(it: int) -> None:
            with lock:
                seen.append((index, it, torch.get_num_threads()))
        return run

    def stop(it: int) -> bool:
        assert sorted(s[:2] for s in seen if s[1] == it) == [(i, it) for i in range(len(parts.parts))]  # every part finished it
        stops.append(it)
        return it == 3

    threads = torch.get_num_threads()
    done = parts.run([step(i) for i in range(len(parts.parts))], 10, stop=stop)
    assert done.iterations == 4 and stops == [0, 1, 2, 3] and done.seconds > 0
    # the loop's tensor ops run on one torch thread: on the parts' workers, or beside an oracle with threads of its own
    assert {s[2] for s in seen} == ({1} if lanes > 1 else {threads})
    assert torch.get_num_threads() == threads
    assert len(parts.parts) == min(lanes, classes) and parts.helpers == (1 if len(parts.parts) > 1 else threads)


def test_a_failing_part_stops_the_run() -> None:
    parts = ClassParts(LaneOracle(2), 2)

    def fail(it: int) -> None:
        if it == 1:
            raise RuntimeError("part failed")

    with pytest.raises(RuntimeError, match="part failed"):
        parts.run([lambda it: None, fail], 100)
    with pytest.raises(ValueError, match="1 steps for 2 parts"):
        parts.run([fail], 1)


def test_blv1_runs_one_part_per_lane_and_gives_the_single_part_result() -> None:
    from nmprivacy.attacks import get_attack
    from nmprivacy.attacks.engine import FastLIFOracle
    from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig
    from nmprivacy.presets import BLv1Settings

    torch.manual_seed(0)
    model = SNNNorse(SNNNorseConfig(input_shape=(1, 5, 6), num_classes=4, hidden=24, init_gain=6.0)).freeze()
    lanes_used: list[int] = []

    class Counting(FastLIFOracle):
        def lane(self, index: int):
            lanes_used.append(index)
            return super().lane(index)

    runs = {}
    for workers, mask in ((1, "threshold"), (2, "threshold"), (2, "bernoulli")):
        attack = get_attack("bl-v1", BLv1Settings(iterations=4, eta=0.3, mask=mask), oracle=lambda m, w=workers: Counting(m, workers=w), steps=6)
        runs[workers, mask] = attack.run(model, [0, 1, 2, 3], seed=2)
    assert lanes_used == [0, 1]  # only the threshold mask splits its classes (the Bernoulli mask shares one generator)
    one, two = runs[1, "threshold"], runs[2, "threshold"]
    assert torch.equal(one.reconstructions, two.reconstructions) and torch.equal(one.confidence_curve, two.confidence_curve)
    assert float(one.confidence_curve[-1].mean()) > float(one.confidence_curve[0].mean())
