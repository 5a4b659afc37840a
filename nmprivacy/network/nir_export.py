"""Writing a ``Network`` as a NIR graph that Norse, snnTorch and other NIR readers import.

Each layer becomes its synapse node (``Conv2d``; ``Flatten`` + ``Linear`` for a dense layer; a
``Scale`` for an input layer's transform) and its neuron node, with parameters for the step
``dt`` (seconds; the reader must integrate with the same step: Norse's ``from_nir(graph, dt)``,
snnTorch's importer uses 1e-4) such that forward Euler gives back the layer's per-step model
(``nmprivacy.network.nir_import``): ``LIF`` (``tau = dt / (1 - beta)``, ``r = tau / dt``: unit
gain), ``CubaLIF`` with a synaptic current, ``IF`` without leak, ``LI`` / ``CubaLI`` for a
read-out; a bias becomes ``v_leak``. A Loihi network is written in its float units (integer
weights, thresholds and biases divided by ``64 * scale``, decays as keep factors): exactly the
same dynamics up to Loihi's rounding. A recurrent layer (``weight_rec``) becomes a subgraph
node in the shape snnTorch's ``RSynaptic`` / ``RLeaky`` export: ``Input -> lif -> Output`` with
``lif -> w_rec (Linear) -> lif``; the nodes of a network with such a layer are named by
position (``"0"``, ``"1"``, ...; zero-padded), because ``nir.read`` returns nodes sorted by name
and nirtorch, which snnTorch's importer runs on, fails on a subgraph it meets before its input.
Not representable in NIR, hence refused: synaptic delays, a bias on a neuron without leak.
Loihi's one step of delay per layer has no NIR node either: the graph's model answers one step
earlier per layer (noted). Types follow NIR's unbatched convention (a ``Flatten`` flattens all of
(C, H, W): ``start_dim=0``), so the graph passes nir's own type check; torch-based readers that
map it to ``torch.nn.Flatten(0)`` then need unbatched inputs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from nmprivacy.errors import NetworkError
from nmprivacy.network import loihi
from nmprivacy.network.description import ConvLayer, DenseLayer, FloatNeuron, InputLayer, Layer, Network
from nmprivacy.network.timestep import DEFAULT_DT, checked_dt

DELAY_NOTE = "Loihi adds one step per layer, which NIR graphs do not: the graph's model answers one step earlier per layer"


def _float_params(layer: Layer) -> tuple[FloatNeuron, np.ndarray | None, np.ndarray | None, np.ndarray | None, float]:
    """(float neuron, float weight, float recurrent weight, float bias per neuron, input
    transform weight) of a layer."""
    n = layer.neuron
    bias = layer.bias_per_neuron(layer.out_shape)
    rec = getattr(layer, "weight_rec", None)
    if isinstance(n, FloatNeuron):
        weight = None if isinstance(layer, InputLayer) else np.asarray(layer.weight, dtype=np.float64)
        in_weight = float(layer.weight) if isinstance(layer, InputLayer) else 1.0
        return n, weight, None if rec is None else np.asarray(rec, dtype=np.float64), None if bias is None else bias.astype(np.float64), in_weight
    unit = loihi.ACT_SHIFT * layer.scale  # integer weight per float unit
    neuron = FloatNeuron(
        alpha=loihi.keep_of(n.i_decay), beta=loihi.keep_of(n.v_decay),
        threshold=n.vth_mant / unit if n.spikes else math.inf, reset="zero",
    )
    weight = None if isinstance(layer, InputLayer) else np.asarray(layer.weight, dtype=np.float64) / unit
    frec = None if rec is None else np.asarray(rec, dtype=np.float64) / unit
    fbias = None if bias is None else bias.astype(np.float64) / unit
    return neuron, weight, frec, fbias, (float(layer.weight) / unit if isinstance(layer, InputLayer) else 1.0)


def _neuron_node(neuron: FloatNeuron, shape: tuple[int, ...], bias: np.ndarray | None, dt: float, where: str):
    import nir

    def full(value: float) -> np.ndarray:
        return np.full(shape, float(value), dtype=np.float64)

    if neuron.reset != "zero" and neuron.spikes:
        raise NetworkError(f"{where}: subtracts its threshold on a spike, which NIR's neurons (reset to v_reset) cannot express")
    if neuron.beta >= 1.0:
        if neuron.alpha > 0 or bias is not None or not neuron.spikes:
            raise NetworkError(f"{where}: a neuron without leak but with a synaptic current, bias or no threshold has no NIR node")
        return nir.IF(r=full(1.0), v_threshold=full(neuron.threshold), v_reset=full(0.0))
    tau_mem = dt / (1.0 - neuron.beta)
    v_leak = np.zeros(shape) if bias is None else np.broadcast_to(bias, shape) * tau_mem / dt
    if neuron.alpha > 0:
        tau_syn = dt / (1.0 - neuron.alpha)
        common = {"tau_syn": full(tau_syn), "tau_mem": full(tau_mem), "r": full(tau_mem / dt), "v_leak": np.array(v_leak, dtype=np.float64), "w_in": full(tau_syn / dt)}
        if neuron.spikes:
            return nir.CubaLIF(v_threshold=full(neuron.threshold), v_reset=full(0.0), **common)
        return nir.CubaLI(**common)
    common = {"tau": full(tau_mem), "r": full(tau_mem / dt), "v_leak": np.array(v_leak, dtype=np.float64)}
    if neuron.spikes:
        return nir.LIF(v_threshold=full(neuron.threshold), v_reset=full(0.0), **common)
    return nir.LI(**common)


def _recurrent_node(neuron_node, rec: np.ndarray):
    """The subgraph of a recurrent layer, as snnTorch's ``RSynaptic`` / ``RLeaky`` export writes it."""
    import nir

    n = rec.shape[0]
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([n])), "lif": neuron_node, "w_rec": nir.Linear(weight=rec), "output": nir.Output(output_type=np.array([n]))},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )


