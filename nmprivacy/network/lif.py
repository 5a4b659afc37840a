"""The fast attack engine's view of a network: ``LIFLayer`` records, to and from ``Network``.

The engine (``nmprivacy.attacks.engine``) runs dense feed-forward LIF layers on binary input
spikes without synaptic delays, recurrence or biases; ``lif_layers`` gives that view of a
``Network`` or says, in one line, what the engine cannot express (attacks then use autograd
through ``nmprivacy.models.network_model``). ``network_from_lif_layers`` builds the float
description of a model that describes itself as ``LIFLayer`` records (e.g. ``snn-norse``).
"""

from __future__ import annotations

import math

import torch

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import LIFLayer
from nmprivacy.network import loihi
from nmprivacy.network.description import DenseLayer, FloatNeuron, LoihiNeuron, Network


def lif_layers(network: Network, surrogate_slope: float = 40.0) -> list[LIFLayer]:
    """``network`` as ``LIFLayer`` records (one per dense layer; each but the last emits its
    spikes one step later, as the description's time convention says)."""
    out = []
    for layer in network.layers:
        if not isinstance(layer, DenseLayer):
            raise NmprivacyError(f"{layer.name}: the fast engine runs dense layers only ({type(layer).__name__} needs autograd)")
        if layer.delay is not None or layer.weight_rec is not None or layer.bias is not None:
            raise NmprivacyError(f"{layer.name}: the fast engine has no synaptic delays, recurrence or biases")
        n = layer.neuron
        weight = torch.as_tensor(layer.weight, dtype=torch.float32)
        if isinstance(n, LoihiNeuron):
            unit = loihi.VOLTAGE_UNIT * layer.scale
            out.append(
                LIFLayer(
                    weight=weight, arithmetic="loihi", threshold=float(n.threshold), leak=loihi.keep_of(n.v_decay),
                    i_decay=n.i_decay, v_decay=n.v_decay, delay=1, surrogate_slope=surrogate_slope,
                    surrogate_scale=unit, membrane_scale=unit, reset_grad="none",
                )
            )
        else:
            if n.alpha != 0.0 or n.reset != "zero" or not math.isfinite(n.threshold):
                raise NmprivacyError(f"{layer.name}: the fast engine's float LIF has no synaptic current, subtractive reset or read-out integrator")
            out.append(
                LIFLayer(
                    weight=weight, arithmetic="float", threshold=float(n.threshold), leak=float(n.beta), delay=1,
                    surrogate_slope=surrogate_slope, surrogate_scale=1.0, membrane_scale=1.0, reset_grad="detached",
                )
            )
    return out


def network_from_lif_layers(layers: list[LIFLayer], input_shape: tuple[int, ...], name: str = "model", meta: dict | None = None) -> Network:
    """The float ``Network`` of float ``LIFLayer`` records (``v <- leak v + W s``, hard reset).
    Records without a per-layer delay get the description's one step per layer (noted)."""
    built, notes = [], []
    for i, layer in enumerate(layers):
        if layer.arithmetic != "float":
            raise NmprivacyError(f"layer {i} has arithmetic '{layer.arithmetic}'; only float LIF layers describe a float network")
        in_shape = tuple(input_shape) if i == 0 else (int(layers[i - 1].weight.shape[0]),)
        built.append(
            DenseLayer(
                neuron=FloatNeuron(beta=float(layer.leak), threshold=float(layer.threshold)),
                weight=layer.weight.detach().double().cpu().numpy(), in_shape=in_shape, name=f"{name} layer {i}",
            )
        )
    if any(layer.delay == 0 for layer in layers[:-1]):
        notes.append("the source has no per-layer delay; Lava adds one step per layer (output lags by layers-1 steps)")
    return Network(input_shape=tuple(input_shape), layers=tuple(built), meta=dict(meta or {}), notes=tuple(notes), name=name)
