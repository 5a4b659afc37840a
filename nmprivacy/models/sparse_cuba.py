"""Training path for stacks of slayer CUBA Dense blocks whose input is binary spikes.

slayer's CPU path (``lava.lib.dl.slayer``) computes each block's synaptic currents as a dense
``conv3d`` (one fp32 GEMM over every input, spiking or not), then runs the neuron's integer
leaky integrators as a Python loop over time of int64 tensor ops, twice (current, voltage), and
its backward as another Python loop; on N-MNIST-shaped batches nearly all of a step is those
loops and temporaries. This path computes the same thing from the spikes themselves:

- forward currents: a block's input is binary, so its currents are the sums of the 8-bit weight
  rows of the active inputs (``nmprivacy.attacks.currents``'s gather), summed as integers
  (int8 weights ``w * 32``; int16 sums where no row has more than ``NARROW_ROWS`` active inputs,
  else int32) in the same kernel that runs the integer CUBA dynamics;
- weight gradient: ``dL/dW[h, i] = sum over rows where input i spikes of dL/dz[row, h]``, a sparse
  outer product: each active input adds its row's current gradient into its weight column, in
  the same kernel that runs the backward through time (no dL/dz plane is stored for the input block);
- hidden blocks: their spikes are found from the saved voltages and passed on as lists of active
  neurons, so the next block gathers over them too (for ``hidden -> 10``: spikes x 10 additions
  where the GEMM costs rows x hidden x 10); the gradient reaching a hidden block,
  ``dL/dz_next @ W_next``, is computed inside its backward kernel when the next block is narrow
  (``FUSE_WIDTH``), else by one GEMM;
- dropout (training): a hidden block's delayed spikes times a per-sample keep mask (0 or
  1 / (1 - p), drawn as slayer's forward hook draws it, ``DropoutMasks``) make the next block's
  input a float plane, so that block runs its GEMM paths, and the gradient reaching the hidden
  block is ``(dL/dz_next @ W_next) * mask`` (no fused kernel); for p = 0.5 the scaled currents
  are exact, for other p they equal slayer's conv3d up to fp32 summation order;
- dense inputs: above ``DENSE_FORWARD`` input density a block's currents come from one fp32 GEMM
  (exact: binary inputs times multiples of 2/64), and above ``DENSE_BACKWARD`` its weight gradient
  is ``dL/dz^T @ x`` (a GEMM is cheaper per operation than the gather and the scatter; measured
  crossings in the constants' comments).

The scatter is done per sample: dL/dz of the sample's steps is kept (``[T, block]``, in cache) and
each input active in the sample adds the sum over its active steps to its weight row once (an
N-MNIST pixel fires ~5 times per recording, a rate-coded digit pixel ~12 times in 25 steps).
Every plane is read and written once per kernel, each kernel works on one block of output
columns (its weight block, states and gradient accumulators stay in cache), and the column
blocks are shared out dynamically among worker threads (``nmprivacy.attacks.threads.SerialPool``:
no OpenMP barrier, so a descheduled thread on a shared machine delays only the blocks it holds)
whose number follows the process's thread plan (``nmprivacy.resources``).

Semantics are slayer's exactly (checked by ``tests/test_sparse_training.py`` against slayer):

- weights: slayer's ``pre_hook_fx`` (``quantize_8bit``: ``round(W / unit) * unit``, unit 2/64,
  clamped to [-256, 254]/64; or ``cuba_blocks.LoihiWeights`` for fewer bits: unit ``2^e / 64`` with
  the layer's exponent e, clamped to the mantissa range [low, high]) is applied in one pass that
  writes ``Wq / unit`` as int8 (``layer_of`` runs only blocks whose hook is exactly one of those);
  its backward, the round's straight-through gradient and the clamp's mask (zero where the
  rounded weight is outside [-128, 127], or [low, high], units), is applied in the pass that
  writes dL/dW;
- forward (integers, as ``_li_dynamics_fwd``): ``u_t = rstz(u_{t-1} (4096 - iDecay), 12) + 4096 z_t``,
  ``v_t = rstz(v_{t-1} (4096 - vDecay), 12) + u_t``, both int64 (no 24-bit wrap: slayer has
  none), each passed through float32 as slayer stores them; reset to 0 where
  ``float32(v_t) >= float32((th + eps) * 4096)``; the block's spike is ``v_t / 4096 > th``
  (fast sigmoid) or ``>= th + eps`` (slayer's surrogate); each hidden block's spikes reach the
  next block one step later (``delay_shift``), and ``d_h`` steps more for neuron ``h`` of a block
  with slayer's axonal ``delay`` (``floor(d_h)``, as its ``shift``); the last block returns its
  pre-reset voltage;
- backward (as ``_li_dynamics_bwd``): float32 leaky integrators ``g_t = d g_{t+1} + grad_t`` with
  ``d = 1 - decay / 4096`` through the voltage, then the current (no reset term); the spike's
  surrogate is the ``SurrogateCubaNeuron``'s (``nmprivacy.models.surrogates``: fast sigmoid
  ``1 / (1 + slope |v - th|)^2``, arctan, sigmoid, triangle, spike-rate escape, straight-through)
  or slayer's ``scale / (2 tau) exp(-|v - th - eps| / tau)``; the gradient reaching a block with
  axonal delays is moved back ``d_h`` steps per neuron, and the delays' gradient is slayer's
  (``delay_gradient``).

Forward spikes and voltages are bit-identical to slayer's; gradients equal slayer's up to fp32
summation order (tests: rtol 1e-5). Inputs must be binary (0/1) and on the CPU: ``run_stack``
returns None otherwise and the caller runs slayer.

Layouts: the input is ``[T, B, N]`` (``R = T * B`` rows, row ``r = t * B + b``); planes are
``[R, H]`` float32 C-contiguous; int8 weights ``[N, H]`` (transposed: a row per input); weight
gradients are accumulated as ``[N, H]`` and returned in slayer's ``[H, N, 1, 1, 1]``. Active
lists are CSR: ``idx`` (int32 columns) and ``offsets`` (int64, ``R + 1``) over source rows; a
block reads row ``r - shift`` (``shift = B`` for the one-step delay, rows ``t = 0`` empty).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from numba import njit

from nmprivacy.attacks.threads import SerialPool, chunks
from nmprivacy.network.loihi import VOLTAGE_UNIT as STATE_SCALE  # slayer CUBA's s_scale: integer state per float unit (4096)

FORWARD_BLOCK = 512  # output columns per forward task (int8 weight block [N, 512]: 1.2 MB at N = 2312)
BACKWARD_BLOCK = 256  # output columns per backward task (a sample's dL/dz [T, 256] stays in L1/L2)
ROW_BLOCK = 2048  # rows per list-building task
DENSE_FORWARD = 0.4  # input density above which a block's currents are one fp32 GEMM instead of a gather (crossing ~0.4-0.5 at 784-3000, T=25)
DENSE_BACKWARD = 0.2  # input density above which its weight gradient is one GEMM (crossing ~0.2 for i.i.d. spikes; rate-coded images repeat pixels over time and gain more)
NARROW_ROWS = 255  # rows with at most this many active inputs sum int8 weights exactly in int16 (255 x 128 < 2^15)
FUSE_WIDTH = 64  # a block this narrow passes its gradient down inside the kernel below (no [R, H] plane)


# ----------------------------------------------------------------------------------------------
# kernels (Numba; nogil so that the worker threads run them concurrently; cached on disk)


@njit(nogil=True, cache=True, error_model="numpy")
def _count_active(x: np.ndarray, counts: np.ndarray, r0: int, r1: int) -> int:
    """``counts[r]`` = non-zeros of row ``r`` of ``x`` ``[R, N]`` for rows ``r0 <= r < r1``;
    returns how many entries are neither 0 nor 1."""
    other = 0
    for r in range(r0, r1):
        row = x[r]
        c = 0
        for j in range(row.shape[0]):
            v = row[j]
            c += np.int64(v != 0.0)
            other += np.int64((v != 0.0) & (v != 1.0))
        counts[r] = c
    return other


@njit(nogil=True, cache=True, error_model="numpy")
def _fill_active(x: np.ndarray, offsets: np.ndarray, idx: np.ndarray, r0: int, r1: int) -> None:
    """Column indices of the non-zeros of rows ``r0 <= r < r1`` of ``x`` into ``idx`` from ``offsets[r]``."""
    for r in range(r0, r1):
        row = x[r]
        k = offsets[r]
        for j in range(row.shape[0]):
            if row[j] != 0.0:
                idx[k] = j
                k += 1


@njit(nogil=True, cache=True, error_model="numpy")
def _count_spikes(v: np.ndarray, counts: np.ndarray, r0: int, r1: int, threshold: np.float32, inclusive: bool) -> None:
    """``counts[r]`` = neurons of row ``r`` of voltages ``v`` ``[R, H]`` that spike
    (``v > threshold``, or ``>=`` when ``inclusive``)."""
    for r in range(r0, r1):
        row = v[r]
        c = 0
        if inclusive:
            for j in range(row.shape[0]):
                c += np.int64(row[j] >= threshold)
        else:
            for j in range(row.shape[0]):
                c += np.int64(row[j] > threshold)
        counts[r] = c


@njit(nogil=True, cache=True, error_model="numpy")
def _fill_spikes(v: np.ndarray, offsets: np.ndarray, idx: np.ndarray, r0: int, r1: int, threshold: np.float32, inclusive: bool) -> None:
    """Indices of the spiking neurons of rows ``r0 <= r < r1`` into ``idx`` from ``offsets[r]``."""
    for r in range(r0, r1):
        row = v[r]
        k = offsets[r]
        for j in range(row.shape[0]):
            if (row[j] >= threshold) if inclusive else (row[j] > threshold):
                idx[k] = j
                k += 1


@njit(nogil=True, cache=True, error_model="numpy")
def _sample_lists(
    idx: np.ndarray, offsets: np.ndarray, delay: int, steps: int, batch: int, width: int,
    s_off: np.ndarray, s_inputs: np.ndarray, s_toff: np.ndarray, s_times: np.ndarray,
) -> None:
    """Per sample ``b``, the inputs active at any step and, for each, its steps: inputs
    ``s_inputs[s_off[b]:s_off[b + 1]]`` (ascending), input ``e``'s steps ``s_times[s_toff[e]:s_toff[e + 1]]``.
    Step ``t`` reads source row ``(t - delay) * batch + b`` of the CSR lists (``idx``, ``offsets``);
    ``s_inputs`` / ``s_toff`` / ``s_times`` need room for every entry (+1 for ``s_toff``)."""
    count = np.zeros(width, np.int64)
    start = np.zeros(width, np.int64)
    e = 0
    q = 0
    for b in range(batch):
        s_off[b] = e
        for t in range(delay, steps):
            src = (t - delay) * batch + b
            for k in range(offsets[src], offsets[src + 1]):
                count[idx[k]] += 1
        first = e
        for i in range(width):  # the sample's inputs in order, each with room for its steps
            if count[i] > 0:
                s_inputs[e] = i
                s_toff[e] = q
                start[i] = q
                q += count[i]
                count[i] = 0
                e += 1
        for t in range(delay, steps):
            src = (t - delay) * batch + b
            for k in range(offsets[src], offsets[src + 1]):
                i = idx[k]
                s_times[start[i]] = t
                start[i] += 1
        s_toff[e] = q
        for f in range(first, e):  # nothing left behind for the next sample
            start[s_inputs[f]] = 0
    s_off[batch] = e


@njit(nogil=True, cache=True, error_model="numpy")
def _rstz(p: np.int64) -> np.int64:
    """slayer's ``right_shift_to_zero(p, 12)``: ``p / 4096`` truncated towards zero."""
    q = abs(p) >> 12
    return -q if p < 0 else q


