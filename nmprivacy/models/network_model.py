"""Any ``nmprivacy.network.Network`` as a differentiable torch model (kind ``netx``, ``nir``, ...).

For a Loihi network the forward pass is bit-exact with Lava's ``fixed_pt`` simulation of the
same layers (docs/method.md §2: integer synapses, 12-bit decays with rounding toward zero,
24-bit wrap of u and clip of v, a conv synapse's 24-bit wrap, strict threshold, reset to 0);
for a float network it is the float CUBA LIF of ``FloatNeuron``. Time follows the description:
layer 0 integrates input step ``t``, layer ``l > 0`` the spikes of layer ``l - 1`` at step
``t - 1`` (plus any synaptic delay), and layer ``l`` starts from zero state at step ``l``.

Backward: the fast-sigmoid surrogate (``nmprivacy.models.surrogates``, slope 40 per unit of the
source model's membrane: ``4096 * scale`` Loihi units), straight-through for the integer
rounding (a decay passes as ``keep / 4096``) and for the wraps; a Loihi reset carries no
gradient (slayer's backward), a float reset passes ``1 - z`` (Norse, snnTorch).

Layouts: input ``x`` ``[T, B, *input_shape]`` (or ``[T, B, N]``); ``forward`` returns the last
layer's pre-reset membrane ``[T, B, N_out]`` in the source model's units; ``layer_spikes``
each layer's spikes ``[T, B, N_l]`` (conv layers flattened in (C, H, W) order).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.nn import functional as F

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import ModelInfo, TargetModel
from nmprivacy.models.surrogates import spike
from nmprivacy.network import ConvLayer, InputLayer, LoihiNeuron, Network, loihi

SURROGATE_SLOPE = 40.0
FP32_EXACT = float(1 << 24)  # float32 sums of integers are exact below this


def rstz(x: torch.Tensor, keep: int) -> torch.Tensor:
    """``x * keep / 4096`` rounded toward zero (forward) with the unrounded gradient (backward)."""
    exact = x * (keep / loihi.DECAY_UNIT)
    return exact + (torch.trunc(exact) - exact).detach()


def wrap_current(u: torch.Tensor) -> torch.Tensor:
    """Lava's 24-bit current wrap (``nmprivacy.network.loihi.wrap_current``), gradient passed through."""
    m = float(loihi.STATE_MAX)
    wrapped = torch.where(u > m, u - 2 * m, u)
    wrapped = torch.where(wrapped <= -m, u + 2 * m, wrapped)
    return u + (wrapped - u).detach()


def clip_voltage(v: torch.Tensor) -> torch.Tensor:
    """Lava's 24-bit voltage saturation, gradient passed through."""
    m = float(loihi.STATE_MAX)
    return v + (v.clamp(-m + 1, m - 1) - v).detach()


def wrap_conv(a: torch.Tensor) -> torch.Tensor:
    """Lava's 24-bit signed wrap of a convolution's output, gradient passed through."""
    base = float(1 << loihi.STATE_BITS)
    wrapped = torch.remainder(a + base / 2, base) - base / 2
    return a + (wrapped - a).detach()


