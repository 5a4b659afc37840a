"""The one place where attacks run in parallel: an attack's iterations over parts of its classes.

An attack is written as its algorithm: per-class state, one step that advances the state of a
part of the classes (iteration ``it`` of the classes in a slice), and a stop rule over all
classes. ``ClassParts(oracle, K).run(steps, iterations, stop)`` executes it:

- one part (an oracle without lanes, a single class, or an attack whose classes share one random
  stream): the step runs on the calling thread and the oracle spreads each batch over its own
  workers; with such workers the loop's own tensor ops stay on one torch thread, so none waits
  at an OpenMP barrier for a descheduled peer;
- several parts (an oracle with lanes, ``LaneOracle``): the classes are split into one part per
  lane and each part runs its own steps on its own one-torch-thread worker
  (``nmprivacy.attacks.threads.run_parts``), computing with its lane's oracle; the parts meet
  once per iteration, where the stop rule is decided over all classes.

Results do not depend on the split when each class's step depends only on that class's state
and random stream (the same batch shards as the oracle's own).
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch
from tqdm.auto import tqdm

from nmprivacy.attacks.base import GradientOracle
from nmprivacy.attacks.common import Timer, torch_threads
from nmprivacy.attacks.threads import chunks, run_parts
from nmprivacy.progress import bar as progress_bar

Step = Callable[[int], None]
"""Advances one part of the classes by iteration ``it`` (in place on the part's state)."""


class LaneOracle(Protocol):
    """An oracle that serves several threads at once: ``lanes`` callers, each computing whole
    batches on its own thread through ``lane(i)`` (a ``GradientOracle`` with its own buffers)."""

    lanes: int

    def lane(self, index: int) -> GradientOracle: ...


def oracle_lanes(oracle: GradientOracle) -> int:
    """How many lanes ``oracle`` offers (1 for an oracle without lanes)."""
    return max(1, int(getattr(oracle, "lanes", 1)))


@dataclass(frozen=True)
class Part:
    """A contiguous part of an attack's classes and the oracle its steps compute with."""

    classes: slice
    oracle: GradientOracle


@dataclass(frozen=True)
class Iterated:
    """What a run did: iterations completed and their wall-clock seconds."""

    iterations: int
    seconds: float

    @property
    def seconds_per_iteration(self) -> float:
        """Seconds per completed iteration (the total for a run without iterations)."""
        return self.seconds / max(self.iterations, 1)


class _Rounds:
    """Iterations completed and the stop decision, advanced once per iteration by the last part
    to finish it (the barrier's action)."""

    def __init__(self, stop: Callable[[int], bool], bar: tqdm, status: Callable[[int], dict | None] | None) -> None:
        self.done = 0
        self.stop = False
        self._rule, self._bar, self._status = stop, bar, status

    def end_iteration(self) -> None:
        self._bar.update(1)
        postfix = self._status(self.done) if self._status else None
        if postfix:
            self._bar.set_postfix(postfix)
        self.stop = bool(self._rule(self.done))
        self.done += 1


class ClassParts:
    """The parts an attack on ``classes`` classes runs in with ``oracle``: one per lane of the
    oracle (at most one per class), or a single part when ``split`` is False."""

    def __init__(self, oracle: GradientOracle, classes: int, split: bool = True) -> None:
        self._threaded_oracle = oracle_lanes(oracle) > 1
        lanes = min(oracle_lanes(oracle), classes) if split else 1
        slices = chunks(classes, -(-classes // max(1, lanes)))
        if len(slices) == 1:
            self.parts = [Part(slices[0], oracle)]
        else:
            self.parts = [Part(s, oracle.lane(i)) for i, s in enumerate(slices)]  # type: ignore[attr-defined]

    @property
    def helpers(self) -> int:
        """Threads a part may use for work of its own (e.g. drawing samples): 1 when the parts
        run in parallel, else torch's thread count."""
        return 1 if len(self.parts) > 1 else torch.get_num_threads()

    def run(
        self,
        steps: Sequence[Step],
        iterations: int,
        stop: Callable[[int], bool] = lambda it: False,
        desc: str = "",
        status: Callable[[int], dict | None] | None = None,
    ) -> Iterated:
        """Run ``steps[i]`` (the step of ``parts[i]``) for iterations 0, 1, ... until
        ``iterations`` or until ``stop(it)``, evaluated once after every part finished
        iteration ``it``, is True. ``status(it)``: the progress bar's postfix after iteration ``it``."""
        if len(steps) != len(self.parts):
            raise ValueError(f"{len(steps)} steps for {len(self.parts)} parts")
        bar = progress_bar(total=iterations, desc=desc, leave=False)
        rounds = _Rounds(stop, bar, status)
        timer = Timer()
        try:
            if len(self.parts) == 1:
                with torch_threads(1) if self._threaded_oracle else nullcontext():
                    for it in range(iterations):
                        steps[0](it)
                        rounds.end_iteration()
                        if rounds.stop:
                            break
            else:
                barrier = threading.Barrier(len(self.parts), action=rounds.end_iteration)

                def part_loop(index: int, _: slice) -> None:
                    for it in range(iterations):
                        steps[index](it)
                        barrier.wait()
                        if rounds.stop:
                            break

                run_parts(part_loop, [p.classes for p in self.parts], barrier)
            return Iterated(rounds.done, timer.elapsed())
        finally:
            bar.close()
