"""Writing a Loihi ``nmprivacy.network.Network`` as a NetX HDF5 file in slayer's own layout.

Layers become ``layer/<i>/`` groups exactly as lava-dl's slayer blocks export themselves
(``input`` with its transform and neuron, ``conv`` with (H, W) stride/padding/dilation, a
``flatten`` before a dense layer that reads a (C, H, W) layer, ``dense`` / ``dense_rec``), so
``lava.lib.dl.netx.hdf5.Network`` builds them; a first conv layer gets an ``input`` layer
without neurons holding the (C, H, W) shape NetX needs (a first dense layer's input layout is
recorded in nmprivacy's metadata only, as in slayer's dense-only exports). nmprivacy's metadata (source kind,
data set, input shape, ...) and each layer's membrane ``scale`` ride along as HDF5 attributes.
The file is written atomically and read back (``read_netx``) before it is published: what Lava
builds from it must be exactly the network given, or nothing is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hw_export.netx_format import ATTR_META, ATTR_SCALE, read_netx
from nmprivacy.errors import NetworkError
from nmprivacy.network import ConvLayer, DenseLayer, InputLayer, LoihiNeuron, Network
from nmprivacy.runinfo import atomic_path, to_jsonable


def _text(group: Any, key: str, value: str) -> None:
    group.create_dataset(key, (1,), "S10", [value.encode("ascii")])


def _neuron(group: Any, neuron: LoihiNeuron) -> None:
    _text(group, "neuron/type", "CUBA")
    group.create_dataset("neuron/iDecay", data=int(neuron.i_decay))
    group.create_dataset("neuron/vDecay", data=int(neuron.v_decay))
    group.create_dataset("neuron/vThMant", data=int(neuron.vth_mant))
    group.create_dataset("neuron/refDelay", data=1)
    group.create_dataset("neuron/gradedSpike", data=bool(neuron.graded))


def _write_layer(layers: Any, index: int, layer: Any) -> None:
    g = layers.create_group(str(index))
    if isinstance(layer, InputLayer):
        _text(g, "type", "input")
        g.create_dataset("shape", data=np.asarray(layer.shape))
        g.create_dataset("weight", data=np.asarray([layer.weight], dtype=np.float32))
        g.create_dataset("bias", data=np.asarray([layer.bias_in], dtype=np.float32))
    elif isinstance(layer, ConvLayer):
        _text(g, "type", "conv")
        g.create_dataset("shape", data=np.asarray(layer.out_shape))
        g.create_dataset("inChannels", data=layer.in_shape[0])
        g.create_dataset("outChannels", data=layer.out_shape[0])
        g.create_dataset("kernelSize", data=np.asarray(layer.kernel))
        g.create_dataset("stride", data=np.asarray(layer.stride))
        g.create_dataset("padding", data=np.asarray(layer.padding))
        g.create_dataset("dilation", data=np.asarray(layer.dilation))
        g.create_dataset("groups", data=layer.groups)
        g.create_dataset("weight", data=np.asarray(layer.weight, dtype=np.float32))
    else:
        _text(g, "type", "dense_rec" if layer.weight_rec is not None else "dense")
        g.create_dataset("shape", data=np.asarray(layer.out_shape))
        g.create_dataset("inFeatures", data=int(layer.weight.shape[1]))
        g.create_dataset("outFeatures", data=int(layer.weight.shape[0]))
        g.create_dataset("weight", data=np.asarray(layer.weight, dtype=np.float32))
        if layer.weight_rec is not None:
            g.create_dataset("weight_rec", data=np.asarray(layer.weight_rec, dtype=np.float32))
        if layer.delay is not None:
            g.create_dataset("delay", data=np.asarray(layer.delay, dtype=np.float32))
    if layer.bias is not None:
        bias = np.asarray(layer.bias)
        if bias.ndim == 3:  # NetX reads a full conv bias in Lava's (W, H, C) order
            bias = bias.transpose(2, 1, 0)
        g.create_dataset("bias", data=bias.astype(np.float32))
    _neuron(g, layer.neuron)
    g.attrs[ATTR_SCALE] = float(layer.scale)


def write_hdf5_layers(f: Any, network: Network) -> None:
    """Write ``network``'s layers into the open HDF5 file ``f`` (group ``layer``)."""
    layers = f.create_group("layer")
    index = 0
    first = network.layers[0]
    if isinstance(first, ConvLayer):
        g = layers.create_group(str(index))  # an input layer without neurons: the (C, H, W) shape NetX needs
        _text(g, "type", "input")
        g.create_dataset("shape", data=np.asarray(first.in_shape))
        index += 1
    for i, layer in enumerate(network.layers):
        if i > 0 and isinstance(layer, DenseLayer) and len(layer.in_shape) == 3:
            g = layers.create_group(str(index))
            _text(g, "type", "flatten")
            g.create_dataset("shape", data=np.asarray([int(np.prod(layer.in_shape)), 1, 1]))
            index += 1
        _write_layer(layers, index, layer)
        index += 1