@njit(nogil=True, cache=True, error_model="numpy")
def _quantise_columns(w: np.ndarray, inv_unit: np.float32, lo: np.float32, hi: np.float32, out: np.ndarray, h0: int, h1: int) -> int:
    """slayer's ``quantize_8bit`` (``lo``, ``hi`` = -128, 127; ``LoihiWeights``: its mantissa range)
    of the raw weights ``w`` ``[H, N]`` for rows ``h0 <= h < h1``, in weight units and transposed:
    ``out[i, h] = clip(rint(w[h, i] / unit), lo, hi)`` (int8; ``rint`` rounds half to even as
    ``torch.round``); returns how many entries were not finite."""
    inputs = w.shape[1]
    bad = 0
    for start in range(h0, h1, 64):  # 64 rows of w at a time: their cache lines stay in L1
        stop = min(start + 64, h1)
        for i in range(inputs):
            row = out[i, start:stop]
            for h in range(start, stop):
                q = np.rint(w[h, i] * inv_unit)
                bad += np.int64(not np.isfinite(q))
                row[h - start] = np.int8(min(max(q, lo), hi))
    return bad


@njit(nogil=True, cache=True, error_model="numpy")
def _masked_transpose(src: np.ndarray, transposed: bool, w: np.ndarray, inv_unit: np.float32, lo: np.float32, hi: np.float32,
                      out: np.ndarray, h0: int, h1: int) -> None:
    """The gradient through slayer's ``quantize_8bit`` for rows ``h0 <= h < h1``: ``out[h, i] = g[h, i]``
    where the rounded weight ``rint(w[h, i] / unit)`` lies in [lo, hi] (the clamp's own test),
    else 0 (its round passes the gradient straight through). ``g`` is ``src`` ``[H, N]``, or its
    transpose when ``transposed`` (``src`` ``[N, H]``, read in 64 x 64 tiles that stay in L1)."""
    inputs = w.shape[1]
    for a in range(h0, h1, 64):
        a1 = min(a + 64, h1)
        for i0 in range(0, inputs, 64):
            i1 = min(i0 + 64, inputs)
            for h in range(a, a1):
                row, wr = out[h], w[h]
                for i in range(i0, i1):
                    q = np.rint(wr[i] * inv_unit)
                    g = src[i, h] if transposed else src[h, i]
                    row[i] = g if (q >= lo) & (q <= hi) else np.float32(0.0)


