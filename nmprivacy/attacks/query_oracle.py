"""Counted query oracles: a deployed spiking network reached only through its outputs.

A query is one binary input spike train ``[T, *input_shape]``; an oracle takes a batch of them
``[B, T, *input_shape]`` (query first, the layout ``run_lava`` takes) and answers with only what
the threat level lets the attacker see:

- ``"counts"`` (default): output spike counts per class ``[B, C]`` (int64), what a chip reports
  by counting its output spikes;
- ``"label"`` (hard label): the top-1 class ``[B]`` (int64): the class with the most output
  spikes, ties to the lowest class index, ``-1`` when no output neuron spiked (the chip gives
  no answer);
- ``"membrane"`` (soft): the output layer's pre-reset membrane ``[B, T, C]`` (float32, model
  units), as Lava's probes of the output neurons give it.

Every query is counted (``queries``, exactly the number of rows ever answered) whatever the
threat level, and an optional ``max_queries`` refuses batches that would exceed it.

Implementations: ``EmulationOracle`` queries any ``TargetModel`` in-process, by one of
- ``"engine"``: models describing themselves as LIF layers (``lif_layers()``: ``NetxEmulation``,
  ``snn-lava``, ``snn-norse``) run forward-only through the attack engine
  (``nmprivacy.attacks.engine.FastLIFOracle.membrane``, exact Loihi fixed point for NetX and
  snn-lava), and an output neuron spikes where its pre-reset membrane exceeds its threshold
  (the neuron's own spike rule; used when the membrane's scale is a power of two, so the integer
  voltage is recovered exactly);
- ``"layer-spikes"``: models exposing per-layer spikes (``NetxEmulation.layer_spikes(x)[-1]``)
  and their read-out membrane (``forward``);
- ``"membrane-only"``: any other ``TargetModel`` exposes only its read-out membrane (``forward``),
  so it answers ``"membrane"`` and ``"label"`` (then the argmax of ``probabilities``, the
  model's own prediction) but not ``"counts"``.
``hw_export.lava_oracle`` holds the oracle that runs every batch on Lava's ``fixed_pt`` simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from nmprivacy.attacks.base import Inversion
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel

Threat = Literal["counts", "label", "membrane"]
THREATS: tuple[str, ...] = ("counts", "label", "membrane")


@dataclass(frozen=True)
class QueryAnswer:
    """What the attacker sees of ``B`` queries: exactly one field is set, by ``threat``:
    ``counts`` ``[B, C]`` int64, ``labels`` ``[B]`` int64 (-1: no output spike), or
    ``membrane`` ``[B, T, C]`` float32."""

    threat: Threat
    counts: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    membrane: torch.Tensor | None = None

    def __len__(self) -> int:
        value = next(v for v in (self.counts, self.labels, self.membrane) if v is not None)
        return int(value.shape[0])


class QueryOracle(Protocol):
    """A counted, output-only view of a deployed network (see the module docstring)."""

    name: str
    threat: Threat
    queries: int

    def __call__(self, x: torch.Tensor) -> QueryAnswer: ...


def check_threat(threat: str) -> Threat:
    """``threat`` if it is a threat level, else a one-line NmprivacyError naming the choices."""
    if threat not in THREATS:
        raise NmprivacyError(f"unknown threat level '{threat}': choose one of {', '.join(THREATS)}")
    return threat  # type: ignore[return-value]


def spike_labels(counts: torch.Tensor) -> torch.Tensor:
    """Top-1 label ``[B]`` of output spike counts ``[B, C]``: most spikes, ties to the lowest
    class index, -1 where no class spiked."""
    labels = counts.argmax(dim=1)  # torch returns the first maximum
    return torch.where(counts.amax(dim=1) > 0, labels, torch.full_like(labels, -1))


class CountedOracle:
    """Shared part of every oracle: input checks, query counting and the threat filter.

    Subclasses implement ``_outputs(x, membrane)`` returning the output spikes ``[B, T, C]``
    (None if the target cannot show them) and, when ``membrane`` is True, the output membrane
    ``[B, T, C]``."""

    name = "oracle"

    def __init__(self, input_size: int, num_classes: int, threat: str = "counts", max_queries: int | None = None) -> None:
        self.threat: Threat = check_threat(threat)
        self.input_size = int(input_size)
        self.num_classes = int(num_classes)
        self.max_queries = max_queries
        self.queries = 0
        self.batches = 0

    def _outputs(self, x: torch.Tensor, membrane: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        raise NotImplementedError

    def _label_without_spikes(self, x: torch.Tensor) -> torch.Tensor:
        raise NmprivacyError(f"the {self.name} oracle cannot see output spikes: use --threat membrane")

    def check(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as float32 ``[B, T, N]`` after checking shape and binary values (one-line errors)."""
        if not isinstance(x, torch.Tensor) or x.dim() < 3 or x.shape[0] == 0 or x.shape[1] == 0:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise NmprivacyError(f"queries must be a tensor [B, T, *input_shape] with B, T >= 1, got {shape}")
        if math.prod(x.shape[2:]) != self.input_size:
            raise NmprivacyError(f"queries have {math.prod(x.shape[2:])} inputs per step but the target takes {self.input_size}: reshape them")
        if not bool(((x == 0) | (x == 1)).all()):
            raise NmprivacyError("queries must be binary spike trains (0/1): sample Bernoulli spikes before querying")
        return x.reshape(x.shape[0], x.shape[1], -1).to(torch.float32)

    def __call__(self, x: torch.Tensor) -> QueryAnswer:
        """The answer to the ``B`` queries ``x`` ``[B, T, *input_shape]`` (binary); counts them."""
        flat = self.check(x)
        b = flat.shape[0]
        if self.max_queries is not None and self.queries + b > self.max_queries:
            raise NmprivacyError(
                f"the {self.name} oracle allows {self.max_queries} queries and {self.queries} are used: "
                f"a batch of {b} would exceed it (raise the budget or lower the population)"
            )
        spikes, membrane = self._outputs(flat, self.threat == "membrane")
        self.queries += b
        self.batches += 1
        if self.threat == "membrane":
            return QueryAnswer("membrane", membrane=membrane.to(torch.float32))
        if spikes is None:
            if self.threat == "label":
                return QueryAnswer("label", labels=self._label_without_spikes(flat))
            raise NmprivacyError(f"the {self.name} oracle cannot see output spikes, so it has no spike counts: use --threat membrane or label, or query a NetX file")
        counts = spikes.to(torch.int64).sum(dim=1)
        if self.threat == "counts":
            return QueryAnswer("counts", counts=counts)
        return QueryAnswer("label", labels=spike_labels(counts))


