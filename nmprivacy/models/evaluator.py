"""Evaluation classifiers: the paper's CNN, with ReLU for images and Norse LIF for spikes.

Topology (docs/method.md §4): conv 12@5x5 -> maxpool 2 -> conv 24@5x5 -> maxpool 2 -> linear,
stride 1, no padding, in the order conv -> pool -> nonlinearity (snnTorch tutorial order; for
ReLU the order does not matter). Inputs smaller than 16x16 cannot take two unpadded 5x5 convs:
``evaluator_padding`` then gives padding 2 ("same"), a deviation recorded in the config.

- ``evaluator`` (image): ``x`` ``[B, C, H, W]`` -> logits ``[B, classes]``.
- ``evaluator-snn`` (spikes): ``x`` ``[T, B, C, H, W]`` -> output membrane ``[T, B, classes]``
  (pre-reset, output layer of LIF neurons); convolutions run once over all ``T * B`` frames.
  Prediction = argmax of the membrane summed over time; probabilities via ``spike_readout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from nmprivacy.models.base import ModelInfo, TargetModel
from nmprivacy.models.lif import LIFBox
from nmprivacy.models.surrogates import SurrogateName


def evaluator_padding(input_shape: tuple[int, ...], kernel: int = 5) -> int:
    """Convolution padding for ``input_shape`` ``(C, H, W)``: 0 (the paper's) unless the input is too small, then ``kernel // 2``."""
    side = min(input_shape[-2:])
    after = ((side - kernel + 1) // 2 - kernel + 1) // 2
    return 0 if after >= 1 else kernel // 2


@dataclass(frozen=True)
class EvaluatorConfig:
    """Everything that rebuilds an ``evaluator`` / ``evaluator-snn`` CNN.

    ``padding`` 0 is the paper's; any other value is a recorded deviation (inputs < 16x16).
    The neuron fields are used by ``evaluator-snn`` only.
    """

    input_shape: tuple[int, ...]
    num_classes: int
    channels: tuple[int, int] = (12, 24)
    kernel: int = 5
    padding: int = 0
    leak: float = 0.7
    threshold: float = 1.0
    surrogate: SurrogateName = "fast-sigmoid"
    surrogate_slope: float = 40.0  # fast-sigmoid k (40) or atan a (1.5)


class _ConvStack(nn.Module):
    """The shared convolution weights: conv1, conv2 and the linear read-out layer."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        c, h, w = config.input_shape
        c1, c2 = config.channels
        k, p = config.kernel, config.padding
        self.conv1 = nn.Conv2d(c, c1, k, padding=p)
        self.conv2 = nn.Conv2d(c1, c2, k, padding=p)
        for _ in range(2):
            h, w = (h + 2 * p - k + 1) // 2, (w + 2 * p - k + 1) // 2
        if h < 1 or w < 1:
            raise ValueError(f"input {config.input_shape} too small for the evaluator CNN with padding {p}")
        self.fc = nn.Linear(c2 * h * w, config.num_classes)


class Evaluator(TargetModel):
    """The image evaluation CNN with ReLU (``evaluator``)."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        self.info = ModelInfo("evaluator", "image", tuple(config.input_shape), config.num_classes, reset="none")
        self.stack = _ConvStack(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]`` for images ``[B, C, H, W]``."""
        s = self.stack
        h = F.relu(F.max_pool2d(s.conv1(x), 2))
        h = F.relu(F.max_pool2d(s.conv2(h), 2))
        return s.fc(h.flatten(1))


class SpikingEvaluator(TargetModel):
    """The spiking evaluation CNN (``evaluator-snn``): Norse LIF after each pooled conv and at the output."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        self.info = ModelInfo("evaluator-snn", "spikes", tuple(config.input_shape), config.num_classes, reset="hard")
        self.stack = _ConvStack(config)
        self.lifs = nn.ModuleList([LIFBox(config.leak, config.threshold, config.surrogate, config.surrogate_slope) for _ in range(3)])
        with torch.no_grad():  # Norse adds (1 - leak) * I per step: start like snnTorch's U = beta U + I
            for p in self.stack.parameters():
                p.div_(1.0 - config.leak)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output membrane ``[T, B, classes]`` for input spikes ``[T, B, C, H, W]``."""
        t, b = x.shape[:2]
        s = self.stack
        h = F.max_pool2d(s.conv1(x.reshape(t * b, *x.shape[2:])), 2)
        h, _ = self.lifs[0](h.reshape(t, b, *h.shape[1:]))
        h = F.max_pool2d(s.conv2(h.reshape(t * b, *h.shape[2:])), 2)
        h, _ = self.lifs[1](h.reshape(t, b, *h.shape[1:]))
        cur = s.fc(h.reshape(t * b, -1)).reshape(t, b, -1)
        return self.lifs[2](cur)[1]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class ``[B]``: argmax of the output membrane summed over time (docs/method.md §4)."""
        return self(x).sum(dim=0).argmax(dim=-1)


def image_config(input_shape: tuple[int, ...], num_classes: int, preset: object, hidden: int | None = None) -> EvaluatorConfig:
    """The image ``evaluator`` for a data set (padding only where the input is too small)."""
    shape = tuple(int(s) for s in input_shape)
    return EvaluatorConfig(input_shape=shape, num_classes=num_classes, padding=evaluator_padding(shape))


def spiking_config(input_shape: tuple[int, ...], num_classes: int, preset: object, hidden: int | None = None) -> EvaluatorConfig:
    """The spiking ``evaluator-snn`` for a data set: the preset's neuron, leak and surrogate."""
    shape = tuple(int(s) for s in input_shape)
    neuron = preset.evaluator_neuron  # type: ignore[attr-defined]
    return EvaluatorConfig(
        input_shape=shape, num_classes=num_classes, padding=evaluator_padding(shape), leak=preset.evaluator_beta,  # type: ignore[attr-defined]
        surrogate=neuron, surrogate_slope=40.0 if neuron == "fast-sigmoid" else 1.5,
    )
