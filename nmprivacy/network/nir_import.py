"""Reading NIR graphs (the field's interchange format) into a float ``Network``.

Accepted: a chain ``Input -> ... -> Output`` of the nodes ``Affine``, ``Linear``, ``Scale``,
``Conv2d``, ``Flatten``, ``SumPool2d``, ``AvgPool2d`` (linear operations) and ``LIF``,
``CubaLIF``, ``IF``, ``LI``, ``CubaLI``, ``Threshold`` (neurons). The linear operations between
two neuron nodes are folded, exactly, into one synaptic layer (NetX has no pooling layer): a
lone convolution stays a convolution, a convolution and a pooling that compose into one
convolution become that convolution (checked numerically against the chain), anything else
becomes the dense matrix of the composed map. Time is discretised with forward Euler at the
step ``dt`` (NIR has none: ``--dt``, default 1 ms, Norse's convention; snnTorch exports with
0.1 ms), current before voltage (Loihi's order), per step:
- ``LIF``: ``v <- (1 - dt/tau) v + (dt r / tau) I + (dt / tau) v_leak``;
- ``CubaLIF``: ``I <- (1 - dt/tau_syn) I + (dt / tau_syn) w_in S``, then ``v`` as ``LIF`` with ``tau_mem``;
- ``IF``: ``v <- v + r I`` (no time constant: integrated once per step, as Sinabs does);
- ``LI`` / ``CubaLI``: the same without a threshold (an integrating read-out);
- ``Threshold``: ``v <- I`` (no memory).
Gains (``r``, ``w_in``, ``dt / tau``) are folded into the weights. A neuron resets to
``v_reset``, which Loihi requires to be 0. Loihi holds one decay and one threshold per layer:
per-neuron time constants or thresholds are accepted when all equal and refused otherwise
(per-neuron ``r``, ``w_in``, ``v_leak`` fold into weights and biases).

Node names are kept as the graph writes them, dots included. A subgraph (a nested ``NIRGraph``
node ``k``) is flattened: its nodes become ``k.<name>`` and its Input / Output nodes are bypassed,
so snnTorch's nested ``RSynaptic`` / ``RLeaky`` and their flattened form (``lif1.lif``,
``lif1.w_rec``, as nirtorch writes them) read alike. A path of linear nodes that leaves a neuron
node and returns to it (``lif1.lif -> lif1.w_rec -> lif1.lif``) is that layer's recurrent
weight: folded with the neuron's input gain into ``weight_rec`` (``[N, N]``: the previous step's
spikes of the layer enter its input, ``a_t += W_rec z_{t-1}``), which NetX writes as a
``dense_rec`` layer. Everything else (branches, other cycles, other node types, a time constant
shorter than ``dt``) is a one-line error naming the node.
One module on purpose (~500 lines): walking the graph, folding its linear nodes and mapping
its neurons are one translation with one set of error messages.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from nmprivacy.errors import NetworkError
from nmprivacy.network.description import MAX_ELEMENTS, ConvLayer, DenseLayer, FloatNeuron, Network
from nmprivacy.network.timestep import DEFAULT_DT, checked_dt

LINEAR_NODES = ("Affine", "Linear", "Scale", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d")
NEURON_NODES = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "Threshold")
DENSE_LIMIT = 1 << 26  # largest composed dense matrix (values) a folded chain may become


@dataclass(frozen=True)
class _Op:
    name: str
    kind: str
    node: Any


def _values(node: Any, field: str, where: str, default: float | None = None) -> np.ndarray:
    """A node parameter as a finite float64 array (torch tensors and scalars accepted)."""
    value = getattr(node, field, None)
    if value is None:
        if default is None:
            raise NetworkError(f"{where}: parameter '{field}' is missing")
        return np.asarray(default, dtype=np.float64)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NetworkError(f"{where}: parameter '{field}' is not numeric") from None
    if arr.size > MAX_ELEMENTS:
        raise NetworkError(f"{where}: parameter '{field}' holds {arr.size} values, more than the {MAX_ELEMENTS} accepted")
    if not np.isfinite(arr).all():
        raise NetworkError(f"{where}: parameter '{field}' contains NaN or infinite values")
    return arr


def _uniform(arr: np.ndarray, where: str, what: str) -> float:
    flat = arr.reshape(-1)
    if flat.size == 0:
        raise NetworkError(f"{where}: '{what}' is empty")
    if (flat != flat[0]).any():
        raise NetworkError(f"{where}: per-neuron '{what}' values differ, but Loihi holds one {what} per layer")
    return float(flat[0])


def _pair(value: Any, where: str, what: str) -> tuple[int, int]:
    arr = np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or arr.dtype.kind not in "biuf" or (arr != np.round(arr)).any() or arr.min() < 0:
        raise NetworkError(f"{where}: {what} {value!r} is not one or two non-negative integers")
    return int(arr[0]), int(arr[1])


MAX_DEPTH = 16  # deepest nesting of subgraphs read (a bound for hostile files)


@dataclass
class _Flat:
    """A graph with its subgraphs flattened: nodes under dotted names (``lif1.lif``), edges
    between those names; ``ends``: its own (Input, Output) node names; ``passthrough``: the
    Input / Output nodes of its subgraphs."""

    nodes: dict[str, Any]
    edges: list[tuple[str, str]]
    ends: tuple[list[str], list[str]]
    passthrough: set[str]


def _flatten(graph: Any, name: str, prefix: str = "", depth: int = 0) -> _Flat:
    """``graph``'s nodes and edges with every nested ``NIRGraph`` node ``k`` replaced by its
    nodes named ``k.<inner name>`` (recursively); an edge to or from ``k`` itself goes to its
    Input or comes from its Output node."""
    import nir

    if depth > MAX_DEPTH:
        raise NetworkError(f"{name}: subgraph '{prefix[:-1]}' is nested more than {MAX_DEPTH} levels deep")
    flat = _Flat({}, [], ([], []), set())
    subgraphs: dict[str, _Flat] = {}

    def add(key: str, node: Any) -> None:
        if key in flat.nodes:
            raise NetworkError(f"{name}: node '{key}' is defined twice (a node and a subgraph's node share the name)")
        flat.nodes[key] = node

    for key, node in dict(getattr(graph, "nodes", {}) or {}).items():
        full = f"{prefix}{key}"
        if isinstance(node, nir.NIRGraph):
            inner = subgraphs[str(key)] = _flatten(node, name, f"{full}.", depth + 1)
            for k, n in inner.nodes.items():
                add(k, n)
            flat.edges.extend(inner.edges)
            flat.passthrough |= inner.passthrough | set(inner.ends[0]) | set(inner.ends[1])
        else:
            add(full, node)
            if isinstance(node, nir.Input):
                flat.ends[0].append(full)
            elif isinstance(node, nir.Output):
                flat.ends[1].append(full)
    for edge in getattr(graph, "edges", []) or []:
        if not isinstance(edge, (tuple, list)) or len(edge) != 2:
            raise NetworkError(f"{name}: edge {edge!r} is not a (source, target) pair")
        pair = []
        for end, side in zip((str(e) for e in edge), (1, 0)):
            if end in subgraphs:  # an edge to a subgraph enters at its Input, one from it leaves at its Output
                found = subgraphs[end].ends[side]
                if len(found) != 1:
                    what = "Output" if side else "Input"
                    raise NetworkError(f"{name}: subgraph '{prefix}{end}' has {len(found)} {what} nodes; nmprivacy reads subgraphs with exactly one")
                pair.append(found[0])
            else:
                pair.append(f"{prefix}{end}")
        src, dst = pair
        if src not in flat.nodes or dst not in flat.nodes:
            raise NetworkError(f"{name}: edge ({src}, {dst}) names a node that is not in the graph")
        flat.edges.append((src, dst))
    return flat


def _flat_graph(graph: Any, name: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The nodes and edges of ``graph`` with subgraphs flattened and their Input / Output
    nodes bypassed (every node feeding one feeds what it fed)."""
    flat = _flatten(graph, name)
    succ: dict[str, list[str]] = {k: [] for k in flat.nodes}
    pred: dict[str, list[str]] = {k: [] for k in flat.nodes}
    for s, d in flat.edges:
        succ[s].append(d)
        pred[d].append(s)
    for key in sorted(flat.passthrough):
        into, out = pred.pop(key), succ.pop(key)
        if not into or not out:
            raise NetworkError(f"{name}: subgraph node '{key}' has no {'incoming' if not into else 'outgoing'} edge: the subgraph is not connected")
        if key in into:
            raise NetworkError(f"{name}: subgraph node '{key}' feeds itself")
        for s in set(into):
            succ[s] = [x for x in succ[s] if x != key] + out * into.count(s)
        for d in set(out):
            pred[d] = [x for x in pred[d] if x != key] + into * out.count(d)
        del flat.nodes[key]
    return flat.nodes, [(s, d) for s, targets in succ.items() for d in targets]


