"""``ann``: the MI-Face baseline target, input -> hidden sigmoid -> classes (softmax read-out).

Input ``x``: images ``[B, C, H, W]`` in [0, 1]; ``forward`` returns logits ``[B, classes]``.

Post-training quantisation (``quantize = k``, 2-8 bits; preset field ``ann_quantize``, e.g.
``--set ann_quantize=8``): the model trains in float (train mode) and computes with integers in
eval mode, i.e. wherever it is evaluated, attacked (MI-Face, membership) or loaded from a
checkpoint. Weights: symmetric per-tensor, ``W_q = clamp(round(W / s), -(2^(k-1) - 1), 2^(k-1) - 1)``
with ``s = max|W| / (2^(k-1) - 1)``; activations (the input image and the sigmoid's output, both
in [0, 1]) unsigned k-bit with the static scale ``1 / (2^k - 1)``; biases int32 at the
accumulator's scale ``s_w * s_a``. Each layer's integer products are summed exactly (float64
holds them) and rescaled once, so the logits are what an int8 (k-bit) accelerator with int32
accumulators computes. The input-gradient attacks see the rounding through a straight-through
estimator (``round``'s derivative taken as 1), as quantisation-aware attacks do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import ModelInfo, TargetModel


@dataclass(frozen=True)
class ANNConfig:
    """Everything that rebuilds an ``ann`` model (docs/method.md §4: 3000 sigmoid units)."""

    # fields added after models were cached: left out of the JSON form (and cache keys) at their defaults
    OMITTED_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("quantize",)

    input_shape: tuple[int, ...]
    num_classes: int
    hidden: int = 3000
    quantize: int = 0  # post-training quantisation to this many bits (0: float; module docstring)

    def __post_init__(self) -> None:
        if self.quantize != 0 and self.quantize not in range(2, 9):
            raise NmprivacyError(f"ann: quantize is {self.quantize!r}: 0 (float) or 2-8 bits (8: int8)")


class _RoundSTE(torch.autograd.Function):
    """``round`` forward, identity backward (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def weight_scale(weight: torch.Tensor, bits: int) -> float:
    """Symmetric per-tensor scale ``max|W| / (2^(bits-1) - 1)`` (1 for an all-zero tensor)."""
    largest = float(weight.detach().abs().max()) if weight.numel() else 0.0
    return largest / ((1 << (bits - 1)) - 1) if largest > 0 else 1.0


def quantize_tensor(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, float]:
    """``(W_q, s)``: the signed ``bits``-bit integers (int8 for bits <= 8) and scale of ``weight``."""
    s = weight_scale(weight, bits)
    q = (1 << (bits - 1)) - 1
    return torch.round(weight.detach() / s).clamp(-q, q).to(torch.int8), s


class ANN(TargetModel):
    """Two-layer perceptron with a sigmoid hidden layer (Fredrikson et al. 2015 topology)."""

    def __init__(self, config: ANNConfig) -> None:
        super().__init__()
        self.config = config
        self.info = ModelInfo("ann", "image", tuple(config.input_shape), config.num_classes, reset="none")
        n_in = math.prod(config.input_shape)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_in, config.hidden), nn.Sigmoid(), nn.Linear(config.hidden, config.num_classes))

    @property
    def quantized(self) -> bool:
        """Whether ``forward`` computes with integers now (``quantize`` set and eval mode)."""
        return bool(self.config.quantize) and not self.training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]`` for images ``[B, C, H, W]``."""
        if self.quantized:
            return self.integer_forward(x)
        return self.net(x)

    def integer_state(self) -> list[dict[str, object]]:
        """Per linear layer: ``weight`` (int8 ``[out, in]``), its scale ``weight_scale``, ``bias``
        (int32 at the accumulator scale ``weight_scale * activation_scale``) and ``activation_scale``
        (of the layer's input, ``1 / (2^k - 1)``): what a ``k``-bit deployment stores."""
        bits = self.config.quantize
        if not bits:
            raise NmprivacyError("this ann is not quantised (config.quantize is 0)")
        act = 1.0 / ((1 << bits) - 1)
        out = []
        for layer in (self.net[1], self.net[3]):
            w, s = quantize_tensor(layer.weight, bits)
            b = torch.round(layer.bias.detach().double() / (s * act)).to(torch.int32)
            out.append({"weight": w, "weight_scale": s, "bias": b, "activation_scale": act})
        return out

    def integer_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The quantised model's logits (module docstring), differentiable in ``x`` through the
        straight-through rounding."""
        bits = self.config.quantize
        levels = float((1 << bits) - 1)
        a = _RoundSTE.apply(x.flatten(1).clamp(0.0, 1.0) * levels)  # unsigned k-bit input codes
        state = self.integer_state()
        for i, layer in enumerate(state):
            acc = a.double() @ layer["weight"].double().t() + layer["bias"].double()  # exact integer sums
            real = (acc * (layer["weight_scale"] * layer["activation_scale"])).to(x.dtype)
            if i == len(state) - 1:
                return real
            a = _RoundSTE.apply(torch.sigmoid(real) * levels)  # the hidden activation's k-bit codes
        raise AssertionError("unreachable")


def default_config(input_shape: tuple[int, ...], num_classes: int, preset: object, hidden: int | None = None) -> ANNConfig:
    """The preset's ``ann`` baseline for a data set (hidden size unless ``hidden`` is given)."""
    return ANNConfig(input_shape=tuple(input_shape), num_classes=num_classes, hidden=hidden if hidden is not None else preset.hidden)  # type: ignore[attr-defined]
