"""Spiking targets: surrogate gradients, lif_layers() descriptions, Lava-DL quantisation and export."""

from __future__ import annotations

import io

import h5py
import pytest
import numpy as np
import torch

from nmprivacy.network.lif import LIFLayer
from nmprivacy.models.lif import LIFBox
from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig
from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig
from nmprivacy.models.surrogates import spike

SHAPE = (1, 6, 6)


def rstz(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Shift right rounding toward zero (Loihi), int64."""
    return torch.sign(x) * (x.abs() >> bits)


def loop_lif_layers(layers: list[LIFLayer], x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Plain per-step loop over the documented LIFLayer equations; returns each layer's spikes
    (after its delay) ``[T, B, N]`` and the read-out membrane ``[T, B, C]`` (last layer, pre-reset)."""
    steps, batch = x.shape[:2]
    s = x.reshape(steps, batch, -1)
    spikes_out: list[torch.Tensor] = []
    membrane = torch.empty(0)
    for layer in layers:
        n = layer.weight.shape[0]
        if layer.arithmetic == "float":
            v = torch.zeros(batch, n)
            volts, zs = [], []
            for t in range(steps):
                v = layer.leak * v + s[t] @ layer.weight.T
                z = (v > layer.threshold).float()
                volts.append(v)
                zs.append(z)
                v = v * (1 - z)
        else:
            w = layer.weight.to(torch.int64)
            u = torch.zeros(batch, n, dtype=torch.int64)
            v = torch.zeros(batch, n, dtype=torch.int64)
            volts, zs = [], []
            for t in range(steps):
                u = rstz(u * (4096 - layer.i_decay), 12) + (s[t].to(torch.int64) @ w.T) * 64
                v = rstz(v * (4096 - layer.v_decay), 12) + u
                z = v > int(layer.threshold)
                volts.append(v.to(torch.float64))
                zs.append(z.float())
                v = torch.where(z, torch.zeros_like(v), v)
        z_all = torch.stack(zs)
        shifted = torch.zeros_like(z_all)
        shifted[layer.delay :] = z_all[: steps - layer.delay]
        spikes_out.append(shifted)
        membrane = torch.stack(volts) / layer.membrane_scale
        s = shifted
    return spikes_out, membrane


def test_fast_sigmoid_surrogate_matches_formula() -> None:
    v = torch.linspace(-1.0, 3.0, 101, dtype=torch.float64).requires_grad_(True)
    z = spike(v - 1.0, "fast-sigmoid", 40.0)
    z.sum().backward()
    expected = 1.0 / (1.0 + 40.0 * (v.detach() - 1.0).abs()) ** 2
    torch.testing.assert_close(v.grad, expected)
    assert torch.equal(z.detach(), (v.detach() > 1.0).double())


def test_atan_surrogate_matches_formula() -> None:
    v = torch.linspace(-1.0, 3.0, 101, dtype=torch.float64).requires_grad_(True)
    spike(v - 1.0, "atan", 1.5).sum().backward()
    expected = 0.75 / (1.0 + (torch.pi * 1.5 * (v.detach() - 1.0) / 2.0) ** 2)
    torch.testing.assert_close(v.grad, expected)


def test_norse_lif_step_gradient_is_fast_sigmoid_slope_40() -> None:
    lif = LIFBox(leak=0.7, threshold=1.0, surrogate="fast-sigmoid", slope=40.0)
    current = torch.tensor([[0.5, 2.0, 3.3, 3.5, 10.0]], dtype=torch.float32).unsqueeze(0).requires_grad_(True)  # [T=1, B=1, 5]
    spikes, volts = lif(current)
    spikes.sum().backward()
    v = 0.3 * current.detach()  # one Norse step from v=0: v = 0 + 0.3 * (i - 0)
    torch.testing.assert_close(volts.detach(), v)
    expected = 0.3 / (1.0 + 40.0 * (v - 1.0).abs()) ** 2  # chain rule through dv/di = 0.3
    torch.testing.assert_close(current.grad, expected)
    assert spikes.detach().flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_norse_lif_hard_reset_and_leak() -> None:
    lif = LIFBox(leak=0.7, threshold=1.0)
    current = torch.full((4, 1, 1), 2.0)  # v: 0.6, 0.6*0.7+0.6=1.02 spike -> 0, 0.6, 1.02
    spikes, volts = lif(current)
    torch.testing.assert_close(volts.flatten(), torch.tensor([0.6, 1.02, 0.6, 1.02]))
    assert spikes.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]