@njit(nogil=True, cache=True, error_model="numpy")
def _forward_columns(
    idx: np.ndarray, offsets: np.ndarray, shift: int, w: np.ndarray, cur: np.ndarray, dense: bool, narrow: bool, c0: int, c1: int,
    steps: int, batch: int, drive_scale: np.int64, keep_u: np.int64, keep_v: np.int64, reset: np.float32, v_out: np.ndarray,
) -> None:
    """Columns ``c0:c1`` of one block: synaptic currents and slayer's integer CUBA dynamics
    (module docstring), pre-reset voltages (float units) into ``v_out`` ``[R, H]``.

    Currents: gathered from the int8 weights ``w`` ``[N, H]`` (units of ``unit``; ``drive_scale =
    4096 unit``, an integer) over the active inputs of source row ``r - shift`` (summed in int16
    when ``narrow``: no row has more than ``NARROW_ROWS`` active inputs), or, when ``dense``, read
    from ``cur`` ``[R, H]`` (fp32 currents of a GEMM, exact multiples of ``unit``)."""
    width = c1 - c0
    acc = np.zeros(width, np.int32)
    acc16 = np.zeros(width, np.int16)
    drive = np.zeros(width, np.int64)
    u = np.zeros(width, np.int64)
    v = np.zeros(width, np.int64)
    scale = np.float32(STATE_SCALE)
    synapse = keep_u != 0
    for b in range(batch):
        u[:] = 0
        v[:] = 0
        for t in range(steps):
            r = t * batch + b
            if dense:
                zr = cur[r, c0:c1]
                for j in range(width):
                    drive[j] = np.int64(scale * zr[j])  # slayer: (4096 * z).to(int64)
            elif narrow:
                acc16[:] = 0
                src = r - shift
                if src >= 0:
                    for k in range(offsets[src], offsets[src + 1]):
                        row = w[idx[k], c0:c1]
                        for j in range(width):  # int16 arithmetic: 32 lanes per AVX-512 add
                            acc16[j] = np.int16(acc16[j] + np.int16(row[j]))
                for j in range(width):
                    drive[j] = np.int64(acc16[j]) * drive_scale
            else:
                acc[:] = 0
                src = r - shift
                if src >= 0:
                    for k in range(offsets[src], offsets[src + 1]):
                        row = w[idx[k], c0:c1]
                        for j in range(width):  # int32 arithmetic (Numba would widen int32 + int8 to int64)
                            acc[j] = np.int32(acc[j] + np.int32(row[j]))
                for j in range(width):
                    drive[j] = np.int64(acc[j]) * drive_scale
            out = v_out[r, c0:c1]
            for j in range(width):
                un = drive[j]
                if synapse:
                    un += _rstz(u[j] * keep_u)
                u[j] = un
                vn = _rstz(v[j] * keep_v) + np.int64(np.float32(un))  # slayer stores u as float32 / 4096
                vf = np.float32(vn)
                out[j] = vf / scale
                v[j] = 0 if vf >= reset else vn


DIRECT, PLANE, FUSED = 0, 1, 2  # what reaches a block in the backward (``_backward_columns``)
# the spike's surrogate in the backward kernel: nmprivacy.models.surrogates.KERNEL_CODES, and slayer's exponential
FAST, ARCTAN, SIGMOID, TRIANGLE, ESCAPE, STRAIGHT = 0, 1, 2, 3, 4, 5
SLAYER_EXP = 9


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _surrogate(code: int, x: np.float32, p0: np.float32, p1: np.float32) -> np.float32:
    """dS/dx at ``x = v - th`` for the surrogates other than the fast sigmoid and slayer's
    exponential (their loops are specialised), in float32 as ``surrogates.surrogate_derivative``."""
    one = np.float32(1.0)
    if code == ARCTAN:
        z = np.float32(np.pi * np.float64(p0)) * x / np.float32(2.0)
        return (p0 / np.float32(2.0)) / (one + z * z)
    if code == SIGMOID:
        sg = one / (one + np.exp(-(p0 * x)))
        return p0 * sg * (one - sg)
    if code == TRIANGLE:
        return p0 if x < np.float32(0.0) else -p0
    if code == ESCAPE:
        return p1 * np.exp(-p0 * abs(x - one))
    return one  # STRAIGHT


