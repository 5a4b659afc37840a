"""One typed description of a layered LIF network: what every format and engine reads or writes.

A ``Network`` is an input shape plus a chain of neuron layers, each a synapse feeding one
population of CUBA LIF neurons:
- ``InputLayer``: neurons fed by the network input itself through the elementwise transform
  ``a = weight * x + bias`` (NetX ``input`` layer with neurons; graded inputs);
- ``DenseLayer``: ``a = W @ s`` over the previous layer's spikes (CHW-flattened when they come
  from a convolution), optional per-synapse ``delay`` and recurrent weights ``weight_rec``;
- ``ConvLayer``: ``a = conv2d(s, W)`` with stride, padding, dilation and groups (torch's layout:
  weight ``[out, in / groups, kH, kW]``, pairs in (H, W) order, shapes ``(C, H, W)``).

Neurons are either ``LoihiNeuron`` (integers in Loihi units, ``nmprivacy.network.loihi``) or
``FloatNeuron`` (a discrete-time float model). Every layer of a network uses the same kind, so a
network is either ``"loihi"`` (what NetX holds and Lava runs) or ``"float"`` (NIR graphs, Norse
models); ``nmprivacy.network.quantize`` maps float onto Loihi. Time: layer 0 integrates input
step ``t``; layer ``l > 0`` integrates the spikes layer ``l - 1`` emitted at step ``t - 1``
(Loihi's one-step synapse; a synaptic delay ``d`` adds ``d`` steps), and layer ``l`` starts from
zero state at step ``l``, when the first input of a sample can reach it (Lava's reset schedule).
Readers build these dataclasses and every invariant is checked on construction: a network that
exists is well formed (errors name the layer).
One module on purpose (~370 lines): the layer kinds share their validation helpers and the
network-level checks that chain them; it is the one place each invariant is stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np

from nmprivacy.errors import NetworkError
from nmprivacy.network import loihi

Shape = tuple[int, ...]
Pair = tuple[int, int]
MAX_ELEMENTS = 1 << 28  # largest weight tensor accepted (a sane bound before any allocation)


@dataclass(frozen=True)
class LoihiNeuron:
    """Loihi CUBA LIF neurons of one layer: 12-bit decays ``i_decay``/``v_decay`` (4096 = full
    decay) and threshold mantissa ``vth_mant`` (spike when ``v > vth_mant << 6``).
    ``graded``: the file declares graded spikes, which Lava's CUBA neuron does not emit (it sends
    binary spikes; this flag is kept so the difference can be reported)."""

    i_decay: int
    v_decay: int
    vth_mant: int
    graded: bool = False

    def check(self, where: str) -> None:
        """Raise ``NetworkError`` naming ``where`` if a parameter is outside Loihi's range."""
        for name in ("i_decay", "v_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or not 0 <= value <= loihi.DECAY_UNIT:
                raise NetworkError(f"{where}: {name} {value!r} outside Loihi's 0..{loihi.DECAY_UNIT}")
        if not isinstance(self.vth_mant, (int, np.integer)) or not 0 <= self.vth_mant <= loihi.VTH_LIMIT:
            raise NetworkError(f"{where}: threshold mantissa {self.vth_mant!r} outside Loihi's 0..{loihi.VTH_LIMIT}")

    @property
    def threshold(self) -> int:
        """The voltage (Loihi units) a neuron must exceed to spike."""
        return int(self.vth_mant) << loihi.ACT_SHIFT_BITS

    @property
    def spikes(self) -> bool:
        """False for NetX's integrator read-out (a threshold the clipped voltage never exceeds)."""
        return self.threshold < loihi.STATE_MAX - 1


@dataclass(frozen=True)
class FloatNeuron:
    """Float CUBA LIF neurons of one layer, per step (input gains folded into the weights):
    ``i_t = alpha i_{t-1} + a_t``; ``v_t = beta v_{t-1} + i_t + bias``; spike when
    ``v_t > threshold``; then ``v <- 0`` (``reset="zero"``) or ``v <- v - threshold``
    (``"subtract"``). ``threshold = inf`` is a leaky-integrator read-out (LI)."""

    beta: float
    threshold: float
    alpha: float = 0.0
    reset: Literal["zero", "subtract"] = "zero"

    def check(self, where: str) -> None:
        """Raise ``NetworkError`` naming ``where`` if a parameter is not a usable float."""
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise NetworkError(f"{where}: {name} {value!r} is not a per-step decay factor in [0, 1]")
        if math.isnan(self.threshold) or self.threshold <= 0:
            raise NetworkError(f"{where}: threshold {self.threshold!r} must be positive (inf for a read-out)")
        if self.reset not in ("zero", "subtract"):
            raise NetworkError(f"{where}: reset {self.reset!r} is neither 'zero' nor 'subtract'")

    @property
    def spikes(self) -> bool:
        """False for a leaky-integrator read-out (infinite threshold)."""
        return math.isfinite(self.threshold)


Neuron = Union[LoihiNeuron, FloatNeuron]


def _array(value: np.ndarray, where: str, what: str, ndim: int | None, integer: bool) -> np.ndarray:
    """``value`` as a finite int64 (``integer``) or float64 array of ``ndim`` dimensions."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise NetworkError(f"{where}: {what} has dtype {arr.dtype}, not numbers")
    if ndim is not None and arr.ndim != ndim:
        raise NetworkError(f"{where}: {what} has shape {arr.shape}, expected {ndim} dimensions")
    if arr.size > MAX_ELEMENTS:
        raise NetworkError(f"{where}: {what} holds {arr.size} values, more than the {MAX_ELEMENTS} accepted")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise NetworkError(f"{where}: {what} contains NaN or infinite values")
    if integer:
        if (arr != np.round(arr)).any():
            raise NetworkError(f"{where}: {what} holds non-integer values, but Loihi weights are integers")
        if np.abs(arr).max(initial=0) >= 1 << 31:
            raise NetworkError(f"{where}: {what} holds values beyond 32 bits")
        return arr.astype(np.int64)
    return arr


def _pair(value: object, where: str, what: str, minimum: int) -> Pair:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or arr.dtype.kind not in "biuf" or not (arr == np.round(arr)).all():
        raise NetworkError(f"{where}: {what} {value!r} is not one or two integers")
    pair = (int(arr[0]), int(arr[1]))
    if min(pair) < minimum or max(pair) > 1 << 12:
        raise NetworkError(f"{where}: {what} {pair} outside {minimum}..4096")
    return pair


@dataclass(frozen=True)
class _Layer:
    """Fields every neuron layer has. ``scale``: model membrane units per Loihi voltage unit
    (``v_model = v / (4096 * scale)``; 1 for slayer models and float networks)."""

    neuron: Neuron
    bias: np.ndarray | None = None
    scale: float = 1.0
    name: str = "layer"

    def _check_common(self, out_shape: Shape, integer: bool) -> None:
        self.neuron.check(self.name)
        if not math.isfinite(self.scale) or self.scale <= 0:
            raise NetworkError(f"{self.name}: membrane scale {self.scale!r} must be a positive number")
        if self.bias is not None:
            bias = _array(self.bias, self.name, "bias", None, integer)
            n = math.prod(out_shape)
            if bias.size not in (1, out_shape[0], n):
                raise NetworkError(f"{self.name}: bias of {bias.size} values fits neither the {n} neurons nor the {out_shape[0]} channels")
            object.__setattr__(self, "bias", bias)

    def bias_per_neuron(self, out_shape: Shape) -> np.ndarray | None:
        """The bias broadcast to ``out_shape`` (per channel for ``(C, H, W)``), or None."""
        if self.bias is None:
            return None
        b = np.asarray(self.bias).reshape(-1)
        n = math.prod(out_shape)
        if b.size == 1:
            return np.full(out_shape, b[0], dtype=b.dtype)
        if b.size == n:
            return b.reshape(out_shape)
        return np.broadcast_to(b.reshape(-1, *([1] * (len(out_shape) - 1))), out_shape).copy()


@dataclass(frozen=True)
class InputLayer(_Layer):
    """Neurons on the network input: ``a = weight * x + bias_in`` per element, shape ``shape``."""

    shape: Shape = ()
    weight: float = 1.0
    bias_in: float = 0.0

    def __post_init__(self) -> None:
        if not self.shape or any(int(s) < 1 for s in self.shape) or len(self.shape) not in (1, 3):
            raise NetworkError(f"{self.name}: input shape {self.shape} is neither (N,) nor (C, H, W)")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        loihi_arith = isinstance(self.neuron, LoihiNeuron)
        for what in ("weight", "bias_in"):
            value = _array(np.asarray(getattr(self, what)).reshape(-1)[:1], self.name, f"input transform {what}", 1, loihi_arith)
            object.__setattr__(self, what, value.item())
        self._check_common(self.shape, loihi_arith)

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape


@dataclass(frozen=True)
class DenseLayer(_Layer):
    """``a = weight @ s`` (``weight`` ``[out, in]``) over ``in_shape`` inputs (CHW-flattened when
    ``in_shape`` is ``(C, H, W)``); ``delay`` ``[out, in]`` extra steps per synapse; ``weight_rec``
    ``[out, out]`` recurrent weights (``a += weight_rec @ z_{t-1}``)."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    in_shape: Shape = ()
    delay: np.ndarray | None = None
    weight_rec: np.ndarray | None = None

    def __post_init__(self) -> None:
        integer = isinstance(self.neuron, LoihiNeuron)
        w = _array(self.weight, self.name, "weight", 2, integer)
        object.__setattr__(self, "weight", w)
        shape = tuple(int(s) for s in self.in_shape) if self.in_shape else (w.shape[1],)
        object.__setattr__(self, "in_shape", shape)
        if w.shape[0] < 1 or w.shape[1] != math.prod(shape):
            raise NetworkError(f"{self.name}: weight of shape {w.shape} does not take the {math.prod(shape)} inputs {shape}")
        if self.delay is not None:
            d = _array(self.delay, self.name, "delay", 2, True)
            if d.shape != w.shape:
                raise NetworkError(f"{self.name}: delay of shape {d.shape} does not match the weight {w.shape}")
            if d.min(initial=0) < 0 or d.max(initial=0) > loihi.MAX_DELAY:
                raise NetworkError(f"{self.name}: delays outside 0..{loihi.MAX_DELAY}")
            object.__setattr__(self, "delay", d if d.any() else None)
        if self.weight_rec is not None:
            r = _array(self.weight_rec, self.name, "recurrent weight", 2, integer)
            if r.shape != (w.shape[0], w.shape[0]):
                raise NetworkError(f"{self.name}: recurrent weight of shape {r.shape}, expected {(w.shape[0], w.shape[0])}")
            if self.delay is not None:
                raise NetworkError(f"{self.name}: a recurrent layer with synaptic delays is not supported (NetX builds its delay matrix for the input weights only)")
            object.__setattr__(self, "weight_rec", r)
        self._check_common(self.out_shape, integer)

    @property
    def out_shape(self) -> Shape:
        return (int(self.weight.shape[0]),)

    @property
    def max_delay(self) -> int:
        return 0 if self.delay is None else int(self.delay.max())

    @property
    def neuron_delays(self) -> np.ndarray | None:
        """``[out]``: the delay each neuron's synapses share (Lava-DL's learned delays, one per
        neuron); None without delays or where a neuron's synapses differ."""
        if self.delay is None or (self.delay != self.delay[:, :1]).any():
            return None
        return self.delay[:, 0]


def conv_output_shape(in_shape: Shape, out_channels: int, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Shape:
    """``(C, H, W)`` a convolution produces from ``in_shape`` ``(C, H, W)`` (torch's formula)."""
    hw = [
        (in_shape[1 + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i in range(2)
    ]
    return (int(out_channels), int(hw[0]), int(hw[1]))


@dataclass(frozen=True)
class ConvLayer(_Layer):
    """``a = conv2d(s, weight, stride, padding, dilation, groups)`` over ``in_shape`` ``(C, H, W)``;
    ``weight`` ``[out, in / groups, kH, kW]``; bias per channel or per neuron."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0)))
    in_shape: Shape = ()
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        integer = isinstance(self.neuron, LoihiNeuron)
        w = _array(self.weight, self.name, "weight", 4, integer)
        object.__setattr__(self, "weight", w)
        if len(self.in_shape) != 3 or min(self.in_shape) < 1:
            raise NetworkError(f"{self.name}: a convolution needs a (C, H, W) input, got {self.in_shape}")
        object.__setattr__(self, "in_shape", tuple(int(s) for s in self.in_shape))
        for name, minimum in (("stride", 1), ("padding", 0), ("dilation", 1)):
            object.__setattr__(self, name, _pair(getattr(self, name), self.name, name, minimum))
        groups = int(np.asarray(self.groups).reshape(-1)[0]) if np.asarray(self.groups).size else 0
        if groups < 1 or self.in_shape[0] % groups or w.shape[0] % groups or w.shape[1] * groups != self.in_shape[0]:
            raise NetworkError(
                f"{self.name}: weight {w.shape} with {groups} groups does not fit {self.in_shape[0]} input channels"
            )
        object.__setattr__(self, "groups", groups)
        out = self.out_shape
        if min(out) < 1:
            raise NetworkError(f"{self.name}: the convolution leaves no output for input {self.in_shape}")
        self._check_common(out, integer)

    @property
    def kernel(self) -> Pair:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))

    @property
    def out_shape(self) -> Shape:
        return conv_output_shape(self.in_shape, self.weight.shape[0], self.kernel, self.stride, self.padding, self.dilation)


Layer = Union[InputLayer, DenseLayer, ConvLayer]


@dataclass(frozen=True)
class Network:
    """A chain of neuron layers on an input of ``input_shape`` (``(C, H, W)`` or ``(N,)``).

    ``meta``: what the source says of itself (kind, data set, steps, dt, ...); ``notes``: what the
    source holds that the description, or Lava, treats differently (reported, never silent);
    ``name``: how errors name the source (e.g. a file name)."""

    input_shape: Shape
    layers: tuple[Layer, ...]
    meta: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    name: str = "network"

    def __post_init__(self) -> None:
        if not self.layers:
            raise NetworkError(f"{self.name} has no neuron layers")
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        kinds = {type(layer.neuron) for layer in self.layers}
        if len(kinds) > 1:
            raise NetworkError(f"{self.name} mixes Loihi and float neurons; quantise the whole network")
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            if isinstance(layer, InputLayer) and i > 0:
                raise NetworkError(f"{layer.name}: an input layer after other layers is not supported")
            if math.prod(layer.in_shape) != math.prod(shape) or (isinstance(layer, (ConvLayer, InputLayer)) and tuple(layer.in_shape) != tuple(shape)):
                raise NetworkError(f"{layer.name}: takes input of shape {layer.in_shape} but receives {shape}")
            shape = layer.out_shape

    @property
    def arithmetic(self) -> Literal["loihi", "float"]:
        """``"loihi"`` for integer CUBA neurons, ``"float"`` otherwise."""
        return "loihi" if isinstance(self.layers[0].neuron, LoihiNeuron) else "float"

    @property
    def num_outputs(self) -> int:
        """Neurons of the last layer (the classes of a classifier)."""
        return math.prod(self.layers[-1].out_shape)

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Neurons per layer, input first: ``(N_in, N_1, ..., N_out)``."""
        return (self.input_size,) + tuple(math.prod(layer.out_shape) for layer in self.layers)

    @property
    def has_input_neurons(self) -> bool:
        """True when the input feeds neurons directly (an ``InputLayer``): inputs may be graded."""
        return isinstance(self.layers[0], InputLayer)

    @property
    def recurrent(self) -> bool:
        return any(isinstance(layer, DenseLayer) and layer.weight_rec is not None for layer in self.layers)

    @property
    def max_delay(self) -> int:
        return max((layer.max_delay for layer in self.layers if isinstance(layer, DenseLayer)), default=0)

    def describe(self) -> str:
        """One line per layer: kind, shapes and neuron, for reports and ``--help`` output."""
        lines = []
        for i, layer in enumerate(self.layers):
            kind = {InputLayer: "input", DenseLayer: "dense", ConvLayer: "conv"}[type(layer)]
            if isinstance(layer, DenseLayer) and layer.weight_rec is not None:
                kind = "dense_rec"
            extra = ""
            if isinstance(layer, ConvLayer):
                extra = f" k{layer.kernel} s{layer.stride} p{layer.padding} d{layer.dilation} g{layer.groups}"
            if isinstance(layer, DenseLayer) and layer.delay is not None:
                extra = f" delays<={layer.max_delay}"
            lines.append(f"{i}: {kind} {layer.in_shape} -> {layer.out_shape}{extra}")
        return "; ".join(lines)
