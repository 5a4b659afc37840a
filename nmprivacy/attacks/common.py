"""Shared pieces of every attack: oracle choice, input checks, seeding and timing."""

from __future__ import annotations

import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from nmprivacy.attacks.base import GradientOracle, RegisteredAttack
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel

OracleFactory = Callable[[TargetModel], GradientOracle]


def default_oracle(model: TargetModel) -> GradientOracle:
    """The fastest available oracle: the attack engine's when installed, else plain autograd."""
    try:
        from nmprivacy.attacks.engine import make_oracle
    except ImportError:
        from nmprivacy.attacks.oracle import AutogradOracle

        return AutogradOracle(model)
    return make_oracle(model)


def oracle_name(oracle: object) -> str:
    """The name an inversion records for the oracle that computed it (``"fast-lif"``, ``"autograd"``, ...)."""
    return str(getattr(oracle, "name", type(oracle).__name__))


def check_classes(model: TargetModel, classes: Sequence[int]) -> torch.Tensor:
    """Attacked classes as int64 ``[K]``; raises NmprivacyError if any is not a class of ``model``."""
    c = model.info.num_classes
    bad = [k for k in classes if not 0 <= int(k) < c]
    if not classes or bad:
        raise NmprivacyError(f"classes {bad or 'list is empty'} invalid: choose class indices in 0..{c - 1}")
    return torch.as_tensor([int(k) for k in classes], dtype=torch.long)


def require_domain(model: TargetModel, domain: str, attack: str) -> None:
    """Raise NmprivacyError if ``attack`` cannot run on ``model``'s input domain."""
    if model.info.domain != domain:
        from nmprivacy.attacks import attack_infos

        other = " or ".join(name for name, info in attack_infos().items() if info.domain == model.info.domain)
        raise NmprivacyError(
            f"{attack} needs a model with {domain} inputs but '{model.info.kind}' takes {model.info.domain}: use {other}"
        )


def generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (every random draw of an attack uses it)."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


class Timer:
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since construction."""
        return time.perf_counter() - self.start


def model_steps(model: TargetModel, steps: int | None = None) -> int:
    """Time steps T of a spiking attack input: ``steps`` if given, else the model's ``steps`` attribute."""
    steps = steps or getattr(model, "steps", None)
    if not steps:
        raise NmprivacyError(f"model '{model.info.kind}' does not say its number of time steps: pass --steps T (or steps=T)")
    return int(steps)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class SpikingRun:
    """What every spiking attack sets up before iterating: targets ``[K]``, T, its seeded
    generator and the oracle bound to the model."""

    targets: torch.Tensor
    steps: int
    gen: torch.Generator
    oracle: GradientOracle


class SpikingAttack(RegisteredAttack):
    """Base of the attacks on spiking models (BL-v1, BL-v2): settings, oracle factory and T."""

    name = "spiking-attack"

    def __init__(self, settings: Any, oracle: OracleFactory = default_oracle, steps: int | None = None) -> None:
        self.settings = settings
        self.oracle_factory = oracle
        self.steps = steps
        self._bound: tuple[Any, tuple, GradientOracle] | None = None  # (weakref to model, weight versions, oracle)

    def oracle_for(self, model: TargetModel) -> GradientOracle:
        """The oracle bound to ``model``: reused while it is the same model with unchanged
        parameters (runs over several seeds keep the engine's prepared weights, tables and
        buffers, which are costly to set up), else made by the factory."""
        state = tuple((p.data_ptr(), p._version) for p in model.parameters()) if hasattr(model, "parameters") else ()
        if self._bound is None or self._bound[0]() is not model or self._bound[1] != state:
            self._bound = (weakref.ref(model), state, self.oracle_factory(model))
        return self._bound[2]

    def start(self, model: TargetModel, classes: Sequence[int], seed: int) -> SpikingRun:
        """Check ``model`` takes spikes and ``classes`` are its classes; seed and bind the oracle."""
        require_domain(model, "spikes", self.name)
        targets = check_classes(model, classes)
        return SpikingRun(targets, model_steps(model, self.steps), generator(seed), self.oracle_for(model))