@njit(nogil=True, cache=True, error_model="numpy")
def _backward_columns(
    mode: int, up: np.ndarray, up_shift: int, gzn: np.ndarray, wn: np.ndarray, v: np.ndarray,
    s_off: np.ndarray, s_inputs: np.ndarray, s_toff: np.ndarray, s_times: np.ndarray, scatter: bool, c0: int, c1: int, steps: int, batch: int,
    dv: np.float32, du: np.float32, threshold: np.float32, code: int, slope: np.float32, p1: np.float32, coef: np.float32,
    tau: np.float32, gwt: np.ndarray, gz: np.ndarray, write_gz: bool,
) -> None:
    """Columns ``c0:c1`` of one block: backward through time (module docstring) and the sparse
    weight gradient.

    What reaches the block (``mode``): ``DIRECT``, ``up`` ``[R, H]`` is dL/d(pre-reset voltage)
    (read-out); ``PLANE``, ``up`` row ``r + up_shift`` is dL/d(this block's spike at row r);
    ``FUSED``, that gradient is ``gzn[r + up_shift] @ wn`` (the next block's dL/dz ``[R, C]`` and
    quantised weights ``[C, H]``), computed here. Spike gradients are zero past the last step and
    are multiplied by the surrogate at ``v``. With ``scatter``, ``gwt[i, c] += dL/dz[r, c]`` for
    every input ``i`` active in row ``r``, one sample at a time (``sample_lists``): dL/dz of the
    sample's steps is kept, and each input active in the sample adds the sum over its active
    steps once. With ``write_gz``, dL/dz goes into ``gz`` ``[R, H]``."""
    width = c1 - c0
    cv = np.zeros(width, np.float32)
    cu = np.zeros(width, np.float32)
    fused = np.zeros(width, np.float32)
    acc = np.zeros(width, np.float32)
    kept = np.zeros((steps, width), np.float32)  # the sample's dL/dz, step by step
    one = np.float32(1.0)
    for b in range(batch):
        cv[:] = 0.0
        cu[:] = 0.0
        for t in range(steps - 1, -1, -1):
            r = t * batch + b
            if mode == DIRECT:
                ur = up[r, c0:c1]
                for j in range(width):
                    cv[j] = dv * cv[j] + ur[j]
                    cu[j] = du * cu[j] + cv[j]
            elif t + 1 < steps:
                if mode == FUSED:
                    fused[:] = 0.0
                    grow = gzn[r + up_shift]
                    for c in range(grow.shape[0]):
                        gc = grow[c]
                        wr = wn[c, c0:c1]
                        for j in range(width):
                            fused[j] += gc * wr[j]
                    ur = fused
                else:
                    ur = up[r + up_shift, c0:c1]
                vr = v[r, c0:c1]
                if code == SLAYER_EXP:
                    for j in range(width):
                        g = coef * np.exp(-abs(vr[j] - threshold) / tau) * ur[j]
                        cv[j] = dv * cv[j] + g
                        cu[j] = du * cu[j] + cv[j]
                elif code == FAST:
                    for j in range(width):
                        d = one + slope * abs(vr[j] - threshold)
                        g = ur[j] * (one / (d * d))
                        cv[j] = dv * cv[j] + g
                        cu[j] = du * cu[j] + cv[j]
                else:
                    for j in range(width):
                        g = ur[j] * _surrogate(code, vr[j] - threshold, slope, p1)
                        cv[j] = dv * cv[j] + g
                        cu[j] = du * cu[j] + cv[j]
            else:  # a hidden block's last step: its spike reaches no block within T steps, dL/dz = 0
                cu[:] = 0.0
            if write_gz:
                gr = gz[r, c0:c1]
                for j in range(width):
                    gr[j] = cu[j]
            if scatter:
                kept[t] = cu
        if scatter:
            for e in range(s_off[b], s_off[b + 1]):
                first, last = s_toff[e], s_toff[e + 1]
                acc[:] = kept[s_times[first]]
                for q in range(first + 1, last):
                    kt = kept[s_times[q]]
                    for j in range(width):
                        acc[j] += kt[j]
                row = gwt[s_inputs[e], c0:c1]
                for j in range(width):
                    row[j] += acc[j]


# ----------------------------------------------------------------------------------------------
# worker threads


_POOL: SerialPool | None = None
_POOL_LOCK = threading.Lock()


def workers() -> int:
    """Worker threads for the kernels: torch's thread count in the calling thread, which the
    process's thread plan sets (``nmprivacy.resources``; 1 inside the attack engine's serial workers)."""
    return max(1, torch.get_num_threads())


def _map(fn: Callable[[int, slice], None], parts: Sequence[slice]) -> None:
    """``fn(i, part)`` for every part, dynamically shared among ``workers()`` threads."""
    global _POOL
    n = workers()
    if n == 1 or len(parts) == 1:
        for i, part in enumerate(parts):
            fn(i, part)
        return
    with _POOL_LOCK:
        if _POOL is None or _POOL.size != n:
            _POOL = SerialPool(n, "nmprivacy-cuba")
        pool = _POOL
    pool.map(fn, list(parts))


# ----------------------------------------------------------------------------------------------
# layers and lists


@dataclass(frozen=True)
class CubaLayer:
    """One slayer CUBA Dense block as the kernels run it (module docstring).

    ``spiking``: a hidden block (spikes, one-step delay); else the read-out (pre-reset voltage)."""

    keep_u: int  # 4096 - iDecay (0: no synaptic memory)
    keep_v: int  # 4096 - vDecay
    reset: float  # float32((th + eps) * 4096): reset where float32(v) >= reset
    threshold: float  # spike test on v / 4096 (float32): v > threshold, or >= when inclusive
    inclusive: bool
    du: float  # backward decays 1 - decay / 4096 (float32, as slayer computes them)
    dv: float
    exponential: bool  # slayer's surrogate (else the neuron's, ``code``)
    slope: float  # the surrogate's first parameter (fast sigmoid slope)
    coef: float  # slayer surrogate: scale / 2 / tau (float32)
    tau: float
    unit: float  # weight quantisation step (2 / w_scale; LoihiWeights: 2^e / w_scale for the current weights)
    spiking: bool
    code: int = FAST  # the surrogate (``_surrogate``; SLAYER_EXP when ``exponential``)
    p1: float = 0.0  # its second parameter (spike-rate escape's k)
    low: int = -128  # weight mantissa range (the quantiser's clamp)
    high: int = 127
    delays: np.ndarray | None = field(default=None, compare=False)  # a hidden block's axonal delay per neuron, whole steps (int64 [H])
    delay_grad_scale: float = 1.0  # slayer's Delay.grad_scale


