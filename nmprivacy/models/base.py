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
    from nmprivacy.network.lif import LIFLayer

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