def to_nir_graph(network: Network, dt: float = DEFAULT_DT):
    """The NIR graph of ``network`` for the step ``dt`` (seconds); see the module docstring."""
    import nir

    dt = checked_dt(dt)
    first = network.layers[0]
    flat_input = isinstance(first, DenseLayer)  # a dense first layer reads the input flattened: say so, no Flatten node
    nodes = [nir.Input(input_type=np.array([network.input_size] if flat_input else network.input_shape))]
    for i, layer in enumerate(network.layers):
        where = layer.name
        if isinstance(layer, DenseLayer) and layer.delay is not None:
            raise NetworkError(f"{where}: synaptic delays have no NIR form here; export a network without delays")
        neuron, weight, rec, bias, in_weight = _float_params(layer)
        if isinstance(layer, InputLayer):
            if layer.bias_in:
                raise NetworkError(f"{where}: an input transform with a bias has no NIR form here")
            nodes.append(nir.Scale(scale=np.full(layer.shape, in_weight)))
        elif isinstance(layer, ConvLayer):
            nodes.append(nir.Conv2d(
                input_shape=tuple(layer.in_shape[1:]), weight=weight, stride=layer.stride, padding=layer.padding,
                dilation=layer.dilation, groups=layer.groups, bias=np.zeros(layer.out_shape[0]),
            ))
        else:
            if len(layer.in_shape) == 3 and i > 0:  # NIR's unbatched convention: flatten all of (C, H, W)
                nodes.append(nir.Flatten(input_type={"input": np.array(layer.in_shape)}, start_dim=0, end_dim=-1))
            nodes.append(nir.Linear(weight=weight))
        node = _neuron_node(neuron, tuple(layer.out_shape), bias, dt, where)
        nodes.append(node if rec is None else _recurrent_node(node, rec))
    nodes.append(nir.Output(output_type=np.array(network.layers[-1].out_shape)))
    if network.recurrent:  # named by position, so that sorting the names keeps the graph's order
        width = len(str(len(nodes) - 3))
        names = ["input", *(f"{k:0{width}d}" for k in range(len(nodes) - 2)), "output"]
        graph = nir.NIRGraph(nodes=dict(zip(names, nodes)), edges=list(zip(names[:-1], names[1:])))
    else:
        graph = nir.NIRGraph.from_list(*nodes)
    graph.metadata = {"producer": "nmprivacy", "dt": float(dt), "note": DELAY_NOTE if len(network.layers) > 1 else ""}
    return graph


def write_nir(network: Network, path: str | os.PathLike[str], dt: float = DEFAULT_DT, training: dict | None = None) -> Path:
    """Write ``network`` as a NIR file (``nir.write``, atomically) for the step ``dt``; ``training``
    (the model's DP-SGD / defences record) goes into the graph's metadata as JSON text."""
    import json

    import nir

    from nmprivacy.runinfo import atomic_path

    graph = to_nir_graph(network, dt)
    if training:
        graph.metadata["training"] = json.dumps(training)
    target = Path(path)
    with atomic_path(target) as tmp:
        nir.write(str(tmp), graph)
    return target
