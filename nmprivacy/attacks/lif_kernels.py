"""Fused LIF time loops of the attack core (``nmprivacy.attacks.engine``), compiled with Numba.

One kernel call runs a layer's whole time loop (forward) or its whole backward-through-time,
each neuron's state held in a small column block, so every ``[T, M]`` plane is read and written
once: the unfused torch loop made ~3 (forward) and ~8 (backward) passes over each step's plane
per step, at memory speed. Kernels release the GIL (``nogil``) so the engine's worker threads run
them concurrently, and are cached on disk after their first compilation. They are
compiled with numpy's error model (no Python division checks) so that LLVM vectorises the
neuron loops.

Arithmetic (docs/method.md §2, ``nmprivacy.attacks.engine`` module docstring):

- ``float``: ``a_t = I_t + leak v_{t-1}``, ``z_t = 1[a_t > threshold]``, ``v_t = a_t (1 - z_t)``, all
  in float32 (constants rounded to float32 as torch rounds a Python scalar for a float32 tensor);
- ``loihi``: exact CUBA fixed point in float64 integer states (``nmprivacy.network.loihi``),
  ``u_t = wrap24(rstz(u_{t-1} i_keep, 12) + 64 I_t)`` (without synaptic memory ``rstz`` gives 0),
  ``v_t = clip24(rstz(v_{t-1} v_keep, 12) + u_t)``, spikes where ``v_t > threshold``, which resets
  ``v`` to 0; the wrap and clip are Lava's, so every state is exact, however large.

Backward (manual BPTT, float32): ``g`` holds each step's direct gradient on entry, dL/d(spikes)
for hidden layers (multiplied by the fast-sigmoid surrogate ``1 / (r + slope r |a - threshold|)^2``,
``r = sqrt(scale)``), or dL/d(pre-reset voltage) for the read-out; on exit dL/d(voltage input).
The reset passes ``1 - z_t`` (``reset_detached``) or 1; loihi's synaptic current adds a second
leaky carry ``i_keep / 4096``.

Layouts: ``a``, ``z``, ``g`` ``[T, M]`` float32 C-contiguous (``M = B * N`` neurons of a batch).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from nmprivacy.network import loihi

BLOCK = 1024  # neurons per column block: the block's states (4-8 KB each) stay in L1
DECAY_UNIT = float(loihi.DECAY_UNIT)  # Loihi decays are 12-bit integers
CURRENT_SHIFT = float(loihi.ACT_SHIFT)  # a_in << 6
STATE_MAX = float(loihi.STATE_MAX)  # u wraps and v saturates at +-2^23


@njit(nogil=True, cache=True, error_model="numpy")
def _forward_float(a: np.ndarray, z: np.ndarray, leak: np.float32, threshold: np.float32) -> None:
    steps, width = a.shape
    v = np.zeros(BLOCK, np.float32)
    for start in range(0, width, BLOCK):
        n = min(BLOCK, width - start)
        v[:n] = 0.0
        for t in range(steps):
            at = a[t, start : start + n]
            zt = z[t, start : start + n]
            for j in range(n):
                x = at[j] + leak * v[j]
                at[j] = x
                spike = x > threshold
                zt[j] = np.float32(1.0) if spike else np.float32(0.0)
                v[j] = np.float32(0.0) if spike else x


@njit(nogil=True, cache=True, error_model="numpy")
def _forward_loihi(a: np.ndarray, z: np.ndarray, v_keep: float, i_keep: float, threshold: float) -> None:
    steps, width = a.shape
    v = np.zeros(BLOCK, np.float64)
    u = np.zeros(BLOCK, np.float64)
    synapse = i_keep > 0.0
    threshold32 = np.float32(threshold)
    for start in range(0, width, BLOCK):
        n = min(BLOCK, width - start)
        v[:n] = 0.0
        u[:n] = 0.0
        for t in range(steps):
            at = a[t, start : start + n]
            zt = z[t, start : start + n]
            for j in range(n):
                drive = CURRENT_SHIFT * np.float64(at[j])
                if synapse:
                    drive = np.trunc(u[j] * i_keep / DECAY_UNIT) + drive
                # Lava's single 24-bit wrap of the current, then the voltage's saturation
                drive = drive - 2.0 * STATE_MAX * (drive > STATE_MAX) + 2.0 * STATE_MAX * (drive <= -STATE_MAX)
                u[j] = drive
                x = np.trunc(v[j] * v_keep / DECAY_UNIT) + drive
                x = min(max(x, 1.0 - STATE_MAX), STATE_MAX - 1.0)
                at[j] = np.float32(x)  # exact: |x| < 2^23
                zt[j] = np.float32(1.0) if at[j] > threshold32 else np.float32(0.0)
                v[j] = 0.0 if x > threshold else x


@njit(nogil=True, cache=True, error_model="numpy")
def _backward(
    g: np.ndarray, a: np.ndarray, spike_grads: bool, reset_detached: bool, leak: np.float32, threshold: np.float32,
    slope_root: np.float32, root: np.float32, current_keep: np.float32,
) -> None:
    steps, width = a.shape
    carry = np.zeros(BLOCK, np.float32)  # dL/da_{t+1}
    gu = np.zeros(BLOCK, np.float32)  # dL/du_{t+1} (synaptic current)
    synapse = current_keep > 0.0
    for start in range(0, width, BLOCK):
        n = min(BLOCK, width - start)
        carry[:n] = 0.0
        gu[:n] = 0.0
        for t in range(steps - 1, -1, -1):
            at = a[t, start : start + n]
            gt = g[t, start : start + n]
            for j in range(n):
                x = gt[j]
                if spike_grads:
                    d = abs(at[j] - threshold) * slope_root + root
                    x = x * (np.float32(1.0) / (d * d))
                carried = leak * carry[j]
                x = x + (carried if not reset_detached or at[j] <= threshold else np.float32(0.0))
                carry[j] = x
                if synapse:
                    x = gu[j] * current_keep + x
                    gu[j] = x
                gt[j] = x


def _array(t: torch.Tensor) -> np.ndarray:
    """The numpy view of a C-contiguous 2-D float tensor (shares memory)."""
    if t.dim() != 2 or not t.is_contiguous():
        raise ValueError(f"LIF kernels take C-contiguous [T, M] planes, got shape {tuple(t.shape)} strides {t.stride()}")
    return t.numpy()


def lif_forward(a: torch.Tensor, z: torch.Tensor, loihi: bool, threshold: float, leak: float, v_keep: float, i_keep: float) -> None:
    """LIF time loop in place: ``a`` ``[T, M]`` holds input currents on entry and pre-reset voltages
    on exit; spikes (0/1) are written into ``z`` ``[T, M]``. ``leak`` is float's voltage multiplier;
    ``v_keep`` / ``i_keep`` are loihi's ``4096 - decay`` integers (``i_keep = 0``: no synaptic memory)."""
    if loihi:
        _forward_loihi(_array(a), _array(z), float(v_keep), float(i_keep), float(threshold))
    else:
        _forward_float(_array(a), _array(z), np.float32(leak), np.float32(threshold))


