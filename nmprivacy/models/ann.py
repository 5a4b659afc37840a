"""``ann``: the MI-Face baseline target, input -> hidden sigmoid -> classes (softmax read-out).

Input ``x``: images ``[B, C, H, W]`` in [0, 1]; ``forward`` returns logits ``[B, classes]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nmprivacy.models.base import ModelInfo, TargetModel


@dataclass(frozen=True)
class ANNConfig:
    """Everything that rebuilds an ``ann`` model (docs/method.md §4: 3000 sigmoid units)."""

    input_shape: tuple[int, ...]
    num_classes: int
    hidden: int = 3000


class ANN(TargetModel):
    """Two-layer perceptron with a sigmoid hidden layer (Fredrikson et al. 2015 topology)."""

    def __init__(self, config: ANNConfig) -> None:
        super().__init__()
        self.config = config
        self.info = ModelInfo("ann", "image", tuple(config.input_shape), config.num_classes, reset="none")
        n_in = math.prod(config.input_shape)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_in, config.hidden), nn.Sigmoid(), nn.Linear(config.hidden, config.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]`` for images ``[B, C, H, W]``."""
        return self.net(x)


def default_config(input_shape: tuple[int, ...], num_classes: int, preset: object, hidden: int | None = None) -> ANNConfig:
    """The preset's ``ann`` baseline for a data set (hidden size unless ``hidden`` is given)."""
    return ANNConfig(input_shape=tuple(input_shape), num_classes=num_classes, hidden=hidden if hidden is not None else preset.hidden)  # type: ignore[attr-defined]
