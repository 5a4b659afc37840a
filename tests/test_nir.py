"""NIR in and out: graphs written by Norse, snnTorch and by hand (Sinabs-style CNN) go to NetX
and run on Lava spike for spike; our own targets go to NIR and are read back by Norse and
snnTorch; broken or unsupported graphs give one line naming the node."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch

from hw_export.netx_emulation import load_netx
from hw_export.netx_export import export_netx, model_network
from nmprivacy.errors import NetworkError
from nmprivacy.models.network_model import NetworkModel
from nmprivacy.network.nir_export import to_nir_graph
from nmprivacy.network.nir_import import read_graph, read_nir
from networks import lava_check

T = 20


def rate(shape, batch=4, p=0.4, seed=0, steps=T) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, *shape, generator=g) < p).float()


def norse_mlp():
    """A Norse LIFBox MLP with per-neuron parameters (what Norse 1.1.0's to_nir needs) and a LI read-out."""
    import norse.torch as norse

    torch.manual_seed(0)
    lif = norse.LIFBoxParameters(tau_mem_inv=torch.full((12,), 100.0), v_th=torch.full((12,), 0.15), v_leak=torch.zeros(12), v_reset=torch.zeros(12))
    li = norse.LIBoxParameters(tau_mem_inv=torch.full((4,), 100.0), v_leak=torch.zeros(4))
    return norse.SequentialState(torch.nn.Linear(16, 12, bias=False), norse.LIFBoxCell(lif), torch.nn.Linear(12, 4, bias=False), norse.LIBoxCell(li))


def snntorch_mlp():
    import snntorch as snn

    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Linear(16, 12, bias=False), snn.Leaky(beta=torch.full((12,), 0.9), threshold=torch.full((12,), 0.3), init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(12, 4, bias=False), snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.full((4,), 0.5), init_hidden=True, output=True, reset_mechanism="zero"),
    )


def sinabs_style(seed: int = 0) -> nir.NIRGraph:
    """Conv2d, IF, SumPool2d, Flatten, Affine, IF: the shape of a Sinabs CNN, written with nir's own nodes."""
    rng = np.random.default_rng(seed)
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2, 10, 10])),
        nir.Conv2d(input_shape=(10, 10), weight=rng.normal(0.1, 0.6, (4, 2, 3, 3)), stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        nir.IF(r=np.ones((4, 10, 10)), v_threshold=np.ones((4, 10, 10))),
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        nir.Flatten(input_type={"input": np.array([4, 5, 5])}, start_dim=0),
        nir.Affine(weight=rng.normal(0.05, 0.3, (10, 100)), bias=np.zeros(10)),
        nir.IF(r=np.ones(10), v_threshold=np.ones(10)),
        nir.Output(output_type=np.array([10])),
    )


def test_norse_graph_float_model_equals_norse_and_runs_exactly_on_lava(tmp_path):
    from norse.torch.utils.export_nir import to_nir

    model = norse_mlp()
    network = read_graph(to_nir(model, torch.zeros(16), dt=1.0), name="norse")  # dt=1.0: Norse 1.1.0 writes tau = dt / tau_mem_inv
    x = rate((16,))
    with torch.no_grad():
        ours = NetworkModel(network, kind="nir-float")(x)
        state, outs = None, []
        for t in range(T):
            y, state = model(x[t], state)
            outs.append(y)
        theirs = torch.stack(outs)
    assert float(theirs.abs().max()) > 0
    assert torch.allclose(ours[1:], theirs[:-1], atol=1e-6)  # same dynamics; Loihi's extra step per layer
    report = export_netx(network, tmp_path / "norse.net")
    assert report.mapping == "float LIF -> CUBA" and all(r.weight_rel_rms_error < 0.02 for r in report.layers)
    mismatches, spikes = lava_check(tmp_path / "norse.net", x)
    assert spikes[0] > 0 and mismatches == [0, 0]


