"""NetX export and the bit-exact emulation (no Lava runtime needed here; see test_hw_lava.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from hw_export.netx_emulation import load_netx
from hw_export.netx_export import export_netx
from hw_export.netx_writer import write_dense_layer
from nmprivacy.errors import ExportError
from nmprivacy.models import build
from nmprivacy.models.snn_lava import SNNLavaConfig
from nmprivacy.models.snn_norse import SNNNorseConfig

SHAPE, CLASSES, HIDDEN, T = (1, 4, 4), 4, 24, 12


def small_snn_lava(seed: int = 0):
    """A 16-24-4 snn-lava target whose both layers spike on 40 % rate inputs."""
    torch.manual_seed(seed)
    return build("snn-lava", SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=HIDDEN, weight_scale=3.0)).freeze()


def small_snn_norse(seed: int = 0):
    """A 16-24-4 snn-norse target whose both layers spike on 40 % rate inputs."""
    torch.manual_seed(seed)
    return build("snn-norse", SNNNorseConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=HIDDEN, init_gain=10.0)).freeze()


def spikes(batch: int = 6, steps: int = T, seed: int = 1, p: float = 0.4) -> torch.Tensor:
    """Rate-coded input ``[T, B, C, H, W]``."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, *SHAPE, generator=g) < p).float()


def test_snn_lava_export_is_lossless_and_emulation_equals_model(tmp_path):
    model = small_snn_lava()
    report = export_netx(model, tmp_path / "m.net", meta={"dataset": "digits", "steps": T})
    assert report.lossless and report.mapping == "slayer export_hdf5"
    emu = load_netx(tmp_path / "m.net")
    assert emu.info.kind == "netx" and emu.info.input_shape == SHAPE and emu.info.num_classes == CLASSES
    assert emu.network().meta["dataset"] == "digits"
    for w_emu, w_model in zip([emu.weight(i) for i in range(2)], model.integer_weights()):
        assert torch.equal(w_emu, w_model.float())
    x = spikes(batch=8)
    with torch.no_grad():
        hidden_model, v_model = model.run(x)
        v_emu = emu(x)
        layers = emu.layer_spikes(x)
    assert layers[0].sum() > 0 and layers[1].sum() > 0  # both layers active: the comparison means something
    assert torch.equal(v_emu, v_model)  # membranes identical, not just close
    assert torch.equal(hidden_model[1:], layers[0][:-1])  # snn-lava returns hidden spikes after its one-step delay
    out_model = model.blocks[1](hidden_model.permute(1, 2, 0)).permute(2, 0, 1)  # delayed output spikes
    assert torch.equal(out_model[1:], layers[1][:-1])


def test_deeper_snn_lava_exports_losslessly_and_both_engines_agree(tmp_path):
    """``extra_hidden`` stacks more CUBA layers (what a deeper file's references are): the sparse
    engine, slayer's blocks, the NetX emulation and a checkpoint round trip give the same membranes."""
    from nmprivacy.models import checkpoint

    torch.manual_seed(0)
    model = build("snn-lava", SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=HIDDEN, extra_hidden=(20, 12), weight_scale=3.0)).freeze()
    assert [tuple(b.synapse.weight.shape[:2]) for b in model.blocks] == [(HIDDEN, 16), (20, HIDDEN), (12, 20), (CLASSES, 12)]
    x = spikes(batch=6)
    with torch.no_grad():
        model.engine = "sparse"
        v_sparse = model(x)
        model.engine = "slayer"
        v_slayer = model(x)
    assert torch.equal(v_sparse, v_slayer) and v_slayer.abs().sum() > 0
    report = export_netx(model, tmp_path / "deep.net")
    assert report.lossless
    emu = load_netx(tmp_path / "deep.net")
    assert emu.network().sizes == (16, HIDDEN, 20, 12, CLASSES)
    with torch.no_grad():
        layers = emu.layer_spikes(x)
        assert all(s.sum() > 0 for s in layers[:3])  # every hidden layer spikes: the comparison means something
        assert torch.equal(emu(x), v_slayer)
    checkpoint.save(model, tmp_path / "ckpt")
    again = checkpoint.load(tmp_path / "ckpt", "snn-lava")
    assert again.config == model.config and again.config.extra_hidden == (20, 12)
    with torch.no_grad():
        assert torch.equal(again(x), v_slayer)


