"""The fast attack core: loss, probabilities and input gradient of a feed-forward LIF network.

(Over ~350 lines on purpose: the oracle, its batch shards and its lanes share one set of
prepared layers and buffers, so they stay one module; the LIF kernels and the input currents
live in ``lif_kernels`` and ``currents``.)

``FastLIFOracle(model)`` is a ``GradientOracle`` for any ``TargetModel`` exposing
``lif_layers()`` (a list of ``nmprivacy.network.lif.LIFLayer``). It computes the same numbers as
autograd through the model's own forward (``AutogradOracle``), without an autograd graph and
without weight gradients:

- forward: per layer, the input currents over all ``T * B`` rows at once (input layer:
  ``nmprivacy.attacks.currents``, a row gather or a subset-sum table for binary spikes, else a
  GEMM; other layers: a GEMM), then the layer's whole time loop in one fused kernel
  (``nmprivacy.attacks.lif_kernels``) in place on preallocated ``[T, B, N]`` buffers (the
  pre-reset voltage overwrites the current);
- backward (manual BPTT): the read-out gradient is analytic, each layer's time loop runs
  backwards in one fused kernel with the fast-sigmoid surrogate, and each synapse costs one
  matmul (``dL/dI @ W``).
- threads: the batch is split into ``workers`` shards (default: torch's thread count), each
  computed start to finish (forward, backward, population weighting, input-gradient matmul) on a
  worker of ``nmprivacy.attacks.threads.SerialPool`` with one torch thread, so no op waits at an
  OpenMP barrier for a descheduled peer on a loaded machine. With one worker,
  matmuls use torch's threads (the neuron kernels are serial).
- lanes: ``lane(i)`` is an oracle computing whole batches on the calling thread with lane
  ``i``'s buffers, so an attack can run one part of its classes per worker
  (``nmprivacy.attacks.executor``: each part's step on its own thread, no per-iteration hand-off).
- populations (BL-v2): ``population_gradient`` weights the per-sample dL/dI of the input layer
  before its matmul with W1, which then runs on ``T * K`` rows instead of ``T * K * P``.

Model conventions this mirrors (``nmprivacy.models.lif.LIFBox``, ``snn_lava``, docs/method.md §2):
the read-out is the output layer's *pre-reset* voltage divided by ``membrane_scale``; the hard
reset's gradient follows ``LIFLayer.reset_grad`` (detached: ``d v_after / d v_before = 1 - z``;
none: 1, as slayer's leaky-integrator backward); spikes ``z = 1[v > threshold]`` with
surrogate ``1 / (1 + slope |v - threshold| / scale)^2``; a layer with ``delay = d`` emits its
spikes ``d`` steps later, and neuron ``n`` of a layer with ``neuron_delays`` receives its input
current ``neuron_delays[n]`` steps later (synaptic delays shared by all of a neuron's synapses). In "loihi" arithmetic the forward is exact CUBA fixed point (states in
float64 holding integers, ``rstz`` = truncation toward zero) and the backward passes the decays
straight through (``d rstz(v * c, 12) / dv = c / 4096``); Lava's 24-bit wrap of u and clip of v
are computed as Lava does (``nmprivacy.attacks.lif_kernels``), so every state is exact.

Layouts: ``x`` ``[T, B, *input_shape]``; per layer ``I``/``A`` (current, then pre-reset voltage)
and ``Z`` (spikes) ``[T, B, N]``; read-out membrane ``[T, B, C]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from nmprivacy.attacks.base import GradientOracle, LossKind, OracleOutput, PopulationOutput
from nmprivacy.attacks import currents, lif_kernels
from nmprivacy.attacks.currents import SPARSE_DENSITY, InputWeights, input_currents
from nmprivacy.attacks.lif_kernels import CURRENT_SHIFT as LOIHI_CURRENT_SHIFT
from nmprivacy.attacks.lif_kernels import DECAY_UNIT as LOIHI_DECAY_UNIT
from nmprivacy.attacks.lif_kernels import lif_backward, lif_forward
from nmprivacy.attacks.oracle import WeightsFn, group_weights
from nmprivacy.attacks.threads import SerialPool, chunks
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel, spike_readout
from nmprivacy.network.lif import LIFLayer

# Output layers narrower than this compute their currents as (W @ S^T)^T, which MKL runs faster
# than S @ W^T for a read-out of few outputs (3000 -> 10).
NARROW_OUTPUT = 64


@dataclass(frozen=True)
class _Layer:
    """One layer prepared for the engine: weights in both layouts plus scalar constants."""

    weight: torch.Tensor  # [out, in] float32 contiguous
    weight_grad: torch.Tensor  # [out, in]: d(voltage input)/d(spikes in): weight, x 64 for loihi (backward GEMMs)
    weight_t: torch.Tensor  # [in, out] float32 contiguous (forward GEMM)
    loihi: bool
    threshold: float
    leak: float  # float: v multiplier; loihi: (4096 - v_decay) / 4096
    v_keep: float  # loihi: 4096 - v_decay (integer)
    i_keep: float  # loihi: 4096 - i_decay (integer; 0 = no synaptic memory)
    delay: int
    slope: float  # surrogate slope / scale
    root_scale: float  # sqrt(scale): the surrogate is a derivative per scale unit of voltage
    membrane_scale: float
    reset_detached: bool  # True: d v_after / d v_before = 1 - z; False: 1 (reset invisible to the gradient)
    neuron_delays: torch.Tensor | None = None  # [out] int64: extra steps of each neuron's input current (None: all 0)

    @property
    def size(self) -> int:
        return self.weight.shape[0]


def _prepare(layer: LIFLayer) -> _Layer:
    w = layer.weight.detach().to(torch.float32).contiguous()
    loihi = layer.arithmetic == "loihi"
    if layer.arithmetic not in ("float", "loihi"):
        raise ValueError(f"unknown LIF arithmetic {layer.arithmetic!r}")
    return _Layer(
        weight=w,
        weight_grad=w * LOIHI_CURRENT_SHIFT if loihi else w,
        weight_t=w.t().contiguous(),
        loihi=loihi,
        threshold=float(layer.threshold),
        leak=(LOIHI_DECAY_UNIT - layer.v_decay) / LOIHI_DECAY_UNIT if loihi else float(layer.leak),
        v_keep=float(LOIHI_DECAY_UNIT - layer.v_decay),
        i_keep=float(LOIHI_DECAY_UNIT - layer.i_decay),
        delay=int(layer.delay),
        slope=float(layer.surrogate_slope) / float(layer.surrogate_scale),
        root_scale=math.sqrt(float(layer.surrogate_scale)),
        membrane_scale=float(layer.membrane_scale),
        reset_detached=(layer.reset_grad or ("none" if loihi else "detached")) == "detached",
        neuron_delays=None if layer.neuron_delays is None or not bool(layer.neuron_delays.any()) else layer.neuron_delays.to(torch.int64),
    )


def readout_loss(
    membrane: torch.Tensor, targets: torch.Tensor, loss: LossKind
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss ``[B]``, probabilities ``[B, C]`` (``spike_readout``) and dL/d(membrane) ``[T, B, C]``
    for the output membrane ``[T, B, C]``: ``identity`` = 1 - mean_t softmax(U_t)[y],
    ``cross-entropy`` = mean_t CE(U_t, y)."""
    steps = membrane.shape[0]
    p = torch.softmax(membrane, dim=-1)  # [T, B, C]
    probs = p.mean(dim=0)
    idx = targets.view(1, -1, 1).expand(steps, -1, 1)
    onehot = torch.zeros_like(p).scatter_(2, idx, 1.0)
    if loss == "identity":
        py = p.gather(2, idx)  # [T, B, 1]
        values = 1.0 - probs.gather(1, targets[:, None]).squeeze(1)
        grad = py * (p - onehot) / steps  # d(-p_y)/dU = -p_y (e_y - p)
    elif loss == "cross-entropy":
        logp = torch.log_softmax(membrane, dim=-1)
        values = -logp.gather(2, idx).squeeze(2).mean(dim=0)
        grad = (p - onehot) / steps
    else:
        raise ValueError(f"unknown attack loss {loss!r}")
    return values, probs, grad