def layer_of(block: torch.nn.Module, spiking: bool) -> CubaLayer | None:
    """The ``CubaLayer`` of a slayer ``block.cuba.Dense`` block, None if the kernels cannot run
    it exactly (not a plain Dense CUBA block with slayer's 8-bit weights and binary spikes)."""
    from lava.lib.dl.slayer.neuron import cuba

    from nmprivacy.models.cuba_blocks import SurrogateCubaNeuron, block_delays, weight_quantiser
    from nmprivacy.models.surrogates import KERNEL_CODES

    neuron, synapse = getattr(block, "neuron", None), getattr(block, "synapse", None)
    if not isinstance(neuron, cuba.Neuron) or synapse is None or getattr(synapse, "complex", False):
        return None
    if neuron.persistent_state or neuron.graded_spike or neuron.drop is not None or neuron.norm is not None or not neuron.shared_param:
        return None
    if neuron.shape is not None and tuple(neuron.shape) != (synapse.weight.shape[0],):
        return None
    if getattr(block, "mask", None) is not None or getattr(block, "count_log", False):
        return None
    delays, delay = None, getattr(block, "delay", None)
    if delay is not None:  # slayer's axon.Delay after the one-step delay: a hidden block's, one delay per neuron, whole steps
        values = getattr(delay, "delay", None)
        if (not spiking or not getattr(delay, "init", False) or not isinstance(values, torch.Tensor) or getattr(delay, "sampling_time", 1) != 1
                or values.numel() != synapse.weight.shape[0] or not bool(torch.isfinite(values).all())):
            return None
        delays = block_delays(block).numpy()
    if spiking and not block.delay_shift:
        return None
    if getattr(synapse, "weight_norm_enabled", False) or tuple(synapse.weight.shape[2:]) != (1, 1, 1):
        return None
    if neuron.current_decay.numel() != 1 or neuron.voltage_decay.numel() != 1 or neuron.s_scale != STATE_SCALE:
        return None
    quantiser = weight_quantiser(synapse, neuron)
    if quantiser is None:
        return None
    unit, low, high = quantiser.step(synapse.weight), quantiser.low, quantiser.high
    f32 = np.float32
    with torch.no_grad():
        i_decay = float(torch.round(neuron.current_decay.detach().float()).item())  # slayer's quantize() of the decay
        v_decay = float(torch.round(neuron.voltage_decay.detach().float()).item())
    if STATE_SCALE * unit != round(STATE_SCALE * unit):
        return None
    fast = isinstance(neuron, SurrogateCubaNeuron)  # spikes when v > th (else slayer's v >= th + eps)
    params = (*neuron.surrogate_params, 0.0, 0.0) if fast else (0.0, 0.0)
    th_eps = neuron.threshold + neuron.threshold_eps
    tau = f32(neuron.tau_rho * 100)  # slayer's TAU_RHO_MULT, SCALE_RHO_MULT
    scale = f32(neuron.scale_rho * 0.1)
    return CubaLayer(
        keep_u=int(STATE_SCALE - i_decay),
        keep_v=int(STATE_SCALE - v_decay),
        reset=float(f32(th_eps * STATE_SCALE)),
        threshold=float(f32(neuron.threshold if fast else th_eps)),
        inclusive=not fast,
        du=float(f32(1) - f32(i_decay) / f32(STATE_SCALE)),
        dv=float(f32(1) - f32(v_decay) / f32(STATE_SCALE)),
        exponential=not fast,
        slope=float(f32(params[0])),
        coef=float(scale / f32(2) / tau),
        tau=float(tau),
        unit=unit,
        spiking=spiking,
        code=KERNEL_CODES[neuron.surrogate] if fast else SLAYER_EXP,
        p1=float(f32(params[1])),
        low=low,
        high=high,
        delays=delays,
        delay_grad_scale=float(getattr(delay, "grad_scale", 1.0)) if delay is not None else 1.0,
    )


@dataclass
class ActiveLists:
    """CSR lists of the active inputs of every source row (module docstring)."""

    idx: np.ndarray  # int32 column of each active entry
    offsets: np.ndarray  # int64 [R + 1]
    shift: int  # a block reads source row r - shift for its row r

    @property
    def count(self) -> int:
        return int(self.offsets[-1])


def _lists(rows: int, count: Callable[[np.ndarray, int, int], object], fill: Callable[[np.ndarray, np.ndarray, int, int], None], shift: int) -> tuple[ActiveLists, int]:
    """Two passes over row blocks (count, then fill) on the workers; returns the lists and the
    sum of what ``count`` returned per block (0 where it returns None)."""
    counts = np.zeros(rows + 1, np.int64)
    parts = chunks(rows, ROW_BLOCK)
    extra = [0] * len(parts)

    def run_count(i: int, part: slice) -> None:
        extra[i] = int(count(counts[1:], part.start, part.stop) or 0)

    _map(run_count, parts)
    offsets = np.cumsum(counts)
    idx = np.empty(int(offsets[-1]), np.int32)
    _map(lambda i, part: fill(offsets, idx, part.start, part.stop), parts)
    return ActiveLists(idx, offsets, shift), sum(extra)


def input_lists(x2d: np.ndarray) -> ActiveLists | None:
    """Active lists of a binary input ``[R, N]`` (float32), None if any entry is not 0 or 1."""
    lists, other = _lists(x2d.shape[0], lambda c, a, b: _count_active(x2d, c, a, b), lambda o, i, a, b: _fill_active(x2d, o, i, a, b), 0)
    return None if other else lists


def spike_lists(v: np.ndarray, layer: CubaLayer, batch: int) -> ActiveLists:
    """The spikes of a hidden block (voltages ``v`` ``[R, H]``) as the next block's input lists,
    one step later (``shift = batch``), and each neuron ``d_h`` steps more where the block has
    axonal delays (``layer.delays``)."""
    th, inc = np.float32(layer.threshold), bool(layer.inclusive)
    if layer.delays is not None and layer.delays.any():
        spikes = (v >= th) if inc else (v > th)
        moved = input_lists(per_neuron_shift(spikes.astype(np.float32), layer.delays, batch))  # 0/1 by construction
        return ActiveLists(moved.idx, moved.offsets, batch)
    return _lists(v.shape[0], lambda c, a, b: _count_spikes(v, c, a, b, th, inc), lambda o, i, a, b: _fill_spikes(v, o, i, a, b, th, inc), batch)[0]


def per_neuron_shift(plane: np.ndarray, steps: np.ndarray, batch: int) -> np.ndarray:
    """``plane`` ``[R, H]`` float32 (rows ``t * batch + b``) with column ``h`` moved ``steps[h]``
    time steps later (``steps[h] < 0``: earlier); what leaves the window is dropped, zeros enter."""
    out = np.zeros_like(plane)
    _shift_columns(plane, np.asarray(steps, np.int64) * batch, out)
    return out


@njit(nogil=True, cache=True, error_model="numpy")
def _shift_columns(plane: np.ndarray, rows_by: np.ndarray, out: np.ndarray) -> None:
    """``out[r + rows_by[h], h] = plane[r, h]`` where the target row exists (row-major sweep)."""
    rows, width = plane.shape
    for r in range(rows):
        src = plane[r]
        for h in range(width):
            q = r + rows_by[h]
            if 0 <= q < rows:
                out[q, h] = src[h]


@njit(nogil=True, cache=True, error_model="numpy")
def _delay_gradient(up: np.ndarray, delayed: np.ndarray, batch: int, out: np.ndarray) -> None:
    """``out[h] = sum over rows r of up[r, h] (delayed[r - batch, h] - delayed[r, h])`` (float64 sums)."""
    rows, width = up.shape
    acc = np.zeros(width, np.float64)
    for r in range(rows):
        u, o = up[r], delayed[r]
        if r >= batch:
            prev = delayed[r - batch]
            for h in range(width):
                acc[h] += np.float64(u[h]) * (np.float64(prev[h]) - np.float64(o[h]))
        else:
            for h in range(width):
                acc[h] -= np.float64(u[h]) * np.float64(o[h])
    for h in range(width):
        out[h] = np.float32(acc[h])


