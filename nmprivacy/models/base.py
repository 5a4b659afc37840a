"""The one model protocol every target and evaluator honours.

Input layouts (the same for every framework):
- spiking models (``domain == "spikes"``): ``x`` float ``[T, B, *input_shape]`` with values in
  {0, 1} (Bernoulli samples; attacks may pass relaxed values in [0, 1]);
- image models (``domain == "image"``): ``x`` float ``[B, *input_shape]`` in [0, 1].
``input_shape`` is ``(C, H, W)`` of one sample.

Outputs: ``forward(x)`` returns the raw read-out, ``[T, B, classes]`` output membrane for
spiking models and ``[B, classes]`` logits for image models; ``probabilities(x)`` returns
``[B, classes]`` class probabilities, for spiking models through ``spike_readout`` (the one
read-out used for training, attacks and evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

if TYPE_CHECKING:
    from nmprivacy.network.description import Network

ModelDomain = Literal["spikes", "image"]


def spike_readout(membrane: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``[B, C]`` of a spiking model: per-step softmax of the output
    membrane ``[T, B, C]``, averaged over the T steps (docs/method.md §1)."""
    return torch.softmax(membrane, dim=-1).mean(dim=0)


def membrane_cross_entropy(membrane: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Training loss of a spiking model: cross-entropy of the output membrane ``[T, B, C]``
    against ``labels`` ``[B]``, summed over time steps and averaged over the batch."""
    t, b, c = membrane.shape
    return nn.functional.cross_entropy(membrane.reshape(t * b, c), labels.repeat(t), reduction="sum") / b


@dataclass(frozen=True)
class ModelInfo:
    """What attacks and metrics need to know of a model, whatever framework built it."""

    kind: str  # registry name: "snn-norse", "snn-lava", "ann", "evaluator", "netx", ...
    domain: ModelDomain
    input_shape: tuple[int, ...]
    num_classes: int
    reset: str = "none"  # "hard" (to 0), "subtract", or "none" for non-spiking models


class TargetModel(nn.Module):
    """Base class of every model: subclasses set ``self.info`` and implement ``forward``.

    Optional capabilities are declared here, with the answer "not available" by default, and
    overridden by the models that have them: ``steps`` (the T the model was trained or recorded
    with, or None), ``network()`` (the model as the one network description,
    ``nmprivacy.network.Network``, or None), ``surrogate_slope`` (the fast sigmoid's k when the
    model trains with it, the attack engine's surrogate; None otherwise), ``layer_delay`` (steps a
    layer's spikes take to reach the next: 1 as Loihi, Lava and the description; 0 for Norse),
    ``layer_spikes(x)`` (every layer's spikes, or None). The fast attack engine's view,
    ``lif_layers()``, is derived from these in one place."""

    info: ModelInfo
    steps: int | None = None
    surrogate_slope: float | None = None
    layer_delay: int = 1
    engine_refusal: str | None = None  # why lif_layers() is None for a model with a description

    def network(self) -> "Network | None":
        """The model as a ``nmprivacy.network.Network`` (what export, validation and the engine
        read); None for models that have none (image models, convolutional slayer models, whose
        description is their NetX export: ``hw_export.netx_export.model_network``)."""
        return None

    def lif_layers(self) -> "list[LIFLayer] | None":
        """The model as dense LIF layers for the fast attack engine, from ``network()``
        (``nmprivacy.network.lif.lif_layers``); None when it has no description, trains with
        a surrogate other than the engine's fast sigmoid (attacks then differentiate the model
        itself), or has what the engine cannot run (``engine_refusal`` says what)."""
        network = self.network()
        if network is None or self.surrogate_slope is None:
            return None
        from nmprivacy.errors import NmprivacyError
        from nmprivacy.network.lif import lif_layers

        try:
            return lif_layers(network, self.surrogate_slope, self.layer_delay)
        except NmprivacyError as exc:
            self.engine_refusal = str(exc)
            return None

    def layer_spikes(self, x: torch.Tensor) -> "list[torch.Tensor] | None":
        """Every layer's spikes ``[T, B, N_l]`` for spike input ``x`` ``[T, B, ...]``; None when the
        model does not expose them."""
        return None

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[B, classes]`` for inputs in this model's layout."""
        out = self(x)
        if self.info.domain == "spikes":
            return spike_readout(out)
        return torch.softmax(out, dim=-1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class ``[B]`` (argmax of ``probabilities``)."""
        return self.probabilities(x).argmax(dim=-1)

    def freeze(self) -> "TargetModel":
        """Eval mode and no parameter gradients (attacks only need input gradients)."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


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
