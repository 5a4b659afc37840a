"""The whole CUBA NetX format on Lava: files written by slayer's own export (input layer with
neurons, conv, flatten, dense, recurrent) and hand-made ones (delays, biases, graded input,
24-bit wrap and clip), each run on Lava and compared spike for spike with the emulation."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from hw_export.lava_run import run_lava
from hw_export.netx_emulation import load_netx
from hw_export.netx_writer import write_netx
from nmprivacy.lava_import import import_slayer
from nmprivacy.network import ConvLayer, DenseLayer, InputLayer, LoihiNeuron, Network

import_slayer()
from lava.lib.dl import slayer  # noqa: E402

CUBA = {"threshold": 1.0, "current_decay": 0.5, "voltage_decay": 0.2}


def slayer_file(path, blocks) -> str:
    """Write slayer blocks with their own ``export_hdf5``, as lava-dl users do."""
    with h5py.File(path, "w") as f:
        group = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(group.create_group(str(i)))
    return str(path)


def pilotnet_style(seed: int = 0) -> torch.nn.ModuleList:
    """Input layer with neurons -> strided convs (one grouped, uneven stride/padding) -> flatten -> dense -> dense."""
    torch.manual_seed(seed)
    blocks = torch.nn.ModuleList([
        slayer.block.cuba.Input(CUBA, weight=1.5, bias=0.0),
        slayer.block.cuba.Conv(CUBA, 2, 4, 3, stride=2, padding=1, weight_scale=3),
        slayer.block.cuba.Conv(CUBA, 4, 6, 3, stride=(1, 2), padding=(0, 1), groups=2, weight_scale=3),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(CUBA, 6 * 3 * 3, 10, weight_scale=3),
        slayer.block.cuba.Dense(CUBA, 10, 5, weight_scale=3),
    ])
    with torch.no_grad():  # slayer learns its neuron shapes on a first forward pass
        x = torch.zeros(1, 2, 9, 11, 1)
        for block in blocks:
            x = block(x)
    return blocks


def compare(path, x: torch.Tensor) -> tuple[list[int], list[int], float, tuple[int, ...]]:
    """(mismatches per layer, emulation spikes per layer, largest output membrane difference,
    samples Lava ran on their own) for input ``x`` ``[T, B, ...]``."""
    emu = load_netx(path)
    with torch.no_grad():
        expected = [s.transpose(0, 1).to(torch.uint8) for s in emu.layer_spikes(x)]
        membrane = emu(x).transpose(0, 1)
    run = run_lava(path, x.transpose(0, 1), record_membrane=True)
    mismatches = [int((e != g).sum()) for e, g in zip(expected, run.layers)]
    return mismatches, [int(e.sum()) for e in expected], float((run.output_membrane - membrane).abs().max()), run.isolated


def rate(shape, steps=12, batch=4, p=0.4, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, *shape, generator=g) < p).float()


def test_conv_network_with_input_layer_written_by_slayer_runs_exactly_on_lava(tmp_path):
    path = slayer_file(tmp_path / "pilot.net", pilotnet_style())
    emu = load_netx(path)
    kinds = [type(layer).__name__ for layer in emu.network().layers]
    assert kinds == ["InputLayer", "ConvLayer", "ConvLayer", "DenseLayer", "DenseLayer"]
    assert emu.info.input_shape == (2, 9, 11) and emu.network().layers[2].groups == 2 and emu.network().layers[2].stride == (1, 2)
    mismatches, spikes, membrane_diff, _ = compare(path, rate((2, 9, 11)))
    assert all(s > 0 for s in spikes)  # every layer active: the comparison means something
    assert mismatches == [0] * 5 and membrane_diff == 0.0


def test_graded_input_through_the_input_layer_transform(tmp_path):
    path = slayer_file(tmp_path / "pilot.net", pilotnet_style(seed=1))
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 4, (10, 3, 2, 9, 11), generator=g).float()  # graded integer inputs (e.g. pixel levels)
    mismatches, spikes, membrane_diff, _ = compare(path, x)
    assert all(s > 0 for s in spikes) and mismatches == [0] * 5 and membrane_diff == 0.0


def test_recurrent_file_written_by_slayer_runs_exactly_on_lava(tmp_path):
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([slayer.block.cuba.Recurrent(CUBA, 12, 8, weight_scale=3), slayer.block.cuba.Dense(CUBA, 8, 4, weight_scale=3)])
    with torch.no_grad():
        blocks[1](blocks[0](torch.zeros(1, 12, 1)))
    path = slayer_file(tmp_path / "rec.net", blocks)
    assert load_netx(path).network().recurrent
    mismatches, spikes, membrane_diff, isolated = compare(path, rate((12,), batch=4))
    assert all(s > 0 for s in spikes) and mismatches == [0, 0] and membrane_diff == 0.0
    assert isolated  # this network keeps itself spiking: samples were re-run alone, never mixed


def _neuron(vth: int = 64) -> LoihiNeuron:
    return LoihiNeuron(i_decay=2048, v_decay=819, vth_mant=vth)


def test_delays_and_biases_run_exactly_on_lava(tmp_path):
    rng = np.random.default_rng(0)
    layers = (
        ConvLayer(neuron=_neuron(), weight=rng.integers(-40, 60, (3, 1, 3, 3)) * 2, in_shape=(1, 6, 6), padding=(1, 1),
                  bias=np.array([30, -20, 0]), name="conv"),
        DenseLayer(neuron=_neuron(), weight=rng.integers(-50, 70, (7, 108)) * 2, in_shape=(3, 6, 6),
                   delay=rng.integers(0, 4, (7, 108)), bias=np.arange(7) * 5, name="delayed"),
        DenseLayer(neuron=_neuron(40), weight=rng.integers(-60, 80, (4, 7)) * 2, name="out"),
    )
    path = tmp_path / "delay.net"
    write_netx(Network(input_shape=(1, 6, 6), layers=layers, name="delay"), path)
    mismatches, spikes, membrane_diff, _ = compare(path, rate((1, 6, 6), steps=14, batch=5))
    assert all(s > 0 for s in spikes) and mismatches == [0, 0, 0] and membrane_diff == 0.0


def test_24_bit_wrap_and_clip_are_emulated(tmp_path):
    """Weights x input large enough that u wraps past 2^23 and v saturates: still bit-exact."""
    layers = (
        InputLayer(neuron=LoihiNeuron(i_decay=4096, v_decay=4096, vth_mant=0), shape=(8,), weight=64, name="in"),
        DenseLayer(neuron=LoihiNeuron(i_decay=0, v_decay=0, vth_mant=(1 << 17) - 1), weight=np.full((3, 8), 254), name="wrapping"),
    )
    path = tmp_path / "wrap.net"
    write_netx(Network(input_shape=(8,), layers=layers, name="wrap"), path)
    x = torch.ones(80, 2, 8)
    emu = load_netx(path)
    with torch.no_grad():
        _, volt = emu.run(x)
    assert (254 * 8 * 64 * np.arange(1, 81) > 1 << 23).any()  # the current really overflows in this run
    assert float(volt.max()) == (1 << 23) - 1 and float(volt.min()) == -(1 << 23) + 1  # v saturates both ways
    mismatches, spikes, membrane_diff, _ = compare(path, x)
    assert spikes[0] > 0 and mismatches == [0, 0] and membrane_diff == 0.0


def test_attacks_differentiate_through_conv_and_recurrent_emulations(tmp_path):
    from nmprivacy.attacks.oracle import AutogradOracle

    path = slayer_file(tmp_path / "pilot.net", pilotnet_style())
    emu = load_netx(path)
    out = AutogradOracle(emu)(rate((2, 9, 11), batch=3), torch.tensor([0, 1, 2]))
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0 and out.grad.shape == (12, 3, 2, 9, 11)


def test_fast_engine_wraps_and_clips_like_lava(tmp_path):
    """The attack engine's fused kernels carry Loihi's 24-bit wrap of u and clip of v too."""
    from nmprivacy.attacks.engine import FastLIFOracle

    layers = (
        DenseLayer(neuron=LoihiNeuron(i_decay=4096, v_decay=4096, vth_mant=1), weight=np.full((6, 8), 254), name="always"),
        DenseLayer(neuron=LoihiNeuron(i_decay=0, v_decay=0, vth_mant=(1 << 17) - 1), weight=np.full((3, 6), 254), name="wrapping"),
    )
    path = tmp_path / "wrap.net"
    write_netx(Network(input_shape=(8,), layers=layers, name="wrap"), path)
    emu = load_netx(path)
    x = torch.ones(100, 2, 8)
    with torch.no_grad():
        expected = emu(x)
    got = FastLIFOracle(emu, workers=1).membrane(x)
    assert float(expected.max()) * 4096 == (1 << 23) - 1 and float(expected.min()) * 4096 == 1 - (1 << 23)  # wrapped and clipped
    assert torch.equal(got, expected)


def test_validate_certifies_any_file_without_a_data_set(tmp_path, capsys):
    """`validate --random N` / `--inputs FILE.npy`: a foreign conv file certified on Lava, no data set needed."""
    import json

    from nmprivacy.cli import main

    path = slayer_file(tmp_path / "pilot.net", pilotnet_style())
    assert main(["validate", "--model", path, "--random", "3", "--steps", "8", "--graded-max", "3", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "r" / "validation.json").read_text())
    assert result["inputs"] == {"kind": "random", "samples": 3, "steps": 8} and result["dataset"] == "random graded"
    assert result["export"]["total_mismatches"] == 0 and result["samples_on_lava"] == 3
    assert sum(layer["lava_spikes"] for layer in result["export"]["layers"]) > 0
    assert not (tmp_path / "r" / "model.net").exists()  # a NetX file is validated as it is, not re-exported

    x = np.random.default_rng(0).integers(0, 2, (2, 6, 2, 9, 11)).astype(np.uint8)  # [B, T, C, H, W]
    np.save(tmp_path / "x.npy", x)
    assert main(["validate", "--model", path, "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "i"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "i" / "validation.json").read_text())
    assert result["inputs"]["kind"] == "file" and result["export"]["steps"] == 6 and result["export"]["total_mismatches"] == 0
    capsys.readouterr()

    np.save(tmp_path / "bad.npy", np.zeros((2, 6, 5)))
    assert main(["validate", "--model", path, "--inputs", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "shape (2, 6, 5)" in err and "[B, T, 2, 9, 11]" in err
    assert not (tmp_path / "b").exists()  # nothing left behind


def test_snn_lava_conv_target_exports_losslessly_and_runs_exactly_on_lava(tmp_path):
    from hw_export.netx_export import export_netx
    from nmprivacy.models import build
    from nmprivacy.models.snn_lava_conv import SNNLavaConvConfig

    torch.manual_seed(0)
    model = build("snn-lava-conv", SNNLavaConvConfig(input_shape=(2, 12, 12), num_classes=4, channels=(4, 6), weight_scale=3.0)).freeze()
    report = export_netx(model, tmp_path / "conv.net", meta={"dataset": "tiny", "steps": 12})
    assert report.lossless and [layer.kind for layer in report.layers] == ["conv", "conv", "dense"]
    x = rate((2, 12, 12), batch=3)
    emu = load_netx(tmp_path / "conv.net")
    with torch.no_grad():
        assert torch.equal(emu(x), model(x))  # the trained model computes what the file computes
    mismatches, spikes, membrane_diff, _ = compare(tmp_path / "conv.net", x)
    assert spikes[0] > 0 and spikes[1] > 0 and float(model(x).abs().max()) > 0  # both convolutions fire, the read-out moves
    assert mismatches == [0, 0, 0] and membrane_diff == 0.0
