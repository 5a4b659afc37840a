"""The fast attack engine equals autograd through the models' own forward (both arithmetics)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nmprivacy.attacks import engine
from nmprivacy.attacks.blv2 import BrainLeaksV2
from nmprivacy.attacks.engine import FastLIFOracle, _prepare, input_currents, make_oracle
from nmprivacy.attacks.oracle import AutogradOracle
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.ann import ANN, ANNConfig
from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig
from nmprivacy.presets import BLv2Settings

SHAPE = (1, 5, 6)
CLASSES = 4


def norse_model(seed: int = 0) -> SNNNorse:
    torch.manual_seed(seed)
    return SNNNorse(SNNNorseConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=24, init_gain=6.0)).freeze()


def lava_model(seed: int = 0, current_decay: float = 1.0):
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

    torch.manual_seed(seed)
    cfg = SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=24, weight_scale=4, current_decay=current_decay)
    return SNNLava(cfg).freeze()


def spikes(steps: int = 10, batch: int = 6, p: float = 0.3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, *SHAPE, generator=g) < p).float()


def targets(batch: int = 6) -> torch.Tensor:
    return torch.arange(batch) % CLASSES


def assert_same(fast, ref, grad_rtol: float = 1e-4) -> None:
    assert torch.allclose(fast.loss, ref.loss, atol=1e-6, rtol=0)
    assert torch.allclose(fast.probs, ref.probs, atol=1e-6, rtol=0)
    scale = ref.grad.abs().max()
    assert scale > 0
    assert fast.grad.shape == ref.grad.shape
    assert (fast.grad - ref.grad).abs().max() <= grad_rtol * scale


def test_norse_model_spikes_in_the_test_regime() -> None:
    hidden, _ = norse_model().run(spikes())
    assert 0.02 < hidden.mean() < 0.8  # the reset path is exercised


@pytest.mark.parametrize("loss", ["identity", "cross-entropy"])
@pytest.mark.parametrize("sparse", [0.0, 0.9])
def test_float_engine_equals_autograd(loss: str, sparse: float) -> None:
    model = norse_model()
    x, y = spikes(), targets()
    fast = FastLIFOracle(model, sparse_density=sparse)
    assert_same(fast(x, y, loss), AutogradOracle(model)(x, y, loss))
    assert fast.last_path == ("sparse" if sparse else "dense")


def test_float_engine_relaxed_inputs_and_transposed_layout() -> None:
    model = norse_model(3)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(6, 10, *SHAPE, generator=g).transpose(0, 1)  # non-contiguous [T, B, ...] in [0, 1]
    fast = FastLIFOracle(model)
    assert_same(fast(x, targets()), AutogradOracle(model)(x, targets()))
    assert fast.last_path == "dense"


def test_engine_detects_a_wrong_reset_convention() -> None:
    """Sanity of the comparison: pretending the reset carries no gradient changes the result."""
    model = norse_model()
    x, y = spikes(), targets()
    wrong = FastLIFOracle(model)
    wrong.layers = [replace(layer, reset_detached=False) for layer in wrong.layers]
    diff = (wrong(x, y).grad - AutogradOracle(model)(x, y).grad).abs().max()
    assert diff > 1e-3 * AutogradOracle(model)(x, y).grad.abs().max()


@pytest.mark.parametrize("loss", ["identity", "cross-entropy"])
@pytest.mark.parametrize("current_decay", [1.0, 0.25])
def test_loihi_engine_equals_slayer_autograd(loss: str, current_decay: float) -> None:
    model = lava_model(current_decay=current_decay)
    x, y = spikes(), targets()
    fast = FastLIFOracle(model)
    hidden, membrane = model.run(x)
    assert 0.02 < hidden.mean() < 0.8
    assert torch.equal(fast.membrane(x), membrane)  # exact fixed-point forward
    assert_same(fast(x, y, loss), AutogradOracle(model)(x, y, loss))


def test_sparse_row_gather_equals_gemm() -> None:
    torch.manual_seed(0)
    layer = _prepare(norse_model().lif_layers()[0])
    x = (torch.rand(40, layer.weight.shape[1]) < 0.1).float()
    buffer = torch.empty(40, layer.size)
    sparse, path = input_currents(x, layer, buffer, 0.5)
    assert path == "sparse"
    dense, path = input_currents(x, layer, buffer, 0.0)
    assert path == "dense" and dense.data_ptr() == buffer.data_ptr()
    assert torch.allclose(sparse, x @ layer.weight.t(), atol=1e-5)
    assert torch.allclose(dense, sparse, atol=1e-5)
    relaxed = x * torch.rand(x.shape)  # sparse but not binary: weighted gather
    gathered, path = input_currents(relaxed, layer, buffer, 0.5)
    assert path == "sparse" and torch.allclose(gathered, relaxed @ layer.weight.t(), atol=1e-5)


def test_blv2_trajectory_is_the_same_with_either_oracle() -> None:
    model = norse_model()
    settings = BLv2Settings(population=3, iterations=4, init=0.3, lr=0.05)
    runs = [
        BrainLeaksV2(settings, oracle=oracle, steps=8).run(model, [0, 2, 3], seed=7)
        for oracle in (AutogradOracle, make_oracle)
    ]
    ref, fast = runs
    assert ref.probabilities.sub(settings.init).abs().max() > 1e-3  # X_p moved
    assert torch.allclose(fast.probabilities, ref.probabilities, atol=1e-4)
    assert torch.allclose(fast.loss_curve, ref.loss_curve, atol=1e-5)


def test_make_oracle_picks_the_engine_only_for_lif_models() -> None:
    assert isinstance(make_oracle(norse_model()), FastLIFOracle)
    ann = ANN(ANNConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=8)).freeze()
    assert isinstance(make_oracle(ann), AutogradOracle)
    with pytest.raises(NmprivacyError, match="lif_layers"):
        FastLIFOracle(ann)
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

    slayer_surrogate = SNNLava(SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=8, surrogate="slayer")).freeze()
    assert isinstance(make_oracle(slayer_surrogate), AutogradOracle)  # no LIFLayer description exists
    assert isinstance(make_oracle(lava_model()), FastLIFOracle)


def test_wrong_input_shape_is_a_user_error() -> None:
    with pytest.raises(NmprivacyError, match="does not fit"):
        FastLIFOracle(norse_model())(torch.zeros(5, 2, 1, 4, 4), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("workers", [1, 2])
def test_chunked_neuron_updates_on_worker_threads_equal_autograd(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setattr(engine, "MAX_CHUNK", 20)  # many chunks, uneven last one
    for model in (norse_model(), lava_model()):
        x, y = spikes(), targets()
        fast = FastLIFOracle(model, workers=workers)
        assert_same(fast(x, y), AutogradOracle(model)(x, y))


def test_loihi_engine_equals_netx_emulation_autograd(tmp_path) -> None:
    from hw_export.netx_emulation import load_netx
    from hw_export.netx_export import export_netx

    path = tmp_path / "net.net"
    export_netx(lava_model(), path)
    emulation = load_netx(path)
    x, y = spikes(), targets()
    fast = FastLIFOracle(emulation)
    assert torch.equal(fast.membrane(x), emulation(x))
    for loss in ("identity", "cross-entropy"):
        assert_same(fast(x, y, loss), AutogradOracle(emulation)(x, y, loss), grad_rtol=1e-5)
