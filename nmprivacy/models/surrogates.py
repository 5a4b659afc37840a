"""Spike functions with surrogate gradients: Heaviside forward, smooth derivative backward.

Norse 1.1.0's ``method="super"`` threshold ignores its ``alpha`` (its backward is
``1 / (1 + |x|)^2`` whatever alpha is), and Norse has no arctan surrogate; the method needs both
with their slopes (docs/method.md §2 and §4), so they are defined here once and used by every spiking
model (Norse targets, the spiking evaluator and the Lava-DL target):

- ``fast-sigmoid`` (snnTorch ``fast_sigmoid``, SuperSpike): ``dS/dx = 1 / (1 + k |x|)^2``;
- ``atan`` (snnTorch ``atan``): ``dS/dx = (a / 2) / (1 + (pi a x / 2)^2)``;

with ``x = v - threshold``. Forward is ``S = 1[x > 0]`` (Norse and Loihi spike when ``v > th``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

SurrogateName = Literal["fast-sigmoid", "atan"]
SURROGATES: tuple[str, ...] = ("fast-sigmoid", "atan")


def surrogate_derivative(x: torch.Tensor, name: SurrogateName, slope: float) -> torch.Tensor:
    """The surrogate derivative dS/dx of spike function ``name`` at ``x = v - threshold``."""
    if name == "fast-sigmoid":
        return 1.0 / (1.0 + slope * x.abs()) ** 2
    if name == "atan":
        return (slope / 2.0) / (1.0 + (math.pi * slope * x / 2.0) ** 2)
    raise ValueError(f"unknown surrogate {name!r}: choose one of {', '.join(SURROGATES)}")


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside ``1[x > 0]`` whose backward is ``surrogate_derivative(x)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, slope: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.name = name
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * surrogate_derivative(x, ctx.name, ctx.slope), None, None


def spike(x: torch.Tensor, name: SurrogateName = "fast-sigmoid", slope: float = 40.0) -> torch.Tensor:
    """Spikes ``1[x > 0]`` (same shape as ``x = v - threshold``) with a surrogate gradient."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}: choose one of {', '.join(SURROGATES)}")
    return _SurrogateSpike.apply(x, name, float(slope))
