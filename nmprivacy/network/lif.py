"""The fast attack engine's view of a network: ``LIFLayer`` records from a ``Network``.

The engine (``nmprivacy.attacks.engine``) runs dense feed-forward LIF layers on binary input
spikes without recurrence or biases, with synaptic delays only where each neuron's synapses share one
(``LIFLayer.neuron_delays``: Lava-DL's and ``snn-lava``'s learned delays); ``lif_layers`` gives that view of a
``Network`` or says, in one line, what the engine cannot express (attacks then use autograd
through ``nmprivacy.models.network_model``). Every model's view for the engine is built here from
its ``network()`` (``TargetModel.lif_layers``).
"""

from __future__ import annotations

import math

import torch

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import LIFLayer
from nmprivacy.network import loihi
from nmprivacy.network.description import DenseLayer, LoihiNeuron, Network


def lif_layers(network: Network, surrogate_slope: float = 40.0, layer_delay: int = 1) -> list[LIFLayer]:
    """``network`` as ``LIFLayer`` records (one per dense layer). Loihi layers emit their spikes one
    step later, as the description's time convention and Lava say; float layers ``layer_delay``
    steps later (1, the description's convention; 0 for a model that passes spikes on within the
    step, as Norse does)."""
    out = []
    for layer in network.layers:
        if not isinstance(layer, DenseLayer):
            raise NmprivacyError(f"{layer.name}: the fast engine runs dense layers only ({type(layer).__name__} needs autograd)")
        if layer.weight_rec is not None or layer.bias is not None:
            raise NmprivacyError(f"{layer.name}: the fast engine has no recurrence or biases")
        neuron_delays = None
        if layer.delay is not None:
            if layer.neuron_delays is None:
                raise NmprivacyError(f"{layer.name}: the fast engine has no synaptic delays that differ within a neuron's synapses")
            neuron_delays = torch.as_tensor(layer.neuron_delays, dtype=torch.int64)
        n = layer.neuron
        weight = torch.as_tensor(layer.weight, dtype=torch.float32)
        if isinstance(n, LoihiNeuron):
            unit = loihi.VOLTAGE_UNIT * layer.scale
            out.append(
                LIFLayer(
                    weight=weight, arithmetic="loihi", threshold=float(n.threshold), leak=loihi.keep_of(n.v_decay),
                    i_decay=n.i_decay, v_decay=n.v_decay, delay=1, surrogate_slope=surrogate_slope,
                    surrogate_scale=unit, membrane_scale=unit, reset_grad="none", neuron_delays=neuron_delays,
                )
            )
        else:
            if n.alpha != 0.0 or n.reset != "zero" or not math.isfinite(n.threshold):
                raise NmprivacyError(f"{layer.name}: the fast engine's float LIF has no synaptic current, subtractive reset or read-out integrator")
            out.append(
                LIFLayer(
                    weight=weight, arithmetic="float", threshold=float(n.threshold), leak=float(n.beta), delay=int(layer_delay),
                    surrogate_slope=surrogate_slope, surrogate_scale=1.0, membrane_scale=1.0, reset_grad="detached",
                    neuron_delays=neuron_delays,
                )
            )
    return out