@pytest.mark.parametrize("extra", [[0], [8, -1], ["a"], 5])
def test_bad_extra_hidden_is_a_one_line_error(extra):
    from nmprivacy.errors import NmprivacyError

    with pytest.raises(NmprivacyError, match="extra_hidden"):
        SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=HIDDEN, extra_hidden=extra)


def test_norse_export_maps_onto_cuba_with_small_error(tmp_path):
    model = small_snn_norse()
    report = export_netx(model, tmp_path / "n.net")
    assert not report.lossless and report.mapping == "float LIF -> CUBA"
    for layer in report.layers:
        assert layer.i_decay == 4096 and layer.v_decay == round(0.3 * 4096)
        assert 0 < layer.weight_rel_rms_error < 0.02 and layer.threshold_rel_error < 1e-3
    with h5py.File(tmp_path / "n.net") as f:
        w = f["layer/0/weight"][()]
    assert np.abs(w).max() == 254 and np.all(w % 2 == 0)  # uses the full even 8-bit range like slayer
    emu = load_netx(tmp_path / "n.net")
    x = spikes(batch=16)
    with torch.no_grad():
        hidden_float, _ = model.run(x)
        hidden_emu = emu.layer_spikes(x)[0]
        agree = (hidden_float == hidden_emu).float().mean().item()
        out_float, out_emu = model(x), emu(x)
    assert agree > 0.97  # close, not exact (quantised weights)
    # membranes come back in the float model's units (output lags one step: Lava adds a delay per layer)
    assert (out_emu[1:] - out_float[:-1]).abs().mean() < 0.1 * out_float.abs().mean()


def test_load_netx_round_trips_a_foreign_file(tmp_path):
    rng = np.random.default_rng(0)
    w0 = rng.integers(-64, 64, size=(5, 7)) * 2
    w1 = rng.integers(-64, 64, size=(3, 5)) * 4
    with h5py.File(tmp_path / "f.net", "w") as f:  # no nmprivacy metadata: another lava-dl user's file
        g = f.create_group("layer")
        write_dense_layer(g, 0, w0, 4096, 1000, 70)
        write_dense_layer(g, 1, w1, 2048, 0, 200)
        for i in ("0", "1"):
            del g[i].attrs["nmprivacy_scale"]
    emu = load_netx(tmp_path / "f.net")
    assert emu.info.input_shape == (7,) and emu.network().sizes == (7, 5, 3)
    assert torch.equal(emu.weight(0), torch.as_tensor(w0, dtype=torch.float32))
    assert torch.equal(emu.weight(1), torch.as_tensor(w1, dtype=torch.float32))
    lif = emu.lif_layers()
    assert [(l.i_decay, l.v_decay, l.threshold) for l in lif] == [(4096, 1000, 70 * 64.0), (2048, 0, 200 * 64.0)]
    assert all(l.arithmetic == "loihi" and l.delay == 1 for l in lif)


def test_emulation_matches_hand_computed_fixed_point():
    """One neuron, hand-derived Loihi integers: u, v decay with rounding toward zero, strict threshold."""
    from nmprivacy.models.network_model import cuba_dynamics

    a = torch.tensor([[[10.0]], [[0.0]], [[0.0]], [[-3.0]], [[0.0]]], dtype=torch.float64)  # [T=5, B=1, N=1]
    z, v = cuba_dynamics(a, i_decay=1024, v_decay=2048, vth_mant=15)
    # u: 640, 480, 360, 270-192=78, 58 ; v: 640, 320+480=800 (> 960? no), 400+360=760, 380+78=458, 229+58=287
    assert v.flatten().tolist() == [640, 800, 760, 458, 287]
    assert z.sum() == 0
    z, v = cuba_dynamics(a, i_decay=1024, v_decay=2048, vth_mant=12)  # threshold 768: fires at v=800, resets
    assert z.flatten().tolist() == [0, 1, 0, 0, 0]
    assert v.flatten().tolist() == [640, 800, 360, 180 + 78, 129 + 58]
    z, v = cuba_dynamics(-a, i_decay=1024, v_decay=2048, vth_mant=12)  # negative values round toward zero
    assert v.flatten().tolist() == [-640, -800, -760, -458, -287]


