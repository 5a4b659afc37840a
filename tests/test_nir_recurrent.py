"""Recurrent NIR graphs in and out: the NIR paper's Braille shape (a recurrent ``CubaLIF`` written
as ``lif1.lif`` / ``lif1.w_rec``, flat or as a subgraph) and snnTorch's ``RSynaptic`` export are
read as ``dense_rec`` layers, exported to NetX and run on Lava spike for spike; our recurrent
layers go out as NIR that snnTorch reads back with the same spikes; bad graphs give one line
naming the node."""

from __future__ import annotations

import dataclasses
import json

import nir
import numpy as np
import pytest
import torch

from hw_export.netx_emulation import load_netx
from hw_export.netx_export import export_netx
from nmprivacy.errors import NetworkError
from nmprivacy.models.network_model import NetworkModel
from nmprivacy.network.nir_export import to_nir_graph
from nmprivacy.network.nir_import import read_graph, read_nir
from networks import lava_check

DT, T = 1e-4, 25
TAU_SYN, TAU_MEM, R, W_IN = 5e-4, 1e-3, 10.0, 5.0  # alpha 0.8, beta 0.9 at DT; input gain 0.2 * 5 * 1 = 1


def cuba(n: int, threshold: float = 1.0, **change) -> nir.CubaLIF:
    """A CubaLIF of ``n`` neurons with per-neuron arrays, all equal (as the Braille graph's)."""
    params = {"tau_syn": np.full(n, TAU_SYN), "tau_mem": np.full(n, TAU_MEM), "r": np.full(n, R), "v_leak": np.zeros(n),
              "v_threshold": np.full(n, threshold), "v_reset": np.zeros(n), "w_in": np.full(n, W_IN)}
    return nir.CubaLIF(**{**params, **change})


