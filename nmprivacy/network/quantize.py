"""Mapping a float LIF network onto Loihi's CUBA fixed point, with the error of every layer.

Per layer (docs/method.md §2): the float neuron ``i <- alpha i + W s``, ``v <- beta v + i + b``,
spike when ``v > theta`` becomes CUBA with ``iDecay = round((1 - alpha) 4096)``,
``vDecay = round((1 - beta) 4096)``; weights, threshold and bias are multiplied by the layer's
scale ``k = 3.97 / max|W|`` so the weights use the 8-bit range (even integers in [-256, 254],
like slayer's), then ``W_int = round(k W 64)``, ``vThMant = round(k theta 64)``,
``bias = round(k b 64)``; an input layer's transform ``w x + b`` likewise. The Loihi voltage of
1.0 in the float model's units is then ``4096 k`` (the layer's ``scale``). Loihi always resets
to 0: a float layer that subtracts its threshold is mapped anyway and the difference recorded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nmprivacy.errors import NetworkError
from nmprivacy.network import loihi
from nmprivacy.network.description import ConvLayer, DenseLayer, FloatNeuron, InputLayer, Layer, LoihiNeuron, Network

WEIGHT_RANGE = 3.97  # largest |weight| after scaling (x 64 -> 254, the largest even 8-bit value)


@dataclass(frozen=True)
class LayerQuantization:
    """One layer as written for Loihi and how far it is from its source.

    Errors compare the Loihi layer converted back to the source's units with the source's
    weights, threshold, decays and bias (all 0 for a lossless export)."""

    index: int
    kind: str
    in_features: int
    out_features: int
    i_decay: int
    v_decay: int
    vth_mant: int
    scale: float
    weight_max_abs_error: float
    weight_rel_rms_error: float
    threshold_rel_error: float
    leak_abs_error: float
    current_decay_abs_error: float = 0.0
    bias_max_abs_error: float = 0.0
    reset: str = "zero"  # "zero", or "subtract -> zero" when the source subtracts its threshold
    # a dense layer's synapse precision as NetX builds it (lava-dl's optimize_weight_bits on the
    # written integers; slayer exports only): signed mantissa bits and power-of-two exponent
    OMITTED_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("weight_bits", "weight_exponent")  # absent from older records
    weight_bits: int | None = None
    weight_exponent: int | None = None


def _even_int(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x / 2) * 2, loihi.WEIGHT_MIN, loihi.WEIGHT_MAX).astype(np.int64)


def _errors(source: np.ndarray, back: np.ndarray) -> tuple[float, float]:
    err = np.abs(back - source)
    norm = float(np.sqrt((source**2).sum()))
    return float(err.max(initial=0.0)), float(np.sqrt((err**2).sum()) / max(norm, 1e-30))


def quantize_layer(layer: Layer, index: int) -> tuple[Layer, LayerQuantization]:
    """The Loihi version of one float layer and its quantisation record."""
    n = layer.neuron
    if not isinstance(n, FloatNeuron):
        raise NetworkError(f"{layer.name}: already in Loihi arithmetic")
    weights = [np.asarray(layer.weight, dtype=np.float64)] if not isinstance(layer, InputLayer) else [np.asarray([layer.weight], dtype=np.float64)]
    if isinstance(layer, DenseLayer) and layer.weight_rec is not None:
        weights.append(np.asarray(layer.weight_rec, dtype=np.float64))
    wmax = max(float(np.abs(w).max(initial=0.0)) for w in weights)
    k = WEIGHT_RANGE / wmax if wmax > 0 else 1.0
    if math.isfinite(n.threshold):
        vth = int(round(n.threshold * k * loihi.ACT_SHIFT))
        if not 0 < vth < loihi.VTH_LIMIT:
            raise NetworkError(f"{layer.name}: threshold {n.threshold:g} x scale {k:.3g} does not fit Loihi's 17-bit threshold")
        th_err = abs(vth / (loihi.ACT_SHIFT * k) - n.threshold) / n.threshold
    else:
        vth, th_err = loihi.VTH_LIMIT, 0.0  # a read-out: never spikes
    neuron = LoihiNeuron(i_decay=loihi.decay_of(n.alpha), v_decay=loihi.decay_of(n.beta), vth_mant=vth)
    bias, bias_err = None, 0.0
    if layer.bias is not None:
        b = np.asarray(layer.bias, dtype=np.float64)
        bias = np.round(b * k * loihi.ACT_SHIFT).astype(np.int64)
        bias_err = float(np.abs(bias / (k * loihi.ACT_SHIFT) - b).max(initial=0.0))
    common = {"neuron": neuron, "bias": bias, "scale": k, "name": layer.name}
    if isinstance(layer, InputLayer):
        w_int = int(round(layer.weight * k * loihi.ACT_SHIFT))
        b_in = int(round(layer.bias_in * k * loihi.ACT_SHIFT))
        out: Layer = InputLayer(shape=layer.shape, weight=w_int, bias_in=b_in, **common)
        w_err = _errors(np.asarray([layer.weight]), np.asarray([w_int / (k * loihi.ACT_SHIFT)]))
    else:
        w_int = _even_int(weights[0] * k * loihi.ACT_SHIFT)
        w_err = _errors(weights[0], w_int / (k * loihi.ACT_SHIFT))
        if isinstance(layer, DenseLayer):
            rec = None if layer.weight_rec is None else _even_int(weights[1] * k * loihi.ACT_SHIFT)
            out = dataclasses.replace(layer, weight=w_int, weight_rec=rec, **common)
        else:
            out = dataclasses.replace(layer, weight=w_int, **common)
    record = LayerQuantization(
        index=index,
        kind=type(layer).__name__.replace("Layer", "").lower(),
        in_features=math.prod(layer.in_shape),
        out_features=math.prod(layer.out_shape),
        i_decay=neuron.i_decay,
        v_decay=neuron.v_decay,
        vth_mant=neuron.vth_mant,
        scale=k,
        weight_max_abs_error=w_err[0],
        weight_rel_rms_error=w_err[1],
        threshold_rel_error=th_err,
        leak_abs_error=abs(loihi.keep_of(neuron.v_decay) - n.beta),
        current_decay_abs_error=abs(loihi.keep_of(neuron.i_decay) - n.alpha),
        bias_max_abs_error=bias_err,
        reset="subtract -> zero" if n.reset == "subtract" and n.spikes else "zero",
    )
    return out, record


def quantize(network: Network) -> tuple[Network, tuple[LayerQuantization, ...]]:
    """The Loihi version of a float ``network`` and the per-layer quantisation records."""
    if network.arithmetic != "float":
        raise NetworkError(f"{network.name} is already in Loihi arithmetic: nothing to quantise")
    layers, records, notes = [], [], list(network.notes)
    for i, layer in enumerate(network.layers):
        q, record = quantize_layer(layer, i)
        layers.append(q)
        records.append(record)
        if record.reset != "zero":
            notes.append(f"{layer.name}: subtracts its threshold on a spike, but Loihi resets the voltage to 0")
    return Network(input_shape=network.input_shape, layers=tuple(layers), meta=dict(network.meta), notes=tuple(notes), name=network.name), tuple(records)
