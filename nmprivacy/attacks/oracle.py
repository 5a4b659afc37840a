"""Plain autograd gradient oracle: attack loss and its input gradient for any ``TargetModel``.

``x`` is in the model's own layout (spiking ``[T, B, *input_shape]``, image ``[B, *input_shape]``);
the whole batch goes through one forward and one backward pass, with gradients on ``x`` only.

Populations (BrainLeaks-v2): ``population_gradient`` gives the loss-weighted sum of a spiking
population's per-sample input gradients, ``x`` ``[T, K * P, *input_shape]`` with member ``p`` of
group ``k`` at batch index ``k * P + p``; oracles with their own ``population_gradient`` method
(``FastLIFOracle``) compute it faster, any other oracle the straightforward way.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

from nmprivacy.attacks.base import GradientOracle, LossKind, OracleOutput, PopulationOutput
from nmprivacy.models.base import TargetModel, spike_readout

WeightsFn = Callable[[torch.Tensor, slice], torch.Tensor]
"""``(loss [k * P], groups)`` -> weights ``[k, P]`` of the ``k`` groups ``groups`` (a slice of the
batch's K groups of P members) from their members' losses; a group's weights may depend only on
its own members' losses (oracles weight each shard of groups as soon as it is done)."""


def attack_loss(
    model: TargetModel, x: torch.Tensor, targets: torch.Tensor, loss: LossKind = "identity"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample attack loss ``[B]`` and class probabilities ``[B, C]`` (graph kept on ``x``).

    ``identity``: ``1 - M_y(x)`` with ``M_y`` from ``model.probabilities``;
    ``cross-entropy``: cross-entropy of the read-out, averaged over time for spiking models.
    """
    if loss == "identity":
        probs = model.probabilities(x)
        return 1.0 - probs.gather(1, targets[:, None]).squeeze(1), probs
    if loss != "cross-entropy":
        raise ValueError(f"unknown attack loss {loss!r}")
    out = model(x)
    if model.info.domain == "spikes":  # out: [T, B, C]
        t, b, c = out.shape
        ce = F.cross_entropy(out.reshape(t * b, c), targets.repeat(t), reduction="none").reshape(t, b).mean(0)
        return ce, spike_readout(out)
    return F.cross_entropy(out, targets, reduction="none"), torch.softmax(out, dim=-1)


class AutogradOracle:
    """``GradientOracle`` by autograd through ``model`` (frozen: no weight gradients)."""

    name = "autograd"

    def __init__(self, model: TargetModel) -> None:
        self.model = model.freeze()

    def __call__(self, x: torch.Tensor, targets: torch.Tensor, loss: LossKind = "identity") -> OracleOutput:
        """Loss ``[B]``, probabilities ``[B, C]`` and d(sum loss)/dx ``like x`` for batch ``x``."""
        xg = x.detach().to(torch.float32).requires_grad_(True)
        with torch.enable_grad():
            values, probs = attack_loss(self.model, xg, targets.to(torch.long), loss)
            (grad,) = torch.autograd.grad(values.sum(), xg)
        return OracleOutput(loss=values.detach(), probs=probs.detach(), grad=grad)

    def population_gradient(
        self, x: torch.Tensor, targets: torch.Tensor, groups: int, weights_fn: WeightsFn, loss: LossKind = "identity"
    ) -> PopulationOutput:
        """Weighted population gradient ``[T, K, *input_shape]`` of spiking ``x`` ``[T, K * P, ...]``,
        ``K = groups`` (see :func:`population_gradient`), computed the straightforward way."""
        return weighted_sum(self(x, targets, loss), groups, weights_fn)


def group_weights(weights_fn: WeightsFn, loss: torch.Tensor, groups: slice) -> torch.Tensor:
    """``weights_fn(loss, groups)`` for the per-member loss ``[k * P]`` of the ``k`` groups
    ``groups``, checked to be ``[k, P]``."""
    k = groups.stop - groups.start
    weights = weights_fn(loss, groups)
    expected = (k, loss.shape[0] // k)
    if tuple(weights.shape) != expected:
        raise ValueError(f"weights_fn returned weights of shape {tuple(weights.shape)}, expected {expected}")
    return weights


def weighted_sum(out: OracleOutput, groups: int, weights_fn: WeightsFn) -> PopulationOutput:
    """``sum_p w[k, p] grad[:, k * P + p]`` ``[T, K, ...]`` (``K = groups``) of a spiking oracle
    output with per-sample gradients ``[T, K * P, ...]``, weights ``w = weights_fn(out.loss)`` ``[K, P]``."""
    weights = group_weights(weights_fn, out.loss, slice(0, groups))
    k, p = weights.shape
    grad = out.grad.reshape(out.grad.shape[0], k, p, *out.grad.shape[2:])
    w = weights.reshape(1, k, p, *([1] * (grad.dim() - 3))).to(grad.dtype)
    return PopulationOutput(loss=out.loss, probs=out.probs, weights=weights, grad=(w * grad).sum(dim=2))


def population_gradient(
    oracle: GradientOracle, x: torch.Tensor, targets: torch.Tensor, groups: int, weights_fn: WeightsFn, loss: LossKind = "identity"
) -> PopulationOutput:
    """Loss ``[K * P]``, probabilities, weights ``[K, P]`` (``weights_fn`` of the per-member loss)
    and weighted input gradient ``[T, K, *input_shape]`` of a spiking population ``x``
    ``[T, K * P, *input_shape]`` of ``K = groups`` groups (member ``p`` of group ``k`` at batch
    index ``k * P + p``): the oracle's own ``population_gradient`` when it has one, else its
    per-sample gradients summed."""
    if x.shape[1] % groups:
        raise ValueError(f"a batch of {x.shape[1]} is not {groups} equal groups")
    method = getattr(oracle, "population_gradient", None)
    if callable(method):
        return method(x, targets, groups, weights_fn, loss)
    return weighted_sum(oracle(x, targets, loss), groups, weights_fn)