def braille(seed: int = 0, nested: bool = False) -> nir.NIRGraph:
    """The NIR paper's Braille network shape: Affine 12->38, recurrent CubaLIF (``lif1.lif`` with
    ``lif1.w_rec``), Affine 38->7, CubaLIF; flat as nirtorch writes it, or ``nested`` as a subgraph."""
    rng = np.random.default_rng(seed)
    fc1 = nir.Affine(weight=rng.normal(0.15, 0.5, (38, 12)), bias=np.zeros(38))
    w_rec = nir.Linear(weight=rng.normal(-0.05, 0.4, (38, 38)))
    fc2 = nir.Affine(weight=rng.normal(0.0, 0.4, (7, 38)), bias=np.zeros(7))
    nodes = {"input": nir.Input(input_type=np.array([12])), "fc1": fc1, "fc2": fc2, "lif2": cuba(7), "output": nir.Output(output_type=np.array([7]))}
    edges = [("input", "fc1"), ("fc2", "lif2"), ("lif2", "output")]
    if nested:
        nodes["lif1"] = nir.NIRGraph(
            nodes={"input": nir.Input(input_type=np.array([38])), "lif": cuba(38), "w_rec": w_rec, "output": nir.Output(output_type=np.array([38]))},
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")], type_check=False,
        )
        edges += [("fc1", "lif1"), ("lif1", "fc2")]
    else:
        nodes.update({"lif1.lif": cuba(38), "lif1.w_rec": w_rec})
        edges += [("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"), ("lif1.w_rec", "lif1.lif"), ("lif1.lif", "fc2")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def rsynaptic_graph() -> tuple[torch.nn.Module, nir.NIRGraph]:
    """snnTorch 1.0's RSynaptic (recurrent bias zeroed) and what its export_to_nir writes for it."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(12, 16, bias=False),
        snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=16, threshold=0.5, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(16, 4, bias=False),
        snn.Leaky(beta=torch.full((4,), 0.9), threshold=torch.full((4,), 0.5), init_hidden=True, output=True, reset_mechanism="zero"),
    )
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[1].recurrent.bias.zero_()  # a bias into a synaptic current has no Loihi form
    return model, export_to_nir(model, torch.zeros(1, 12), ignore_dims=[0])


def rate(n: int, batch: int = 3, p: float = 0.3, seed: int = 0, steps: int = T) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=g) < p).float()


def reference(network, x: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's spikes ``[T, B, N]``, written out independently of ``NetworkModel``: float CUBA
    neurons, the recurrent input from the layer's own spikes one step before, reset to 0, and
    Loihi's one step per layer (layer ``l`` starts at step ``l``)."""
    out, source = [], x.double()
    for l, layer in enumerate(network.layers):
        n = layer.neuron
        a = source @ torch.as_tensor(layer.weight).T
        i = v = z = torch.zeros(x.shape[1], a.shape[-1], dtype=torch.float64)
        spikes = torch.zeros_like(a)
        for t in range(l, x.shape[0]):
            drive = a[t] + (z @ torch.as_tensor(layer.weight_rec).T if layer.weight_rec is not None else 0)
            i = n.alpha * i + drive
            v = n.beta * v + i
            z = (v > n.threshold).double()
            spikes[t], v = z, v * (1 - z)
        out.append(spikes)
        source = torch.cat([torch.zeros_like(spikes[:1]), spikes[:-1]])
    return out


def class_agreement(network, path, x) -> float:
    """Fraction of inputs on which the float model and the NetX file's Loihi emulation pick the
    same class (most output spikes)."""
    with torch.no_grad():
        ours = NetworkModel(network, kind="nir-float").layer_spikes(x)[-1].sum(0).argmax(-1)
        loihi = load_netx(path).layer_spikes(x)[-1].sum(0).argmax(-1)
    return float((ours == loihi).float().mean())


def test_braille_graph_reads_its_recurrent_layer_and_runs_exactly_on_lava(tmp_path):
    path = tmp_path / "braille.nir"
    nir.write(str(path), braille())
    network = read_nir(path, dt=DT)
    assert network.describe() == "0: dense_rec (12,) -> (38,); 1: dense (38,) -> (7,)"
    assert network.meta["nodes"] == ["input", "fc1", "lif1.lif", "lif1.w_rec", "fc2", "lif2", "output"]  # names as written
    layer = network.layers[0]
    assert "'lif1.lif'" in layer.name and layer.neuron.alpha == pytest.approx(0.8) and layer.neuron.beta == pytest.approx(0.9)
    gain = (DT / TAU_SYN) * W_IN * (DT * R / TAU_MEM)
    assert np.allclose(layer.weight_rec, gain * braille().nodes["lif1.w_rec"].weight)
    nested = read_graph(braille(nested=True), dt=DT, name="nested")  # the subgraph form reads the same
    assert nested.meta["nodes"] == network.meta["nodes"]
    assert all(np.array_equal(a.weight_rec, b.weight_rec) if a.weight_rec is not None else b.weight_rec is None for a, b in zip(nested.layers, network.layers))

    x = rate(12, batch=8, seed=1)
    with torch.no_grad():
        ours = NetworkModel(network, kind="nir-float").layer_spikes(x)
        without = NetworkModel(dataclasses.replace(network, layers=(dataclasses.replace(layer, weight_rec=None), network.layers[1]))).layer_spikes(x)
    expected = reference(network, x)
    assert all(torch.equal(o.double(), e) for o, e in zip(ours, expected))
    assert ours[0].sum() > 0 and ours[1].sum() > 0 and not torch.equal(ours[0], without[0])  # the recurrence counts
    report = export_netx(network, tmp_path / "braille.net")
    assert report.mapping == "float LIF -> CUBA" and report.layers[0].weight_rel_rms_error < 0.02
    assert load_netx(tmp_path / "braille.net").network().describe().startswith("0: dense_rec")
    mismatches, spikes = lava_check(tmp_path / "braille.net", x[:, :3])
    assert spikes[0] > 0 and spikes[1] > 0 and mismatches == [0, 0]
    assert class_agreement(network, tmp_path / "braille.net", rate(12, batch=100, seed=2)) >= 0.85  # measured 0.91


def test_snntorch_rsynaptic_export_reads_and_runs_exactly_on_lava(tmp_path):
    model, graph = rsynaptic_graph()
    assert {"1.lif", "1.w_rec"} <= set(graph.nodes)  # snnTorch 1.0 / nirtorch write the subgraph flattened, dotted names
    path = tmp_path / "rsyn.nir"
    nir.write(str(path), graph)
    network = read_nir(path, dt=DT)
    layer = network.layers[0]
    assert network.describe().startswith("0: dense_rec (12,) -> (16,)") and "'1.lif'" in layer.name
    assert (layer.neuron.alpha, layer.neuron.beta, layer.neuron.threshold) == pytest.approx((0.8, 0.9, 0.5))
    assert np.allclose(layer.weight_rec, model[1].recurrent.weight.detach().numpy(), atol=1e-6)  # snnTorch's gains are 1
    x = rate(12, batch=3, seed=3)
    export_netx(network, tmp_path / "rsyn.net")
    mismatches, spikes = lava_check(tmp_path / "rsyn.net", x)
    assert spikes[0] > 0 and spikes[1] > 0 and mismatches == [0, 0]
    assert class_agreement(network, tmp_path / "rsyn.net", rate(12, batch=100, seed=4)) >= 0.85  # measured 0.96

    with torch.no_grad():
        model[1].recurrent.bias.fill_(0.1)
    from snntorch.export_nir import export_to_nir

    with pytest.raises(NetworkError, match=r"node '1\.w_rec'.*bias on the recurrent weight"):
        read_graph(export_to_nir(model, torch.zeros(1, 12), ignore_dims=[0]), dt=DT, name="g")


def test_snntorch_rleaky_recurrent_bias_becomes_a_voltage_bias():
    """A LIF has no synaptic current: RLeaky's recurrent bias is a constant input, i.e. a bias."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(12, 16, bias=False), snn.RLeaky(beta=0.9, linear_features=16, threshold=0.5, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(16, 4, bias=False), snn.Leaky(beta=torch.full((4,), 0.9), threshold=torch.full((4,), 0.5), init_hidden=True, output=True, reset_mechanism="zero"),
    )
    layer = read_graph(export_to_nir(model, torch.zeros(1, 12), ignore_dims=[0]), dt=DT, name="rleaky").layers[0]
    assert layer.weight_rec is not None and layer.neuron.alpha == 0 and layer.neuron.beta == pytest.approx(0.9)
    assert np.allclose(layer.weight_rec, model[1].recurrent.weight.detach().numpy(), atol=1e-6)
    assert np.allclose(layer.bias, model[1].recurrent.bias.detach().numpy(), atol=1e-6)


def test_recurrent_layers_go_out_as_nir_that_snntorch_reads_back(tmp_path):
    from norse.torch.utils.import_nir import from_nir
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    network = read_graph(braille(), dt=DT, name="braille")
    path = tmp_path / "out.nir"
    nir.write(str(path), to_nir_graph(network, dt=DT))  # snnTorch's importer integrates with a 0.1 ms step
    back = read_nir(path, dt=DT)
    assert back.meta["nodes"] == ["input", "0", "1.lif", "1.w_rec", "2", "3", "output"]
    assert all(np.allclose(a.weight, b.weight) for a, b in zip(back.layers, network.layers))
    assert np.allclose(back.layers[0].weight_rec, network.layers[0].weight_rec)
    x = rate(12, batch=4, seed=5)
    snn_model = import_from_nir(nir.read(str(path)))
    neurons = [m for m in snn_model.modules() if type(m).__name__ == "Synaptic"]
    assert len(neurons) == 2  # the recurrent layer: snnTorch's Synaptic with the Linear w_rec wired back by nirtorch
    theirs: list[list[torch.Tensor]] = [[], []]
    hooks = [m.register_forward_hook(lambda mod, inp, out, k=k: theirs[k].append(out)) for k, m in enumerate(neurons)]
    with torch.no_grad():
        ours = NetworkModel(back, kind="float").layer_spikes(x)
        utils.reset(snn_model)
        state = None
        for t in range(T):
            _, state = snn_model(x[t], state)
    for h in hooks:
        h.remove()
    assert ours[0].sum() > 0 and torch.equal(torch.stack(theirs[0]), ours[0])
    assert torch.equal(torch.stack(theirs[1])[:-1], ours[1][1:])  # Loihi's one step per layer
    norse_model = from_nir(nir.read(str(path)), dt=DT)
    state, outs = None, []
    with torch.no_grad():
        for t in range(T):
            y, state = norse_model(x[t], state)
            outs.append(y)
    assert torch.stack(outs).shape == (T, 4, 7)  # Norse reads the recurrent graph and runs it end to end


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda g: setattr(g.nodes["lif1.lif"], "tau_mem", np.linspace(1e-3, 2e-3, 38)), r"node 'lif1\.lif' \(CubaLIF\): per-neuron 'tau mem' values differ"),
        (lambda g: setattr(g.nodes["lif1.lif"], "v_threshold", np.linspace(1.0, 2.0, 38)), r"node 'lif1\.lif' \(CubaLIF\): per-neuron 'threshold'"),
        (lambda g: setattr(g.nodes["lif1.w_rec"], "weight", np.ones((7, 38))), r"node 'lif1\.w_rec'.*weight of shape \(7, 38\)|lif1\.w_rec.*not back onto"),
        (lambda g: g.edges.append(("lif2", "lif2")), r"edge \(lif2, lif2\) feeds node 'lif2' its own output without a weight"),
        (lambda g: g.edges.append(("lif2", "fc1")), r"node 'lif2' has 2 outgoing edges|node 'fc1' has 2 inputs"),
        (lambda g: g.edges.append(("lif1.lif", "ghost")), r"edge \(lif1\.lif, ghost\) names a node that is not in the graph"),
        (lambda g: g.nodes.update({"lif1.w2": nir.Linear(weight=np.eye(38))}) or g.edges.extend([("lif1.lif", "lif1.w2"), ("lif1.w2", "lif1.lif")]),
         r"node 'lif1\.lif' has two recurrent paths"),
    ],
)
def test_bad_recurrent_graphs_name_the_node(mutate, words):
    graph = braille()
    mutate(graph)
    with pytest.raises(NetworkError, match=words):
        read_graph(graph, dt=DT, name="g")


def test_a_recurrent_convolutional_layer_and_a_broken_subgraph_are_refused():
    graph = braille(nested=True)
    graph.nodes["lif1"].edges.remove(("input", "lif"))
    with pytest.raises(NetworkError, match=r"subgraph node 'lif1\.input' has no outgoing edge"):
        read_graph(graph, dt=DT, name="g")
    rng = np.random.default_rng(0)
    conv = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1, 4, 4])),
               "conv": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(0, 1, (2, 1, 3, 3)), stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(2)),
               "lif": nir.LIF(tau=np.full((2, 4, 4), 1e-2), r=np.ones((2, 4, 4)), v_leak=np.zeros((2, 4, 4)), v_threshold=np.ones((2, 4, 4)), v_reset=np.zeros((2, 4, 4))),
               "rec": nir.Scale(scale=np.full((2, 4, 4), 0.5)), "output": nir.Output(output_type=np.array([2, 4, 4]))},
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")], type_check=False,
    )
    with pytest.raises(NetworkError, match=r"node 'lif' \(LIF\): recurrent weights on a \(2, 4, 4\) layer"):
        read_graph(conv, name="g")


def test_cli_exports_validates_attacks_and_writes_back_a_recurrent_graph(tmp_path, capsys):
    from nmprivacy.cli import main

    nir.write(str(tmp_path / "rec.nir"), braille())
    assert main(["export", "--model", str(tmp_path / "rec.nir"), "--dt", "1e-4", "--out", str(tmp_path / "rec.net")]) == 0
    assert "layer 0 (dense)" in capsys.readouterr().out
    assert load_netx(tmp_path / "rec.net").network().recurrent
    assert main(["validate", "--model", str(tmp_path / "rec.nir"), "--dt", "1e-4", "--random", "3", "--steps", "15",
                 "--out", str(tmp_path / "v"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "v" / "validation.json").read_text())["export"]
    assert result["total_mismatches"] == 0 and result["layers"][0]["lava_spikes"] > 0
    assert "class_agreement" in result["source_vs_emulation"]
    assert main(["attack", "--attack", "bl-v2", "--model", str(tmp_path / "rec.nir"), "--dt", "1e-4", "--dataset", "digits",
                 "--quick", "--classes", "0,1", "--steps", "12", "--out", str(tmp_path / "a" / "inv.pt")]) == 0
    summary = json.loads((tmp_path / "a" / "inv.json").read_text())
    assert summary["config"]["oracle"] == "autograd"  # the fast engine has no recurrence: autograd through the emulation
    assert torch.load(tmp_path / "a" / "inv.pt")["reconstructions"].shape == (2, 12, 12)
    assert main(["export", "--model", str(tmp_path / "rec.net"), "--out", str(tmp_path / "back.nir")]) == 0
    assert read_nir(tmp_path / "back.nir").describe().startswith("0: dense_rec (12,) -> (38,)")