class FastLIFOracle:
    """``GradientOracle`` for LIF models with ``lif_layers()``: no autograd graph, input gradient only.

    ``sparse_density``: the input layer's currents come from ``nmprivacy.attacks.currents``
    (binary inputs: row gather or subset-sum table, whichever is cheaper; other inputs: weighted
    gather below this fraction of non-zeros); 0 forces the dense GEMM. ``workers``: batch shards computed concurrently, each on its own
    Python thread with one torch thread (default: torch's thread count at construction; 1 = the
    whole batch on the calling thread, matmuls on torch's threads, neuron kernels serial). Shards never meet at an OpenMP barrier, so a descheduled peer on a shared
    machine delays only its own shard. Buffers are kept between calls of the same ``[T, B]`` shape.
    """

    name = "fast-lif"

    def __init__(self, model: TargetModel, sparse_density: float = SPARSE_DENSITY, workers: int | None = None) -> None:
        described = model.lif_layers() if callable(getattr(model, "lif_layers", None)) else None
        if described is None:
            raise NmprivacyError(f"model '{model.info.kind}' has no LIF layer description: use nmprivacy.attacks.oracle.AutogradOracle")
        self.model = model
        self.layers = [_prepare(layer) for layer in described]
        if not self.layers:
            raise NmprivacyError(f"model '{model.info.kind}' returned no LIF layers")
        n_in = 1
        for s in model.info.input_shape:
            n_in *= int(s)
        if self.layers[0].weight.shape[1] != n_in:
            raise NmprivacyError(
                f"first LIF layer takes {self.layers[0].weight.shape[1]} inputs but the model's input_shape "
                f"{tuple(model.info.input_shape)} has {n_in}: fix the model's lif_layers()"
            )
        if workers is not None and workers < 1:
            raise NmprivacyError(f"workers={workers} is invalid: give a positive number of threads (or None for torch's)")
        self.input_weights = InputWeights.build(self.layers[0].weight, subsets=sparse_density > 0)
        lif_kernels.warm_up()  # kernels compiled or loaded now, not inside a timed attack iteration
        currents.warm_up()
        self.sparse_density = float(sparse_density)
        self.workers = workers if workers is not None else torch.get_num_threads()
        self.last_path = ""  # "dense", "gather" or "subsets": the input path of the last call (its first shard)
        self._buffers: dict[int, tuple[tuple[int, int], list[tuple[torch.Tensor, torch.Tensor]]]] = {}
        self._pool = SerialPool(self.workers, "nmprivacy-engine")

    def _buffers_for(self, shard: int, steps: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (currents/voltages, spikes/gradients), each ``[T, B, N]``, of one shard for this shape."""
        key = (steps, batch)
        if shard not in self._buffers or self._buffers[shard][0] != key:  # one shape per shard: attacks call with a fixed shape
            self._buffers[shard] = (key, [(torch.empty(steps, batch, layer.size), torch.empty(steps, batch, layer.size)) for layer in self.layers])
        return self._buffers[shard][1]

    def _check(self, x: torch.Tensor) -> None:
        n_in = self.layers[0].weight.shape[1]
        if x.dim() < 3 or x[0, 0].numel() != n_in:
            raise NmprivacyError(
                f"input of shape {tuple(x.shape)} does not fit model '{self.model.info.kind}': "
                f"pass spikes [T, B, {', '.join(str(int(s)) for s in self.model.info.input_shape)}]"
            )

    def _shards(self, groups: int) -> list[slice]:
        """Group ranges of the batch shards (a batch of ``groups`` equal groups)."""
        return chunks(groups, math.ceil(groups / max(1, min(self.workers, groups))))

    @property
    def lanes(self) -> int:
        """Independent lanes (the worker count): callers on their own one-torch-thread workers may
        use ``lane(i)`` for ``i < lanes`` concurrently (``nmprivacy.attacks.executor.LaneOracle``)."""
        return self.workers

    def lane(self, index: int) -> "FastLIFLane":
        """Lane ``index``: an oracle computing every batch on the calling thread with its own buffers."""
        if not 0 <= index < self.lanes:
            raise ValueError(f"lane {index} out of range: this oracle has {self.lanes} lanes")
        return FastLIFLane(self, index)

    def _map(self, fn: Callable[[int, slice], tuple], shards: list[slice]) -> list[tuple]:
        """``fn(i, shard)`` for every shard: inline for one, else on the worker threads."""
        return self._pool.map(fn, shards)

    @torch.no_grad()
    def membrane(self, x: torch.Tensor) -> torch.Tensor:
        """Output read-out membrane ``[T, B, C]`` for ``x`` ``[T, B, *input_shape]`` (forward only)."""
        self._check(x)
        return self._forward(x, 0)[0].clone()

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[B, C]`` (``spike_readout`` of the read-out membrane) for ``x``
        ``[T, B, *input_shape]``, forward only, in shards on the workers: what
        ``model.probabilities`` gives, through the engine."""
        self._check(x)

        def shard(i: int, s: slice) -> tuple:
            return (self._forward(x[:, s], i)[0],)  # the shard's own buffer, copied out by the cat below

        return spike_readout(torch.cat([r[0] for r in self._map(shard, self._shards(x.shape[1]))], dim=1))  # one read-out over the whole batch, as the model's

    def _forward(self, x: torch.Tensor, shard: int) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], str]:
        """Read-out membrane ``[T, B, C]``, the shard's per-layer buffers and the input path."""
        steps, batch = x.shape[0], x.shape[1]
        bufs = self._buffers_for(shard, steps, batch)
        rows = x.reshape(steps * batch, -1).to(torch.float32)
        path = ""
        for i, (layer, (a, z)) in enumerate(zip(self.layers, bufs)):
            if i == 0:
                path = input_currents(rows, self.input_weights, a.view(steps * batch, -1), self.sparse_density)
            else:
                _shifted_mm(bufs[i - 1][1], forward_mm(layer), a, self.layers[i - 1].delay)
            if layer.neuron_delays is not None:
                shift_neurons(a.view(steps, batch, -1), layer.neuron_delays)
            lif_forward(a.view(steps, -1), z.view(steps, -1), layer.loihi, layer.threshold, layer.leak, layer.v_keep, layer.i_keep)
        last = self.layers[-1]
        a_out = bufs[-1][0]
        membrane = a_out / last.membrane_scale if last.membrane_scale != 1.0 else a_out
        return membrane, bufs, path

    def _input_current_grad(self, x: torch.Tensor, targets: torch.Tensor, loss: LossKind, shard: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
        """Loss ``[B]``, probabilities ``[B, C]``, dL/d(input-layer current) ``[T, B, N1]`` (a buffer
        of ``shard``, valid until its next call) and the input path: all but the input-gradient matmul."""
        steps, batch = x.shape[0], x.shape[1]
        membrane, bufs, path = self._forward(x, shard)
        values, probs, g_out = readout_loss(membrane, targets, loss)
        last = self.layers[-1]
        g = bufs[-1][1]  # the output layer's spike buffer now holds its gradients
        torch.div(g_out, last.membrane_scale, out=g)  # read-out gradient enters the pre-reset voltage
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            lif_backward(
                g.view(steps, -1), bufs[i][0].view(steps, -1), i < len(self.layers) - 1, layer.reset_detached, layer.threshold,
                layer.leak, layer.slope, layer.root_scale, layer.i_keep if layer.loihi else 0.0,
            )
            if layer.neuron_delays is not None:  # dL/d(current before its delay): moved back per neuron
                shift_neurons(g.view(steps, batch, -1), -layer.neuron_delays)
            if i == 0:
                return values, probs, g, path
            g_prev = bufs[i - 1][1]  # dL/d(spikes of layer i-1) overwrites its spike buffer
            _shifted_mm(g, backward_mm(layer), g_prev, -self.layers[i - 1].delay)
            g = g_prev
        raise AssertionError("unreachable")

    def __call__(self, x: torch.Tensor, targets: torch.Tensor, loss: LossKind = "identity") -> OracleOutput:
        """Loss ``[B]``, probabilities ``[B, C]`` and d(sum loss)/dx ``[T, B, *input_shape]``."""
        return self._gradient(x, targets, loss, None)

    @torch.no_grad()
    def _gradient(self, x: torch.Tensor, targets: torch.Tensor, loss: LossKind, lane: int | None) -> OracleOutput:
        """``__call__`` in shards on the workers, or (``lane``) whole on the calling thread."""
        self._check(x)
        targets = targets.to(torch.long)
        w1 = self.layers[0].weight_grad

        def shard(i: int, s: slice) -> tuple:  # forward, backward and input-gradient matmul of one shard
            values, probs, grad, path = self._input_current_grad(x[:, s], targets[s], loss, i)
            return values, probs, torch.mm(grad.view(-1, w1.shape[0]), w1).view(x.shape[0], -1, w1.shape[1]), path

        results = [shard(lane, slice(0, x.shape[1]))] if lane is not None else self._map(shard, self._shards(x.shape[1]))
        self.last_path = results[0][3]
        grad = results[0][2] if len(results) == 1 else torch.cat([r[2] for r in results], dim=1)
        return OracleOutput(
            loss=torch.cat([r[0] for r in results]), probs=torch.cat([r[1] for r in results]), grad=grad.view(x.shape)
        )

    def population_gradient(
        self, x: torch.Tensor, targets: torch.Tensor, groups: int, weights_fn: WeightsFn, loss: LossKind = "identity"
    ) -> PopulationOutput:
        """Weighted population gradient ``[T, K, *input_shape]`` of ``x`` ``[T, K * P, ...]``, ``K =
        groups`` (see ``nmprivacy.attacks.oracle.population_gradient``): the per-sample current
        gradients are weighted and summed first, so the input-gradient matmul runs over ``T * K``
        rows, not ``T * K * P``; shards hold whole groups."""
        return self._population_gradient(x, targets, groups, weights_fn, loss, None)

    @torch.no_grad()
    def _population_gradient(
        self, x: torch.Tensor, targets: torch.Tensor, groups: int, weights_fn: WeightsFn, loss: LossKind, lane: int | None
    ) -> PopulationOutput:
        """``population_gradient`` in shards on the workers, or (``lane``) whole on the calling thread."""
        steps, p = x.shape[0], x.shape[1] // groups
        self._check(x)
        targets = targets.to(torch.long)
        w1 = self.layers[0].weight_grad
        n1 = w1.shape[0]

        def shard(i: int, g: slice) -> tuple:
            s = slice(g.start * p, g.stop * p)
            values, probs, grad, path = self._input_current_grad(x[:, s], targets[s], loss, i)  # grad [T, k * P, N1]
            weights = group_weights(weights_fn, values, g)  # [k, P]
            k = g.stop - g.start
            w = weights.to(grad.dtype).reshape(1, k, 1, p).expand(steps, k, 1, p).reshape(steps * k, 1, p)
            g_sum = torch.bmm(w, grad.view(steps * k, p, n1)).view(steps * k, n1)  # [T * k, N1]
            return values, probs, weights, torch.mm(g_sum, w1).view(steps, k, -1), path

        if lane is not None:
            results = [shard(lane, slice(0, groups))]
        else:  # one task per shard of whole groups: forward, backward, weighting and input-gradient matmul
            results = self._map(shard, self._shards(groups))
        self.last_path = results[0][4]
        grad = results[0][3] if len(results) == 1 else torch.cat([r[3] for r in results], dim=1)
        return PopulationOutput(
            loss=torch.cat([r[0] for r in results]), probs=torch.cat([r[1] for r in results]),
            weights=torch.cat([r[2] for r in results]), grad=grad.view(steps, groups, *x.shape[2:]),
        )


class FastLIFLane:
    """Lane ``index`` of a ``FastLIFOracle``: a ``GradientOracle`` (with ``population_gradient``)
    computing every batch on the calling thread with the lane's own buffers; meant for callers on
    one-torch-thread workers (``nmprivacy.attacks.executor``)."""

    name = "fast-lif"

    def __init__(self, oracle: FastLIFOracle, index: int) -> None:
        self.oracle = oracle
        self.index = index

    def __call__(self, x: torch.Tensor, targets: torch.Tensor, loss: LossKind = "identity") -> OracleOutput:
        """As ``FastLIFOracle.__call__``, on the calling thread."""
        return self.oracle._gradient(x, targets, loss, self.index)

    def population_gradient(
        self, x: torch.Tensor, targets: torch.Tensor, groups: int, weights_fn: WeightsFn, loss: LossKind = "identity"
    ) -> PopulationOutput:
        """As ``FastLIFOracle.population_gradient``, on the calling thread."""
        return self.oracle._population_gradient(x, targets, groups, weights_fn, loss, self.index)


MatMul = Callable[[torch.Tensor, torch.Tensor], object]  # (rows [R, a], out [R, b]): writes rows @ M into out


def forward_mm(layer: _Layer) -> MatMul:
    """The layer's synaptic product ``rows @ weight.T`` into ``out``; narrow layers (the read-out)
    as ``(weight @ rows.T).T``, which MKL runs faster for few outputs."""
    if layer.size < NARROW_OUTPUT:
        return lambda rows, out: out.copy_(torch.mm(layer.weight, rows.t()).t())
    return lambda rows, out: torch.mm(rows, layer.weight_t, out=out)


def backward_mm(layer: _Layer) -> MatMul:
    """dL/d(spikes in) ``g @ weight_grad`` into ``out`` for dL/d(voltage input) rows ``g``."""
    return lambda rows, out: torch.mm(rows, layer.weight_grad, out=out)


def shift_neurons(x: torch.Tensor, steps: torch.Tensor) -> None:
    """Move column ``n`` of ``x`` ``[T, B, N]`` (contiguous, CPU) ``steps[n]`` time steps later
    (earlier if negative), in place; what leaves the window is dropped, zeros enter
    (``sparse_cuba.per_neuron_shift``'s kernel)."""
    from nmprivacy.models.sparse_cuba import per_neuron_shift

    t, b = x.shape[0], x.shape[1]
    rows = x.view(t * b, -1)
    rows.copy_(torch.from_numpy(per_neuron_shift(rows.numpy(), steps.numpy(), b)))


def _shifted_mm(src: torch.Tensor, mm: MatMul, out: torch.Tensor, shift: int) -> None:
    """``out[t] = src[t - shift] @ M`` for ``[T, B, *]`` tensors with ``mm`` (zero where out of
    range); a negative shift reads from the future (the backward of a delay)."""
    steps, batch = src.shape[0], src.shape[1]
    if shift == 0:
        mm(src.view(steps * batch, -1), out.view(steps * batch, -1))
        return
    n = steps - abs(shift)
    if n <= 0:
        out.zero_()
        return
    s_from, o_from = (0, shift) if shift > 0 else (-shift, 0)
    mm(src[s_from : s_from + n].reshape(n * batch, -1), out[o_from : o_from + n].view(n * batch, -1))
    if shift > 0:
        out[:shift].zero_()
    else:
        out[n:].zero_()


def make_oracle(model: TargetModel) -> GradientOracle:
    """The fastest exact oracle for ``model``: ``FastLIFOracle`` when it describes itself through
    ``lif_layers()``, else autograd (``nmprivacy.attacks.oracle.AutogradOracle``): the same numbers
    through the model's own forward, only slower (conv or recurrent networks, snn-lava trained
    with slayer's own surrogate)."""
    from nmprivacy.attacks.oracle import AutogradOracle

    if callable(getattr(model, "lif_layers", None)) and model.lif_layers() is not None:
        return FastLIFOracle(model)
    return AutogradOracle(model)