def _recurrent_loops(nodes: dict[str, Any], edges: list[tuple[str, str]], name: str) -> dict[str, list[tuple[str, Any]]]:
    """``{neuron: [(name, linear node), ...]}`` for every path of linear nodes that leaves a neuron node and
    returns to it (its recurrent weights, e.g. snnTorch's ``lif1.lif -> lif1.w_rec -> lif1.lif``);
    each such path is removed from ``nodes`` and ``edges`` (in place)."""
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for s, d in edges:
        succ[s].append(d)
        pred[d].append(s)
    loops: dict[str, list[str]] = {}
    for key, node in nodes.items():
        if type(node).__name__ not in NEURON_NODES:
            continue
        for first in succ[key]:
            if first == key:
                raise NetworkError(f"{name}: edge ({key}, {key}) feeds node '{key}' its own output without a weight; write the recurrent weight as a Linear node")
            path, current = [], first
            while (type(nodes[current]).__name__ in LINEAR_NODES and len(pred[current]) == 1
                   and len(succ[current]) == 1 and current not in path):
                path.append(current)
                current = succ[current][0]
                if current == key:
                    break
            if current != key:
                continue
            if key in loops:
                raise NetworkError(f"{name}: node '{key}' has two recurrent paths ({loops[key][0]}, {path[0]}); merge them into one weight")
            loops[key] = path
    found: dict[str, list[tuple[str, Any]]] = {}
    for key, path in loops.items():
        ring = [key, *path, key]
        for edge in zip(ring[:-1], ring[1:]):
            edges.remove(edge)
        found[key] = [(k, nodes.pop(k)) for k in path]
    return found