def cuba_dynamics(
    a_in: torch.Tensor,
    i_decay: int,
    v_decay: int,
    vth_mant: int,
    bias: torch.Tensor | None = None,
    surrogate_slope: float = SURROGATE_SLOPE,
    surrogate_unit: float = float(loihi.VOLTAGE_UNIT),
    recurrent: Callable[[torch.Tensor], torch.Tensor] | None = None,
    start: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer of Loihi CUBA neurons over time: spikes and pre-reset voltage, both ``[T, B, N]``.

    ``a_in`` float64 ``[T, B, N]``: integer synaptic input per step (before the 6-bit shift);
    ``bias`` ``[N]`` mantissa or None; ``recurrent(z_prev)`` adds the recurrent synapse's input
    from the previous step's spikes; steps before ``start`` stay at zero state and silent."""
    threshold = float(vth_mant << loihi.ACT_SHIFT_BITS)
    keep_u, keep_v = loihi.DECAY_UNIT - i_decay, loihi.DECAY_UNIT - v_decay
    zero = torch.zeros_like(a_in[0])
    u, v, z = zero, zero, zero
    bias_v = None if bias is None else bias.to(a_in.dtype) * loihi.ACT_SHIFT
    spikes, volts = [zero] * min(start, a_in.shape[0]), [zero] * min(start, a_in.shape[0])
    for t in range(start, a_in.shape[0]):
        drive = a_in[t] if recurrent is None else a_in[t] + recurrent(z)
        u = wrap_current(rstz(u, keep_u) + drive * loihi.ACT_SHIFT)
        v = rstz(v, keep_v) + u
        if bias_v is not None:
            v = v + bias_v
        v = clip_voltage(v)
        z = spike((v - threshold) / surrogate_unit, "fast-sigmoid", surrogate_slope)
        spikes.append(z)
        volts.append(v)
        v = v - (v * z).detach()  # hard reset to 0, no gradient through the reset (as slayer's backward)
    return torch.stack(spikes), torch.stack(volts)


def float_dynamics(
    a_in: torch.Tensor,
    alpha: float,
    beta: float,
    threshold: float,
    reset: str,
    bias: torch.Tensor | None = None,
    surrogate_slope: float = SURROGATE_SLOPE,
    recurrent: Callable[[torch.Tensor], torch.Tensor] | None = None,
    start: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer of float CUBA LIF neurons (``FloatNeuron``): spikes and pre-reset voltage ``[T, B, N]``."""
    zero = torch.zeros_like(a_in[0])
    i, v, z = zero, zero, zero
    spikes, volts = [zero] * min(start, a_in.shape[0]), [zero] * min(start, a_in.shape[0])
    fires = math.isfinite(threshold)
    for t in range(start, a_in.shape[0]):
        drive = a_in[t] if recurrent is None else a_in[t] + recurrent(z)
        i = alpha * i + drive if alpha else drive
        v = beta * v + i
        if bias is not None:
            v = v + bias
        z = spike(v - threshold, "fast-sigmoid", surrogate_slope) if fires else zero
        spikes.append(z)
        volts.append(v)
        if fires:
            v = v - z.detach() * threshold if reset == "subtract" else v * (1.0 - z.detach())
    return torch.stack(spikes), torch.stack(volts)


def _shift(x: torch.Tensor, steps: int) -> torch.Tensor:
    """``x`` ``[T, ...]`` delayed by ``steps`` (zeros enter at the start)."""
    if steps <= 0:
        return x
    if steps >= x.shape[0]:
        return torch.zeros_like(x)
    return torch.cat([x.new_zeros((steps, *x.shape[1:])), x[:-steps]])


class NetworkModel(TargetModel):
    """A ``Network`` run in torch: bit-exact Loihi arithmetic or its float model, differentiable."""

    def __init__(self, network: Network, kind: str = "netx", surrogate_slope: float = SURROGATE_SLOPE, input_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.description = network
        self.surrogate_slope = float(surrogate_slope)
        self.loihi = network.arithmetic == "loihi"
        shape = tuple(input_shape) if input_shape is not None else tuple(network.input_shape)
        if math.prod(shape) != network.input_size or (len(network.input_shape) == 3 and shape != tuple(network.input_shape)):
            raise NmprivacyError(
                f"{network.name} takes inputs of shape {tuple(network.input_shape)}, which cannot be read as {shape}"
            )
        self.info = ModelInfo(kind=kind, domain="spikes", input_shape=shape, num_classes=network.num_outputs, reset="hard")
        self.steps: int | None = network.meta.get("steps") if isinstance(network.meta.get("steps"), int) else None
        dtype = torch.float64
        for i, layer in enumerate(network.layers):
            weight = getattr(layer, "weight", None)
            if not isinstance(layer, InputLayer):
                self.register_buffer(f"weight{i}", torch.as_tensor(weight, dtype=dtype))
            rec = getattr(layer, "weight_rec", None)
            self.register_buffer(f"rec{i}", None if rec is None else torch.as_tensor(rec, dtype=dtype))
            bias = layer.bias_per_neuron(layer.out_shape)
            self.register_buffer(f"bias{i}", None if bias is None else torch.as_tensor(bias.reshape(-1), dtype=dtype))

    def weight(self, i: int) -> torch.Tensor:
        """Synaptic weights of layer ``i`` (float32 copy; Loihi: integers with the exponent applied)."""
        return getattr(self, f"weight{i}").to(torch.float32)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise NmprivacyError(f"expected input [T, B, *input_shape], got shape {tuple(x.shape)}")
        n = x[0, 0].numel()
        if n != self.description.input_size:
            raise NmprivacyError(f"input has {n} values per step but {self.description.name} expects {self.description.input_size}")
        return x.reshape(x.shape[0], x.shape[1], -1).to(torch.float64)

    def _synapse(self, i: int, layer, s: torch.Tensor) -> torch.Tensor:
        """Synaptic input ``[T, B, N_i]`` of layer ``i`` from its source ``s`` ``[T, B, N_in]``."""
        t, b = s.shape[:2]
        if isinstance(layer, InputLayer):
            return layer.weight * s + layer.bias_in
        w = getattr(self, f"weight{i}")
        if isinstance(layer, ConvLayer):
            grid = s.reshape(t * b, *layer.in_shape)
            exact = not self.loihi or float(w.abs().sum(dim=(1, 2, 3)).max()) * float(s.abs().max()) < FP32_EXACT
            dt = torch.float32 if exact else torch.float64
            out = F.conv2d(grid.to(dt), w.to(dt), stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
            out = out.to(torch.float64).reshape(t, b, -1)
            return wrap_conv(out) if self.loihi else out
        exact = not self.loihi or float(w.abs().sum(dim=1).max()) * float(s.abs().max()) < FP32_EXACT
        dt = torch.float32 if exact else torch.float64
        if layer.delay is None:
            return (s.to(dt) @ w.to(dt).T).to(torch.float64)
        delay = torch.as_tensor(layer.delay)
        total = torch.zeros(t, b, w.shape[0], dtype=torch.float64)
        for d in torch.unique(delay).tolist():
            part = (s.to(dt) @ torch.where(delay == d, w, torch.zeros_like(w)).to(dt).T).to(torch.float64)
            total = total + _shift(part, int(d))
        return total

    def run(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every layer's spikes ``[T, B, N_l]`` (float64 0/1) and the last layer's pre-reset voltage
        ``[T, B, N_out]`` (Loihi units for a Loihi network) for input ``x`` ``[T, B, ...]``."""
        source = self._input(x)
        spikes: list[torch.Tensor] = []
        volt = source.new_zeros(0)
        for i, layer in enumerate(self.description.layers):
            if i > 0:
                source = _shift(spikes[-1], 1)
            a_in = self._synapse(i, layer, source)
            rec_w = getattr(self, f"rec{i}")
            recurrent = None if rec_w is None else (lambda z, w=rec_w: z @ w.T)
            bias = getattr(self, f"bias{i}")
            n = layer.neuron
            if isinstance(n, LoihiNeuron):
                z, volt = cuba_dynamics(
                    a_in, n.i_decay, n.v_decay, n.vth_mant, bias, self.surrogate_slope,
                    loihi.VOLTAGE_UNIT * layer.scale, recurrent, start=i,
                )
            else:
                z, volt = float_dynamics(a_in, n.alpha, n.beta, n.threshold, n.reset, bias, self.surrogate_slope, recurrent, start=i)
            spikes.append(z)
        return spikes, volt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Last layer's pre-reset membrane ``[T, B, N_out]`` (float32, the source model's units)."""
        _, volt = self.run(x)
        unit = loihi.VOLTAGE_UNIT * self.description.layers[-1].scale if self.loihi else 1.0
        return (volt / unit).to(torch.float32)

    def layer_spikes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's spikes ``[T, B, N_l]`` (float32 0/1) at the step each neuron fired."""
        spikes, _ = self.run(x)
        return [s.to(torch.float32) for s in spikes]

    def network(self) -> Network:
        """The description this model runs (a NetX file's, a NIR graph's, ...)."""
        return self.description


def load_network(network: Network, kind: str = "netx", input_shape: tuple[int, ...] | None = None) -> NetworkModel:
    """``network`` as a frozen ``NetworkModel`` (optionally reading inputs of ``input_shape``)."""
    return NetworkModel(network, kind=kind, input_shape=input_shape).freeze()
