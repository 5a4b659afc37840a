"""`nmprivacy audit --target FILE` on networks it did not train: a foreign dense NetX file with a
flat input (mapped onto the data set's layout), a convolutional NetX file and a NIR graph, with
--hardware replaying the reconstructions on Lava; and the one-line errors for what cannot fit."""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from nmprivacy.cli import main
from nmprivacy.lava_import import import_lava

import_lava()  # before any tqdm bar fixes the multiprocessing start method


def dense_foreign_file(path: Path) -> Path:
    """A 64-24-10 dense CUBA file as another lava-dl user writes it: no input layer, flat input, no nmprivacy metadata."""
    import h5py

    from hw_export.netx_writer import write_dense_layer

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        g = f.create_group("layer")
        write_dense_layer(g, 0, rng.integers(-30, 50, (24, 64)) * 2, 4096, 1229, 60)
        write_dense_layer(g, 1, rng.integers(-60, 70, (10, 24)) * 2, 4096, 1229, 60)
        for i in ("0", "1"):
            del g[i].attrs["nmprivacy_scale"]
    return path


def conv_file(path: Path) -> Path:
    from hw_export.netx_export import export_netx
    from nmprivacy.models import build
    from nmprivacy.models.snn_lava_conv import SNNLavaConvConfig

    torch.manual_seed(0)
    model = build("snn-lava-conv", SNNLavaConvConfig(input_shape=(1, 8, 8), num_classes=10, channels=(4, 6), weight_scale=3.0))
    export_netx(model, path)
    return path


def nir_file(path: Path) -> Path:
    rng = np.random.default_rng(1)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([64])),
        nir.Affine(weight=rng.normal(0.05, 0.4, (20, 64)), bias=np.zeros(20)),
        nir.LIF(tau=np.full(20, 0.01), r=np.full(20, 10.0), v_leak=np.zeros(20), v_threshold=np.ones(20), v_reset=np.zeros(20)),
        nir.Affine(weight=rng.normal(0.0, 0.5, (10, 20)), bias=np.zeros(10)),
        nir.LI(tau=np.full(10, 0.01), r=np.full(10, 10.0), v_leak=np.zeros(10)),
        nir.Output(output_type=np.array([10])),
    )
    nir.write(str(path), graph)
    return path


@pytest.mark.parametrize("make", [dense_foreign_file, conv_file, nir_file], ids=["dense-netx", "conv-netx", "nir"])
def test_audit_a_foreign_network_end_to_end(make, tmp_path):
    target = make(tmp_path / ("net.nir" if make is nir_file else "net.net"))
    out = tmp_path / "run"
    code = main([
        "audit", "--target", str(target), "--dataset", "digits", "--quick", "--evaluators", "1", "--hardware",
        "--out", str(out), "--cache", str(tmp_path / "cache"),
    ])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    record = results["models"]["target"]
    assert record["file"] == str(target) and 0 <= record["val_acc"] <= 1 and record["steps"] == 25
    assert {"bl-v1", "bl-v2", "mi-face"} <= set(results["attacks"])
    oracles = {results["attacks"][a]["oracle"] for a in ("bl-v1", "bl-v2")}
    assert oracles == ({"autograd"} if make is conv_file else {"fast-lif"})  # conv networks: autograd through the emulation
    hw = results["hardware"]
    assert hw["export"]["total_mismatches"] == 0 and hw["attack"]["total_mismatches"] == 0
    assert hw["attack"]["samples_on_lava"] > 0 and hw["attack"]["lava_hit_rate"] == hw["attack"]["torch_hit_rate"]
    inv = torch.load(out / "inversion-bl-v2.pt", weights_only=True)
    assert inv["reconstructions"].shape[2:] == (1, 8, 8)  # reconstructions in the data set's layout
    if make is nir_file:
        assert "float_val_acc" in record and "class_agreement" in hw["export"]["source_vs_emulation"]


def test_a_network_that_does_not_fit_the_data_set_is_one_line(tmp_path, capsys):
    target = dense_foreign_file(tmp_path / "net.net")
    code = main(["audit", "--target", str(target), "--dataset", "digits-28", "--quick", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "(64,)" in err and "(1, 28, 28)" in err
    assert not (tmp_path / "run").exists()


def test_a_target_too_weak_to_judge_marks_its_rows_and_fails_the_audit(tmp_path, capsys, monkeypatch):
    import h5py

    from hw_export.netx_writer import write_dense_layer

    silent = tmp_path / "silent.net"  # a network that never spikes: chance accuracy
    with h5py.File(silent, "w") as f:
        g = f.create_group("layer")
        write_dense_layer(g, 0, np.full((8, 64), 2), 4096, 1229, 100_000)
        write_dense_layer(g, 1, np.full((10, 8), 2), 4096, 1229, 100_000)
    out = tmp_path / "run"
    assert main(["audit", "--target", str(silent), "--dataset", "digits", "--quick", "--evaluators", "1", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    assert "NOT VALID" in capsys.readouterr().out  # --quick smoke runs mark the rows but exit 0
    results = json.loads((out / "results.json").read_text())
    assert "target" in results["weak_models"] and "2x chance" in results["weak_models"]["target"]
    assert [results["attacks"][a]["valid"] for a in ("bl-v1", "bl-v2")] == [False, False]
    assert "below 2x chance" in results["attacks"]["bl-v1"]["invalid_reason"]
    assert "**Not valid: bl-v1, bl-v2" in (out / "report.md").read_text()

    import nmprivacy.commands.audit as command

    monkeypatch.setattr("nmprivacy.audit.run_audit", lambda config: results)
    assert main(["audit", "--target", str(silent), "--dataset", "digits", "--out", str(out)]) == 2  # a real budget: non-zero
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "too weak to judge" in err and "--allow-weak" in err
    assert main(["audit", "--target", str(silent), "--dataset", "digits", "--out", str(out), "--allow-weak"]) == 0
    assert command is not None
