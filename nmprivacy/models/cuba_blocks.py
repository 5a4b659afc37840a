"""Lava-DL slayer CUBA blocks as ``snn-lava`` and ``snn-lava-conv`` build them (Loihi fixed point).

One slayer ``block.cuba`` block per layer (``cuba_block``, ``cuba_dense``): slayer's weight
quantisation (``quantize_8bit``, or ``LoihiWeights`` for fewer weight bits), ``delay_shift``, and
a ``SurrogateCubaNeuron`` whose spike backward is the configured surrogate (the forward is
slayer's). ``block_delays`` reads a block's learned axonal delays in whole steps. The models
(``nmprivacy.models.snn_lava``) and the sparse training engine (``nmprivacy.models.sparse_cuba``)
both read blocks through this module.

A block's ``config`` is any object with the fields ``threshold``, ``current_decay``,
``voltage_decay``, ``weight_scale``, ``surrogate``, ``surrogate_slope`` and optionally
``surrogate_params`` and ``weight_bits`` (``SNNLavaConfig``, ``SNNLavaConvConfig``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nmprivacy.errors import NmprivacyError
from nmprivacy.lava_import import import_slayer
from nmprivacy.models.surrogates import canonical, model_params, spike
from nmprivacy.network.loihi import WEIGHT_BITS, mantissa_high

import_slayer()
from lava.lib.dl import slayer  # noqa: E402
from lava.lib.dl.slayer.neuron import cuba  # noqa: E402
from lava.lib.dl.slayer.utils import quantize as slayer_quantize  # noqa: E402


class SurrogateCubaNeuron(cuba.Neuron):
    """slayer CUBA neuron whose spike backward is one of ``nmprivacy.models.surrogates`` (forward unchanged)."""

    def __init__(self, *args, surrogate: str = "fast-sigmoid", surrogate_params: tuple[float, ...] = (40.0,), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.surrogate = canonical(surrogate)
        self.surrogate_params = tuple(float(p) for p in surrogate_params)

    @property
    def surrogate_slope(self) -> float:
        """The surrogate's first parameter (the fast sigmoid's k)."""
        return self.surrogate_params[0] if self.surrogate_params else 0.0

    def spike(self, voltage: torch.Tensor) -> torch.Tensor:
        """Spikes ``1[v > th]`` with the surrogate centred on ``th`` (= vThMant / 64).

        For Loihi's integer voltages (``v * 4096`` integral) ``v > th`` is exactly slayer's test
        ``v >= th + threshold_eps`` and the leaky integrator's internal reset test.
        """
        if self.persistent_state or self.graded_spike or self.drop is not None:
            raise NotImplementedError("SurrogateCubaNeuron supports only stateless binary spikes")
        return spike(voltage - self.threshold, self.surrogate, self.surrogate_params)


FastSigmoidCubaNeuron = SurrogateCubaNeuron  # its name before the other surrogates


class LoihiWeights:
    """A slayer synapse ``pre_hook_fx`` quantising weights to a ``bits``-bit signed mantissa with one
    power-of-two exponent per layer, as Loihi's synapse stores them (used for ``bits`` < 8).

    Float weight ``= m * 2^e / 64`` with ``m`` in ``[-2^(bits-1), 2^(bits-1) - 1]`` and ``e`` the
    smallest integer in ``[1, 9 - bits]`` whose largest mantissa ``round(max|W| * 64 / 2^e)`` fits.
    ``e >= 1`` keeps slayer's finest step 2/64, so every ``bits``-bit grid is a subset of slayer's
    8-bit one (``LoihiWeights(8)`` is exactly ``quantize_8bit``: e = 1, m in [-128, 127]) and a
    layer whose 8-bit weights already need no more than ``bits`` bits is unchanged. NetX writes
    ``m * 2^e`` (an even integer in Lava's 8-bit range [-256, 254]) and lava-dl's
    ``optimize_weight_bits`` re-derives at most ``bits`` weight bits and the exponent from it.
    Forward ``round(W / step) * step`` clamped to the mantissa range (slayer's ``quantize``: round
    half to even), backward straight through inside the range and 0 outside, as slayer's
    ``quantize_8bit``; the exponent is a function of the current weights (no gradient)."""

    def __init__(self, bits: int, w_scale: int = 64) -> None:
        if bits not in WEIGHT_BITS:
            raise NmprivacyError(f"weight bits {bits!r}: Loihi's synapse holds a signed mantissa of 2 to 8 bits")
        self.bits = int(bits)
        self.w_scale = int(w_scale)
        self.high = mantissa_high(self.bits)
        self.low = -self.high - 1
        self.max_exponent = 9 - self.bits  # the mantissa range times 2^e stays within [-256, 254]

    def exponent(self, weight: torch.Tensor) -> int:
        """The layer's exponent ``e`` for ``weight`` (class docstring)."""
        if self.max_exponent == 1:  # 8 bits: always slayer's step, without reading the weights
            return 1
        if weight.numel() == 0:
            largest = 0.0
        else:  # max|W| without an |W| copy (a NaN makes both ends NaN, an inf one of them)
            low, high = torch.aminmax(weight.detach())
            largest = max(-float(low), float(high))
        if not math.isfinite(largest):
            return self.max_exponent
        for e in range(1, self.max_exponent + 1):
            if round(largest * self.w_scale / (1 << e)) <= self.high:  # round half to even, as torch.round
                return e
        return self.max_exponent

    def step(self, weight: torch.Tensor) -> float:
        """The float weight of one mantissa unit, ``2^e / 64`` (at least slayer's 2/64)."""
        return (1 << self.exponent(weight)) / self.w_scale

    def __call__(self, weight: torch.Tensor, descale: bool = False) -> torch.Tensor:
        step = self.step(weight)
        q = slayer_quantize(weight, step=step).clamp(self.low * step, self.high * step)
        return q * self.w_scale if descale else q

    def __repr__(self) -> str:
        return f"LoihiWeights(bits={self.bits})"


def weight_quantiser(synapse: nn.Module, neuron: nn.Module) -> LoihiWeights | None:
    """The quantiser of a slayer ``synapse``'s weights on Loihi's grid, as a ``LoihiWeights``: its
    ``pre_hook_fx`` itself, or ``LoihiWeights(8)`` for slayer's ``quantize_8bit`` (the same map);
    None for any other hook or one whose weight scale is not ``neuron``'s."""
    hook = getattr(synapse, "_pre_hook_fx", None)
    if getattr(hook, "__func__", None) is cuba.Neuron.quantize_8bit and getattr(hook, "__self__", None) is neuron:
        return LoihiWeights(8, int(neuron.w_scale))
    if type(hook) is LoihiWeights and hook.w_scale == getattr(neuron, "w_scale", None):
        return hook
    return None


def cuba_block(kind: str, *args: object, config: Any, **kwargs: object) -> torch.nn.Module:
    """One slayer CUBA block (``kind``: ``"Dense"`` or ``"Conv"``; quantised weights, delay_shift)
    with the configured surrogate and weight precision; ``args``/``kwargs`` are the block's own
    (sizes, kernel, ...)."""
    params = {"threshold": config.threshold, "current_decay": config.current_decay, "voltage_decay": config.voltage_decay}
    block = getattr(slayer.block.cuba, kind)(params, *args, weight_scale=config.weight_scale, delay_shift=True, **kwargs)
    surrogate = config.surrogate
    if surrogate != "slayer":  # (model_params raises ValueError for an unknown name)
        block.neuron = SurrogateCubaNeuron(**params, surrogate=surrogate,
                                           surrogate_params=model_params(surrogate, config.surrogate_slope, getattr(config, "surrogate_params", ())))
    bits = getattr(config, "weight_bits", 8)
    block.synapse.pre_hook_fx = block.neuron.quantize_8bit if bits == 8 else LoihiWeights(bits, block.neuron.w_scale)
    return block


def cuba_dense(in_neurons: int, out_neurons: int, config: Any, delay: bool = False) -> torch.nn.Module:
    """One slayer CUBA Dense block with the configured surrogate; ``delay``: each output neuron
    learns an axonal delay (slayer's ``axon.Delay``, at most Loihi's 62 steps), initialised as
    slayer does on its first forward (uniform in [0, 1): 0 steps) but at once, so that a saved
    model loads into a fresh one."""
    block = cuba_block("Dense", in_neurons, out_neurons, config=config, delay=delay)
    if delay:
        block.delay.delay = nn.Parameter(torch.rand(out_neurons, dtype=torch.float))  # (on the device in effect, e.g. meta)
        block.delay.init = True
    return block


def block_delays(block: torch.nn.Module) -> torch.Tensor | None:
    """The whole steps ``[out]`` (int64) by which a slayer block's axonal delay shifts each output
    neuron's spikes (its forward truncates, NetX's export floors: the same for delays >= 0),
    after clamping them in place as slayer's forward does; None for a block without delays."""
    delay = getattr(block, "delay", None)
    if delay is None:
        return None
    delay.clamp()
    return torch.floor(delay.delay.detach()).to(torch.int64).flatten()
