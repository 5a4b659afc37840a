"""Loihi's CUBA LIF fixed-point arithmetic in torch, exact in the forward pass, differentiable
through a surrogate in the backward pass.

Per step, in Loihi units (integers carried in float64, exact below 2^53):
``u_t = wrap24(rstz(u_{t-1} * (4096 - i_decay), 12) + a_t * 64)``,
``v_t = clip24(rstz(v_{t-1} * (4096 - v_decay), 12) + u_t + bias * 64)``,
spike ``z_t = v_t > vth_mant * 64``, then ``v_t <- 0`` where spiking (``rstz``: shift right
rounding toward zero; ``a_t`` the integer synaptic input). These are the formulas of Lava's
``AbstractPyLifModelFixed`` (lava-nc 0.10) and of slayer's CUBA neuron (lava-notes, "Exactness").
Backward: straight-through for the integer rounding (decays pass as ``c / 4096``), no gradient
through the hard reset (slayer's leaky-integrator backward; ``LIFLayer.reset_grad="none"``), fast sigmoid
``1 / (1 + slope * |v - th| / unit)^2`` for the spike, ``unit`` the Loihi voltage of 1.0 in the
source model's membrane units (4096 for slayer models: the spec's slope 40 on slayer's voltage).
"""

from __future__ import annotations

import torch

UNITY = 4096  # decay denominator (12 bits)
ACT_SHIFT = 64  # synaptic input and threshold are MSB-aligned by 6 bits
UV_MAX = float(1 << 23)  # u and v are 24-bit signed


def rstz(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``x * factor / 4096`` rounded toward zero (forward) with the unrounded gradient (backward)."""
    exact = x * (factor / UNITY)
    return exact + (torch.trunc(exact) - exact).detach()


def wrap_current(u: torch.Tensor) -> torch.Tensor:
    """Lava's 24-bit current overflow handling (values beyond 2^23 wrap), gradient passed through."""
    wrapped = torch.where(u > UV_MAX, u - 2 * UV_MAX, u)
    wrapped = torch.where(wrapped <= -UV_MAX, u + 2 * UV_MAX, wrapped)
    return u + (wrapped - u).detach()


def clip_voltage(v: torch.Tensor) -> torch.Tensor:
    """Lava's 24-bit voltage saturation, gradient passed through."""
    return v + (v.clamp(-UV_MAX + 1, UV_MAX - 1) - v).detach()


class FastSigmoidSpike(torch.autograd.Function):
    """Heaviside ``v > th`` forward; backward ``dz/dv = 1 / (1 + slope * |v - th| / scale)^2 / scale``
    (the fast sigmoid on the voltage measured in units of ``scale``)."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: float, slope: float, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.threshold, ctx.slope, ctx.scale = threshold, slope, scale
        return (v > threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        surrogate = 1.0 / (1.0 + ctx.slope * (v - ctx.threshold).abs() / ctx.scale) ** 2
        return grad * surrogate / ctx.scale, None, None, None


def cuba_dynamics(
    a_in: torch.Tensor,
    i_decay: int,
    v_decay: int,
    vth_mant: int,
    bias: torch.Tensor | None = None,
    surrogate_slope: float = 40.0,
    surrogate_unit: float = float(UNITY),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run one layer of CUBA neurons over time.

    ``a_in`` float64 ``[T, B, N]``: integer synaptic input per step (before the 6-bit shift).
    ``bias`` ``[N]`` mantissa or None; ``surrogate_unit`` as in the module docstring. Returns spikes ``[T, B, N]`` (0/1, a_in's dtype) and the
    pre-reset voltage ``[T, B, N]`` in Loihi units (threshold at ``vth_mant * 64``).
    """
    threshold = float(vth_mant * ACT_SHIFT)
    keep_u, keep_v = UNITY - i_decay, UNITY - v_decay
    u = torch.zeros_like(a_in[0])
    v = torch.zeros_like(a_in[0])
    drive = a_in * ACT_SHIFT
    bias_v = None if bias is None else bias.to(a_in.dtype) * ACT_SHIFT
    spikes, volts = [], []
    for t in range(a_in.shape[0]):
        u = wrap_current(rstz(u, keep_u) + drive[t])
        v = rstz(v, keep_v) + u
        if bias_v is not None:
            v = v + bias_v
        v = clip_voltage(v)
        z = FastSigmoidSpike.apply(v, threshold, surrogate_slope, surrogate_unit)
        spikes.append(z)
        volts.append(v)
        v = v - (v * z).detach()  # hard reset to 0, no gradient through the reset (as slayer's backward)
    return torch.stack(spikes), torch.stack(volts)