def _same(a: Network, b: Network) -> str | None:
    """The first difference between two Loihi networks (None if equal)."""
    if a.input_shape != b.input_shape or len(a.layers) != len(b.layers):
        return f"input {a.input_shape} / {len(a.layers)} layers became {b.input_shape} / {len(b.layers)}"
    for x, y in zip(a.layers, b.layers):
        if type(x) is not type(y) or x.neuron != y.neuron or x.in_shape != y.in_shape or x.out_shape != y.out_shape:
            return f"{x.name} changed kind, shape or neuron"
        for name in ("weight", "weight_rec", "delay", "bias"):
            p, q = getattr(x, name, None), getattr(y, name, None)
            if (p is None) != (q is None) or (p is not None and not np.array_equal(np.asarray(p), np.asarray(q))):
                if name == "bias" and p is not None and q is not None and np.array_equal(x.bias_per_neuron(x.out_shape), y.bias_per_neuron(y.out_shape)):
                    continue
                return f"{x.name}: {name} is not what Lava builds from the file"
        if isinstance(x, InputLayer) and (x.weight, x.bias_in) != (y.weight, y.bias_in):
            return f"{x.name}: input transform changed"
    return None


def write_netx(network: Network, path: str | os.PathLike[str], meta: dict | None = None) -> Network:
    """Write the Loihi ``network`` to ``path`` and return it as read back from the file; raises
    ``NetworkError`` (and writes nothing) if Lava would build anything else from it."""
    import h5py

    if network.arithmetic != "loihi":
        raise NetworkError(f"{network.name} is a float network: quantise it first (nmprivacy.network.quantize)")
    header = {**network.meta, **(meta or {}), "input_shape": list(network.input_shape), "num_classes": network.num_outputs}
    target = Path(path)
    with atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs[ATTR_META] = json.dumps(to_jsonable(header))
            write_hdf5_layers(f, network)
        try:
            back = read_netx(tmp)
        except NetworkError as exc:  # name the file being written, not its temporary twin
            raise NetworkError(str(exc).replace(tmp.name, target.name)) from None
        diff = _same(network, back)
        if diff is not None:
            raise NetworkError(f"cannot write {target.name} exactly: {diff} (weights must be even integers in [-256, 254] for Lava's 8-bit synapse)")
    return read_netx(target)


def write_dense_layer(
    layers_group: Any, index: int, weight: np.ndarray, i_decay: int, v_decay: int, vth_mant: int, scale: float = 1.0
) -> None:
    """Write one dense CUBA layer ``layer/<index>`` in slayer's NetX layout into an open HDF5
    ``layer`` group (``weight`` ``[out, in]`` integers; for tests and hand-made files)."""
    layer = DenseLayer(
        neuron=LoihiNeuron(i_decay=int(i_decay), v_decay=int(v_decay), vth_mant=int(vth_mant)),
        weight=np.asarray(weight), scale=float(scale), name=f"layer {index}",
    )
    _write_layer(layers_group, index, layer)
