"""NIR graphs (``nir.write``): parameters, per-neuron values, resets, branches, cycles, recurrent weights, subgraphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Rng, pick


def nir_seed(case: Path, variant: str) -> None:
    """A NIR file written with nir.write: a LIF MLP with a LI read-out, or a Sinabs-style CNN."""
    import nir

    case.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if variant == "cnn":
        nodes = [
            nir.Input(input_type=np.array([2, 8, 8])),
            nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.1, 0.5, (3, 2, 3, 3)), stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3)),
            nir.IF(r=np.ones((3, 8, 8)), v_threshold=np.ones((3, 8, 8))),
            nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0),
            nir.Affine(weight=rng.normal(0.05, 0.3, (5, 48)), bias=np.zeros(5)),
            nir.IF(r=np.ones(5), v_threshold=np.ones(5)),
            nir.Output(output_type=np.array([5])),
        ]
    else:
        nodes = [
            nir.Input(input_type=np.array([16])),
            nir.Affine(weight=rng.normal(0.1, 0.5, (12, 16)), bias=np.zeros(12)),
            nir.LIF(tau=np.full(12, 0.01), r=np.full(12, 10.0), v_leak=np.zeros(12), v_threshold=np.ones(12), v_reset=np.zeros(12)),
            nir.Linear(weight=rng.normal(0.0, 0.5, (4, 12))),
            nir.LI(tau=np.full(4, 0.01), r=np.full(4, 10.0), v_leak=np.zeros(4)),
            nir.Output(output_type=np.array([4])),
        ]
    nir.write(str(case / "g.nir"), nir.NIRGraph.from_list(*nodes))


def nir_read(case: Path) -> Any:
    """The float and the Loihi model of the graph, run on a few steps of input."""
    from nmprivacy.targets import load_target

    target = load_target(case / "g.nir")
    x = torch.ones(3, 2, *target.model.info.input_shape)
    with torch.no_grad():
        return target, target.float_model(x), target.model(x)


def nir_check(result: Any, case: Path) -> None:
    target, out_float, out_loihi = result
    assert bool(torch.isfinite(out_float).all()) and bool(torch.isfinite(out_loihi).all())
    assert out_float.shape == out_loihi.shape == (3, 2, target.model.info.num_classes)


def nir_mutation(rng: Rng, case: Path) -> Mutation:
    """Parameters NaN, negative, shorter than dt or per-neuron where Loihi has one per layer;
    v_reset away from 0; branches, cycles, missing or unknown nodes; wrong shapes; broken
    subgraphs and recurrent weights; and valid variants (another tau, a neuron wrapped in a
    subgraph, recurrent weights around a neuron layer)."""
    import nir

    path = case / "g.nir"
    graph = nir.read(str(path), type_check=False)
    neurons = [k for k, n in graph.nodes.items() if type(n).__name__ in ("LIF", "LI", "IF")]
    node_key = pick(rng, neurons)
    node = graph.nodes[node_key]
    how = pick(rng, ["nan", "negtau", "shorttau", "perneuron", "vreset", "branch", "cycle", "orphan", "unknown", "weightshape",
                     "tau-valid", "subgraph", "subgraph-open", "recurrent", "recurrent-shape", "noinput", "inputshape"])
    must_fail: bool | None = True
    field = "tau" if hasattr(node, "tau") else "r"
    if how == "nan":
        value = np.array(getattr(node, field), dtype=np.float64)
        value.reshape(-1)[0] = np.nan
        setattr(node, field, value)
    elif how == "negtau" and hasattr(node, "tau"):
        node.tau = -np.abs(node.tau)
    elif how == "shorttau" and hasattr(node, "tau"):
        node.tau = np.full_like(node.tau, 1e-6)
    elif how == "perneuron":
        key = "v_threshold" if hasattr(node, "v_threshold") else ("tau" if hasattr(node, "tau") else "r")
        values = np.array(getattr(node, key), dtype=np.float64)
        if key == "r":
            must_fail = False  # per-neuron r folds into the weights
        setattr(node, key, values * (1.0 + np.arange(values.size).reshape(values.shape)))
    elif how == "vreset" and hasattr(node, "v_reset"):
        node.v_reset = np.full_like(node.v_reset, 0.5)
    elif how == "branch":
        graph.edges.append(("input", node_key))
    elif how == "cycle":
        graph.edges.append((node_key, "input"))
    elif how == "orphan":
        graph.nodes["lonely"] = nir.Linear(weight=np.ones((2, 2)))
    elif how == "unknown":
        graph.nodes[node_key] = nir.Delay(delay=np.ones(3))
    elif how == "weightshape":
        key = next(k for k, n in graph.nodes.items() if type(n).__name__ in ("Affine", "Linear"))
        graph.nodes[key].weight = np.ones((3, 7))
    elif how == "tau-valid" and hasattr(node, "tau"):
        node.tau = np.full_like(node.tau, 0.02)
        must_fail = False
    elif how == "subgraph":  # the neuron wrapped in a subgraph: read as the same network
        n = np.array(np.shape(getattr(node, "v_threshold", getattr(node, "tau", None))))
        graph.nodes[node_key] = nir.NIRGraph(nodes={"in": nir.Input(input_type=n), "neuron": node, "out": nir.Output(output_type=n)},
                                             edges=[("in", "neuron"), ("neuron", "out")], type_check=False)
        must_fail = False
    elif how == "subgraph-open":  # a subgraph whose Input leads nowhere
        graph.nodes[node_key] = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([2])), "out": nir.Output(output_type=np.array([2]))},
                                             edges=[], type_check=False)
    elif how in ("recurrent", "recurrent-shape"):  # neuron -> Linear -> the same neuron: recurrent weights
        shape = np.shape(getattr(node, "v_threshold", getattr(node, "tau", None)))
        n = int(np.prod(shape))
        graph.nodes["w_rec"] = nir.Linear(weight=rng.normal(0.0, 0.3, (n, n + (how == "recurrent-shape"))))
        graph.edges += [(node_key, "w_rec"), ("w_rec", node_key)]
        must_fail = how == "recurrent-shape" or len(shape) != 1  # a (C, H, W) layer has no recurrent form
    elif how == "noinput":
        graph.nodes.pop("input", None)
    elif how == "inputshape":
        graph.nodes["input"] = nir.Input(input_type=np.array(pick(rng, [[0], [-3, 4], [2, 2, 2, 2, 2]])))
    else:
        must_fail = None
    nir.write(str(path), graph)
    return Mutation(f"nir-{how}", must_fail)


FORMAT = Format(
    "nir",
    write_seed=nir_seed,
    targets=lambda case: [case / "g.nir"],
    read=nir_read,
    variants=("mlp", "cnn"),
    check=nir_check,
    semantic=(nir_mutation,),
    generic=expect({"truncate": True, "magic": True}),
    cli=lambda case: ["export", "--model", str(case / "g.nir"), "--out", str(case / "out" / "g.net")],
    warm=lambda workdir: __import__("nmprivacy.targets"),
)
