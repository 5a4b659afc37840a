"""Loihi's CUBA LIF fixed-point constants, defined once (docs/method.md §2).

Per step, for one neuron, with integer synaptic input ``a`` (what the synapses deliver):
``u <- wrap24(rstz(u * (4096 - i_decay)) + (a << 6))``,
``v <- clip24(rstz(v * (4096 - v_decay)) + u + (bias << 6))``,
spike when ``v > vth_mant << 6``, then ``v <- 0``.
``rstz(x) = sign(x) * (|x| >> 12)`` (a product rounded toward zero), ``wrap24`` is Lava's single
wrap of the current into 24 bits and ``clip24`` its saturation of the voltage (lava-nc 0.10
``AbstractPyLifModelFixed``). The voltage of a float model's 1.0 is ``4096 * scale`` (slayer:
``scale = 1``; a Norse or NIR layer mapped onto Loihi: the layer's weight scale ``k``).
"""

from __future__ import annotations

import numpy as np

DECAY_BITS = 12
DECAY_UNIT = 1 << DECAY_BITS  # 4096: a decay of 4096 empties the state every step
ACT_SHIFT_BITS = 6
ACT_SHIFT = 1 << ACT_SHIFT_BITS  # synaptic input, threshold and bias are MSB-aligned by 6 bits
STATE_BITS = 24
STATE_MAX = 1 << (STATE_BITS - 1)  # u wraps and v saturates at +-2^23
VTH_LIMIT = 1 << 17  # vThMant is a 17-bit unsigned mantissa; NetX's default read-out uses 2^17 (never spikes)
WEIGHT_MIN, WEIGHT_MAX = -256, 254  # 8-bit signed mantissa x 2 (slayer's even integers); Lava clips beyond
WEIGHT_BITS = range(2, 9)  # the synapse's weight precisions: a signed mantissa of 2 to 8 bits
MAX_DELAY = 62  # NetX clamps synaptic delays to 0..62
VOLTAGE_UNIT = DECAY_UNIT  # Loihi voltage of 1.0 in a slayer model's units (vThMant 64 << 6)
# A dense layer without a neuron description is NetX's non-leaky integrator read-out:
INTEGRATOR = {"i_decay": 0, "v_decay": DECAY_UNIT, "vth_mant": VTH_LIMIT}


def mantissa_high(bits: int) -> int:
    """The largest signed weight mantissa of ``bits`` bits, ``2^(bits-1) - 1`` (127 at 8 bits)."""
    return (1 << (bits - 1)) - 1


def rstz(x: np.ndarray, keep: int) -> np.ndarray:
    """``x * keep / 4096`` rounded toward zero, for int64 ``x``."""
    prod = np.asarray(x, dtype=np.int64) * int(keep)
    return np.sign(prod) * (np.abs(prod) >> DECAY_BITS)


def wrap_current(u: np.ndarray) -> np.ndarray:
    """Lava's 24-bit wrap of the synaptic current (one wrap, as ``AbstractPyLifModelFixed``)."""
    u = np.asarray(u, dtype=np.int64)
    wrapped = np.where(u > STATE_MAX, u - 2 * STATE_MAX, u)
    return np.where(wrapped <= -STATE_MAX, u + 2 * STATE_MAX, wrapped)


def clip_voltage(v: np.ndarray) -> np.ndarray:
    """Lava's 24-bit saturation of the voltage."""
    return np.clip(np.asarray(v, dtype=np.int64), -STATE_MAX + 1, STATE_MAX - 1)


def wrap_conv(a: np.ndarray) -> np.ndarray:
    """Lava's 24-bit signed wrap of a convolution synapse's output (``signed_clamp(x, 24)``)."""
    base = 1 << STATE_BITS
    return (np.asarray(a, dtype=np.int64) + base // 2) % base - base // 2


def decay_of(keep: float) -> int:
    """The 12-bit Loihi decay whose per-step keep factor ``1 - decay / 4096`` is nearest ``keep``."""
    return int(np.clip(round((1.0 - float(keep)) * DECAY_UNIT), 0, DECAY_UNIT))


def keep_of(decay: int) -> float:
    """The per-step keep factor ``1 - decay / 4096`` of a 12-bit Loihi decay."""
    return 1.0 - int(decay) / DECAY_UNIT
