"""``snn-lava`` with learned synaptic delays (``delay_layers``, Lava-DL's ``delay=True``): the model,
its description, its NetX file and Lava agree spike for spike; the delays learn; the references of
a delayed NetX file get them (issue 24)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hw_export.lava_run import run_lava
from hw_export.netx_emulation import load_netx
from hw_export.netx_export import export_netx
from nmprivacy.errors import NmprivacyError
from nmprivacy.models import build
from nmprivacy.models.network_model import NetworkModel
from nmprivacy.models.cuba_blocks import block_delays
from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

SHAPE, CLASSES = (1, 4, 4), 3


def delayed_model(seed: int = 0, most: float = 4.0, layers: tuple[int, ...] = (0, 1)) -> SNNLava:
    """A 16-12-8-3 snn-lava whose hidden layers carry delays of 0..``most`` - 1 steps."""
    torch.manual_seed(seed)
    model = build("snn-lava", SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=12, extra_hidden=(8,), delay_layers=layers, weight_scale=3.0))
    for i in layers:
        model.blocks[i].delay.delay.data = torch.rand(model.blocks[i].delay.delay.shape) * most
    return model


def rate_spikes(batch: int = 5, steps: int = 20, seed: int = 1) -> torch.Tensor:
    """Bernoulli(0.4) spikes ``[T, B, 1, 4, 4]``."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, *SHAPE, generator=g) < 0.4).float()


def test_description_and_netx_file_run_the_delayed_model_exactly(tmp_path) -> None:
    model = delayed_model().freeze()
    x = rate_spikes()
    with torch.no_grad():
        voltage = model(x)
        network = model.network()
        described = NetworkModel(network)(x)
    assert [layer.max_delay for layer in network.layers] == [3, 3, 0]
    steps = block_delays(model.blocks[0])
    assert np.array_equal(network.layers[0].delay, steps.numpy()[:, None].repeat(16, axis=1))  # one delay per target neuron
    assert torch.equal(voltage, described)
    report = export_netx(model, tmp_path / "d.net")
    assert report.lossless
    loaded = load_netx(tmp_path / "d.net")
    assert [np.array_equal(a.delay, b.delay) if a.delay is not None else b.delay is None
            for a, b in zip(loaded.network().layers, network.layers)] == [True, True, True]
    with torch.no_grad():
        assert torch.equal(loaded(x), voltage)
        emulated = [s.transpose(0, 1).to(torch.uint8) for s in loaded.layer_spikes(x)]
    run = run_lava(tmp_path / "d.net", x.transpose(0, 1), record_membrane=True)
    assert all(int(e.sum()) > 0 for e in emulated)
    assert sum(int((e != g).sum()) for e, g in zip(emulated, run.layers)) == 0  # 0 mismatches on Lava, every layer
    assert torch.equal(run.output_membrane, voltage.transpose(0, 1))


def test_delays_change_the_output_and_learn() -> None:
    model = delayed_model(most=0.0)  # all delays 0 steps: the plain network
    plain = build("snn-lava", SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=12, extra_hidden=(8,), weight_scale=3.0))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if ".delay." not in k})
    x = rate_spikes()
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))
        model.blocks[0].delay.delay.data += 2.0
        assert not torch.equal(model(x), plain(x))
    loss = model(x).sum(0).logsumexp(-1).sum()
    loss.backward()
    grads = [model.blocks[i].delay.delay.grad for i in (0, 1)]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # slayer's delay gradient reaches every delayed layer


def test_saved_delays_load_into_a_fresh_model(tmp_path) -> None:
    model = delayed_model()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    fresh = build("snn-lava", model.config)
    fresh.load_state_dict(torch.load(tmp_path / "m.pt"))
    x = rate_spikes()
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_bad_delay_layers_and_dp_are_one_line_errors(tmp_path) -> None:
    for bad in ([2], [-1], ["a"]):  # 2 is the read-out of a 2-hidden-layer model
        with pytest.raises(NmprivacyError, match="delay_layers"):
            SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=12, extra_hidden=(8,), delay_layers=bad)
    from nmprivacy.dp import make_grad_sample_module

    with pytest.raises(NmprivacyError, match=r"learned synaptic delays .*delay_layers=\[\]"):
        make_grad_sample_module(delayed_model())
    model = delayed_model()
    model.blocks[-1].delay = model.blocks[0].delay  # a read-out with delays would lag on NetX
    with pytest.raises(Exception, match="read-out"):
        export_netx(model, tmp_path / "x.net")


@pytest.mark.parametrize("loss", ["identity", "cross-entropy"])
@pytest.mark.parametrize("layers", [(0, 1), (1,)])
def test_fast_attack_engine_runs_delays_as_autograd(layers: tuple[int, ...], loss: str, tmp_path) -> None:
    """The fast engine's read-out, probabilities and input gradient equal autograd through slayer (and through the
    exported file's emulation) for a model with learned delays."""
    from nmprivacy.attacks.engine import FastLIFOracle, make_oracle
    from nmprivacy.attacks.oracle import AutogradOracle
    from test_engine import assert_same

    model = delayed_model(layers=layers).freeze()
    assert isinstance(make_oracle(model), FastLIFOracle)
    assert sum(layer.neuron_delays is not None for layer in model.lif_layers()) == len(layers)
    x, y = rate_spikes(batch=8), torch.arange(8) % CLASSES
    fast = FastLIFOracle(model)
    assert torch.equal(fast.membrane(x), model.run(x)[1])  # exact fixed-point forward
    assert_same(fast(x, y, loss), AutogradOracle(model)(x, y, loss))
    export_netx(model, tmp_path / "d.net")
    file_model = load_netx(tmp_path / "d.net")
    assert_same(FastLIFOracle(file_model)(x, y, loss), AutogradOracle(file_model)(x, y, loss))