def test_snntorch_graph_float_model_equals_snntorch_and_runs_exactly_on_lava(tmp_path):
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    model = snntorch_mlp()
    graph = export_to_nir(model, torch.zeros(1, 16), ignore_dims=[0])
    network = read_graph(graph, dt=1e-4, name="snntorch")  # snnTorch writes its taus for a 0.1 ms step
    x = rate((16,), seed=1)
    utils.reset(model)
    with torch.no_grad():
        mems = []
        for t in range(T):
            _, mem = model(x[t])
            mems.append(mem)
        theirs = torch.stack(mems)
        ours = NetworkModel(network, kind="nir-float")(x)
    assert float(theirs.abs().max()) > 0 and torch.allclose(ours[1:], theirs[:-1], atol=1e-5)
    export_netx(network, tmp_path / "snntorch.net")
    mismatches, spikes = lava_check(tmp_path / "snntorch.net", x)
    assert spikes[0] > 0 and mismatches == [0, 0]


def test_sinabs_style_cnn_from_a_nir_file_runs_exactly_on_lava(tmp_path):
    path = tmp_path / "cnn.nir"
    nir.write(str(path), sinabs_style())
    network = read_nir(path)
    assert [type(layer).__name__ for layer in network.layers] == ["ConvLayer", "DenseLayer"]  # pooling folded into the dense synapse
    x = rate((2, 10, 10), p=0.5)
    float_model = NetworkModel(network, kind="nir-float")
    with torch.no_grad():  # folding is exact: the float model equals the graph's own chain of ops
        spikes = float_model.layer_spikes(x)
        pooled = torch.nn.functional.avg_pool2d(spikes[0].reshape(T * 4, 4, 10, 10), 2) * 4
        assert pooled.sum() > 0
    export_netx(network, tmp_path / "cnn.net")
    mismatches, counts = lava_check(tmp_path / "cnn.net", x)
    assert counts[0] > 0 and counts[1] > 0 and mismatches == [0, 0]


def test_pooling_after_a_convolution_folds_into_one_strided_convolution():
    rng = np.random.default_rng(2)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1, 8, 8])),
        nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 1, (3, 1, 3, 3)), stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3)),
        nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        nir.LIF(tau=np.full((3, 4, 4), 0.01), r=np.ones((3, 4, 4)), v_leak=np.zeros((3, 4, 4)), v_threshold=np.ones((3, 4, 4)), v_reset=np.zeros((3, 4, 4))),
        nir.Output(output_type=np.array([3, 4, 4])),
    )
    layer = read_graph(graph).layers[0]
    assert type(layer).__name__ == "ConvLayer" and layer.stride == (2, 2) and layer.kernel == (4, 4)


def test_our_targets_go_to_nir_and_back_through_norse_and_snntorch(tmp_path):
    from norse.torch.utils.import_nir import from_nir
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    from test_hw_export import SHAPE, small_snn_lava, small_snn_norse

    for source in (small_snn_lava(), small_snn_norse()):
        network = model_network(source)
        path = tmp_path / f"{source.info.kind}.nir"
        nir.write(str(path), to_nir_graph(network, dt=1e-4))  # snnTorch's importer integrates with a 0.1 ms step
        x = rate(SHAPE, seed=3).reshape(T, 4, -1)
        with torch.no_grad():
            ours = NetworkModel(read_nir(path, dt=1e-4), kind="float").layer_spikes(x)
            snn_model = import_from_nir(nir.read(str(path)))
            utils.reset(snn_model)
            theirs = [[], []]
            for t in range(T):  # snnTorch's modules one by one, to see both layers' spikes
                s0 = snn_model.lif(snn_model.linear(x[t]))
                theirs[0].append(s0)
                theirs[1].append(snn_model.lif_1(snn_model.linear_1(s0)))
        assert ours[0].sum() > 0 and torch.equal(torch.stack(theirs[0]), ours[0])
        assert torch.equal(torch.stack(theirs[1])[:-1], ours[1][1:])  # Loihi's one step per layer
        norse_model = from_nir(nir.read(str(path)), dt=1e-4)  # Norse integrates with the step it is given
        state, outs = None, []
        with torch.no_grad():
            for t in range(T):
                y, state = norse_model(x[t], state)
                outs.append(y)
        assert torch.stack(outs).shape == (T, 4, 4)  # Norse reads the graph and runs it end to end


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda g: g.edges.append(("input", "output")), "input.*2 inputs|2 outgoing"),
        (lambda g: setattr(g.nodes["if"], "v_reset", np.full((4, 10, 10), 0.5)), "node 'if'.*v_reset = 0.5"),
        (lambda g: setattr(g.nodes["if"], "v_threshold", np.arange(1.0, 401.0).reshape(4, 10, 10)), "node 'if'.*per-neuron 'threshold'"),
        (lambda g: g.nodes.__setitem__("sumpool2d", nir.Delay(delay=np.ones(10))), "node 'sumpool2d'.*Delay is not supported"),
        (lambda g: g.nodes.pop("if_1") and g.edges.remove(("affine", "if_1")) or g.edges.remove(("if_1", "output")) or g.edges.append(("affine", "output")), "node 'sumpool2d'.*after the last neuron"),
    ],
)
def test_unsupported_graphs_name_the_node(mutate, words):
    graph = sinabs_style()
    mutate(graph)
    with pytest.raises(NetworkError, match=words):
        read_graph(graph, name="g")


