"""The machine's limit: FLOPs an attack iteration needs and the peak rate of a large fp32 GEMM.

FLOPs counted: what the dense algorithm needs, 2 x MACs of every dense layer forward
(input->hidden, hidden->classes) and of the input-gradient backward (dL/dz1 = dL/dI2 @ W2 per
sample; dL/dx = dL/dI1 @ W1 per sample for BL-v1 / MI-Face, but for BL-v2 only on the
population-weighted sum of dL/dI1, i.e. over T x classes rows, plus the weighting); no weight
gradients, no elementwise neuron updates; dense even when the sparse input path skips zeros.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from benchmarks.attack_cost.config import MNIST


@dataclass(frozen=True)
class GemmPeak:
    """Best fp32 GEMM rate (GFLOP/s) per ``"m x k x n"`` shape; ``peak`` is the largest."""

    rates: dict[str, float]

    @property
    def peak(self) -> float:
        return max(self.rates.values())

    def to_json(self) -> dict[str, float]:
        """The rates per shape and ``"peak"``."""
        return {**self.rates, "peak": self.peak}


def measure_gemm_peak(shapes: Sequence[tuple[int, int, int]] = ((2048, 2048, 2048),), repeats: int = 3) -> GemmPeak:
    """Best fp32 GEMM rate of each ``(m, k, n)`` shape over ``repeats`` products."""
    rates: dict[str, float] = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        c = torch.empty(m, n)
        torch.mm(a, b, out=c)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=c)
            best = min(best, time.perf_counter() - start)
        rates[f"{m}x{k}x{n}"] = 2.0 * m * k * n / best / 1e9
    return GemmPeak(rates)


def measure_start_peak() -> GemmPeak:
    """The peak measured before the attacks: a 2048^3 square and the MNIST BL-v2 input-layer shape."""
    return measure_gemm_peak(((2048, 2048, 2048), (MNIST.steps * MNIST.classes * MNIST.population, MNIST.inputs, MNIST.hidden)))


def snn_iteration_flops(steps: int, batch: int, inputs: int, hidden: int, classes: int, groups: int | None = None) -> float:
    """FLOPs (2 x MACs) an iteration needs for ``inputs -> hidden -> classes`` over ``steps * batch``
    rows (the ANN is ``steps = 1``): the forward and dL/dz1 = dL/dI2 @ W2 per row; the input
    gradient dL/dI1 @ W1 per row, or, for a population of ``groups`` weighted sums (BL-v2), the
    weighting (``steps * batch * hidden`` MACs) and dL/dI1 @ W1 over ``steps * groups`` rows."""
    macs_forward = steps * batch * (inputs * hidden + hidden * classes)
    macs_backward = steps * batch * hidden * classes
    if groups is None:
        macs_backward += steps * batch * hidden * inputs
    else:
        macs_backward += steps * batch * hidden + steps * groups * hidden * inputs
    return 2.0 * (macs_forward + macs_backward)


def roofline_fields(gflop: float, seconds: float, peak_gflops: float, dense: bool = False, dense_seconds: float | None = None) -> dict[str, Any]:
    """The roofline of an iteration of ``gflop`` GFLOP that took ``seconds``, at ``peak_gflops``:
    ``roofline_s_per_iter``, ``roofline_fraction``, with ``dense`` also ``roofline_fraction_dense``
    (of the GEMM-only engine's ``dense_seconds``; None if not timed), and ``achieved_gflops``."""
    roof = gflop / peak_gflops
    out: dict[str, Any] = {"roofline_s_per_iter": roof, "roofline_fraction": roof / seconds}
    if dense:
        out["roofline_fraction_dense"] = roof / dense_seconds if dense_seconds else None
    out["achieved_gflops"] = gflop / seconds
    return out
