"""Exported networks on Lava's fixed-point CPU simulator (real Lava runs, a few seconds each)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from hw_export.lava_env import lava_modules
from hw_export.lava_run import run_lava
from hw_export.netx_emulation import load_netx
from hw_export.netx_export import export_netx
from nmprivacy.errors import ExportError, NmprivacyError
from test_hw_export import CLASSES, SHAPE, T, small_snn_lava, small_snn_norse, spikes


def _emulated(path, x):
    """Emulation spikes per layer in Lava's layout ``[B, T, N]`` (uint8) for ``x`` ``[T, B, ...]``."""
    with torch.no_grad():
        return [s.transpose(0, 1).to(torch.uint8) for s in load_netx(path).layer_spikes(x)]


@pytest.fixture(scope="module")
def lava_net(tmp_path_factory):
    path = tmp_path_factory.mktemp("hw") / "lava.net"
    model = small_snn_lava()
    export_netx(model, path)
    return model, path


def test_netx_network_loads_and_slayer_export_runs_exactly(lava_net):
    model, path = lava_net
    net = lava_modules().netx.Network(net_config=str(path))  # the file is a valid NetX description
    assert [layer.out.shape for layer in net.layers] == [(24,), (CLASSES,)]
    x = spikes(batch=8)
    run = run_lava(path, x.transpose(0, 1), record_membrane=True)
    expected = _emulated(path, x)
    assert [int(e.sum()) for e in expected] == [int(g.sum()) for g in run.layers]
    assert all(int(e.sum()) > 0 for e in expected)
    assert all(torch.equal(e, g) for e, g in zip(expected, run.layers))  # 0 mismatches, every layer
    with torch.no_grad():
        _, v_model = model.run(x)
    assert torch.equal(run.output_membrane, v_model.transpose(0, 1))  # Lava's voltage = the torch model's


def test_norse_mapped_export_runs_exactly(tmp_path):
    path = tmp_path / "norse.net"
    export_netx(small_snn_norse(), path)
    x = spikes(batch=6, seed=3)
    run = run_lava(path, x.transpose(0, 1))
    expected = _emulated(path, x)
    assert all(int(e.sum()) > 0 for e in expected)
    assert all(torch.equal(e, g) for e, g in zip(expected, run.layers))


def test_batched_run_equals_per_sample_runs(lava_net):
    _, path = lava_net
    x = spikes(batch=3, seed=5).transpose(0, 1)  # [B, T, ...]
    batched = run_lava(path, x)
    for k in range(x.shape[0]):
        single = run_lava(path, x[k : k + 1])
        for layer_b, layer_s in zip(batched.layers, single.layers):
            assert torch.equal(layer_b[k], layer_s[0])
    assert batched.steps == 3 * T + 1


def test_bad_inputs_and_files(lava_net, tmp_path):
    _, path = lava_net
    with pytest.raises(ExportError, match="expects 16"):
        run_lava(path, np.zeros((2, T, 15), dtype=np.uint8))
    with pytest.raises(NmprivacyError, match="binary"):
        run_lava(path, np.full((2, T, 16), 0.5))
    bad = tmp_path / "bad.net"
    with h5py.File(bad, "w") as f:
        f.create_dataset("weights", data=np.zeros(3))
    with pytest.raises(ExportError, match="no 'layer' group"):
        run_lava(bad, np.zeros((1, T, 16), dtype=np.uint8))


def test_selfcheck_passes():
    from hw_export.selfcheck import netx_selfcheck

    ok, detail = netx_selfcheck()
    assert ok, detail
    assert "0 spike mismatches" in detail


def test_validate_with_inversion_and_cli(tmp_path, lava_net):
    from nmprivacy.cli import main
    from nmprivacy.data.base import DatasetSplits, Split
    from nmprivacy.models.checkpoint import save

    model, _ = lava_net
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(30, *SHAPE, generator=g)
    splits = DatasetSplits("tiny", "image", Split(xs, torch.arange(30) % CLASSES), Split(xs, torch.arange(30) % CLASSES),
                           tuple("abcd"), SHAPE, "test")
    probs = torch.rand(CLASSES, T, *SHAPE, generator=g)
    torch.save({"reconstructions": (probs > 0.5).float(), "probabilities": probs, "classes": torch.arange(CLASSES)}, tmp_path / "inversion.pt")
    from nmprivacy.validation import validate

    result = validate(model, splits, inversion=tmp_path, samples=12, lava_samples=8, steps=T, out=tmp_path / "val", progress=False)
    stored = json.loads((tmp_path / "val" / "validation.json").read_text())
    assert stored["export"]["total_mismatches"] == 0 == result["export"]["total_mismatches"]
    assert stored["export"]["class_agreement"] == 1.0
    a = stored["attack"]
    assert a["total_mismatches"] == 0 and a["lava_hit_rate"] == a["torch_hit_rate"]
    assert stored["samples_on_lava"] == 8 + CLASSES * 2  # 8 test inputs + 8 // 4 draws per class
    assert len(a["per_class"]) == CLASSES and a["emulation_samples"] == CLASSES * 12
    assert (tmp_path / "val" / "validation.md").read_text().startswith("# Hardware validation")

    ckpt = tmp_path / "ckpt"
    save(model, ckpt, extra={"dataset": "digits", "steps": T})
    assert main(["export", "--model", str(ckpt), "--out", str(tmp_path / "cli.net")]) == 0
    assert load_netx(tmp_path / "cli.net").network().meta["dataset"] == "digits"
    assert main(["validate", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "v2")]) == 2


def test_cli_validate_on_real_test_data(tmp_path):
    """`nmprivacy validate` on a checkpoint of the bundled digits data set (8x8, no download)."""
    from nmprivacy.cli import main
    from nmprivacy.models import build
    from nmprivacy.models.checkpoint import save
    from nmprivacy.models.snn_lava import SNNLavaConfig

    torch.manual_seed(0)
    model = build("snn-lava", SNNLavaConfig(input_shape=(1, 8, 8), num_classes=10, hidden=32, weight_scale=3.0))
    save(model, tmp_path / "ckpt", extra={"dataset": "digits", "steps": 10})
    code = main(["validate", "--model", str(tmp_path / "ckpt"), "--samples", "10", "--lava-samples", "5", "--out", str(tmp_path / "val"), "--no-progress"])
    assert code == 0
    result = json.loads((tmp_path / "val" / "validation.json").read_text())
    assert result["dataset"] == "digits" and result["export"]["steps"] == 10
    assert result["export"]["total_mismatches"] == 0 and result["samples_on_lava"] == 5
    assert sum(layer["lava_spikes"] for layer in result["export"]["layers"]) > 0
    assert (tmp_path / "val" / "model.net").is_file()


def test_lava_imports_after_the_start_method_was_fixed():
    """tqdm (or anything touching multiprocessing) fixes the start method; Lava's own import would then fail."""
    import subprocess
    import sys

    code = (
        "import multiprocessing as mp; mp.get_start_method()\n"
        "from hw_export.lava_env import lava_modules; lava_modules(); print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-500:]