def test_snn_norse_lif_layers_reproduce_forward() -> None:
    torch.manual_seed(0)
    model = SNNNorse(SNNNorseConfig(SHAPE, 4, hidden=40, init_gain=8.0)).freeze()
    x = (torch.rand(20, 3, *SHAPE) < 0.4).float()
    hidden, membrane = model.run(x)
    spikes, loop_membrane = loop_lif_layers(model.lif_layers(), x)
    assert hidden.sum() > 20, "test input must make the hidden layer spike"
    assert torch.equal(spikes[0], hidden)
    assert spikes[1].sum() > 0, "test input must make the output layer spike"
    torch.testing.assert_close(loop_membrane, membrane, atol=1e-5, rtol=1e-5)
    layers = model.lif_layers()
    assert [l.arithmetic for l in layers] == ["float", "float"]
    assert all(l.leak == 0.7 and l.threshold == 1.0 and l.delay == 0 for l in layers)
    torch.testing.assert_close(layers[0].weight, 0.3 * model.fc1.weight)


def test_snn_norse_input_gradient_flows() -> None:
    torch.manual_seed(1)
    model = SNNNorse(SNNNorseConfig(SHAPE, 3, hidden=16)).freeze()
    x = (torch.rand(10, 2, *SHAPE) < 0.5).float().requires_grad_(True)
    model.probabilities(x)[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def lava_model() -> SNNLava:
    torch.manual_seed(0)
    return SNNLava(SNNLavaConfig(SHAPE, 4, hidden=40, weight_scale=3.0)).freeze()


def test_snn_lava_lif_layers_reproduce_forward_exactly(lava_model: SNNLava) -> None:
    x = (torch.rand(20, 5, *SHAPE, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    hidden, membrane = lava_model.run(x)
    spikes, loop_membrane = loop_lif_layers(lava_model.lif_layers(), x)
    assert hidden.sum() > 20 and spikes[1].sum() > 0, "test input must make both layers spike"
    assert int((spikes[0] != hidden).sum()) == 0
    assert torch.equal(loop_membrane.float(), membrane)
    assert membrane[0].abs().sum() == 0, "output voltage at t=0 must be empty (one-step delay)"


def test_snn_lava_weights_on_loihi_grid_and_export(lava_model: SNNLava) -> None:
    layers = lava_model.lif_layers()
    for blk, layer in zip(lava_model.blocks, layers):
        w = layer.weight
        assert torch.equal(w, w.round()) and bool((w.remainder(2) == 0).all())
        assert w.min() >= -256 and w.max() <= 254
        assert layer.threshold == 64 << 6 and layer.i_decay == 4096 and layer.v_decay == 1229 and layer.delay == 1
        effective = blk.synapse.pre_hook_fx(blk.synapse.weight).reshape(w.shape)
        torch.testing.assert_close(effective * 64, w)  # forward uses exactly the exported weights
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for i, blk in enumerate(lava_model.blocks):
            blk.export_hdf5(f.create_group(f"layer/{i}"))
        for i, layer in enumerate(layers):
            g = f[f"layer/{i}"]
            assert torch.equal(torch.from_numpy(g["weight"][()]).float(), layer.weight)
            assert int(g["neuron/vThMant"][()]) << 6 == layer.threshold
            assert int(g["neuron/vDecay"][()]) == layer.v_decay and int(g["neuron/iDecay"][()]) == layer.i_decay


def test_snn_lava_forward_deterministic_and_quantised(lava_model: SNNLava) -> None:
    x = (torch.rand(15, 4, *SHAPE, generator=torch.Generator().manual_seed(5)) < 0.5).float()
    a, b = lava_model(x), lava_model(x)
    assert torch.equal(a, b)
    assert torch.equal(a * 4096, (a * 4096).round()), "voltages are Loihi integers / 4096"


def test_snn_lava_surrogate_is_fast_sigmoid() -> None:
    torch.manual_seed(0)
    model = SNNLava(SNNLavaConfig(SHAPE, 2, hidden=3))
    neuron = model.blocks[0].neuron
    v = torch.tensor([[[0.0, 0.5, 0.99, 1.2, 2.0]]], requires_grad=True)  # [B, N, T]
    neuron.spike(v).sum().backward()
    torch.testing.assert_close(v.grad, 1.0 / (1.0 + 40.0 * (v.detach() - 1.0).abs()) ** 2)


def test_snn_lava_trains_its_weights() -> None:
    torch.manual_seed(0)
    model = SNNLava(SNNLavaConfig(SHAPE, 3, hidden=20, weight_scale=3.0))
    x = (torch.rand(10, 4, *SHAPE) < 0.5).float()
    model(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n.endswith("weight"))


def test_norse_super_surrogate_ignores_its_slope() -> None:
    """Why nmprivacy has its own surrogate: Norse 1.1.0's "super" backward is 1/(1+|x|)^2 for any alpha.
    If this fails, Norse honours alpha now and LIFBox could use its threshold function directly."""
    from norse.torch.functional.threshold import threshold

    x = torch.tensor([0.1, -0.3], requires_grad=True)
    threshold(x, "super", 40.0).sum().backward()
    torch.testing.assert_close(x.grad, 1.0 / (1.0 + x.detach().abs()) ** 2)


def test_snn_lava_with_slayer_surrogate_trains_but_has_no_lif_layers() -> None:
    from nmprivacy.errors import NmprivacyError

    torch.manual_seed(0)
    model = SNNLava(SNNLavaConfig(SHAPE, 3, hidden=20, weight_scale=3.0, surrogate="slayer"))
    x = (torch.rand(10, 4, *SHAPE) < 0.5).float()
    model(x).sum().backward()
    assert model.blocks[0].synapse.weight.grad.abs().sum() > 0
    assert model.lif_layers() is None  # slayer's exponential surrogate has no LIFLayer description
    from nmprivacy.attacks.engine import make_oracle
    from nmprivacy.attacks.oracle import AutogradOracle

    assert isinstance(make_oracle(model), AutogradOracle)  # attacks differentiate through slayer itself


def test_one_description_per_model() -> None:
    """``network()`` is the model's one description: snn-lava's equals what its lossless NetX
    export holds, and the attack engine's view of every kind is built from it (same numbers as
    the model's own forward)."""
    import tempfile
    from pathlib import Path

    from hw_export.netx_export import export_netx
    from hw_export.netx_format import read_netx
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig
    from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig

    torch.manual_seed(0)
    lava = SNNLava(SNNLavaConfig(input_shape=(1, 4, 5), num_classes=3, hidden=7, weight_scale=4)).freeze()
    with tempfile.TemporaryDirectory() as tmp:
        export_netx(lava, Path(tmp) / "m.net")
        exported = read_netx(Path(tmp) / "m.net")
    mine = lava.network()
    for a, b in zip(mine.layers, exported.layers):
        assert a.neuron == b.neuron and np.array_equal(a.weight, b.weight) and a.in_shape == b.in_shape
    norse = SNNNorse(SNNNorseConfig((1, 4, 5), 3, hidden=7)).freeze()
    for model, delay in ((lava, 1), (norse, 0)):
        layers = model.lif_layers()
        assert layers is not None and [layer.delay for layer in layers] == [delay, delay]
    assert norse.network().arithmetic == "float" and lava.network().arithmetic == "loihi"
