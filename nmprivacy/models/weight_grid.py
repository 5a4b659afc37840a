"""Which Loihi weight precisions train the very same model: the widest weight of each quantised
slayer layer, in units of slayer's finest weight step.

A slayer CUBA block quantises its float weights ``W`` on every forward through its synapse's
``pre_hook_fx``: at 8 bits slayer's ``quantize_8bit`` (``round(W / u) u`` with ``u = 2 / w_scale``,
clamped to ``[-128 u, 127 u]``), at ``b`` < 8 bits ``cuba_blocks.LoihiWeights(b)``, which picks the
layer's exponent ``e`` from its largest weight and takes ``e = 1`` (the same step ``u``) exactly when
``M = round(max|W| / u) <= 2^(b-1) - 1``, then clamps to ``[-2^(b-1) u, (2^(b-1) - 1) u]``. With
``e = 1`` and every rounded weight inside both ranges, the two hooks give the same forward value
and, since both pass the gradient straight through inside the clamp, the same backward. So a
training in which every weight state a forward could read (the initial weights and those after
each optimiser step, DP-SGD's noise-only steps included) kept ``M <= 2^(b-1) - 1`` in every layer
is, step for step, the same computation at 8 bits and at ``b`` bits: the same weights to the bit.

``WeightGrid`` tracks ``M`` per layer over a training (``TrainReport.weight_grid``);
``same_training_bits`` lists the precisions a record vouches for, which ``trained.train_or_load``
uses to reuse a cached model of another precision instead of training an identical one again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from nmprivacy.network.loihi import WEIGHT_BITS

NOT_FINITE = 1 << 30  # a layer with a non-finite weight: no precision vouched for


def narrowest_bits(widest: int) -> int:
    """The fewest mantissa bits (at least Loihi's 2) that hold a layer whose widest weight is
    ``widest`` steps: every precision from there up trains the same model."""
    return max(2, int(widest).bit_length() + 1)


def quantised_synapses(model: nn.Module) -> list[tuple[torch.Tensor, float]]:
    """``(weight, u)`` of every slayer synapse of ``model`` that quantises its weights on Loihi's
    grid (``cuba_blocks.weight_quantiser``; ``u = 2 / w_scale``, the finest step), in module order."""
    from nmprivacy.models.cuba_blocks import weight_quantiser  # slayer, only once a model exists

    out = []
    for module in model.modules():
        synapse, neuron = getattr(module, "synapse", None), getattr(module, "neuron", None)
        if synapse is not None and neuron is not None and (quantiser := weight_quantiser(synapse, neuron)) is not None:
            out.append((synapse.weight, 2.0 / float(quantiser.w_scale)))
    return out


def grid_mantissas(model: nn.Module) -> list[int]:
    """Per quantised layer, ``M = round(max|W| / u)``: its widest weight on slayer's finest grid
    (round half to even, as ``LoihiWeights.exponent``); ``NOT_FINITE`` for a non-finite weight."""
    out = []
    with torch.no_grad():
        for weight, unit in quantised_synapses(model):
            if weight.numel() == 0:
                out.append(0)
                continue
            low, high = torch.aminmax(weight.detach())  # no |W| copy: a 10304 x 3000 layer is read once
            low, high = float(low), float(high)
            finite = math.isfinite(low) and math.isfinite(high)  # (a NaN anywhere makes both NaN; an inf one of them)
            out.append(round(max(-low, high) / unit) if finite else NOT_FINITE)
    return out


@dataclass
class WeightGrid:
    """The largest ``M`` of each quantised layer over the weight states seen so far (``update``)."""

    maxima: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, model: nn.Module) -> WeightGrid | None:
        """A tracker started at ``model``'s current weights; None when it has no quantised layer."""
        now = grid_mantissas(model)
        return cls(now) if now else None

    def update(self, model: nn.Module) -> None:
        """Take ``model``'s current weights into the maxima."""
        self.maxima = [max(a, b) for a, b in zip(self.maxima, grid_mantissas(model), strict=True)]


def same_training_bits(maxima: Sequence[int] | None, trained_bits: int) -> tuple[int, ...]:
    """The weight precisions at which a training recorded with ``maxima`` (``WeightGrid.maxima``)
    at ``trained_bits`` is the same computation: every ``b`` with ``max(maxima) <= 2^(min(b,
    trained_bits) - 1) - 1``, i.e. from ``narrowest_bits`` up when ``trained_bits`` is among them;
    empty without a record."""
    if not maxima or trained_bits not in WEIGHT_BITS:
        return ()
    need = narrowest_bits(max(int(m) for m in maxima))
    return tuple(b for b in WEIGHT_BITS if b >= need) if trained_bits >= need else ()
