"""The fast attack engine equals autograd through the models' own forward (both arithmetics)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nmprivacy.attacks.blv2 import BLv2State, BrainLeaksV2, blv2_update_, class_generator, population_weights
from nmprivacy.encoding import bernoulli_spikes
from nmprivacy.attacks.engine import FastLIFOracle, _prepare, make_oracle
from nmprivacy.attacks.lif_kernels import BLOCK
from nmprivacy.attacks.oracle import AutogradOracle, population_gradient
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


# (input-current path, sparse_density, spike probability): each path of nmprivacy.attacks.currents
PATHS = [("dense", 0.0, 0.3), ("gather", 0.9, 0.05), ("subsets", 0.9, 0.6)]


@pytest.mark.parametrize("loss", ["identity", "cross-entropy"])
@pytest.mark.parametrize("path,sparse,p", PATHS)
def test_float_engine_equals_autograd(loss: str, path: str, sparse: float, p: float) -> None:
    model = norse_model()
    x, y = spikes(p=p, batch=12), targets(12)
    fast = FastLIFOracle(model, sparse_density=sparse)
    assert_same(fast(x, y, loss), AutogradOracle(model)(x, y, loss))
    assert fast.last_path == path


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
@pytest.mark.parametrize("path,sparse,p", PATHS)
def test_loihi_engine_equals_slayer_autograd(loss: str, current_decay: float, path: str, sparse: float, p: float) -> None:
    model = lava_model(current_decay=current_decay)
    x, y = spikes(p=p, batch=12), targets(12)
    fast = FastLIFOracle(model, sparse_density=sparse)
    hidden, membrane = model.run(x)
    assert 0.01 < hidden.mean() < 0.9
    assert torch.equal(fast.membrane(x), membrane)  # exact fixed-point forward on every input path
    assert_same(fast(x, y, loss), AutogradOracle(model)(x, y, loss))
    assert fast.last_path == path


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


def test_population_gradient_is_the_weighted_sum_of_per_sample_gradients() -> None:
    x, y = spikes(batch=6), targets(6)
    weights_fn = lambda loss, g: torch.softmax(-loss.reshape(-1, 3) * 5, dim=1)  # noqa: E731  K=2 groups of P=3
    for model in (norse_model(), lava_model()):
        for oracle in (FastLIFOracle(model), AutogradOracle(model)):
            per_sample = AutogradOracle(model)(x, y)
            out = oracle.population_gradient(x, y, 2, weights_fn)
            w = weights_fn(per_sample.loss, slice(0, 2))
            assert not torch.allclose(w, torch.full_like(w, 1 / 3), atol=1e-3)  # the weights matter
            expected = (per_sample.grad.reshape(10, 2, 3, *SHAPE) * w.reshape(1, 2, 3, 1, 1, 1)).sum(dim=2)
            assert out.grad.shape == (10, 2, *SHAPE) and torch.allclose(out.weights, w, atol=1e-6)
            assert (out.grad - expected).abs().max() <= 1e-4 * expected.abs().max()
            assert torch.allclose(out.loss, per_sample.loss, atol=1e-6)
            with pytest.raises(ValueError, match="expected \\(\\d, 3\\)"):
                oracle.population_gradient(x, y, 2, lambda loss, g: loss.reshape(-1, 1))


class PlainOracle:
    """An oracle with per-sample gradients only (no ``population_gradient`` method)."""

    def __init__(self, model) -> None:
        self.inner = AutogradOracle(model)

    def __call__(self, x, targets, loss="identity"):
        return self.inner(x, targets, loss)


def test_population_gradient_falls_back_to_the_per_sample_oracle() -> None:
    model = norse_model()
    x, y = spikes(batch=6), targets(6)
    weights_fn = lambda loss, g: torch.softmax(-loss.reshape(-1, 2), dim=1)  # noqa: E731
    plain = population_gradient(PlainOracle(model), x, y, 3, weights_fn)
    fast = population_gradient(FastLIFOracle(model), x, y, 3, weights_fn)
    assert plain.grad.shape == (10, 3, *SHAPE)
    assert (plain.grad - fast.grad).abs().max() <= 1e-4 * plain.grad.abs().max()
    s = BLv2Settings(population=2, iterations=2, init=0.3, lr=0.05, keep="last")
    runs = [BrainLeaksV2(s, oracle=o, steps=8).run(model, [0, 1, 3], seed=2) for o in (PlainOracle, FastLIFOracle)]
    assert torch.allclose(runs[0].probabilities, runs[1].probabilities, atol=1e-5)


def per_sample_blv2(model, oracle, s: BLv2Settings, classes: list[int], steps: int, seed: int) -> list[torch.Tensor]:
    """X_p after each iteration of BL-v2 in its previous formulation: per-sample gradients of the
    full loss (sparsity gradient added to each), then their weighted sum."""
    gens = [class_generator(seed, c) for c in classes]
    k, p = len(classes), s.population
    shape = (k, steps, *SHAPE)
    state = BLv2State(xp=torch.full(shape, s.init), r=torch.zeros(shape), nu=torch.zeros(shape))
    pop_targets = torch.tensor(classes).repeat_interleave(p)
    trajectory = []
    for _ in range(s.iterations):
        samples = torch.stack([bernoulli_spikes(state.xp[i].expand(p, *shape[1:]), gens[i]) for i in range(k)])
        out = oracle(samples.reshape(k * p, *shape[1:]).transpose(0, 1), pop_targets, s.loss)
        losses = out.loss.reshape(k, p) + s.sparsity * samples.reshape(k, p, -1).mean(dim=2)
        grads = out.grad.transpose(0, 1).reshape(k, p, *shape[1:]) + s.sparsity / state.xp[0].numel()
        w = population_weights(losses, s.variant)
        state = blv2_update_(state, (w.reshape(k, p, 1, 1, 1, 1) * grads).sum(dim=1), s)
        trajectory.append(state.xp.clone())  # the update works in place
    return trajectory


@pytest.mark.parametrize("variant", ["paper", "reference"])
@pytest.mark.parametrize("oracle", [AutogradOracle, FastLIFOracle], ids=["autograd", "engine"])
def test_blv2_trajectory_equals_the_per_sample_formulation(variant: str, oracle) -> None:
    model = norse_model()
    s = BLv2Settings(population=3, iterations=4, init=0.3, lr=0.05, sparsity=0.5, variant=variant, keep="last")
    old = per_sample_blv2(model, oracle(model), s, [0, 2, 3], steps=8, seed=7)
    assert (old[-1] - s.init).abs().max() > 1e-3  # X_p moved
    threads = torch.get_num_threads()
    for n in (1, s.iterations):
        new = BrainLeaksV2(replace(s, iterations=n), oracle=oracle, steps=8).run(model, [0, 2, 3], seed=7)
        assert torch.allclose(new.probabilities, old[n - 1], atol=1e-5)
        assert torch.get_num_threads() == threads  # the loop's one-thread setting (parallel oracles) is undone


def test_make_oracle_picks_the_engine_only_for_lif_models() -> None:
    assert isinstance(make_oracle(norse_model()), FastLIFOracle)
    ann = ANN(ANNConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=8)).freeze()
    assert isinstance(make_oracle(ann), AutogradOracle)
    with pytest.raises(NmprivacyError, match="no LIF layer description"):
        FastLIFOracle(ann)
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

    slayer_surrogate = SNNLava(SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=8, surrogate="slayer")).freeze()
    assert isinstance(make_oracle(slayer_surrogate), AutogradOracle)  # no LIFLayer description exists
    assert isinstance(make_oracle(lava_model()), FastLIFOracle)


def test_wrong_input_shape_is_a_user_error() -> None:
    with pytest.raises(NmprivacyError, match="does not fit"):
        FastLIFOracle(norse_model())(torch.zeros(5, 2, 1, 4, 4), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_kernel_blocks_and_batch_shards_equal_autograd(workers: int) -> None:
    batch = 90  # 90 x 24 hidden neurons: 2160 columns, past two of the LIF kernels' blocks, uneven last one
    assert batch * 24 > 2 * BLOCK
    threads = torch.get_num_threads()
    weights_fn = lambda loss, g: torch.softmax(-loss.reshape(-1, 30), dim=1)  # noqa: E731
    for model in (norse_model(), lava_model()):
        x, y = spikes(batch=batch), targets(batch)
        fast = FastLIFOracle(model, workers=workers)
        assert_same(fast(x, y), AutogradOracle(model)(x, y))
        pop, ref = fast.population_gradient(x, y, 3, weights_fn), AutogradOracle(model).population_gradient(x, y, 3, weights_fn)
        assert (pop.grad - ref.grad).abs().max() <= 1e-4 * ref.grad.abs().max()
        assert torch.get_num_threads() == threads  # shards' one-thread setting does not leak to the caller
    with pytest.raises(NmprivacyError, match="workers=0 is invalid"):
        FastLIFOracle(norse_model(), workers=0)


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


@pytest.mark.parametrize("patience", [0, 1])
def test_blv2_lanes_give_the_single_lane_result(patience: int) -> None:
    model = norse_model()
    s = BLv2Settings(population=3, iterations=6, init=0.3, lr=0.05, sparsity=0.5, plateau_patience=patience, plateau_tol=0.05)
    runs = {w: BrainLeaksV2(s, oracle=lambda m, w=w: FastLIFOracle(m, workers=w), steps=8).run(model, [0, 1, 2, 3], seed=5) for w in (1, 2, 3)}
    assert FastLIFOracle(model, workers=3).lanes == 3
    for w in (2, 3):  # classes split into w parts, each on its own lane
        assert runs[w].iterations == runs[1].iterations
        assert torch.allclose(runs[w].probabilities, runs[1].probabilities, atol=1e-5)
        assert torch.allclose(runs[w].confidence_curve, runs[1].confidence_curve, atol=1e-5)
        assert torch.equal(runs[w].reconstructions, runs[1].reconstructions)
    if patience:
        assert runs[1].iterations < s.iterations  # the plateau stop, decided over all classes, fired
    with pytest.raises(ValueError, match="lane 3 out of range"):
        FastLIFOracle(model, workers=3).lane(3)


@pytest.mark.parametrize("workers", [1, 2])
def test_engine_probabilities_are_the_models_read_out(workers: int) -> None:
    """The forward-only ``probabilities`` (bl-auto scores its members with it) gives
    ``model.probabilities``: exactly in Loihi's fixed point, to float rounding otherwise."""
    x = spikes(batch=9)
    lava, norse = lava_model(), norse_model()
    assert torch.equal(FastLIFOracle(lava, workers=workers).probabilities(x), lava.probabilities(x))
    fast = FastLIFOracle(norse, workers=workers).probabilities(x)
    assert fast.shape == (9, CLASSES)
    assert torch.allclose(fast, norse.probabilities(x), atol=1e-6, rtol=0)
