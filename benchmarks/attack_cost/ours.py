"""Timing of this project's attacks: the real attack classes with the audit's settings, seconds
per iteration over all classes (``nmprivacy.attacks`` with ``make_oracle``, i.e. what
``nmprivacy audit`` runs), and the comparison oracles (GEMM-only engine, batched autograd)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from benchmarks.attack_cost.config import BenchOptions
from benchmarks.attack_cost.timing import Timing, timed
from nmprivacy.attacks import get_attack
from nmprivacy.attacks.base import Attack

OracleFactory = Callable[[Any], Any]


@dataclass(frozen=True)
class AttackCase:
    """One attack to time on one target: registry name, settings (MI-Face's never stop early),
    target, number of classes and T (spiking attacks)."""

    name: str
    settings: Any
    model: Any
    classes: int
    steps: int | None = None

    @property
    def iterations(self) -> int:
        """The settings' iterations (a whole attack)."""
        return self.settings.max_iterations if self.name == "mi-face" else self.settings.iterations

    def with_settings(self, **changes: Any) -> "AttackCase":
        """The same case with some settings changed."""
        return replace(self, settings=replace(self.settings, **changes))

    def attack(self, oracle: OracleFactory, iterations: int | None = None) -> Attack:
        """The attack with ``oracle`` running ``iterations`` iterations (None: the settings')."""
        n = iterations or self.iterations
        if self.name == "mi-face":
            settings = replace(self.settings, max_iterations=n, patience=n + 1)  # every class active for n steps
        else:
            settings = replace(self.settings, iterations=n)
        return get_attack(self.name, settings, oracle=oracle, **({"steps": self.steps} if self.steps else {}))

    def run(self, oracle: OracleFactory, iterations: int | None, seed: int) -> Any:
        """One run of the attack on all classes (its ``Inversion``)."""
        return self.attack(oracle, iterations).run(self.model, list(range(self.classes)), seed=seed)


def miface_case(settings: Any, model: Any, classes: int, iterations: int) -> AttackCase:
    """MI-Face with ``settings`` that never stops early: every class runs ``iterations`` steps."""
    return AttackCase("mi-face", replace(settings, max_iterations=iterations, patience=iterations + 1, cost_goal=-1.0), model, classes)


def time_ours(case: AttackCase, opts: BenchOptions, oracle: OracleFactory) -> Timing:
    """Seconds per iteration of the attack (fastest of ``opts.repeats`` runs of ``opts.iterations``
    iterations, None: the settings', after a 1-iteration warm-up) and peak RSS growth in MB."""
    if opts.warmup:
        case.run(oracle, 1, opts.seed)
    per_iteration: list[float] = []
    run = timed(lambda: per_iteration.append(case.run(oracle, opts.iterations, opts.seed).seconds_per_iteration), opts.repeats)
    return Timing(float(min(per_iteration)), run.peak_mb)


@dataclass(frozen=True)
class OursTiming:
    """Our attack core (auto input path), and when timed the GEMM-only engine (``dense``) and
    the plain batched autograd oracle (``batched``)."""

    ours: Timing
    dense: Timing | None = None
    batched: Timing | None = None


def time_variants(case: AttackCase, opts: BenchOptions, dense: bool = True) -> OursTiming:
    """The attack core with ``make_oracle``; with ``opts.variants`` also the batched autograd
    oracle and (``dense``) the engine with its binary-input paths off."""
    from nmprivacy.attacks.engine import FastLIFOracle, make_oracle
    from nmprivacy.attacks.oracle import AutogradOracle

    ours = time_ours(case, opts, make_oracle)
    if not opts.variants:
        return OursTiming(ours)
    gemm_only = time_ours(case, opts, lambda m: FastLIFOracle(m, sparse_density=0.0)) if dense else None
    return OursTiming(ours, gemm_only, time_ours(case, opts.comparison(), AutogradOracle))


class DensityProbe:
    """Wraps an oracle and records the mean input (spike density) of every call; the calls of one
    iteration on several lanes (``lane(i)``: one part of the classes each) are combined."""

    def __init__(self, oracle: Any, calls: dict[int, list[tuple[float, int]]] | None = None, lane: int = 0, lock: Any = None) -> None:
        self.oracle = oracle
        self._calls = {} if calls is None else calls  # per lane: (sum, count) of each call's input
        self._lane = lane
        self._lock = lock or threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.oracle, name)

    def lane(self, index: int) -> "DensityProbe":
        """The wrapped oracle's lane ``index``, recording into this probe."""
        return DensityProbe(self.oracle.lane(index), self._calls, index, self._lock)

    def _record(self, x: torch.Tensor) -> None:
        with self._lock:
            self._calls.setdefault(self._lane, []).append((float(x.sum()), x.numel()))

    @property
    def densities(self) -> list[float]:
        """Spike density of each call (of each iteration, over all lanes)."""
        lanes = list(self._calls.values())
        return [sum(c[0] for c in calls) / sum(c[1] for c in calls) for calls in zip(*lanes)]

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._record(x)
        return self.oracle(x, *args, **kwargs)

    def population_gradient(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._record(x)
        return self.oracle.population_gradient(x, *args, **kwargs)

    @staticmethod
    def factory(probes: list["DensityProbe"]) -> Callable[[Any], "DensityProbe"]:
        """An oracle factory: ``make_oracle``'s oracle wrapped in a probe, appended to ``probes``."""
        from nmprivacy.attacks.engine import make_oracle

        def make(model: Any) -> DensityProbe:
            probes.append(DensityProbe(make_oracle(model)))
            return probes[-1]

        return make


def density_trajectory(case: AttackCase, opts: BenchOptions) -> list[float]:
    """BL-v2's spike density per iteration of one run with the timed settings."""
    probes: list[DensityProbe] = []
    case.run(DensityProbe.factory(probes), opts.iterations, opts.seed)
    return probes[0].densities