def _chain(nodes: dict[str, Any], edges: list[tuple[str, str]], name: str) -> list[tuple[str, Any]]:
    """The nodes from the Input to the Output node, in order; errors for any other shape."""
    import nir

    if not nodes:
        raise NetworkError(f"{name}: the graph has no nodes")
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    preds: dict[str, int] = {k: 0 for k in nodes}
    for src, dst in edges:
        succ[src].append(dst)
        preds[dst] += 1
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise NetworkError(f"{name}: the graph has {len(inputs)} Input nodes; nmprivacy reads graphs with exactly one input")
    chain, seen, current = [], set(), inputs[0]
    while True:
        if current in seen:
            raise NetworkError(f"{name}: node '{current}' closes a cycle that is not a recurrent weight around one neuron node (neuron -> Linear/Affine -> the same neuron)")
        seen.add(current)
        node = nodes[current]
        chain.append((current, node))
        if preds[current] > 1:
            raise NetworkError(f"{name}: node '{current}' has {preds[current]} inputs: nmprivacy reads chains of layers (no branches or skips)")
        if isinstance(node, nir.Output):
            break
        if len(succ[current]) != 1:
            what = "no outgoing edge" if not succ[current] else f"{len(succ[current])} outgoing edges"
            raise NetworkError(f"{name}: node '{current}' has {what}: nmprivacy reads chains of layers from Input to Output")
        current = succ[current][0]
    missing = sorted(set(nodes) - seen)
    if missing:
        raise NetworkError(f"{name}: node '{missing[0]}' is not on the path from Input to Output")
    return chain


