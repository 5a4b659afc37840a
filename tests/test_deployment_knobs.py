"""Deployment knobs as study factors (issue 25): Loihi weight precision (exported and run on
Lava bit-exactly), the training surrogate (gradients change, forward spikes never; the sparse
engine's fused backward equals slayer's), threshold / reset / T, post-training quantisation of
the ANN baseline, and the dotted preset names that reach each model's config."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from hw_export.lava_run import run_lava
from hw_export.netx_emulation import load_netx
from hw_export.netx_export import export_netx
from nmprivacy.errors import NmprivacyError
from nmprivacy.models import build
from nmprivacy.models.ann import ANN, ANNConfig
from nmprivacy.models.cuba_blocks import LoihiWeights, weight_quantiser
from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig
from nmprivacy.models.snn_norse import SNNNorseConfig
from nmprivacy.models.surrogates import SURROGATES, surrogate_derivative
from test_hw_export import CLASSES, HIDDEN, SHAPE, spikes
from test_sparse_training import assert_same_as_slayer, binary, force_gather, loss_of, weight_grads

LAVA_SURROGATES = (*SURROGATES, "slayer")


def lava_model(seed: int = 0, **knobs: object) -> SNNLava:
    """A 16-24-4 snn-lava target whose both layers spike on 40 % rate inputs."""
    torch.manual_seed(seed)
    return build("snn-lava", SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=HIDDEN, weight_scale=3.0, **knobs))


# ---------------------------------------------------------------------------------------------
# weight precision on Loihi


@pytest.mark.parametrize("bits", [8, 6, 4, 2])
def test_weight_bits_export_losslessly_and_run_exactly_on_lava(bits: int, tmp_path) -> None:
    model = lava_model(weight_bits=bits).freeze()
    report = export_netx(model, tmp_path / "m.net")
    assert report.lossless
    with h5py.File(tmp_path / "m.net") as f:
        written = [np.asarray(f[f"layer/{i}/weight"]) for i in range(2)]
    for w, layer in zip(written, report.layers):
        assert np.array_equal(w, np.round(w)) and (w.astype(int) % 2 == 0).all()  # even integers (slayer's grid)
        assert layer.weight_bits is not None and layer.weight_bits <= bits  # what NetX derives for Loihi's synapse
        step = 2 ** int(np.log2(np.gcd.reduce(np.abs(w.astype(int)[w != 0]))))
        mantissa = w / step
        assert mantissa.min() >= -(2 ** (bits - 1)) and mantissa.max() <= 2 ** (bits - 1) - 1
    if bits <= 4:
        assert len(np.unique(written[0])) <= 2**bits
    x = spikes(batch=4)
    with torch.no_grad():
        emulated = [s.transpose(0, 1).to(torch.uint8) for s in load_netx(tmp_path / "m.net").layer_spikes(x)]
        _, voltage = model.run(x)
    run = run_lava(tmp_path / "m.net", x.transpose(0, 1), record_membrane=True)
    assert all(int(e.sum()) > 0 for e in emulated)
    assert sum(int((e != g).sum()) for e, g in zip(emulated, run.layers)) == 0  # 0 mismatches, every layer
    assert torch.equal(run.output_membrane, voltage.transpose(0, 1))  # Lava's voltage = the trained model's


def test_loihi_weights_8_bits_is_slayers_quantiser_and_fewer_bits_coarsen_it() -> None:
    model = lava_model()
    w = model.blocks[0].synapse.weight.detach().clone() * 40  # beyond the 8-bit range too
    w[0, 0] = 1e-4
    eight = model.blocks[0].neuron.quantize_8bit(w)
    assert torch.equal(LoihiWeights(8)(w), eight)
    for bits in (6, 4, 2):
        q = LoihiWeights(bits)(w)
        units = q * 32  # slayer's 8-bit units (2/64)
        assert torch.equal(units, torch.round(units))  # a subset of slayer's grid
        step = LoihiWeights(bits).step(w) * 32
        assert int((units / step).abs().max()) <= 2 ** (bits - 1)
    ww = w.clone().requires_grad_(True)
    LoihiWeights(4)(ww).sum().backward()
    m = torch.round(w / LoihiWeights(4).step(w))
    inside = ((m >= -8) & (m <= 7)).float()
    assert 0 < int(inside.sum()) < inside.numel() and torch.equal(ww.grad, inside)  # straight through inside the mantissa range, 0 outside


def test_weight_quantiser_names_each_blocks_quantiser_and_nothing_else() -> None:
    """The one recognition of a block's weight quantiser (read by the sparse engine and the
    weight-grid record): slayer's quantize_8bit as LoihiWeights(8), a LoihiWeights hook as itself,
    any other hook or a hook of another neuron's scale as None."""
    w = lava_model().blocks[0].synapse.weight.detach() * 40
    for bits in (8, 4):
        block = lava_model(weight_bits=bits).blocks[0]
        quantiser = weight_quantiser(block.synapse, block.neuron)
        assert isinstance(quantiser, LoihiWeights) and quantiser.bits == bits
        assert torch.equal(quantiser(w), block.synapse._pre_hook_fx(w))  # the same map as the hook the block runs
        other = lava_model(weight_bits=bits).blocks[0].neuron
        other.w_scale = 2 * block.neuron.w_scale
        assert weight_quantiser(block.synapse, other) is None  # a hook bound to / scaled for another neuron
    block.synapse.pre_hook_fx = lambda weight: weight
    assert weight_quantiser(block.synapse, block.neuron) is None


