"""Every input-current path equals the GEMM; the subset table is exact for integer weights."""

from __future__ import annotations

import pytest
import torch

from nmprivacy.attacks.currents import SUBSET_BITS, InputWeights, input_currents, subset_entries


def binary(rows: int, inputs: int, p: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(rows, inputs, generator=g) < p).float()


@pytest.mark.parametrize("inputs", [30, 32, 784])  # 30: the last subset group is padded
@pytest.mark.parametrize("p,sparse,path", [(0.05, 0.4, "gather"), (0.6, 0.4, "subsets"), (0.95, 0.4, "subsets"), (0.3, 0.0, "dense")])
def test_paths_equal_the_gemm(inputs: int, p: float, sparse: float, path: str) -> None:
    torch.manual_seed(1)
    w = torch.randn(300, inputs)  # 300 outputs: several gather / subset column blocks
    x = binary(50, inputs, p)
    out = torch.full((50, 300), float("nan"))
    assert input_currents(x, InputWeights.build(w), out, sparse) == path
    torch.testing.assert_close(out, x @ w.t(), atol=1e-4, rtol=1e-5)


def test_integer_weights_sum_exactly_on_every_path() -> None:
    torch.manual_seed(2)
    w = torch.randint(-255, 256, (200, 784)).float() * 64  # Loihi-sized integers
    weights = InputWeights.build(w)
    for p in (0.02, 0.5, 0.9):
        x = binary(40, 784, p, seed=3)
        out = torch.empty(40, 200)
        input_currents(x, weights, out)
        assert torch.equal(out, (x.double() @ w.double().t()).float())


def test_non_binary_inputs_take_the_weighted_gather_or_the_gemm() -> None:
    torch.manual_seed(3)
    w = torch.randn(64, 40)
    x = binary(30, 40, 0.1) * torch.rand(30, 40) * 3  # sparse graded values: a subset table does not apply
    out = torch.empty(30, 64)
    assert input_currents(x, InputWeights.build(w), out) == "gather"
    torch.testing.assert_close(out, x @ w.t(), atol=1e-5, rtol=1e-5)
    dense = torch.rand(30, 40) + 0.5
    assert input_currents(dense, InputWeights.build(w), out) == "dense"
    torch.testing.assert_close(out, dense @ w.t(), atol=1e-5, rtol=1e-5)
    x[0, 0] = 2.0  # one count of 2 among binary spikes: not binary
    assert input_currents((x > 0).float() + (x == 2.0).float(), InputWeights.build(w), out) in ("gather", "dense")
    torch.testing.assert_close(out, ((x > 0).float() + (x == 2.0).float()) @ w.t(), atol=1e-5, rtol=1e-5)


def test_all_zero_inputs_and_codes() -> None:
    w = torch.randn(10, 8)
    out = torch.full((3, 10), float("nan"))
    assert input_currents(torch.zeros(3, 8), InputWeights.build(w), out) == "gather"
    assert torch.equal(out, torch.zeros(3, 10))
    x = torch.tensor([[1.0, 0, 1, 1, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0, 0]]).numpy()
    indices, offsets = torch.zeros(4, dtype=torch.long), torch.zeros(2, dtype=torch.long)
    subset_entries(x, SUBSET_BITS, indices.numpy(), offsets.numpy())  # group g, code c: table row 16 g + c
    assert indices[:3].tolist() == [1 + 4 + 8, 16 + 8, 16 + 2] and offsets.tolist() == [0, 2]


def test_subset_table_can_be_left_out() -> None:
    weights = InputWeights.build(torch.randn(10, 8), subsets=False)
    assert weights.subset_blocks is None
    out = torch.empty(4, 10)
    x = binary(4, 8, 0.9)
    assert input_currents(x, weights, out, 0.4) == "dense"


def test_weights_too_large_for_the_caches_gather_only_when_very_sparse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above MAX_SPARSE_WEIGHT_BYTES no subset table is built, and inputs are gathered only below
    LARGE_SPARSE_DENSITY; denser ones take the GEMM."""
    import nmprivacy.attacks.currents as currents

    torch.manual_seed(4)
    w = torch.randn(300, 784)
    x = binary(50, 784, 0.05)
    out = torch.empty(50, 300)
    assert input_currents(x, InputWeights.build(w), out) == "gather"
    monkeypatch.setattr(currents, "MAX_SPARSE_WEIGHT_BYTES", 784 * 300 * 4 - 1)
    large = InputWeights.build(w)
    assert not large.sparse and large.subset_blocks is None
    assert input_currents(x, large, out) == "dense"
    torch.testing.assert_close(out, x @ w.t(), atol=1e-4, rtol=1e-5)
    rare = binary(50, 784, 0.005)
    assert input_currents(rare, large, out) == "gather"
    torch.testing.assert_close(out, rare @ w.t(), atol=1e-4, rtol=1e-5)