class EmulationOracle(CountedOracle):
    """Queries a ``TargetModel`` in-process through its outputs only (``name`` ``"emulation"``);
    ``backend`` ``"auto"`` picks ``"engine"``, else ``"layer-spikes"``, else ``"membrane-only"``
    (module docstring)."""

    name = "emulation"

    def __init__(self, model: TargetModel, threat: str = "counts", max_queries: int | None = None, backend: str = "auto") -> None:
        if model.info.domain != "spikes":
            raise NmprivacyError(f"query oracles need a spiking target but '{model.info.kind}' takes {model.info.domain}")
        super().__init__(math.prod(model.info.input_shape), model.info.num_classes, threat, max_queries)
        self.model = model.eval()
        self.engine = None
        has_spikes = callable(getattr(model, "layer_spikes", None))
        if backend in ("auto", "engine"):
            self.engine, self.spike_threshold = _engine_for(model)
            if self.engine is None and backend == "engine":
                raise NmprivacyError(f"model '{model.info.kind}' cannot run on the attack engine (no exact LIF-layer description): use backend='auto'")
        if self.engine is not None:
            self.backend = "engine"
        elif backend in ("auto", "layer-spikes") and has_spikes:
            self.backend = "layer-spikes"
        elif backend in ("auto", "membrane-only"):
            self.backend = "membrane-only"
        else:
            raise NmprivacyError(f"unknown or unavailable emulation backend '{backend}' for '{model.info.kind}': choose auto, engine, layer-spikes or membrane-only")
        if self.backend == "membrane-only" and self.threat == "counts":
            raise NmprivacyError(f"model '{model.info.kind}' shows no output spikes, so it has no spike counts: use --threat membrane or label, or query a NetX file")

    def _model_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], *self.model.info.input_shape).transpose(0, 1)  # [T, B, ...]

    @torch.no_grad()
    def _outputs(self, x: torch.Tensor, membrane: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        xm = self._model_input(x)
        if self.backend == "engine":
            m = self.engine.membrane(xm)
            return (m > self.spike_threshold).to(torch.uint8).transpose(0, 1), m.transpose(0, 1)
        if membrane:
            return None, self.model(xm).transpose(0, 1)
        if self.backend == "layer-spikes":
            return self.model.layer_spikes(xm)[-1].transpose(0, 1), None
        return None, None

    @torch.no_grad()
    def _label_without_spikes(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.predict(self._model_input(x))


def _engine_for(model: TargetModel) -> tuple[object | None, float]:
    """(forward-only attack engine of ``model``, output threshold in read-out units), or
    (None, 0) when the model has no exact LIF description or its output scale is no power of 2."""
    lif_layers = getattr(model, "lif_layers", None)
    if not callable(lif_layers):
        return None, 0.0
    try:
        layers = lif_layers()
        from nmprivacy.attacks.engine import FastLIFOracle
    except (NmprivacyError, ImportError):
        return None, 0.0
    if not layers:  # the model declares no LIF description
        return None, 0.0
    last = layers[-1]
    mantissa, _ = math.frexp(float(last.membrane_scale))
    if mantissa != 0.5:  # membrane * scale would not give back the exact voltage
        return None, 0.0
    return FastLIFOracle(model), float(last.threshold) / float(last.membrane_scale)


@dataclass
class QueryTrace:
    """Leakage-vs-queries snapshots of a query attack: after ``queries[s]`` total queries
    (``[S]``, all attacked classes), the attacker-visible confidence in the attacked class
    ``confidence`` ``[S, K]`` (mean over that iteration's population) and the X_p the attack
    would have returned then, per time bin: ``rates`` ``[S, K, bins, *input_shape]``
    (``probabilities(s)`` expands it to ``[K, T, *input_shape]``)."""

    queries: torch.Tensor
    confidence: torch.Tensor
    rates: torch.Tensor
    steps: int
    bins: int

    def probabilities(self, s: int) -> torch.Tensor:
        """X_p ``[K, T, *input_shape]`` of snapshot ``s``."""
        index = (torch.arange(self.steps) * self.bins) // self.steps
        return self.rates[s].index_select(1, index)


@dataclass
class QueryInversion(Inversion):
    """An ``Inversion`` made through a query oracle: ``queries`` answered in total, the
    ``oracle``'s name, the ``threat`` level, the leakage-vs-queries ``trace`` and the answers the
    attacker saw for the last population (``seen``: counts ``[K, P, C]``, labels ``[K, P]`` or
    membrane ``[K, P, T, C]``)."""

    queries: int = 0
    oracle: str = ""
    threat: str = "counts"
    trace: QueryTrace | None = None
    seen: torch.Tensor | None = None