def int8_weights(w: np.ndarray, unit: float, low: int = -128, high: int = 127) -> np.ndarray | None:
    """slayer's quantisation of the raw weights ``w`` ``[H, N]`` in units of ``unit`` (mantissas
    clamped to [low, high]), as int8 ``[N, H]`` (transposed: a row per input); None if a weight is
    not finite (slayer then runs, and propagates it)."""
    out = np.empty((w.shape[1], w.shape[0]), np.int8)
    parts = chunks(w.shape[0], 512)
    bad = [0] * len(parts)
    inv = np.float32(1.0 / unit)

    def run(i: int, part: slice) -> None:
        bad[i] = int(_quantise_columns(w, inv, np.float32(low), np.float32(high), out, part.start, part.stop))

    _map(run, parts)
    return None if sum(bad) else out


def quantised_float(w8: np.ndarray, unit: float) -> torch.Tensor:
    """The quantised weights ``[H, N]`` float32 (slayer's ``pre_hook_fx(W)``) from their int8 ``[N, H]``."""
    return torch.from_numpy(w8).t().to(torch.float32).mul_(unit).contiguous()


def weight_gradient(grad: np.ndarray, transposed: bool, w: np.ndarray, unit: float, low: int = -128, high: int = 127) -> torch.Tensor:
    """dL/dW ``[H, N]`` from dL/dWq (``grad`` ``[H, N]``, or ``[N, H]`` when ``transposed``)
    through slayer's quantiser (``_masked_transpose``; mantissa range [low, high])."""
    out = np.empty(w.shape, np.float32)
    inv = np.float32(1.0 / unit)
    lo, hi = np.float32(low), np.float32(high)
    _map(lambda _, part: _masked_transpose(grad, transposed, w, inv, lo, hi, out, part.start, part.stop), chunks(w.shape[0], 256))
    return torch.from_numpy(out)


def times_mask(plane: np.ndarray, keep: np.ndarray, batch: int) -> np.ndarray:
    """``plane`` ``[R, N]`` (rows ``t * B + b``) multiplied in place by the per-sample ``keep`` ``[B, N]``; returns it."""
    plane.reshape(-1, batch, keep.shape[1])[:] *= keep[None]
    return plane