@pytest.mark.parametrize("bits", [6, 4, 2])
def test_weight_bits_sparse_engine_equals_slayer(bits: int, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    model = SNNLava(SNNLavaConfig((1, 6, 7), CLASSES, hidden=40, weight_scale=3.0, weight_bits=bits))
    labels = torch.tensor([0, 1, 2, 3, 0])
    assert_same_as_slayer(list(model.blocks), binary(10, 5, (1, 6, 7), 0.2, seed=2), labels)
    force_gather(monkeypatch)
    assert_same_as_slayer(list(model.blocks), binary(10, 5, (1, 6, 7), 0.05, seed=3), labels)


def test_bad_knobs_are_one_line_errors() -> None:
    with pytest.raises(NmprivacyError, match="2 to 8 bits"):
        SNNLavaConfig(SHAPE, CLASSES, weight_bits=1)
    with pytest.raises(NmprivacyError, match="resets the voltage to 0"):
        SNNLavaConfig(SHAPE, CLASSES, reset="subtract")
    with pytest.raises(NmprivacyError, match="unknown surrogate"):
        SNNLavaConfig(SHAPE, CLASSES, surrogate="tanh")
    with pytest.raises(NmprivacyError, match="takes 2 parameter"):
        SNNNorseConfig(SHAPE, CLASSES, surrogate="spike-rate-escape", surrogate_params=(1.0, 2.0, 3.0))
    with pytest.raises(NmprivacyError, match="0 \\(float\\) or 2-8"):
        ANNConfig(SHAPE, CLASSES, quantize=1)


# ---------------------------------------------------------------------------------------------
# surrogate gradients


def test_surrogate_definitions_are_snntorchs() -> None:
    x = torch.tensor([-1.5, -0.2, 0.0, 0.3, 1.0, 2.0])
    torch.testing.assert_close(surrogate_derivative(x, "fast-sigmoid", 25.0), 1 / (1 + 25 * x.abs()) ** 2)
    torch.testing.assert_close(surrogate_derivative(x, "arctan", (2.0,)), 1 / (1 + (np.pi * x) ** 2))
    torch.testing.assert_close(surrogate_derivative(x, "triangle", (1.0,)), torch.tensor([1.0, 1.0, -1.0, -1.0, -1.0, -1.0]))
    torch.testing.assert_close(surrogate_derivative(x, "spike-rate-escape", (1.0, 25.0)), 25 * torch.exp(-(x - 1).abs()))
    s = torch.sigmoid(25 * x)
    torch.testing.assert_close(surrogate_derivative(x, "sigmoid", (25.0,)), 25 * s * (1 - s))
    torch.testing.assert_close(surrogate_derivative(x, "straight-through", ()), torch.ones_like(x))
    assert torch.equal(surrogate_derivative(x, "atan", 1.5), surrogate_derivative(x, "arctan", 1.5))
    from nmprivacy.models import sparse_cuba
    from nmprivacy.models.surrogates import KERNEL_CODES

    assert [KERNEL_CODES[n] for n in SURROGATES] == [sparse_cuba.FAST, sparse_cuba.ARCTAN, sparse_cuba.SIGMOID, sparse_cuba.TRIANGLE,
                                                     sparse_cuba.ESCAPE, sparse_cuba.STRAIGHT]


@pytest.mark.parametrize("surrogate", LAVA_SURROGATES)
def test_lava_surrogate_sparse_backward_equals_slayer(surrogate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(4)
    model = SNNLava(SNNLavaConfig((1, 6, 7), CLASSES, hidden=40, weight_scale=3.0, surrogate=surrogate))
    labels = torch.tensor([0, 1, 2, 3])
    assert_same_as_slayer(list(model.blocks), binary(12, 4, (1, 6, 7), 0.2, seed=5), labels)
    force_gather(monkeypatch)
    assert_same_as_slayer(list(model.blocks), binary(12, 4, (1, 6, 7), 0.05, seed=6), labels)


def _lava_run_and_grads(model: SNNLava, x: torch.Tensor, labels: torch.Tensor, engine: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.engine = engine
    voltage = model(x)
    loss_of(voltage, labels).backward()
    return voltage.detach(), weight_grads(list(model.blocks))


@pytest.mark.parametrize("engine", ["sparse", "slayer"])
def test_lava_surrogate_changes_gradients_not_forward_spikes(engine: str) -> None:
    x, labels = spikes(batch=4, seed=7), torch.tensor([0, 1, 2, 3])
    reference = lava_model()
    ref_voltage, ref_grads = _lava_run_and_grads(reference, x, labels, engine)
    with torch.no_grad():
        ref_hidden, _ = reference.run(x)
    for surrogate in LAVA_SURROGATES:
        if surrogate == "fast-sigmoid":
            continue
        model = lava_model(surrogate=surrogate)
        voltage, grads = _lava_run_and_grads(model, x, labels, engine)
        with torch.no_grad():
            hidden, _ = model.run(x)
        assert torch.equal(voltage, ref_voltage) and torch.equal(hidden, ref_hidden), surrogate
        assert not torch.allclose(grads[0], ref_grads[0]), surrogate
        assert (model.lif_layers() is None) and model.network() is not None  # exported whatever the surrogate


def test_norse_surrogate_changes_gradients_not_forward_spikes() -> None:
    x, labels = spikes(batch=4, seed=8), torch.tensor([0, 1, 2, 3])

    def norse(**knobs: object):
        torch.manual_seed(0)
        return build("snn-norse", SNNNorseConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=HIDDEN, init_gain=10.0, **knobs))

    def grads(model):
        hidden, voltage = model.run(x)
        loss_of(voltage, labels).backward()
        return hidden.detach(), voltage.detach(), model.fc1.weight.grad.clone()

    ref_hidden, ref_voltage, ref_grad = grads(norse())
    assert ref_hidden.sum() > 0
    for surrogate in SURROGATES[1:]:
        model = norse(surrogate=surrogate)
        hidden, voltage, grad = grads(model)
        assert torch.equal(hidden, ref_hidden) and torch.equal(voltage, ref_voltage), surrogate
        assert not torch.allclose(grad, ref_grad), surrogate
        assert model.lif_layers() is None and model.network() is not None
    subtract = norse(reset="subtract", surrogate="arctan")
    assert subtract.info.reset == "subtract" and subtract.network().layers[0].neuron.reset == "subtract"


def test_models_with_another_surrogate_are_attacked_through_their_own_backward() -> None:
    """``lif_layers() -> None``: ``make_oracle`` falls back to autograd, i.e. the model's surrogate."""
    from nmprivacy.attacks.engine import FastLIFOracle, make_oracle
    from nmprivacy.attacks.oracle import AutogradOracle

    x, targets = spikes(batch=3, seed=9), torch.tensor([0, 1, 2])
    fast = make_oracle(lava_model().freeze())
    assert isinstance(fast, FastLIFOracle)
    by_fast = fast(x, targets).grad
    for surrogate in ("arctan", "spike-rate-escape"):
        model = lava_model(surrogate=surrogate).freeze()
        oracle = make_oracle(model)
        assert isinstance(oracle, AutogradOracle)
        out = oracle(x, targets)
        assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
        assert not torch.allclose(out.grad, by_fast)  # the model's surrogate, not the engine's fast sigmoid
        torch.testing.assert_close(out.probs, fast(x, targets).probs)  # same forward


# ---------------------------------------------------------------------------------------------
# threshold, reset, T and the dotted names


def _splits(n: int = 40):
    from nmprivacy.data.base import DatasetSplits, Split

    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % CLASSES
    x = torch.rand(n, *SHAPE, generator=g) * 0.3
    for c in range(CLASSES):  # one bright quadrant per class
        x[y == c, 0, (c // 2) * 2 : (c // 2) * 2 + 2, (c % 2) * 2 : (c % 2) * 2 + 2] += 0.7
    return DatasetSplits("digits", "image", Split(x, y), Split(x, y), tuple("abcd"), SHAPE, "test")


def test_dotted_names_reach_the_model_configs_through_train_or_load(tmp_path) -> None:
    from nmprivacy.trained import train_or_load
    from nmprivacy.presets import resolve

    quick = {"snn_train.epochs": 1, "snn_train.batch_size": 20, "snn_train.min_steps": 1, "ann_train.epochs": 1,
             "ann_train.batch_size": 20, "ann_train.min_steps": 1, "hidden": HIDDEN}
    knobs = {"target_config.weight_bits": 4, "target_config.surrogate": "arctan", "target_config.threshold": 1.5, "steps": 6}
    preset = resolve("digits", "quick", overrides={**quick, **knobs, "ann_quantize": 8})
    splits = _splits()
    target = train_or_load("snn-lava", splits, preset, 0, preset.steps, tmp_path)
    cfg = target.model.config
    assert (cfg.weight_bits, cfg.surrogate, cfg.threshold) == (4, "arctan", 1.5) and preset.steps == 6
    assert target.model.blocks[0].neuron.surrogate == "arctan"
    report = export_netx(target.model, tmp_path / "t.net")
    assert report.lossless and all(layer.vth_mant == 96 and layer.weight_bits <= 4 for layer in report.layers)
    with h5py.File(tmp_path / "t.net") as f:  # the threshold knob reaches the NetX file
        assert [int(np.asarray(f[f"layer/{i}/neuron/vThMant"])) for i in range(2)] == [96, 96]
    again = train_or_load("snn-lava", splits, preset, 0, preset.steps, tmp_path)
    assert again.record["cached"] and again.model.config == cfg

    norse = train_or_load("snn-norse", splits, resolve("digits", "quick", overrides={
        **quick, "target_config.reset": "subtract", "target_config.surrogate": "triangle"}), 0, 6, tmp_path)
    assert (norse.model.config.reset, norse.model.config.surrogate, norse.model.info.reset) == ("subtract", "triangle", "subtract")

    ann = train_or_load("ann", splits, preset, 0, None, tmp_path)
    assert ann.model.config.quantize == 8 and ann.model.quantized and ann.record["config"].quantize == 8
    plain = train_or_load("ann", splits, resolve("digits", "quick", overrides=quick), 0, None, tmp_path)
    assert plain.model.config.quantize == 0 and plain.record["checkpoint"] != ann.record["checkpoint"]
    with pytest.raises(NmprivacyError, match="snn-norse has reset='subtract'"):
        train_or_load("snn-lava", splits, resolve("digits", "quick", overrides={**quick, "target_config.reset": "subtract"}), 0, 6, tmp_path)


def test_default_configs_keep_their_cache_keys() -> None:
    """New knob fields are left out of the JSON form (and so of cache keys) at their defaults."""
    from nmprivacy.runinfo import to_jsonable

    lava = to_jsonable(SNNLavaConfig(SHAPE, CLASSES))
    assert set(lava) == {"input_shape", "num_classes", "hidden", "threshold", "current_decay", "voltage_decay", "surrogate",
                         "surrogate_slope", "weight_scale"}
    assert set(to_jsonable(SNNNorseConfig(SHAPE, CLASSES))) == {"input_shape", "num_classes", "hidden", "leak", "threshold",
                                                                "surrogate_slope", "init_gain", "reset"}
    assert set(to_jsonable(ANNConfig(SHAPE, CLASSES))) == {"input_shape", "num_classes", "hidden"}
    assert to_jsonable(SNNLavaConfig(SHAPE, CLASSES, weight_bits=4))["weight_bits"] == 4


# ---------------------------------------------------------------------------------------------
# post-training quantisation of the ANN baseline


def _trained_ann(bits: int) -> tuple[ANN, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    protos = torch.rand(CLASSES, 1, 8, 8, generator=g)
    y = torch.arange(400) % CLASSES
    x = (protos[y] + 0.9 * torch.randn(400, 1, 8, 8, generator=g)).clamp(0, 1)
    model = ANN(ANNConfig((1, 8, 8), CLASSES, hidden=32, quantize=bits))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(150):
        idx = torch.arange(step * 40, step * 40 + 40) % 320
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, x[320:], y[320:]


@pytest.mark.parametrize("bits", [8, 4])
def test_ann_post_training_quantisation(bits: int) -> None:
    model, x, y = _trained_ann(bits)
    model.train()
    assert not model.quantized
    float_acc = float((model(x).argmax(-1) == y).float().mean())
    model.eval()
    assert model.quantized
    quant_acc = float((model(x).argmax(-1) == y).float().mean())
    assert float_acc > 0.8
    assert quant_acc >= float_acc - (0.05 if bits == 8 else 0.15)
    state = model.integer_state()
    q = 2 ** (bits - 1) - 1
    for layer in state:
        assert layer["weight"].dtype == torch.int8 and int(layer["weight"].abs().max()) == q
        assert layer["bias"].dtype == torch.int32 and layer["activation_scale"] == 1 / (2**bits - 1)
    logits = model(x)
    assert not torch.equal(logits, model.net(x))  # integers, not the float model
    # logits are the integer network's: k-bit input codes through int weights, rescaled once
    a = torch.round(x.flatten(1) * (2**bits - 1)).double()
    h = torch.round(torch.sigmoid(((a @ state[0]["weight"].double().t() + state[0]["bias"].double())
                                   * state[0]["weight_scale"] * state[0]["activation_scale"]).float()) * (2**bits - 1)).double()
    expected = ((h @ state[1]["weight"].double().t() + state[1]["bias"].double()) * state[1]["weight_scale"] * state[1]["activation_scale"]).float()
    assert torch.equal(logits, expected)
    xg = x[:2].clone().requires_grad_(True)  # MI-Face's input gradient passes the rounding straight through
    model(xg)[:, 0].sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_quantised_ann_is_what_mi_face_and_membership_see() -> None:
    from nmprivacy.attacks import get_attack
    from nmprivacy.membership.observables import model_outputs
    from nmprivacy.presets import MIFaceSettings

    model, x, _ = _trained_ann(8)
    model.freeze()
    logp, _ = model_outputs(model, x[:5])
    torch.testing.assert_close(logp, torch.log_softmax(model.integer_forward(x[:5]).double(), -1))
    inversion = get_attack("mi-face", MIFaceSettings(max_iterations=5, patience=5)).run(model, [0, 1], seed=0)
    assert inversion.reconstructions.shape[0] == 2 and torch.isfinite(inversion.reconstructions).all()
    assert model.quantized  # the attack ran on the integer model (frozen: eval mode)
