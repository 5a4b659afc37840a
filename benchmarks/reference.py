"""The published notebooks' loop structure (docs/method.md §8), kept only to time it.

Everything is sequential, as in the BrainLeaks notebooks (e.g. ``MNIST/SNN/MNIST_SNN_Attack.ipynb``):
one class at a time, one population sample at a time (batch 1), a Python loop over time steps
inside each forward through snnTorch's own ``snn.Leaky`` neurons (beta 0.7, threshold 1,
subtractive delayed reset, ``surrogate.fast_sigmoid(slope=40)``; ``init_leaky()`` then
``spk, mem = lif(cur, mem)`` per step), ``nn.Linear`` layers with biases, and autograd through
*trainable* parameters, so every backward also computes (and accumulates) weight gradients. The
numbers it produces are not used anywhere; the project's attacks live in ``nmprivacy.attacks``.
snnTorch is the optional ``bench`` extra (``pip install -e '.[bench]'``).

Layouts: SNN input ``[T, 1, N]`` (batch 1), output membrane record ``[T, 1, C]``; ANN input
``[1, N]``. X_p / X per class ``[T, N]``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from nmprivacy.errors import NmprivacyError
from nmprivacy.presets import BLv1Settings, BLv2Settings, MIFaceSettings

SURROGATE_SLOPE = 40.0  # the notebooks' surrogate.fast_sigmoid(slope=40)


def snntorch_version() -> str:
    """Installed snnTorch version; NmprivacyError naming the fix if it is missing."""
    try:
        import snntorch
    except ImportError:
        raise NmprivacyError(
            "the reference structure needs snnTorch, which is not installed: pip install -e '.[bench]' (snntorch==1.0.0)"
        ) from None
    return str(snntorch.__version__)


class ReferenceSNN(nn.Module):
    """The notebooks' ``Net``: ``fc1 -> snn.Leaky -> fc2 -> snn.Leaky`` with trainable ``nn.Linear``
    layers (with biases; zero here, weights copied from the target), stepped in Python."""

    def __init__(self, w1: torch.Tensor, w2: torch.Tensor, beta: float = 0.7, threshold: float = 1.0) -> None:
        super().__init__()
        snntorch_version()
        import snntorch as snn
        from snntorch import surrogate

        self.fc1 = nn.Linear(w1.shape[1], w1.shape[0])
        self.fc2 = nn.Linear(w2.shape[1], w2.shape[0])
        with torch.no_grad():
            for fc, w in ((self.fc1, w1), (self.fc2, w2)):
                fc.weight.copy_(w)
                fc.bias.zero_()
        spike_grad = surrogate.fast_sigmoid(slope=SURROGATE_SLOPE)
        self.lif1 = snn.Leaky(beta=beta, threshold=threshold, spike_grad=spike_grad)
        self.lif2 = snn.Leaky(beta=beta, threshold=threshold, spike_grad=spike_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output membrane record ``[T, 1, C]`` for spikes ``[T, 1, N]``."""
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        record = []
        for step in range(x.shape[0]):
            cur1 = self.fc1(x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            _, mem2 = self.lif2(cur2, mem2)
            record.append(mem2)
        return torch.stack(record)


def confidence(mem: torch.Tensor, label: int) -> torch.Tensor:
    """Per-step softmax averaged over time, probability of ``label`` (scalar, graph kept)."""
    return torch.softmax(mem, dim=-1).mean(dim=0)[0, label]


@dataclass
class ReferenceBLv2State:
    """Per-class BL-v2 state, each ``[T, N]``."""

    xp: torch.Tensor
    r: torch.Tensor
    nu: torch.Tensor


def blv2_class_iteration(
    net: ReferenceSNN, label: int, state: ReferenceBLv2State, settings: BLv2Settings, samples: int | None = None
) -> ReferenceBLv2State:
    """One BL-v2 iteration for one class as the MNIST notebook runs it: ``samples`` (default K)
    sequential batch-1 forward/backward passes (weight gradients accumulate, never zeroed), then
    the loss-share weighted update of X_p (the published code's weighting)."""
    k = samples or settings.population
    grads, losses = [], []
    for _ in range(k):
        xs = torch.bernoulli(state.xp).unsqueeze(1).requires_grad_(True)  # [T, 1, N]
        loss = 1.0 - confidence(net(xs), label) + settings.sparsity * xs.mean()
        loss.backward()
        grads.append(xs.grad[:, 0])
        losses.append(loss)
    with torch.no_grad():
        g = sum(gi * li / sum(losses) for gi, li in zip(grads, losses))
        r = settings.rho * state.r + (1 - settings.rho) * g * g
        nu = settings.momentum * state.nu + g
        xp = (state.xp - settings.lr / (r.sqrt() + settings.eps) * nu).clamp_min(0.0)
        if xp.max() > 1:
            xp = xp / xp.max()
    return ReferenceBLv2State(xp=xp, r=r, nu=nu)


def blv1_class_iteration(net: ReferenceSNN, label: int, x: torch.Tensor, settings: BLv1Settings) -> torch.Tensor:
    """One BL-v1 iteration for one class (batch 1): gradient of the confidence, min-max, mask, flip."""
    xs = x.unsqueeze(1).clone().requires_grad_(True)
    confidence(net(xs), label).backward()  # weight gradients accumulate, as in the notebook
    g = xs.grad[:, 0]
    p = g.abs()
    p = (p - p.min()) / (p.max() - p.min()).clamp_min(1e-12)
    q = (p >= settings.eta).to(x.dtype)
    return ((x + torch.sign(g) * q) > 0).to(x.dtype)


def miface_class_iteration(ann: nn.Module, label: int, x: torch.Tensor, settings: MIFaceSettings) -> torch.Tensor:
    """One MI-Face step for one class (batch 1, weight gradients computed as the notebook's autograd does)."""
    xs = x.clone().requires_grad_(True)
    ann.zero_grad()
    cost = 1.0 - torch.softmax(ann(xs), dim=-1)[0, label]
    cost.backward()
    step = xs.detach() - settings.lr * xs.grad
    return step.clamp(0.0, 1.0) if settings.clamp else step


def trainable_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters require gradients (the notebooks never freeze them)."""
    out = copy.deepcopy(model)
    out.train()
    for p in out.parameters():
        p.requires_grad_(True)
    return out
