"""Input-layer currents ``x @ W.T`` of a spiking network, computed the cheapest exact way.

The first layer of an attacked network sees spikes ``x`` ``[R, N]`` (``R = T * B`` rows), which
are binary and, in a real attack, mostly sparse. Three paths give the same currents (up to fp32
summation order; integer weights such as Loihi's sum exactly on every path):

- ``"dense"``: one fp32 GEMM; any input.
- ``"gather"``: per row, the sum of the weight-table rows of its non-zero inputs (weighted unless
  the input is binary), as an ``embedding_bag`` over ``GATHER_BLOCK``-wide column blocks of the
  table so that each block (784 x 256 fp32 = 0.8 MB) stays in a core's L2.
- ``"subsets"`` (binary inputs; the "Method of Four Russians"): the inputs are taken in groups of
  ``SUBSET_BITS`` = 4, a table holds the 16 subset sums of each group's weight rows (built once,
  16/4 = 4x the weights' memory), and each row adds one table row per group that has any spike:
  at most N/4 additions per row, whatever the density (392 -> at most 196 for 784 inputs at 50 %).

The entries of each row (columns of its non-zeros, or table rows of its groups) are found in one
branch-free pass compiled with Numba, at the same cost at any density, after a first
pass that counts them (and checks the input is binary) to choose the path.

The GEMM costs the same at any density; the gather's additions grow with the number of spikes
and win at low density, the subset table's are at most N/4 per row and win at higher density.
The additions run at about the L2 bandwidth (measured costs: README "Benchmarks").
``input_currents`` picks the path from the data of each call.

Layouts: ``x2d`` ``[R, N]``, ``weight`` ``[H, N]`` (``H`` outputs), currents ``[R, H]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit

from nmprivacy.attacks.threads import chunks

GATHER_BLOCK = 256  # table columns per gather pass (plain gather)
SUBSET_BITS = 4  # inputs per subset group: 2^4 = 16 subset sums per group
SUBSET_BLOCK = 128  # table columns per gather pass (subset table: 16x more rows than inputs)
# One subset-table addition costs about 1.5 plain-gather additions (its table is 4x larger); the
# subset path is taken when 1.5 x (groups with a spike) < (spikes).
SUBSET_COST = 1.5
SPARSE_DENSITY = 0.4  # gather below this fraction of non-zeros when no subset table applies
MAX_SUBSET_TABLE_BYTES = 512 * 2**20  # larger input layers use the plain gather / GEMM only
# Weights [N, H] larger than this are not cache-resident: gathers from them run at DRAM bandwidth
# and beat the GEMM only at very low density, and the subset table does not pay. Measured (per
# iteration, faces 10,304-3000-40, 124 MB): BL-v2 gather 1.69 s at 2 % density and 5.4 s at 20 %,
# GEMM 1.64 s; BL-v1 (sparser) gather 0.31 s, GEMM 0.46 s. MNIST / N-MNIST layers (9 / 14 MB) are
# below the limit.
MAX_SPARSE_WEIGHT_BYTES = 64 * 2**20
LARGE_SPARSE_DENSITY = 0.02  # above the limit: gather binary or graded inputs below this density, else the GEMM


@dataclass(frozen=True)
class InputWeights:
    """A layer's weights prepared for every path of :func:`input_currents`."""

    weight_t: torch.Tensor  # [N, H] fp32 contiguous: GEMM operand
    gather_blocks: tuple[torch.Tensor, ...]  # [N, <=GATHER_BLOCK] column blocks of weight_t
    subset_blocks: tuple[torch.Tensor, ...] | None  # [G * 16, <=SUBSET_BLOCK]: row g*16+s = sum of group g's rows in subset s
    groups: int  # G = ceil(N / SUBSET_BITS)
    sparse: bool = True  # weights fit MAX_SPARSE_WEIGHT_BYTES (else: no subset table, gather only below LARGE_SPARSE_DENSITY)

    @property
    def inputs(self) -> int:
        return self.weight_t.shape[0]

    @staticmethod
    def build(weight: torch.Tensor, subsets: bool = True) -> "InputWeights":
        """Prepare ``weight`` ``[H, N]`` (the subset table only if ``subsets``, the weights fit
        ``MAX_SPARSE_WEIGHT_BYTES`` and the table ``MAX_SUBSET_TABLE_BYTES``)."""
        w_t = weight.detach().to(torch.float32).t().contiguous()
        n, h = w_t.shape
        groups = -(-n // SUBSET_BITS)
        size = 2**SUBSET_BITS
        table = None
        sparse = n * h * 4 <= MAX_SPARSE_WEIGHT_BYTES
        if sparse and subsets and groups * size * h * 4 <= MAX_SUBSET_TABLE_BYTES:
            padded = torch.cat([w_t, w_t.new_zeros(groups * SUBSET_BITS - n, h)]).view(groups, SUBSET_BITS, h)
            bits = torch.tensor([[(s >> j) & 1 for j in range(SUBSET_BITS)] for s in range(size)], dtype=torch.float32)
            table = tuple(
                torch.einsum("sj,gjh->gsh", bits, padded[:, :, part].contiguous()).reshape(groups * size, -1).contiguous()
                for part in chunks(h, SUBSET_BLOCK)
            )
        return InputWeights(
            weight_t=w_t,
            gather_blocks=tuple(w_t[:, part].contiguous() for part in chunks(h, GATHER_BLOCK)),
            subset_blocks=table,
            groups=groups,
            sparse=sparse,
        )


def _bag_sum(indices: torch.Tensor, offsets: torch.Tensor, blocks: tuple[torch.Tensor, ...], out: torch.Tensor,
             weights: torch.Tensor | None = None) -> None:
    """``out[r] = sum_i weights_i * table[indices_i]`` over row ``r``'s entries, block by block."""
    start = 0
    for block in blocks:
        width = block.shape[1]
        out[:, start : start + width] = F.embedding_bag(indices, block, offsets, mode="sum", per_sample_weights=weights)
        start += width


@njit(nogil=True, cache=True, error_model="numpy")
def _scan(x: np.ndarray, bits: int) -> tuple[int, int, bool]:
    """Non-zeros of ``x`` ``[R, N]``, groups of ``bits`` inputs whose sum is non-zero (for binary
    ``x``: groups with any spike), and whether every entry is 0 or 1. Branch-free, so vectorised."""
    rows, n = x.shape
    nonzeros, used, other = 0, 0, 0
    for r in range(rows):
        row = x[r]
        for c in range(n):
            v = row[c]
            nonzeros += np.int64(v != 0.0)
            other += np.int64((v != 0.0) & (v != 1.0))
        for start in range(0, n, bits):
            total = np.float32(0.0)
            for c in range(start, min(start + bits, n)):
                total += row[c]
            used += np.int64(total != 0.0)
    return nonzeros, used, other == 0


@njit(nogil=True, cache=True, error_model="numpy")
def _gather_entries(x: np.ndarray, indices: np.ndarray, values: np.ndarray, offsets: np.ndarray) -> None:
    """Per row of ``x`` ``[R, N]``, the columns ``indices`` and values ``values`` of its non-zeros
    (row ``r``'s from ``offsets[r]``; ``indices`` and ``values`` need one spare slot at the end)."""
    rows, n = x.shape
    k = 0
    for r in range(rows):
        offsets[r] = k
        row = x[r]
        for c in range(n):  # written unconditionally, kept when non-zero: no branch to mispredict
            v = row[c]
            indices[k] = c
            values[k] = v
            k += np.int64(v != 0.0)


@njit(nogil=True, cache=True, error_model="numpy")
def subset_entries(x: np.ndarray, bits: int, indices: np.ndarray, offsets: np.ndarray) -> None:
    """Per row of binary ``x`` ``[R, N]``, the subset-table rows ``g * 2^bits + code`` of its groups
    ``g`` with any spike, ``code = sum_j x[bits g + j] 2^j`` (row ``r``'s from ``offsets[r]``;
    ``indices`` needs one spare slot at the end)."""
    rows, n = x.shape
    k = 0
    for r in range(rows):
        offsets[r] = k
        row = x[r]
        for g, start in enumerate(range(0, n, bits)):
            code = 0
            for j in range(min(bits, n - start)):
                code |= np.int64(row[start + j] != 0.0) << j
            indices[k] = (g << bits) | code
            k += np.int64(code != 0)


def input_currents(x2d: torch.Tensor, weights: InputWeights, out: torch.Tensor, sparse: float = SPARSE_DENSITY) -> str:
    """Write ``x2d @ W.T`` ``[R, H]`` into ``out`` for inputs ``x2d`` ``[R, N]`` and return the path
    taken ("dense", "gather" or "subsets"; see the module docstring). ``sparse <= 0`` forces the
    GEMM; otherwise binary inputs take the cheaper of the gather and the subset table, and
    non-binary ones are gathered (weighted) below ``sparse`` density. Weights too large for the
    caches (``not weights.sparse``) gather only below ``LARGE_SPARSE_DENSITY``."""
    if not weights.sparse and sparse > 0:
        sparse = min(sparse, LARGE_SPARSE_DENSITY)
    if sparse <= 0:
        torch.mm(x2d, weights.weight_t, out=out)
        return "dense"
    x = x2d.to(torch.float32).contiguous().numpy()
    rows = x.shape[0]
    nonzeros, used, binary = _scan(x, SUBSET_BITS)
    table = weights.subset_blocks is not None and binary
    offsets = torch.empty(rows, dtype=torch.long)
    if table and SUBSET_COST * used < nonzeros:
        indices = torch.empty(used + 1, dtype=torch.long)
        subset_entries(x, SUBSET_BITS, indices.numpy(), offsets.numpy())
        _bag_sum(indices[:used], offsets, weights.subset_blocks, out)
        return "subsets"
    if table or nonzeros < sparse * x.size:  # with a subset table, binary inputs get here only when sparse
        indices, values = torch.empty(nonzeros + 1, dtype=torch.long), torch.empty(nonzeros + 1)
        _gather_entries(x, indices.numpy(), values.numpy(), offsets.numpy())
        _bag_sum(indices[:nonzeros], offsets, weights.gather_blocks, out, None if binary else values[:nonzeros])
        return "gather"
    torch.mm(x2d, weights.weight_t, out=out)
    return "dense"


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the entry-finding kernels, so that the first
    attack iteration does not pay for it."""
    weights = InputWeights.build(torch.zeros(3, 5))
    out = torch.empty(2, 3)
    for x in (torch.ones(2, 5), torch.eye(2, 5)):  # the subset and the gather path
        input_currents(x, weights, out)