def test_fast_engine_refuses_delays_that_differ_within_a_neuron() -> None:
    from dataclasses import replace

    from nmprivacy.network.lif import lif_layers

    network = delayed_model().freeze().network()
    layer = network.layers[1]
    odd = layer.delay.copy()
    odd[0, 0] += 1  # one synapse of neuron 0 differs from its others
    with pytest.raises(NmprivacyError, match="differ within a neuron"):
        lif_layers(replace(network, layers=(network.layers[0], replace(layer, delay=odd), network.layers[2])))


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("layers", [(0, 1), (1,)])
def test_sparse_engine_runs_delays_as_slayer(layers: tuple[int, ...], dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training with delays: the sparse engine's voltages and hidden spikes are slayer's bit for bit, its weight and
    delay gradients slayer's within fp32 summation order (gathered and GEMM paths; delays past the window too)."""
    from nmprivacy.models import sparse_cuba
    from test_sparse_training import loss_of, slayer_reference, weight_grads

    if dense:
        monkeypatch.setattr(sparse_cuba, "DENSE_FORWARD", -1.0)
        monkeypatch.setattr(sparse_cuba, "DENSE_BACKWARD", -1.0)
    model = delayed_model(layers=layers, most=6.0)
    model.blocks[layers[0]].delay.delay.data[0] = 40.0  # beyond T: the neuron's spikes never arrive
    x, labels = rate_spikes(steps=12), torch.arange(5) % CLASSES
    params = [model.blocks[i].delay.delay for i in layers]

    def delay_grads() -> list[torch.Tensor]:
        out = [p.grad.clone() for p in params]
        for p in params:
            p.grad = None
        return out

    hidden, voltage = slayer_reference(list(model.blocks), x)
    loss_of(voltage, labels).backward()
    expected_w, expected_d = weight_grads(list(model.blocks)), delay_grads()
    result = sparse_cuba.run_stack(model.blocks, x, want_hidden=True)
    assert result is not None, "the sparse engine runs delayed blocks"
    ours_voltage, ours_hidden = result
    assert torch.equal(ours_voltage, voltage) and all(torch.equal(a, b) for a, b in zip(ours_hidden, hidden))
    loss_of(ours_voltage, labels).backward()
    ours_w, ours_d = weight_grads(list(model.blocks)), delay_grads()
    assert all(float(g.abs().sum()) > 0 for g in expected_d)
    for ours, ref in zip([*ours_w, *ours_d], [*expected_w, *expected_d]):
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()) + 1e-12)


def test_references_of_a_delayed_file_learn_delays_in_its_hidden_layers(tmp_path) -> None:
    from nmprivacy.mia.plan import reference_recipe
    from nmprivacy.targets import load_target

    export_netx(delayed_model().freeze(), tmp_path / "d.net")
    recipe = reference_recipe(load_target(str(tmp_path / "d.net")))
    assert (recipe.kind, recipe.hidden, recipe.config) == ("snn-lava", 12, {"extra_hidden": [8], "delay_layers": [0, 1]})
    assert "learned, one per neuron" in recipe.note and "vary per synapse" not in recipe.note
    export_netx(delayed_model(layers=(1,)).freeze(), tmp_path / "one.net")
    assert reference_recipe(load_target(str(tmp_path / "one.net"))).config["delay_layers"] == [1]
    plain = reference_recipe(load_target(str(tmp_path / "d.net")), delay_layers=[])  # --set target_config.delay_layers=[]
    assert plain.config == {"extra_hidden": [8], "delay_layers": []}
    assert "learned delays in layers none, as --set" in plain.note and "theirs are learned" not in plain.note


def test_a_file_whose_neurons_differ_from_the_references_gets_the_set_that_matches_them(tmp_path) -> None:
    from nmprivacy.mia.plan import neuron_note
    from nmprivacy.presets import preset_for, with_overrides
    from nmprivacy.targets import load_target

    torch.manual_seed(0)
    odd = build("snn-lava", SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=12, threshold=1.25, current_decay=0.25,
                                          voltage_decay=123 / 4096)).freeze()
    export_netx(odd, tmp_path / "odd.net")
    network = load_target(str(tmp_path / "odd.net")).model.network()
    preset = preset_for("digits", "default")
    (note,) = neuron_note(network, preset)
    assert "iDecay 1024, vDecay 123, vThMant 80" in note and "iDecay 4096, vDecay 1229, vThMant 64" in note
    sets = dict(part.split("=") for part in note.split("--set ")[1:] for part in [part.split()[0]])
    assert neuron_note(network, with_overrides(preset, {k: float(v) for k, v in sets.items()})) == []  # the suggested --set matches them
    assert neuron_note(delayed_model().freeze().network(), preset) == []  # the preset's own neurons: nothing to say