def lif_backward(
    g: torch.Tensor, a: torch.Tensor, spike_grads: bool, reset_detached: bool, threshold: float, leak: float,
    slope: float, root_scale: float, i_keep: float = 0.0,
) -> None:
    """Backward-through-time in place on ``g`` ``[T, M]`` given the forward's pre-reset voltages ``a``
    ``[T, M]`` (see the module docstring): ``slope`` is the surrogate slope per voltage unit,
    ``root_scale`` the square root of the voltage scale, ``i_keep`` loihi's synaptic ``4096 - decay``
    (0: no synaptic current)."""
    _backward(
        _array(g), _array(a), bool(spike_grads), bool(reset_detached), np.float32(leak), np.float32(threshold),
        np.float32(slope * root_scale), np.float32(root_scale), np.float32(i_keep / DECAY_UNIT),
    )


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel for the engine's array types, so
    that the first attack iteration does not pay for it (once per process)."""
    a, z = torch.zeros(2, 3), torch.zeros(2, 3)
    lif_forward(a, z, False, 1.0, 0.5, 0.0, 0.0)
    lif_forward(a, z, True, 64.0, 0.5, 2048.0, 2048.0)
    lif_backward(z, a, True, True, 1.0, 0.5, 40.0, 1.0, 0.0)