@dataclass
class LayerInput:
    """A block's input: its active lists and, when a dense GEMM is used, the 0/1 plane ``[R, N]``
    with the delay applied (built on first use). With ``keep`` (dropout on the block below: the
    per-sample mask ``[B, N]``, 0 or 1 / (1 - p)), ``plane`` is the lists' plane times the mask and
    the block runs its GEMM paths (its input is no longer binary)."""

    lists: ActiveLists
    width: int  # N
    plane: np.ndarray | None = None
    samples: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    keep: np.ndarray | None = None

    @property
    def density(self) -> float:
        rows = len(self.lists.offsets) - 1
        return self.lists.count / max(1, rows * self.width)

    def dense(self) -> np.ndarray:
        """The input as a float32 plane ``[R, N]`` (row r holds source row ``r - shift``): 0/1, or
        times ``keep`` when the lists were given with a dropout mask (``dropped``)."""
        if self.plane is None:
            rows = len(self.lists.offsets) - 1
            out = np.zeros((rows, self.width), np.float32)
            src = np.repeat(np.arange(rows, dtype=np.int64), np.diff(self.lists.offsets)) + self.lists.shift
            keep = src < rows
            out.reshape(-1)[src[keep] * self.width + self.lists.idx[keep]] = 1.0
            self.plane = out
        return self.plane

    @classmethod
    def dropped(cls, lists: ActiveLists, width: int, keep: np.ndarray, batch: int) -> LayerInput:
        """The input of a block whose source neurons pass through dropout: the spikes of ``lists``
        times the per-sample ``keep`` ``[B, N]`` (held over time, as slayer's hook multiplies them)."""
        return cls(lists, width, times_mask(cls(lists, width).dense(), keep, batch), keep=keep)

    def sample_lists(self, steps: int, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per sample, the inputs active at any step and their steps (``_sample_lists``), built on first use."""
        if self.samples is None:
            n = self.lists.count
            out = (np.empty(batch + 1, np.int64), np.empty(n, np.int32), np.empty(n + 1, np.int64), np.empty(n, np.int32))
            _sample_lists(self.lists.idx, self.lists.offsets, self.lists.shift // batch, steps, batch, self.width, *out)
            self.samples = out
        return self.samples


@dataclass(frozen=True)
class Upstream:
    """The gradient reaching a block in the backward (``_backward_columns``'s ``mode``): ``up``
    for ``DIRECT`` / ``PLANE``; the next block's dL/dz ``gzn`` ``[R, C]`` and weights ``wn``
    ``[C, H]`` for ``FUSED``."""

    mode: int
    up: np.ndarray
    gzn: np.ndarray
    wn: np.ndarray


_EMPTY = np.zeros((1, 1), np.float32)


def _forward_layer(inp: LayerInput, w8: np.ndarray, layer: CubaLayer, steps: int, batch: int) -> np.ndarray:
    """Pre-reset voltages ``[R, H]`` of one block (``w8`` its quantised weights, int8 ``[N, H]``);
    the currents are gathered, or a GEMM above ``DENSE_FORWARD`` input density."""
    rows, width = steps * batch, w8.shape[1]
    dense = inp.keep is not None or inp.density > DENSE_FORWARD
    cur = _EMPTY
    if dense:  # exact for binary inputs (multiples of unit); a dropout-scaled input: fp32 as slayer's conv
        cur = torch.mm(torch.from_numpy(inp.dense()), quantised_float(w8, layer.unit).t()).numpy()
    v = np.empty((rows, width), np.float32)
    lists = inp.lists
    narrow = not dense and int(np.diff(lists.offsets).max(initial=0)) <= NARROW_ROWS
    drive = np.int64(round(STATE_SCALE * layer.unit))
    args = (np.int64(layer.keep_u), np.int64(layer.keep_v), np.float32(layer.reset))

    def run(_: int, part: slice) -> None:
        _forward_columns(lists.idx, lists.offsets, lists.shift, w8, cur, dense, narrow, part.start, part.stop, steps, batch, drive, *args, v)

    _map(run, chunks(width, FORWARD_BLOCK))
    return v


def _backward_layer(upstream: Upstream, v: np.ndarray, inp: LayerInput, layer: CubaLayer, steps: int, batch: int,
                    w: np.ndarray | None, want_gz: bool) -> tuple[torch.Tensor | None, np.ndarray | None]:
    """One block's gradient for its raw weights ``w`` ``[H, N]`` (None: not wanted) and dL/dz
    ``[R, H]`` (if ``want_gz``): the sparse outer product over active inputs, or a GEMM above
    ``DENSE_BACKWARD`` density, then slayer's quantiser's backward."""
    want_w = w is not None
    rows, width = steps * batch, v.shape[1]
    dense = want_w and (inp.keep is not None or inp.density > DENSE_BACKWARD)
    scatter = want_w and not dense
    write_gz = want_gz or dense
    gwt = np.zeros((inp.width, width), np.float32) if scatter else _EMPTY
    gz = np.empty((rows, width), np.float32) if write_gz else _EMPTY
    samples = inp.sample_lists(steps, batch) if scatter else (np.zeros(batch + 1, np.int64), np.zeros(1, np.int32), np.zeros(2, np.int64), np.zeros(1, np.int32))
    f32 = np.float32
    params = (f32(layer.dv), f32(layer.du), f32(layer.threshold), int(layer.code), f32(layer.slope), f32(layer.p1), f32(layer.coef), f32(layer.tau))

    def run(_: int, part: slice) -> None:
        _backward_columns(upstream.mode, upstream.up, batch, upstream.gzn, upstream.wn, v, *samples, scatter,
                          part.start, part.stop, steps, batch, *params, gwt, gz, write_gz)

    _map(run, chunks(width, BACKWARD_BLOCK))
    grad = None
    if dense:
        grad = weight_gradient(torch.mm(torch.from_numpy(gz).t(), torch.from_numpy(inp.dense())).numpy(), False, w, layer.unit, layer.low, layer.high)
    elif scatter:
        grad = weight_gradient(gwt, True, w, layer.unit, layer.low, layer.high)
    return grad, (gz if want_gz else None)


class _SparseCuba(torch.autograd.Function):
    """The stack's read-out voltage ``[R, C]`` from the input lists and the blocks' raw weights
    (``weights[i]``: slayer's ``[H, N, 1, 1, 1]`` Parameter; its ``quantize_8bit`` is applied here),
    followed by the delay Parameters of the blocks with axonal delays (``plan.delayed``, in order;
    the delays themselves are read from ``plan.layers``)."""

    @staticmethod
    def forward(ctx, plan: StackPlan, *params: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        weights = params[: len(plan.layers)]
        w8 = [int8_weights(_raw(w), layer.unit, layer.low, layer.high) for w, layer in zip(weights, plan.layers)]
        if any(w is None for w in w8):
            raise _NotExact()
        inputs, planes = [plan.first], []
        for li, layer in enumerate(plan.layers):
            v = _forward_layer(inputs[-1], w8[li], layer, plan.steps, plan.batch)
            planes.append(v)
            if li + 1 < len(plan.layers):
                lists = spike_lists(v, layer, plan.batch)
                if plan.dropout is None:
                    inputs.append(LayerInput(lists, v.shape[1]))
                else:  # the mask slayer's hook would draw for this block ([B, H, 1]: held over time)
                    keep = plan.dropout((plan.batch, v.shape[1], 1)).detach().to(torch.float32).reshape(plan.batch, -1).contiguous().numpy()
                    inputs.append(LayerInput.dropped(lists, v.shape[1], keep, plan.batch))
        ctx.plan, ctx.inputs, ctx.planes, ctx.w8 = plan, inputs, planes, w8
        ctx.save_for_backward(*params)  # autograd checks they are not changed in place before the backward
        plan.hidden = [inp.lists for inp in inputs[1:]]
        return torch.from_numpy(planes[-1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        plan: StackPlan = ctx.plan
        params = ctx.saved_tensors
        n = len(plan.layers)
        weights = params[:n]
        grads: list[torch.Tensor | None] = [None] * len(params)
        wants = [ctx.needs_input_grad[1 + li] for li in range(n)]
        delay_slot = {li: n + k for k, li in enumerate(plan.delayed)}  # position of a delayed block's Parameter in ``params``
        wants_delay = {li: ctx.needs_input_grad[1 + k] for li, k in delay_slot.items()}
        upstream = Upstream(DIRECT, grad.detach().to(torch.float32).contiguous().numpy(), _EMPTY, _EMPTY)
        for li in range(n - 1, -1, -1):
            want_w = wants[li]
            below = li > 0 and (any(wants[:li]) or any(wants_delay.get(k, False) for k in range(li)))
            if not want_w and not below:
                continue
            if want_w and plan.per_sample is not None:  # DP-SGD: per-sample gradients; its optimiser forms the step from them
                _, gz = _backward_layer(upstream, ctx.planes[li], ctx.inputs[li], plan.layers[li], plan.steps, plan.batch, None, True)
                plan.per_sample(plan.params[li], per_sample_gradient(gz, ctx.inputs[li], plan.layers[li], _raw(weights[li]), plan.steps, plan.batch))
                grad_w = None
            else:
                grad_w, gz = _backward_layer(upstream, ctx.planes[li], ctx.inputs[li], plan.layers[li], plan.steps, plan.batch,
                                             _raw(weights[li]) if want_w else None, below)
            if grad_w is not None:
                grads[li] = grad_w.reshape(weights[li].shape)
            if below:  # dL/d(delayed spikes of the block below) = dL/dz @ Wq, fused into its kernel for a narrow block
                wn = quantised_float(ctx.w8[li], plan.layers[li].unit)
                lower = plan.layers[li - 1]
                keep = ctx.inputs[li].keep  # dropout on the block below: its spikes' gradient times the mask
                if lower.delays is not None or keep is not None:
                    up = torch.mm(torch.from_numpy(gz), wn).numpy()
                    if lower.delays is not None and wants_delay[li - 1]:  # slayer's Delay backward (a masked plane: the mask is constant over time)
                        grads[delay_slot[li - 1]] = delay_gradient(up, ctx.inputs[li].dense(), plan.batch, lower.delay_grad_scale)
                    if keep is not None:
                        times_mask(up, keep, plan.batch)
                    if lower.delays is not None:  # the plane moved back per neuron
                        up = per_neuron_shift(up, -lower.delays, plan.batch)
                    upstream = Upstream(PLANE, up, _EMPTY, _EMPTY)
                elif wn.shape[0] <= FUSE_WIDTH:
                    upstream = Upstream(FUSED, _EMPTY, gz, wn.numpy())
                else:
                    upstream = Upstream(PLANE, torch.mm(torch.from_numpy(gz), wn).numpy(), _EMPTY, _EMPTY)
        return (None, *grads)


def _raw(weight: torch.Tensor) -> np.ndarray:
    """A block's raw weights as float32 ``[H, N]`` (a view of the parameter where it already is one)."""
    return weight.detach().reshape(weight.shape[0], -1).to(torch.float32).contiguous().numpy()


def delay_gradient(up: np.ndarray, delayed: np.ndarray, batch: int, grad_scale: float = 1.0) -> torch.Tensor:
    """slayer's gradient of an axonal delay per neuron ``[H]``: ``sum over b, t of dL/dO[t] (O[t-1] - O[t])``
    times ``grad_scale``, for the delayed output ``O`` (``delayed`` ``[R, H]``, as the next block
    reads it) and ``dL/dO`` (``up`` ``[R, H]``); ``axon.delay._delayFunction.backward``."""
    out = np.empty(up.shape[1], np.float32)
    _delay_gradient(np.ascontiguousarray(up, np.float32), np.ascontiguousarray(delayed, np.float32), int(batch), out)
    return torch.from_numpy(out * np.float32(grad_scale))


class _NotExact(Exception):
    """A weight is not finite: the caller runs slayer instead."""


PerSampleSink = Callable[[torch.Tensor, torch.Tensor], None]  # (weight Parameter, its per-sample gradients [B, *shape])
DropoutMasks = Callable[[tuple[int, ...]], torch.Tensor]  # shape [B, H, 1] -> keep mask (0 or 1 / (1 - p)), as slayer's hook draws it


def per_sample_gradient(gz: np.ndarray, inp: LayerInput, layer: CubaLayer, w: np.ndarray, steps: int, batch: int) -> torch.Tensor:
    """Each sample's gradient of its own loss for one block's raw weights, ``[B, H, N]``, when the
    batch loss is the mean of the samples' losses: ``B * sum over t of dL/dz[t, b]^T x[t, b]``
    (``gz`` ``[R, H]`` and the block's input ``[R, N]``, rows ``t * B + b``), through slayer's
    quantiser (zero where the rounded weight is outside the mantissa range, as ``weight_gradient``)."""
    g = torch.from_numpy(gz).reshape(steps, batch, -1).mul(batch)  # Opacus's "mean" convention: backprops times B
    x = torch.from_numpy(inp.dense()).reshape(steps, batch, -1)
    out = torch.bmm(g.permute(1, 2, 0), x.permute(1, 0, 2))  # [B, H, T] @ [B, T, N]
    mask = weight_gradient(np.ones(w.shape, np.float32), False, w, layer.unit, layer.low, layer.high)
    return out if bool((mask == 1).all()) else out.mul_(mask)


@dataclass
class StackPlan:
    """One forward call: the blocks' ``CubaLayer``, first input and sizes."""

    layers: list[CubaLayer]
    first: LayerInput
    steps: int
    batch: int
    hidden: list[ActiveLists] | None = None  # filled by the forward: each hidden block's spikes (delayed)
    per_sample: PerSampleSink | None = None  # DP-SGD: receives each block's per-sample weight gradients instead of autograd
    params: list[torch.Tensor] | None = None  # the blocks' weight Parameters (for ``per_sample``)
    dropout: DropoutMasks | None = None  # training with dropout: draws each hidden block's mask, in block order

    @property
    def delayed(self) -> list[int]:
        """The blocks with axonal delays, whose delay Parameters follow the weights in ``_SparseCuba``."""
        return [i for i, layer in enumerate(self.layers) if layer.delays is not None]


def run_stack(blocks: Sequence[torch.nn.Module], x: torch.Tensor, want_hidden: bool = False,
              per_sample: PerSampleSink | None = None, dropout: DropoutMasks | None = None) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
    """Output voltage ``[T, B, C]`` (float units, pre-reset) of slayer Dense ``blocks`` (hidden
    blocks then a read-out block, as ``SNNLava``) for binary spikes ``x`` ``[T, B, ...]``, with
    weight gradients through autograd; and, if ``want_hidden``, each hidden block's delayed spikes
    ``[T, B, H]`` (no gradient). None when this path cannot run it exactly (input not binary or
    not on the CPU, input gradients wanted, or a block the kernels do not describe): the caller
    uses slayer. ``per_sample`` (DP-SGD): the backward hands each block's per-sample weight
    gradients (``per_sample_gradient``) to it instead of accumulating the weights' ``.grad``.
    ``dropout`` (training): called once per hidden block, in order, for its keep mask ``[B, H, 1]``;
    the block's delayed spikes are multiplied by it before the next block (``LayerInput.dropped``)."""
    if per_sample is not None and any(blk.delay is not None for blk in blocks if hasattr(blk, "delay")):
        return None  # learned delays have no per-sample gradient here (slayer's path then refuses them)
    if x.device.type != "cpu" or x.requires_grad or x.dim() < 3 or not blocks:
        return None
    layers = [layer_of(blk, spiking=i + 1 < len(blocks)) for i, blk in enumerate(blocks)]
    if any(layer is None for layer in layers) or any(blk.synapse.weight.device.type != "cpu" for blk in blocks):
        return None
    steps, batch = int(x.shape[0]), int(x.shape[1])
    x2d = x.detach().reshape(steps * batch, -1).to(torch.float32).contiguous()
    if x2d.shape[1] != blocks[0].synapse.weight.shape[1]:
        return None
    lists = input_lists(x2d.numpy())
    if lists is None:
        return None
    for blk in blocks:  # what slayer's first forward records (export_hdf5 writes the neuron's shape)
        if blk.neuron.shape is None:
            blk.neuron.shape = torch.Size([blk.synapse.weight.shape[0]])
            blk.neuron.num_neurons = int(blk.synapse.weight.shape[0])
    weights = [blk.synapse.weight for blk in blocks]
    plan = StackPlan(layers, LayerInput(lists, x2d.shape[1], x2d.numpy()), steps, batch, per_sample=per_sample, params=weights,  # type: ignore[arg-type]
                     dropout=dropout)
    delays = [blocks[i].delay.delay for i in plan.delayed]
    try:
        out = _SparseCuba.apply(plan, *weights, *delays)
    except _NotExact:
        return None
    hidden = []
    if want_hidden:
        hidden = [torch.from_numpy(LayerInput(lists, w.shape[0]).dense()).reshape(steps, batch, -1) for lists, w in zip(plan.hidden or [], weights[:-1])]
    return out.reshape(steps, batch, -1), hidden