def _input_shape(node: Any, name: str, notes: list[str]) -> tuple[int, ...]:
    raw = getattr(node, "input_type", {}) or {}
    shape = raw.get("input") if isinstance(raw, dict) else raw
    arr = np.asarray(shape if shape is not None else [], dtype=np.float64).reshape(-1)
    if arr.size == 0 or (arr != np.round(arr)).any() or arr.min() < 1 or math.prod(arr.astype(int).tolist()) > MAX_ELEMENTS:
        raise NetworkError(f"{name}: the Input node declares shape {shape!r}, not a shape (N,) or (C, H, W)")
    dims = tuple(int(s) for s in arr)
    if len(dims) in (2, 4) and dims[0] == 1:
        notes.append(f"{name}: the Input node declares {list(dims)}; its leading 1 is read as a batch axis (input {dims[1:]})")
        dims = dims[1:]
    if len(dims) not in (1, 3):
        raise NetworkError(f"{name}: the Input node declares shape {list(dims)}, neither (N,) nor (C, H, W)")
    return dims


def _apply(op: _Op, x: torch.Tensor, where: str, notes: list[str], bias: bool = True) -> torch.Tensor:
    """One linear node on a batch ``x`` ``[B, *shape]`` (float64); ``bias=False``: its linear part."""
    node, kind = op.node, op.kind
    if kind in ("Affine", "Linear"):
        if x.dim() != 2:
            raise NetworkError(f"{where}: {kind} receives a {tuple(x.shape[1:])} input without a Flatten node before it")
        w = torch.as_tensor(_values(node, "weight", where))
        if w.dim() != 2 or w.shape[1] != x.shape[1]:
            raise NetworkError(f"{where}: weight of shape {tuple(w.shape)} does not take the {x.shape[1]} inputs it receives")
        y = x @ w.T
        if kind == "Affine" and bias:
            b = torch.as_tensor(_values(node, "bias", where, default=0.0)).reshape(-1)
            if b.numel() not in (1, w.shape[0]):
                raise NetworkError(f"{where}: bias of {b.numel()} values for {w.shape[0]} outputs")
            y = y + b
        return y
    if kind == "Scale":
        s = torch.as_tensor(_values(node, "scale", where))
        try:
            return x * s
        except RuntimeError:
            raise NetworkError(f"{where}: scale of shape {tuple(s.shape)} does not fit the input {tuple(x.shape[1:])}") from None
    if kind == "Flatten":
        if x.dim() > 2:
            start = int(getattr(node, "start_dim", 1) or 0)
            if start not in (0, 1):
                raise NetworkError(f"{where}: Flatten from dimension {start} leaves a multi-dimensional output, which no layer here reads")
        return x.reshape(x.shape[0], -1)
    if x.dim() != 4:
        raise NetworkError(f"{where}: {kind} needs a (C, H, W) input, got {tuple(x.shape[1:])}")
    if kind == "Conv2d":
        w = torch.as_tensor(_values(node, "weight", where))
        if w.dim() != 4:
            raise NetworkError(f"{where}: conv weight of shape {tuple(w.shape)} is not [out, in/groups, kH, kW]")
        groups = int(np.asarray(getattr(node, "groups", 1) or 1).reshape(-1)[0])
        stride, dilation = _pair(getattr(node, "stride", 1), where, "stride"), _pair(getattr(node, "dilation", 1), where, "dilation")
        padding = getattr(node, "padding", 0)
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            elif padding == "same" and stride == (1, 1) and all(d * (k - 1) % 2 == 0 for d, k in zip(dilation, w.shape[2:])):
                padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, w.shape[2:]))
            else:
                raise NetworkError(f"{where}: padding '{padding}' cannot be expressed as a symmetric padding")
        padding = _pair(padding, where, "padding")
        if groups < 1 or x.shape[1] != w.shape[1] * groups:
            raise NetworkError(f"{where}: conv weight {tuple(w.shape)} with {groups} groups does not take the {x.shape[1]} channels it receives")
        b = torch.as_tensor(_values(node, "bias", where, default=0.0)).reshape(-1) if bias else None
        if b is not None and b.numel() not in (1, w.shape[0]):
            raise NetworkError(f"{where}: conv bias of {b.numel()} values for {w.shape[0]} channels")
        b = None if b is None else b.expand(w.shape[0]).contiguous()
        try:
            return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        except RuntimeError as exc:
            raise NetworkError(f"{where}: the convolution does not fit its {tuple(x.shape[1:])} input ({str(exc).splitlines()[0][:80]})") from None
    kernel = _pair(getattr(node, "kernel_size", None), where, "kernel_size")
    stride = _pair(getattr(node, "stride", None) if getattr(node, "stride", None) is not None else kernel, where, "stride")
    padding = _pair(getattr(node, "padding", 0), where, "padding")
    if min(kernel) < 1 or min(stride) < 1 or padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise NetworkError(f"{where}: pooling kernel {kernel}, stride {stride}, padding {padding} are not a valid pooling")
    y = F.avg_pool2d(x, kernel, stride, padding, count_include_pad=True)
    return y * (kernel[0] * kernel[1]) if kind == "SumPool2d" else y