def test_emulation_gradients_match_the_model_and_the_fast_engine(tmp_path):
    """Attack gradients through the .net emulation = through snn-lava itself = the fast engine on lif_layers()."""
    from nmprivacy.attacks.engine import FastLIFOracle
    from nmprivacy.attacks.oracle import AutogradOracle

    model = small_snn_lava()
    export_netx(model, tmp_path / "m.net")
    emu = load_netx(tmp_path / "m.net")
    x, targets = spikes(batch=5), torch.tensor([0, 1, 2, 3, 0])
    through_emu = AutogradOracle(emu)(x, targets)
    through_model = AutogradOracle(model)(x, targets)
    fast = FastLIFOracle(emu)(x, targets)
    scale = through_emu.grad.abs().max()
    assert scale > 0 and torch.isfinite(through_emu.grad).all()
    assert torch.equal(through_emu.loss, through_model.loss)
    assert (through_emu.grad - through_model.grad).abs().max() < 1e-3 * scale  # slayer tests v >= th + 0.01/4096
    assert (through_emu.grad - fast.grad).abs().max() < 1e-5 * scale


def _dense_file(path, **extra):
    with h5py.File(path, "w") as f:
        g = f.create_group("layer")
        write_dense_layer(g, 0, np.full((3, 4), 10), 4096, 1000, 64)
        for key, value in extra.items():
            if key == "type":
                del g["0/type"]
                g.create_dataset("0/type", (1,), "S10", [value.encode()])
            elif key == "neuron_type":
                del g["0/neuron/type"]
                g.create_dataset("0/neuron/type", (1,), "S10", [value.encode()])
            else:
                g.create_dataset(f"0/{key}", data=value)
    return path


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"type": "pool"}, "pooling.*NetX cannot build"),
        ({"type": "average"}, "average.*NetX cannot build"),
        ({"type": "dense_comp"}, "complex"),
        ({"type": "something"}, "unknown layer type"),
        ({"neuron_type": "SDNN"}, "SDNN"),
        ({"neuron_type": "RF_PHASE"}, "RF_PHASE"),
        ({"type": "dense_rec"}, "weight_rec"),
        ({"delay": -np.ones(3)}, "negative"),
    ],
)
def test_unsupported_layers_are_named(tmp_path, extra, words):
    path = _dense_file(tmp_path / "bad.net", **extra)
    with pytest.raises(ExportError, match=f"layer 0.*{words}"):
        load_netx(path)


def test_delays_recurrence_and_graded_declarations_are_read(tmp_path):
    delays = load_netx(_dense_file(tmp_path / "d.net", delay=np.array([0, 2, 5])))
    layer = delays.network().layers[0]
    assert layer.delay.tolist() == [[0] * 4, [2] * 4, [5] * 4]  # one delay per target neuron, as NetX builds it
    rec = load_netx(_dense_file(tmp_path / "r.net", type="dense_rec", weight_rec=np.full((3, 3), 4.0)))
    assert rec.network().recurrent and rec.network().layers[0].weight_rec.tolist() == [[4] * 3] * 3
    graded = load_netx(_dense_file(tmp_path / "g.net", **{"neuron/messageBits": 3}))
    assert any("binary spikes" in note for note in graded.network().notes)  # Lava's CUBA emits binary spikes: said, not hidden


def test_bad_files_give_one_line_errors(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        load_netx(tmp_path / "missing.net")
    (tmp_path / "junk.net").write_bytes(b"not an hdf5 file")
    with pytest.raises(ExportError, match="not a readable HDF5"):
        load_netx(tmp_path / "junk.net")
    with h5py.File(tmp_path / "empty.net", "w") as f:
        f.create_group("other")
    with pytest.raises(ExportError, match="no 'layer' group"):
        load_netx(tmp_path / "empty.net")
    emu = load_netx(_dense_file(tmp_path / "ok.net"))
    with pytest.raises(Exception, match="expects 4"):
        emu(torch.zeros(3, 2, 5))


def test_export_refuses_models_it_cannot_map(tmp_path):
    from nmprivacy.models.base import ModelInfo, TargetModel

    class NotSpiking(TargetModel):
        def __init__(self):
            super().__init__()
            self.info = ModelInfo("ann", "image", (1, 4, 4), 4)

    with pytest.raises(ExportError, match="cannot be exported"):
        export_netx(NotSpiking(), tmp_path / "x.net")
    assert not (tmp_path / "x.net").exists()
