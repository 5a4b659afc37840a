"""Reading dense feed-forward NetX HDF5 files into plain integer layer records.

A NetX file (lava-dl's network exchange format) holds ``layer/<i>/`` groups. This module accepts
exactly what Loihi's CUBA dense path computes with binary spikes: ``dense`` layers with a
``CUBA``/``LOIHI`` neuron, optional ``bias``, and an optional leading ``input`` layer without
neurons (shape only). Anything else (conv, pool, recurrent, complex, synaptic delays, graded
spikes, other neuron types, an input layer with neurons) is an ``ExportError`` naming the layer.

Weights are passed through the same steps Lava applies when it builds the network
(``netx.utils.optimize_weight_bits``, then the Dense model's ``clip_weights`` and
``truncate_weights``), so ``NetxLayer.weight`` / ``weight_exp`` are the integers Lava's synapse
really holds: the synaptic input per step is ``shift(W @ s, weight_exp)`` (left shift for a positive
exponent, floor right shift for a negative one).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nmprivacy.errors import ExportError

# Root attributes nmprivacy adds to the files it writes (other readers ignore HDF5 attributes).
ATTR_META = "nmprivacy"  # JSON: kind, dataset, input_shape, classes, ...
# Per-layer attribute: model membrane units per Loihi voltage unit (v_lava = 4096 * scale * v_model).
ATTR_SCALE = "nmprivacy_scale"

SUPPORTED_NEURONS = ("CUBA", "LOIHI")
UNSUPPORTED_TYPES = {
    "conv": "convolution",
    "convT": "transposed convolution",
    "pool": "pooling",
    "unpool": "unpooling",
    "dense_rec": "recurrent dense",
    "dense_comp": "complex dense",
    "average": "average",
    "concat": "concatenation",
}


@dataclass(frozen=True)
class NetxLayer:
    """One dense CUBA layer as Lava runs it (all integers in Loihi units).

    ``weight`` int64 ``[out, in]`` and ``weight_exp`` as Lava's synapse holds them; ``i_decay``,
    ``v_decay`` in 1/4096 per step (4096 = full decay); threshold ``vth_mant << 6``; ``bias``
    int64 ``[out]`` mantissa (added as ``bias << 6`` to v every step) or None; ``scale``
    converts the voltage to the source model's membrane units (``v / (4096 * scale)``).
    """

    index: int
    weight: np.ndarray
    weight_exp: int
    i_decay: int
    v_decay: int
    vth_mant: int
    bias: np.ndarray | None = None
    scale: float = 1.0
    clipped: bool = False

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])


@dataclass(frozen=True)
class NetxNetwork:
    """A parsed NetX file: its dense layers in order, input width/shape and nmprivacy metadata."""

    path: Path
    layers: tuple[NetxLayer, ...]
    input_shape: tuple[int, ...]
    meta: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return self.layers[0].in_features

    @property
    def sizes(self) -> tuple[int, ...]:
        """Neurons per layer, input first: ``(N_in, N_1, ..., N_out)``."""
        return (self.input_size,) + tuple(layer.out_features for layer in self.layers)


def _decode(value: object) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, bytes):
        return value.decode("ascii", "ignore")
    return str(value)


def _scalar_int(group, key: str, where: str) -> int:
    if key not in group:
        raise ExportError(f"{where}: neuron parameter '{key}' is missing; re-export the network")
    value = np.asarray(group[key][()])
    if value.size != 1:
        if np.all(value == value.reshape(-1)[0]):
            value = value.reshape(-1)[:1]
        else:
            raise ExportError(
                f"{where}: per-neuron '{key}' values are not supported (NetX builds one value per layer); "
                "train with shared_param=True"
            )
    return int(value.reshape(-1)[0])


def lava_weights(weight: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """The integer weights ``[out, in]`` and exponent Lava's Dense synapse uses for a NetX weight
    matrix, and whether Lava had to clip it (through Lava's own weight utilities)."""
    from hw_export.lava_env import lava_modules

    lava = lava_modules()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        w, num_bits, exp, _ = lava.netx_utils.optimize_weight_bits(weight.astype(int))
    wu = lava.weightutils
    sign = wu.determine_sign_mode(w)
    w = wu.clip_weights(w, sign, num_bits=8)
    w = wu.truncate_weights(w, sign, num_bits)
    return np.asarray(w, dtype=np.int64), int(exp), "WARNING" in buf.getvalue()


def read_netx(path: str | os.PathLike[str]) -> NetxNetwork:
    """Parse a dense feed-forward NetX HDF5 file; ``ExportError`` for a missing, unreadable or
    unsupported file (naming the offending layer)."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"NetX file not found: {p} (export one with `nmprivacy export --model DIR --out FILE.net`)")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ExportError(f"{p} is not a readable HDF5 file ({exc.__class__.__name__}); re-export it with `nmprivacy export`") from None
    with f:
        meta: dict = {}
        if ATTR_META in f.attrs:
            try:
                meta = json.loads(_decode(f.attrs[ATTR_META]))
            except (json.JSONDecodeError, TypeError):
                meta = {}
        if "layer" not in f or not isinstance(f["layer"], h5py.Group):
            raise ExportError(f"{p} has no 'layer' group: not a NetX network description")
        group = f["layer"]
        keys = sorted((k for k in group.keys()), key=lambda k: int(k) if k.isdigit() else 1 << 30)
        layers: list[NetxLayer] = []
        input_shape: tuple[int, ...] | None = None
        for key in keys:
            where = f"{p.name} layer {key}"
            if not key.isdigit():
                raise ExportError(f"{where}: unexpected layer name (NetX layers are numbered 0, 1, ...)")
            lg = group[key]
            ltype = _decode(lg["type"][()]) if "type" in lg else ""
            if ltype == "input":
                if "neuron" in lg:
                    raise ExportError(f"{where}: an input layer with neurons is not supported (binary spikes feed the first dense layer)")
                if layers:
                    raise ExportError(f"{where}: an input layer after dense layers is not supported")
                if "shape" in lg:
                    input_shape = tuple(int(s) for s in np.asarray(lg["shape"][()]).reshape(-1))
                continue
            if ltype == "flatten":
                if layers:
                    raise ExportError(f"{where}: flatten between dense layers is not supported")
                continue
            if ltype in UNSUPPORTED_TYPES:
                raise ExportError(f"{where}: {UNSUPPORTED_TYPES[ltype]} layers are not supported (dense feed-forward only)")
            if ltype != "dense":
                raise ExportError(f"{where}: unknown layer type '{ltype}' (dense feed-forward only)")
            if "weight" not in lg or not isinstance(lg["weight"], h5py.Dataset):
                raise ExportError(f"{where}: dense layer without a real 'weight' matrix (complex weights are not supported)")
            if "delay" in lg:
                raise ExportError(f"{where}: synaptic delays are not supported; export without axonal delay")
            if "neuron" not in lg:
                raise ExportError(f"{where}: dense layer without a neuron description is not supported")
            ng = lg["neuron"]
            ntype = _decode(ng["type"][()]) if "type" in ng else ""
            if ntype not in SUPPORTED_NEURONS:
                raise ExportError(f"{where}: neuron type '{ntype}' is not supported (CUBA only)")
            if "gradedSpike" in ng and bool(np.asarray(ng["gradedSpike"][()]).reshape(-1)[0]):
                raise ExportError(f"{where}: graded spikes are not supported (binary spikes only)")
            if "messageBits" in ng and int(np.asarray(ng["messageBits"][()]).reshape(-1)[0]) != 0:
                raise ExportError(f"{where}: graded spikes (messageBits > 0) are not supported")
            raw = np.asarray(lg["weight"][()])
            shape = np.asarray(lg["shape"][()]).reshape(-1) if "shape" in lg else np.array([raw.shape[0]])
            out = int(np.prod(shape))
            if raw.ndim == 1:
                raw = raw.reshape(out, -1)
            if raw.ndim != 2 or raw.shape[0] != out:
                raise ExportError(f"{where}: weight of shape {raw.shape} does not match {out} neurons")
            if layers and raw.shape[1] != layers[-1].out_features:
                raise ExportError(
                    f"{where}: takes {raw.shape[1]} inputs but the previous layer has {layers[-1].out_features} neurons"
                )
            i_decay = _scalar_int(ng, "iDecay", where)
            v_decay = _scalar_int(ng, "vDecay", where)
            vth = _scalar_int(ng, "vThMant", where)
            if not (0 <= i_decay <= 4096 and 0 <= v_decay <= 4096):
                raise ExportError(f"{where}: decays iDecay={i_decay}, vDecay={v_decay} outside 0..4096")
            if not 0 <= vth < (1 << 17):
                raise ExportError(f"{where}: threshold mantissa {vth} outside Loihi's 17-bit range")
            bias = None
            if "bias" in lg:
                bias = np.asarray(lg["bias"][()]).astype(int).astype(np.int64).reshape(-1)
                if bias.size == 1:
                    bias = np.full(out, int(bias[0]), dtype=np.int64)
                if bias.size != out:
                    raise ExportError(f"{where}: bias of size {bias.size} for {out} neurons")
            weight, exp, clipped = lava_weights(raw)
            scale = float(lg.attrs.get(ATTR_SCALE, 1.0))
            layers.append(NetxLayer(len(layers), weight, exp, i_decay, v_decay, vth, bias, scale, clipped))
        if not layers:
            raise ExportError(f"{p} has no dense layers")
    n_in = layers[0].in_features
    meta_shape = meta.get("input_shape")
    if meta_shape and int(np.prod(meta_shape)) == n_in:
        shape = tuple(int(s) for s in meta_shape)
    elif input_shape and int(np.prod(input_shape)) == n_in:
        shape = input_shape if len(input_shape) == 3 else (n_in,)  # NetX stores (C, H, W)
    else:
        shape = (n_in,)
    return NetxNetwork(path=p, layers=tuple(layers), input_shape=shape, meta=meta)
