"""Norse box-LIF neurons (no synaptic current) run over a whole time axis, with the project's surrogates.

Dynamics per step are Norse's ``lif_box_feed_forward_step`` (``LIFBoxParameters``, ``dt = 1``):
``v <- v + tau_mem_inv * (i + v_leak - v)`` i.e. ``v <- leak * v + (1 - leak) * i`` with
``leak = 1 - tau_mem_inv``; spike ``z = 1[v > v_th]``; hard reset ``v <- v_reset`` (Norse's
``reset_value``). Two deliberate differences from Norse's own step, both in docs/method.md §2.2:
the surrogate is ``nmprivacy.models.surrogates.spike`` (Norse 1.1.0's ``"super"`` ignores its
slope), and the reset uses ``z.detach()`` (as snnTorch, the reference: no gradient through the
reset; d v_after / d v_before = 1 - z). ``reset="subtract"`` uses Norse's ``reset_subtract``
instead (``v <- v - v_th`` where spiking, in the same step; docs/method.md §2.4).
"""

from __future__ import annotations

import torch
from norse.torch.functional.lif_box import LIFBoxParameters
from typing import Literal

from norse.torch.functional.reset import reset_subtract, reset_value
from torch import nn

from nmprivacy.models.surrogates import Params, SurrogateName, resolve_params, spike


Reset = Literal["hard", "subtract"]


def lif_parameters(leak: float, threshold: float, surrogate: SurrogateName, slope: float, reset: Reset = "hard") -> LIFBoxParameters:
    """Norse ``LIFBoxParameters`` for a per-step leak (beta), threshold, surrogate and reset (dt = 1)."""
    return LIFBoxParameters(
        tau_mem_inv=torch.as_tensor(1.0 - leak),
        v_leak=torch.as_tensor(0.0),
        v_th=torch.as_tensor(float(threshold)),
        v_reset=torch.as_tensor(0.0),
        method=surrogate,
        alpha=float(slope),
        reset_method=reset_subtract if reset == "subtract" else reset_value,
    )


class LIFBox(nn.Module):
    """A population of Norse box-LIF neurons stepped over time (no trainable parameters).

    ``forward(current)`` takes the input current ``[T, B, *shape]`` (already weighted, in
    Norse's units: the neuron adds ``(1 - leak) * current`` per step) and returns
    ``(spikes, voltage)``, both ``[T, B, *shape]``; ``voltage`` is the membrane *before* the
    reset of that step (the read-out used for output layers; snnTorch and slayer report the same).
    """

    def __init__(self, leak: float = 0.7, threshold: float = 1.0, surrogate: SurrogateName = "fast-sigmoid", slope: Params = 40.0,
                 reset: Reset = "hard") -> None:
        super().__init__()
        self.leak = float(leak)
        self.threshold = float(threshold)
        self.surrogate: SurrogateName = surrogate
        self.params = resolve_params(surrogate, slope)  # the surrogate's parameters (``slope``: the first, or all as a tuple)
        self.slope = self.params[0] if self.params else 0.0
        if reset not in ("hard", "subtract"):
            raise ValueError(f"reset must be 'hard' or 'subtract', not {reset!r}")
        self.reset: Reset = reset
        self.p = lif_parameters(leak, threshold, surrogate, self.slope, reset)

    @property
    def input_gain(self) -> float:
        """Factor Norse applies to the input current per step (``dt * tau_mem_inv``)."""
        return float(self.p.tau_mem_inv)

    def forward(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spikes and pre-reset membrane ``[T, B, *shape]`` for input current ``[T, B, *shape]``."""
        p = self.p
        v = torch.zeros_like(current[0])
        spikes, voltages = [], []
        for t in range(current.shape[0]):
            v = v + p.tau_mem_inv * (current[t] + p.v_leak - v)  # Norse lif_box step, dt = 1
            z = spike(v - p.v_th, self.surrogate, self.params)
            spikes.append(z)
            voltages.append(v)
            v = p.reset_method(z.detach(), v, p.v_reset, p.v_th)
        return torch.stack(spikes), torch.stack(voltages)

    def extra_repr(self) -> str:
        return f"leak={self.leak}, threshold={self.threshold}, surrogate={self.surrogate}, params={self.params}, reset={self.reset}"