def test_a_tau_shorter_than_dt_says_which_dt_to_pass():
    from norse.torch.utils.export_nir import to_nir

    graph = to_nir(norse_mlp(), torch.zeros(16))  # Norse's default writes tau = 1e-5 s
    with pytest.raises(NetworkError, match="shorter than the time step.*--dt"):
        read_graph(graph, name="norse")


def test_cli_exports_nir_to_netx_and_validates_it(tmp_path, capsys):
    from nmprivacy.cli import main

    nir.write(str(tmp_path / "cnn.nir"), sinabs_style())
    assert main(["export", "--model", str(tmp_path / "cnn.nir"), "--out", str(tmp_path / "cnn.net")]) == 0
    assert "float LIF -> CUBA" in capsys.readouterr().out
    assert load_netx(tmp_path / "cnn.net").network().describe().startswith("0: conv")
    assert main(["validate", "--model", str(tmp_path / "cnn.nir"), "--random", "3", "--steps", "12", "--out", str(tmp_path / "v"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert result["export"]["total_mismatches"] == 0 and result["export"]["source_vs_emulation"]["kind"] == "nir-float"
    assert "class_agreement" in result["export"]["source_vs_emulation"]
    assert main(["export", "--model", str(tmp_path / "cnn.net"), "--out", str(tmp_path / "back.nir")]) == 0
    assert read_nir(tmp_path / "back.nir").describe().startswith("0: conv")
    (tmp_path / "junk.nir").write_bytes(b"junk")
    assert main(["export", "--model", str(tmp_path / "junk.nir"), "--out", str(tmp_path / "x.net")]) == 2
    assert "not a readable NIR graph" in capsys.readouterr().err and not (tmp_path / "x.net").exists()


@pytest.mark.parametrize("dt", [0, -1e-3, float("nan"), float("inf"), True, "1e-3"])
def test_one_check_refuses_a_bad_time_step_everywhere(dt, tmp_path, capsys):
    """Reading, writing, exporting and a study cell share one ``dt`` check and its one-line error."""
    from nmprivacy.cli import main
    from nmprivacy.network.nir_export import to_nir_graph

    with pytest.raises(NetworkError, match=r"--dt is .*time step in seconds as a positive number"):
        read_graph(sinabs_style(), dt=dt, name="g")
    network = read_graph(sinabs_style(), name="g")
    with pytest.raises(NetworkError, match=r"--dt is .*positive number"):
        to_nir_graph(network, dt=dt)
    if isinstance(dt, float):
        nir.write(str(tmp_path / "cnn.nir"), sinabs_style())
        assert main(["export", "--model", str(tmp_path / "cnn.nir"), "--out", str(tmp_path / "x.nir"), "--dt", str(dt)]) == 2
        err = capsys.readouterr().err
        assert "--dt is" in err and "Traceback" not in err and not (tmp_path / "x.nir").exists()
