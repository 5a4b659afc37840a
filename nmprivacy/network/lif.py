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
from dataclasses import dataclass
from typing import Literal

import torch

from nmprivacy.errors import NmprivacyError
from nmprivacy.network import loihi
from nmprivacy.network.description import DenseLayer, LoihiNeuron, Network


@dataclass(frozen=True)
class LIFLayer:
    """One dense layer of LIF neurons as the fast attack engine sees it (no parameters to train).

    ``weight`` is ``[out, in]``. Per time step, with input spikes ``s_t`` ``[B, in]``:
    - ``arithmetic == "float"`` (Norse LIFBox, hard reset):
      ``v_t = leak * v_{t-1} + s_t @ weight.T``; spike ``z_t = v_t > threshold``; ``v_t <- 0`` where spiking.
    - ``arithmetic == "loihi"`` (CUBA fixed point as NetX/Lava runs it; ``weight`` holds integers,
      ``threshold = vThMant << 6``): ``u_t = rstz(u_{t-1} * (4096 - i_decay), 12) + (s_t @ weight.T) * 64``;
      ``v_t = rstz(v_{t-1} * (4096 - v_decay), 12) + u_t``; spike ``v_t > threshold``; ``v_t <- 0``.
    ``delay`` steps are added by the layer (1 for slayer's ``delay_shift``/Lava, 0 for Norse).
    The surrogate is the fast sigmoid ``1 / (1 + slope * |v - threshold| / scale)^2`` with
    ``scale`` the threshold's unit (1 for float; 4096 = ``1 << 12`` for loihi, the integer voltage of 1.0, times any per-layer weight scale); ``membrane_scale`` divides the
    voltage before it is used as the output read-out.
    ``reset_grad`` says how the model's own autograd treats the hard reset: ``"detached"``
    (``v <- (1 - z.detach()) v``, d v_after / d v_before = 1 - z; ``nmprivacy.models.lif``),
    ``"none"`` (the reset carries no gradient at all, slayer's leaky-integrator backward);
    None means "detached" for float and "none" for loihi arithmetic.
    """

    weight: torch.Tensor
    arithmetic: Literal["float", "loihi"]
    threshold: float
    leak: float = 1.0
    i_decay: int = 4096
    v_decay: int = 0
    delay: int = 0
    surrogate_slope: float = 40.0
    surrogate_scale: float = 1.0
    membrane_scale: float = 1.0
    reset_grad: Literal["detached", "none"] | None = None
    neuron_delays: torch.Tensor | None = None  # [out] int: extra steps by which each neuron's input current arrives (row-constant synaptic delays)


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