def _compose(ops: list[_Op], x: torch.Tensor, notes: list[str], bias: bool = True) -> torch.Tensor:
    for op in ops:
        x = _apply(op, x, op.name, notes, bias)
    return x


def _as_conv(ops: list[_Op], in_shape: tuple[int, ...], notes: list[str]) -> tuple[np.ndarray, dict] | None:
    """The single convolution (weight ``[out, in/g, kH, kW]`` and its parameters) equal to the
    chain ``ops`` on ``in_shape``, or None when the chain is not one (checked numerically)."""
    kinds = [op.kind for op in ops]
    if len(in_shape) != 3 or kinds.count("Conv2d") != 1 or any(k in ("Affine", "Linear", "Flatten", "Scale") for k in kinds):
        return None
    conv = next(op for op in ops if op.kind == "Conv2d")
    w = torch.as_tensor(_values(conv.node, "weight", conv.name))
    groups = int(np.asarray(getattr(conv.node, "groups", 1) or 1).reshape(-1)[0])
    stride, dilation = _pair(getattr(conv.node, "stride", 1), conv.name, "stride"), _pair(getattr(conv.node, "dilation", 1), conv.name, "dilation")
    padding = getattr(conv.node, "padding", 0)
    if isinstance(padding, str):
        padding = (0, 0) if padding == "valid" else tuple(d * (k - 1) // 2 for d, k in zip(dilation, w.shape[2:]))
    padding = _pair(padding, conv.name, "padding")
    if kinds == ["Conv2d"]:
        return w.numpy(), {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    if dilation != (1, 1) or len(ops) != 2:
        return None
    pool = ops[1] if kinds[0] == "Conv2d" else ops[0]
    k = _pair(getattr(pool.node, "kernel_size", None), pool.name, "kernel_size")
    ps = _pair(getattr(pool.node, "stride", None) if getattr(pool.node, "stride", None) is not None else k, pool.name, "stride")
    if _pair(getattr(pool.node, "padding", 0), pool.name, "padding") != (0, 0):
        return None
    scale = 1.0 if pool.kind == "SumPool2d" else 1.0 / (k[0] * k[1])
    if kinds[0] == "Conv2d":  # pooling of a convolution: kernel K + s (k - 1), stride s * ps
        kh, kw = w.shape[2] + stride[0] * (k[0] - 1), w.shape[3] + stride[1] * (k[1] - 1)
        big = torch.zeros(w.shape[0], w.shape[1], kh, kw, dtype=w.dtype)
        for u in range(k[0]):
            for v in range(k[1]):
                big[:, :, u * stride[0] : u * stride[0] + w.shape[2], v * stride[1] : v * stride[1] + w.shape[3]] += w
        params = {"stride": (stride[0] * ps[0], stride[1] * ps[1]), "padding": padding, "dilation": (1, 1), "groups": groups}
    else:  # a convolution of a non-overlapping pooling: every kernel tap covers a pooling window
        if ps != k:
            return None
        big = w.repeat_interleave(k[0], dim=2).repeat_interleave(k[1], dim=3)
        params = {"stride": (stride[0] * k[0], stride[1] * k[1]), "padding": (padding[0] * k[0], padding[1] * k[1]), "dilation": (1, 1), "groups": groups}
    big = big * scale
    probe = torch.randint(-3, 4, (2, *in_shape), generator=torch.Generator().manual_seed(0)).to(torch.float64)
    want = _compose(ops, probe, notes, bias=False)
    try:
        got = F.conv2d(probe, big, None, **params)
    except RuntimeError:
        return None
    return (big.numpy(), params) if got.shape == want.shape and torch.allclose(got, want, rtol=0, atol=1e-9) else None


def _neuron(node: Any, kind: str, where: str, dt: float) -> tuple[FloatNeuron, np.ndarray, np.ndarray, np.ndarray | None]:
    """The layer's neuron, its per-neuron input gain and v-bias, and the v_reset (None: none)."""
    def decay(tau_field: str) -> float:
        tau = _uniform(_values(node, tau_field, where), where, tau_field.replace("_", " "))
        if tau <= 0 or dt > tau * (1 + 1e-9):
            raise NetworkError(
                f"{where}: {tau_field} = {tau:g} s is shorter than the time step dt = {dt:g} s: pass the producer's --dt "
                "(snnTorch exports with 1e-4; Norse's to_nir needs dt=1.0 to write its taus correctly)"
            )
        return 1.0 - dt / tau, tau

    gain = np.asarray(1.0)
    bias = np.asarray(0.0)
    alpha, reset = 0.0, None
    threshold = math.inf
    if kind in ("LIF", "LI"):
        beta, tau = decay("tau")
        gain = dt * _values(node, "r", where, 1.0) / tau
        bias = dt * _values(node, "v_leak", where, 0.0) / tau
    elif kind in ("CubaLIF", "CubaLI"):
        alpha, tau_syn = decay("tau_syn")
        beta, tau_mem = decay("tau_mem")
        gain = (dt / tau_syn) * _values(node, "w_in", where, 1.0) * (dt * _values(node, "r", where, 1.0) / tau_mem)
        bias = dt * _values(node, "v_leak", where, 0.0) / tau_mem
    elif kind == "IF":
        beta = 1.0
        gain = _values(node, "r", where, 1.0)
    else:  # Threshold
        beta = 0.0
    if kind in ("LIF", "CubaLIF", "IF"):
        threshold = _uniform(_values(node, "v_threshold", where), where, "threshold")
        reset = _values(node, "v_reset", where, 0.0)
        if (reset != 0).any():
            raise NetworkError(f"{where}: resets to v_reset = {float(reset.reshape(-1)[0]):g}, but Loihi resets the voltage to 0")
    elif kind == "Threshold":
        threshold = _uniform(_values(node, "threshold", where), where, "threshold")
    if math.isfinite(threshold) and threshold <= 0:
        raise NetworkError(f"{where}: threshold {threshold:g} must be positive")
    return FloatNeuron(alpha=alpha, beta=beta, threshold=threshold, reset="zero"), gain, bias, reset


def _recurrent_weight(rec: list[_Op], out_shape: tuple[int, ...], where: str, notes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrent path ``rec`` (linear nodes from a neuron node back to it) as its matrix
    ``[N, N]`` (target, source) and its bias ``[N]``."""
    if len(out_shape) != 1:
        raise NetworkError(f"{where}: recurrent weights on a {out_shape} layer are not supported: flatten before the recurrent layer")
    n = out_shape[0]
    if n * n > DENSE_LIMIT:
        raise NetworkError(f"{rec[0].name}: a {n} x {n} recurrent weight is too large")
    offset = _compose(rec, torch.zeros(1, n, dtype=torch.float64), notes)[0]
    if tuple(offset.shape) != out_shape:
        raise NetworkError(f"{rec[-1].name}: the recurrent path maps the {n} neurons of {where} to {tuple(offset.shape)}, not back onto them")
    matrix = _compose(rec, torch.eye(n, dtype=torch.float64), notes, bias=False).T  # [target, source]
    return matrix, offset


def _layer(ops: list[_Op], in_shape: tuple[int, ...], neuron_name: str, node: Any, kind: str, dt: float, notes: list[str],
           rec: list[_Op] | None = None) -> DenseLayer | ConvLayer:
    """The layer of one neuron node: its synapse folded from ``ops`` (the linear nodes before
    it, on ``in_shape``) and, with ``rec``, its recurrent weights (``weight_rec``)."""
    where = neuron_name
    if not ops:
        raise NetworkError(f"{where}: a {kind} node must follow a synaptic node (Affine, Linear, Conv2d, ...), not another neuron node")
    zeros = torch.zeros(1, *in_shape, dtype=torch.float64)
    offset = _compose(ops, zeros, notes)[0]  # what the chain adds to every input (its biases)
    out_shape = tuple(offset.shape)
    if len(out_shape) not in (1, 3):
        raise NetworkError(f"{ops[-1].name}: its output {out_shape} is neither (N,) nor (C, H, W)")
    neuron, gain, bias_v, _ = _neuron(node, kind, where, dt)
    n_out = math.prod(out_shape)
    try:
        gain_n = np.broadcast_to(np.asarray(gain, dtype=np.float64), out_shape).astype(np.float64)
        bias_n = np.broadcast_to(np.asarray(bias_v, dtype=np.float64), out_shape).astype(np.float64)
    except ValueError:
        raise NetworkError(f"{where}: its parameters of shape {np.shape(gain)} do not fit the {out_shape} neurons it receives") from None
    if neuron.alpha > 0 and offset.abs().max() > 0:
        raise NetworkError(f"{where}: a synaptic bias into a neuron with synaptic current is not a constant voltage bias on Loihi; export without bias")
    weight_rec = None
    if rec:
        matrix, rec_offset = _recurrent_weight(rec, out_shape, where, notes)
        if neuron.alpha > 0 and rec_offset.abs().max() > 0:
            raise NetworkError(f"{rec[0].name}: a bias on the recurrent weight of a neuron with synaptic current is not a constant voltage bias on Loihi; write it as Linear (or zero the bias)")
        offset = offset + rec_offset
        weight_rec = matrix.numpy() * gain_n.reshape(-1, 1)
    bias_total = bias_n + gain_n * offset.numpy()
    bias = bias_total if np.abs(bias_total).max(initial=0) > 0 else None
    conv = _as_conv(ops, in_shape, notes) if weight_rec is None else None
    if conv is not None and len(out_shape) == 3:
        per_channel = gain_n.reshape(out_shape[0], -1)
        if (per_channel == per_channel[:, :1]).all():
            weight, params = conv
            weight = weight * per_channel[:, 0].reshape(-1, 1, 1, 1)
            b = bias_total.reshape(out_shape[0], -1)
            conv_bias = (b[:, 0] if (b == b[:, :1]).all() else bias_total) if bias is not None else None
            return ConvLayer(neuron=neuron, bias=conv_bias, name=where, weight=weight, in_shape=in_shape, **params)
    n_in = math.prod(in_shape)
    if n_in * n_out > DENSE_LIMIT:
        raise NetworkError(f"{ops[0].name}..{ops[-1].name}: folding these nodes gives a {n_out} x {n_in} dense layer, too large; keep convolutions unpooled (pool with strided convolutions)")
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *in_shape)
    matrix = _compose(ops, basis, notes, bias=False).reshape(n_in, -1).T.numpy()  # [out, in]
    weight = matrix * gain_n.reshape(-1, 1)
    return DenseLayer(neuron=neuron, bias=None if bias is None else bias_total.reshape(-1), name=where, weight=weight, in_shape=in_shape, weight_rec=weight_rec)


def read_graph(graph: Any, dt: float | None = None, input_shape: tuple[int, ...] | None = None, name: str = "graph") -> Network:
    """The float ``Network`` of a NIR graph (module docstring); ``dt`` in seconds (default 1 ms);
    ``input_shape`` reads a flat input as that (C, H, W) layout."""
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise NetworkError(f"{name} is a {type(graph).__name__}, not a NIR graph")
    step = DEFAULT_DT if dt is None else checked_dt(dt)
    notes: list[str] = []
    nodes, edges = _flat_graph(graph, name)
    loops = _recurrent_loops(nodes, edges, name)
    chain = _chain(nodes, edges, name)
    shape = _input_shape(chain[0][1], f"{name} node '{chain[0][0]}'", notes)
    if input_shape is not None:
        if math.prod(input_shape) != math.prod(shape):
            raise NetworkError(f"{name} takes inputs of shape {shape}, which cannot be read as {tuple(input_shape)}")
        if len(shape) == 1:
            shape = tuple(int(s) for s in input_shape)
    first_shape = shape
    layers: list[DenseLayer | ConvLayer] = []
    pending: list[_Op] = []
    for key, node in chain[1:-1]:
        kind = type(node).__name__
        where = f"{name} node '{key}' ({kind})"
        if kind in LINEAR_NODES:
            pending.append(_Op(where, kind, node))
        elif kind in NEURON_NODES:
            rec = [_Op(f"{name} node '{k}' ({type(n).__name__})", type(n).__name__, n) for k, n in loops.get(key, [])]
            layer = _layer(pending, shape, where, node, kind, step, notes, rec)
            layers.append(layer)
            shape = layer.out_shape
            pending = []
        else:
            raise NetworkError(f"{where}: node type {kind} is not supported (linear: {', '.join(LINEAR_NODES)}; neurons: {', '.join(NEURON_NODES)})")
    if pending:
        raise NetworkError(f"{pending[0].name}: linear nodes after the last neuron layer cannot run on Loihi; end the graph with a neuron node (LI for an integrating read-out)")
    if not layers:
        raise NetworkError(f"{name} has no neuron nodes")
    order = [k2 for k, _ in chain for k2 in (k, *(r for r, _ in loops.get(k, [])))]  # a recurrent path after its neuron
    meta = {"source": "nir", "dt": step, "integration": "forward Euler, current before voltage", "nodes": order}
    metadata = getattr(graph, "metadata", None)
    if isinstance(metadata, dict) and metadata.get("training") is not None:  # nmprivacy's export: JSON text; targets.declared_training checks its form
        meta["training"] = metadata["training"]
    return Network(input_shape=first_shape, layers=tuple(layers), meta=meta, notes=tuple(notes), name=name)


def read_nir(path: str | os.PathLike[str], dt: float | None = None, input_shape: tuple[int, ...] | None = None) -> Network:
    """The float ``Network`` of the NIR file ``path`` (``nir.write``'s HDF5)."""
    import nir

    p = Path(path)
    if p.is_dir():
        raise NetworkError(f"{p} is a folder, not a NIR file: pass the .nir file (written with nir.write)")
    if not p.is_file():
        raise NetworkError(f"NIR file not found: {p} (write one with nir.write, e.g. from Norse's to_nir or snnTorch's export_to_nir)")
    try:
        graph = nir.read(p, type_check=False)  # real graphs disagree on batch axes; the chain is checked here, node by node
    except Exception as exc:  # h5py and nir raise many types for foreign or broken files
        raise NetworkError(f"{p} is not a readable NIR graph ({type(exc).__name__}); write it with nir.write") from None
    try:
        return read_graph(graph, dt=dt, input_shape=input_shape, name=str(p))
    except NetworkError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, RuntimeError, OverflowError, MemoryError) as exc:
        # nir.read builds nodes from whatever the file holds: parameters of impossible types or shapes
        raise NetworkError(f"{p} holds a NIR graph with malformed nodes ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})") from None
