"""Conversions between the attacks' class-first layout and the models' input layouts.

Attacks keep one tensor per attacked class first: spiking ``[K, T, *input_shape]``, image
``[K, *input_shape]``. Spiking models take ``[T, B, *input_shape]``; image models ``[B, ...]``.
"""

from __future__ import annotations

import torch


def to_model_layout(x: torch.Tensor, domain: str) -> torch.Tensor:
    """``[B, T, ...]`` -> ``[T, B, ...]`` for spiking models; image inputs unchanged."""
    return x.transpose(0, 1) if domain == "spikes" else x


def from_model_layout(x: torch.Tensor, domain: str) -> torch.Tensor:
    """Inverse of :func:`to_model_layout`."""
    return x.transpose(0, 1) if domain == "spikes" else x


def per_sample_minmax(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Each sample ``x[i]`` scaled to [0, 1] by its own min and max (constant samples -> 0)."""
    flat = x.reshape(x.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(eps)).reshape(x.shape)
