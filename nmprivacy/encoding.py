"""Turning data-set samples into model-ready spike tensors.

Layouts: images ``[B, C, H, W]`` float in [0, 1]; event samples ``[B, T, C, H, W]`` (as stored
by event data sets); spikes (the output of both functions) float32 ``[T, B, C, H, W]`` with
values in {0, 1}, time first as Norse and the attacks expect.
"""

from __future__ import annotations

import numpy as np
import torch

from nmprivacy.data.base import Domain
from nmprivacy.data.events import fit_length
from nmprivacy.errors import NmprivacyError


def rate_encode(images: torch.Tensor, steps: int = 25, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli rate code: spike at each of ``steps`` steps with probability = pixel intensity.

    ``images`` ``[B, C, H, W]`` in [0, 1] -> float32 ``[steps, B, C, H, W]``; reproducible for a
    seeded ``generator``.
    """
    if steps < 1:
        raise NmprivacyError(f"steps must be at least 1, got {steps}")
    if images.dim() != 4:
        raise ValueError(f"rate_encode expects images [B, C, H, W], got shape {tuple(images.shape)}")
    p = images.detach().to(torch.float32)
    if p.numel() and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"rate_encode expects intensities in [0, 1], got [{p.min():g}, {p.max():g}]")
    probs = p.unsqueeze(0).expand(steps, *p.shape)
    return torch.bernoulli(probs, generator=generator)


def bernoulli_spikes(
    probs: torch.Tensor, generator: torch.Generator | np.random.Generator | None = None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary float32 samples with P(1) = ``probs``: shape ``probs.shape``, or ``out``'s shape
    (``probs`` broadcast to it; the samples are written into ``out``, C-contiguous), values in {0, 1}.

    Drawn as ``u < p`` from float32 uniforms ``u`` of ``generator`` (a torch or a numpy generator):
    the same distribution as ``torch.bernoulli`` and faster on CPU (numpy's PCG64 uniforms the
    fastest), each generator its own random stream. The attacks sample with it; ``rate_encode``
    keeps ``torch.bernoulli`` so that trained checkpoints stay reproducible.
    """
    u = torch.empty(probs.shape, dtype=torch.float32) if out is None else out
    if isinstance(generator, np.random.Generator):
        generator.random(out=u.numpy(), dtype=np.float32)
    else:
        u.uniform_(generator=generator)
    return torch.lt(u, probs, out=u)  # in place: u becomes the 0/1 sample


def to_spikes(
    x: torch.Tensor, domain: Domain, steps: int | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Model-ready spikes float32 ``[steps, B, C, H, W]`` from a batch of either domain.

    ``domain == "image"``: ``x`` ``[B, C, H, W]`` is rate-encoded (``steps`` required);
    ``domain == "events"``: ``x`` ``[B, T, C, H, W]`` is put time-first and cut or zero-padded to
    ``steps`` (``None`` keeps the data's own T). ``generator`` is only used for images.
    """
    if domain == "image":
        if steps is None:
            raise NmprivacyError("rate-encoding images needs the number of time steps; pass steps (e.g. --steps 25)")
        return rate_encode(x, steps, generator)
    if domain == "events":
        if x.dim() != 5:
            raise ValueError(f"event batches are [B, T, C, H, W], got shape {tuple(x.shape)}")
        spikes = x.transpose(0, 1).to(torch.float32)
        return (spikes if steps is None else fit_length(spikes, steps)).contiguous()
    raise ValueError(f"unknown domain {domain!r}: expected 'image' or 'events'")
