"""Plain autograd gradient oracle: attack loss and its input gradient for any ``TargetModel``.

``x`` is in the model's own layout (spiking ``[T, B, *input_shape]``, image ``[B, *input_shape]``);
the whole batch goes through one forward and one backward pass, with gradients on ``x`` only.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from nmprivacy.attacks.base import LossKind, OracleOutput
from nmprivacy.models.base import TargetModel, spike_readout


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

    def __init__(self, model: TargetModel) -> None:
        self.model = model.freeze()

    def __call__(self, x: torch.Tensor, targets: torch.Tensor, loss: LossKind = "identity") -> OracleOutput:
        """Loss ``[B]``, probabilities ``[B, C]`` and d(sum loss)/dx ``like x`` for batch ``x``."""
        xg = x.detach().to(torch.float32).requires_grad_(True)
        with torch.enable_grad():
            values, probs = attack_loss(self.model, xg, targets.to(torch.long), loss)
            (grad,) = torch.autograd.grad(values.sum(), xg)
        return OracleOutput(loss=values.detach(), probs=probs.detach(), grad=grad)
