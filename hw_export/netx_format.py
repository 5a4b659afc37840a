"""Reading NetX HDF5 files (lava-dl's network exchange format) into a ``nmprivacy.network.Network``.

Accepted: every layer ``lava.lib.dl.netx.hdf5.Network`` (lava-dl 0.6.0) builds for ``CUBA`` /
``LOIHI`` neurons: ``input`` (with neurons: the transform ``weight * x + bias``; without: only
the input shape), ``conv`` (stride, padding, dilation, groups), ``flatten`` (before a dense
layer: NetX's transposed order, i.e. the (C, H, W) flattening), ``dense``, ``dense_rec`` and
synaptic ``delay``. Refused with a one-line error naming the layer: other neuron types (SDNN,
RF, ...), complex weights, and the layer types NetX itself cannot build (pool, convT, unpool,
average, concat). The result is what Lava's processes really compute with:
- dense weights pass through Lava's own ``optimize_weight_bits``, ``clip_weights`` and
  ``truncate_weights`` (``weight`` holds the exponent-applied integers);
- weights and biases are cast to integers as NetX reads them (truncation toward zero; noted);
- a dense layer without a neuron description is NetX's integrator read-out (never spikes);
- a conv layer's ``delay`` and a CUBA layer's ``gradedSpike`` are ignored by NetX (noted).
Everything read is validated before use (types, shapes, sizes, finite values, ranges).
One module on purpose (~400 lines): the layer readers share one validated HDF5 accessor and
the rules of how NetX builds each layer; split apart, each would need the other's rules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from nmprivacy.errors import NetworkError
from nmprivacy.network import ConvLayer, DenseLayer, InputLayer, LoihiNeuron, Network, loihi
from nmprivacy.network.description import MAX_ELEMENTS

# Root attribute nmprivacy adds to the files it writes (other readers ignore HDF5 attributes).
ATTR_META = "nmprivacy"  # JSON: kind, dataset, input_shape, steps, ...
# Per-layer attribute: model membrane units per Loihi voltage unit (v_model = v / (4096 * scale)).
ATTR_SCALE = "nmprivacy_scale"

SUPPORTED_NEURONS = ("CUBA", "LOIHI")
NETX_CANNOT_BUILD = {
    "pool": "pooling",
    "convT": "transposed convolution",
    "unpool": "unpooling",
    "average": "average",
    "concat": "concatenation",
}
DECLARED_BYTES, DECLARED_RATIO = 64 << 20, 64  # what a dataset may expand to: 64 MiB, or 64x the file
HOW_TO_FIX = "export the network with lava-dl's slayer blocks (cuba Input/Conv/Flatten/Dense/Recurrent) or `nmprivacy export`"


class _Reader:
    """Validated access to one HDF5 group (``where`` names it in errors); ``file_bytes`` bounds
    what a dataset may declare before it is read (a compressed or sparse dataset can declare far
    more values than the file holds)."""

    def __init__(self, group: Any, where: str, file_bytes: int = 0) -> None:
        self.group, self.where, self.file_bytes = group, where, file_bytes

    def has(self, key: str) -> bool:
        try:
            return key in self.group
        except Exception:  # a corrupt link table
            raise NetworkError(f"{self.where}: the file's structure is corrupt; {HOW_TO_FIX}") from None

    def child(self, key: str) -> "_Reader":
        import h5py

        node = self._node(key)
        if not isinstance(node, h5py.Group):
            raise NetworkError(f"{self.where}: '{key}' is not a group; {HOW_TO_FIX}")
        return _Reader(node, f"{self.where}/{key}", self.file_bytes)

    def _node(self, key: str) -> Any:
        try:
            return self.group[key]
        except Exception:
            raise NetworkError(f"{self.where}: '{key}' is missing or unreadable; {HOW_TO_FIX}") from None

    def array(self, key: str, integer: bool = True) -> np.ndarray:
        """Dataset ``key`` as a finite int64 (``integer``: cast toward zero, as NetX) or float64 array."""
        import h5py

        node = self._node(key)
        if not isinstance(node, h5py.Dataset):
            raise NetworkError(f"{self.where}: '{key}' is not a dataset; {HOW_TO_FIX}")
        if node.size > MAX_ELEMENTS or node.size * 8 > max(DECLARED_BYTES, DECLARED_RATIO * self.file_bytes):
            raise NetworkError(f"{self.where}: '{key}' declares {node.size} values, far more than the {self.file_bytes}-byte file can hold")
        if node.dtype.kind not in "biuf":
            raise NetworkError(f"{self.where}: '{key}' has dtype {node.dtype}, not numbers; {HOW_TO_FIX}")
        try:
            value = np.asarray(node[()], dtype=np.float64)
        except Exception:
            raise NetworkError(f"{self.where}: '{key}' cannot be read (the file is truncated or corrupt)") from None
        if not np.isfinite(value).all():
            raise NetworkError(f"{self.where}: '{key}' contains NaN or infinite values")
        if not integer:
            return value
        if np.abs(value).max(initial=0) >= 1 << 31:
            raise NetworkError(f"{self.where}: '{key}' holds values beyond 32 bits")
        return np.trunc(value).astype(np.int64)

    def scalar(self, key: str) -> int:
        """Dataset ``key`` as one integer (a uniform per-neuron array counts as one value)."""
        value = self.array(key).reshape(-1)
        if value.size == 0:
            raise NetworkError(f"{self.where}: '{key}' is empty")
        if (value != value[0]).any():
            raise NetworkError(f"{self.where}: per-neuron '{key}' values are not supported (NetX builds one value per layer); train with shared_param=True")
        return int(value[0])

    def text(self, key: str) -> str:
        """Dataset ``key`` as ASCII text (NetX's ``type`` fields)."""
        node = self._node(key)
        try:
            value = node[()]
        except Exception:
            raise NetworkError(f"{self.where}: '{key}' cannot be read (the file is truncated or corrupt)") from None
        if isinstance(value, np.ndarray):
            value = value.reshape(-1)[0] if value.size else b""
        if isinstance(value, bytes):
            return value.decode("ascii", "replace").strip("\x00 ")
        if isinstance(value, str):
            return value
        raise NetworkError(f"{self.where}: '{key}' is not text; {HOW_TO_FIX}")

    def attr_float(self, key: str, default: float) -> float:
        try:
            value = float(np.asarray(self.group.attrs.get(key, default)).reshape(-1)[0])
        except Exception:
            raise NetworkError(f"{self.where}: attribute '{key}' is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise NetworkError(f"{self.where}: attribute '{key}' = {value} is not a positive number")
        return value


def lava_weights(weight: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """The integer weights ``[out, in]`` and exponent Lava's Dense synapse uses for a NetX weight
    matrix, and whether Lava had to clip it (through Lava's own weight utilities)."""
    from hw_export.lava_env import lava_modules

    if not np.asarray(weight).any():
        raise NetworkError("a weight matrix of zeros only cannot be built by NetX (lava-dl's optimize_weight_bits divides by its largest weight)")
    lava = lava_modules()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        w, num_bits, exp, _ = lava.netx_utils.optimize_weight_bits(weight.astype(int))
    wu = lava.weightutils
    sign = wu.determine_sign_mode(w)
    w = wu.clip_weights(w, sign, num_bits=8)
    w = wu.truncate_weights(w, sign, num_bits)
    return np.asarray(w, dtype=np.int64), int(exp), "WARNING" in buf.getvalue()


def netx_weight_bits(weight: np.ndarray) -> tuple[int, int]:
    """(``num_weight_bits``, ``weight_exponent``) lava-dl's NetX derives for a dense layer's
    integer weight matrix (``optimize_weight_bits``): the synapse precision Loihi stores it with."""
    from hw_export.lava_env import lava_modules

    with contextlib.redirect_stdout(io.StringIO()):
        _, num_bits, exp, _ = lava_modules().netx_utils.optimize_weight_bits(np.asarray(weight).astype(int))
    return int(num_bits), int(exp)


def _lava_weights(weight: np.ndarray, where: str) -> tuple[np.ndarray, int, bool]:
    try:
        return lava_weights(weight)
    except NetworkError as exc:
        raise NetworkError(f"{where}: {exc}") from None


def applied_exponent(weight: np.ndarray, exp: int, where: str) -> np.ndarray:
    """``weight * 2^exp`` as Lava's synapse applies it (exact: optimize_weight_bits pre-shifts)."""
    if exp >= 0:
        return weight << exp
    div = 1 << -exp
    if (weight % div).any():
        raise NetworkError(f"{where}: weight exponent {exp} is not exact for these weights")
    return weight // div


def _neuron(layer: _Reader, notes: list[str]) -> LoihiNeuron:
    """The CUBA neuron of a layer (NetX's integrator read-out when the layer has none)."""
    if not layer.has("neuron"):
        return LoihiNeuron(**loihi.INTEGRATOR)
    n = layer.child("neuron")
    ntype = n.text("type") if n.has("type") else ""
    if ntype not in SUPPORTED_NEURONS:
        raise NetworkError(f"{layer.where}: neuron type '{ntype}' is not supported (CUBA / LOIHI only; SDNN and RF neurons are not LIF)")
    values = {}
    for key, name in (("iDecay", "i_decay"), ("vDecay", "v_decay"), ("vThMant", "vth_mant")):
        if not n.has(key):
            raise NetworkError(f"{layer.where}: neuron parameter '{key}' is missing; {HOW_TO_FIX}")
        values[name] = n.scalar(key)
    graded = n.has("gradedSpike") and bool(n.scalar("gradedSpike"))
    if graded or (n.has("messageBits") and n.scalar("messageBits") > 0):
        notes.append(f"{layer.where}: declares graded spikes, but Lava's CUBA neuron emits binary spikes: it runs (and is emulated) with binary spikes")
    neuron = LoihiNeuron(graded=graded, **values)
    neuron.check(layer.where)
    return neuron


def _bias(layer: _Reader) -> np.ndarray | None:
    """A layer's bias mantissa (None when absent or all zero)."""
    if not layer.has("bias"):
        return None
    bias = layer.array("bias")
    bias = bias.reshape(-1) if bias.ndim <= 1 else bias
    return bias if bias.any() else None


def _read_input(layer: _Reader, notes: list[str]) -> tuple[InputLayer | None, tuple[int, ...] | None]:
    shape = tuple(int(s) for s in layer.array("shape").reshape(-1)) if layer.has("shape") else None
    if not layer.has("neuron"):
        return None, shape
    if shape is None or len(shape) not in (1, 3) or min(shape) < 1 or math.prod(shape) > MAX_ELEMENTS:
        raise NetworkError(f"{layer.where}: input layer with neurons needs a shape (C, H, W) or (N,), got {shape}")
    weight = int(layer.array("weight").reshape(-1)[0]) if layer.has("weight") else loihi.ACT_SHIFT
    bias = int(layer.array("bias").reshape(-1)[0]) if layer.has("bias") else 0
    return (
        InputLayer(neuron=_neuron(layer, notes), shape=shape, weight=weight, bias_in=bias, scale=layer.attr_float(ATTR_SCALE, 1.0), name=layer.where),
        shape,
    )


def _read_conv(layer: _Reader, in_shape: tuple[int, ...], notes: list[str]) -> ConvLayer:
    if len(in_shape) != 3:
        raise NetworkError(f"{layer.where}: a convolution needs a (C, H, W) input, but it receives {in_shape}; add an input layer with the shape")
    weight = layer.array("weight")
    if weight.ndim < 4 or any(s != 1 for s in weight.shape[4:]):
        raise NetworkError(f"{layer.where}: conv weight of shape {weight.shape} is not [out, in/groups, kH, kW]")
    weight = weight.reshape(weight.shape[:4])
    params = {key: layer.array(key) for key in ("stride", "padding", "dilation", "groups") if layer.has(key)}
    missing = {"stride", "padding", "dilation", "groups"} - set(params)
    if missing:
        raise NetworkError(f"{layer.where}: conv parameters {sorted(missing)} are missing; {HOW_TO_FIX}")
    if layer.has("delay"):
        notes.append(f"{layer.where}: has synaptic delays, which NetX ignores for convolutions (run and emulated without them)")
    conv = ConvLayer(
        neuron=_neuron(layer, notes), bias=_conv_bias(layer), scale=layer.attr_float(ATTR_SCALE, 1.0), name=layer.where,
        weight=weight, in_shape=in_shape, stride=params["stride"], padding=params["padding"], dilation=params["dilation"],
        groups=int(params["groups"].reshape(-1)[0]) if params["groups"].size else 0,
    )
    if layer.has("shape"):
        declared = tuple(int(s) for s in layer.array("shape").reshape(-1))
        if declared != conv.out_shape:
            raise NetworkError(f"{layer.where}: declares output shape {declared} but the convolution gives {conv.out_shape}")
    return conv


def _conv_bias(layer: _Reader) -> np.ndarray | None:
    """A conv bias per channel ``[C]`` or per neuron; NetX reads a full bias in Lava's (W, H, C) order."""
    bias = _bias(layer)
    if bias is None or bias.ndim <= 1:
        return bias
    if bias.ndim == 3:
        return np.ascontiguousarray(bias.transpose(2, 1, 0))  # Lava's (W, H, C) -> (C, H, W)
    raise NetworkError(f"{layer.where}: conv bias of shape {bias.shape} is neither per channel nor (W, H, C)")


def _delay_matrix(layer: _Reader, out: int, n_in: int, notes: list[str]) -> np.ndarray | None:
    """The per-synapse delays ``[out, in]`` NetX builds from a layer's ``delay`` (clamped to 62)."""
    if not layer.has("delay"):
        return None
    delay = layer.array("delay")
    if delay.min(initial=0) < 0:
        raise NetworkError(f"{layer.where}: negative synaptic delays")
    if delay.max(initial=0) > loihi.MAX_DELAY:
        notes.append(f"{layer.where}: delays above {loihi.MAX_DELAY} are clamped to {loihi.MAX_DELAY}, as NetX does")
        delay = np.clip(delay, 0, loihi.MAX_DELAY)
    if delay.ndim == 0 or delay.size == 1:
        return np.full((out, n_in), int(delay.reshape(-1)[0]), dtype=np.int64)
    if delay.ndim == 1 and delay.size == out:  # one delay per target neuron
        return np.repeat(delay.reshape(-1, 1), n_in, axis=1)
    if delay.ndim == 1 and delay.size == n_in:  # one delay per input
        return np.repeat(delay.reshape(1, -1), out, axis=0)
    if delay.shape == (out, n_in):
        return delay
    raise NetworkError(f"{layer.where}: delay of shape {delay.shape} fits neither the {out} neurons nor the {n_in} inputs")


def _read_dense(layer: _Reader, in_shape: tuple[int, ...] | None, declared: tuple[int, ...] | None, recurrent: bool, notes: list[str]) -> DenseLayer:
    """A dense layer reading ``in_shape`` (None for the first layer: from its weight, shaped like
    the ``declared`` input shape when the sizes agree)."""
    import h5py

    if layer.has("weight") and not isinstance(layer._node("weight"), h5py.Dataset):
        raise NetworkError(f"{layer.where}: complex weights (weight/real, weight/imag) are not supported (CUBA dense only)")
    weight = layer.array("weight")
    shape = tuple(int(s) for s in layer.array("shape").reshape(-1)) if layer.has("shape") else (weight.shape[0] if weight.ndim else 0,)
    out = math.prod(shape)
    if out < 1 or out > MAX_ELEMENTS:
        raise NetworkError(f"{layer.where}: declares {out} neurons")
    if weight.ndim == 1:
        if weight.size % out:
            raise NetworkError(f"{layer.where}: a flat weight of {weight.size} values does not fit {out} neurons")
        weight = weight.reshape(out, -1)
    if weight.ndim != 2 or weight.shape[0] != out or weight.shape[1] < 1:
        raise NetworkError(f"{layer.where}: weight of shape {weight.shape} does not match {out} neurons")
    if in_shape is None:
        in_shape = (weight.shape[1],)
        if declared is not None and math.prod(declared) == weight.shape[1]:
            in_shape = declared
        elif declared is not None:
            notes.append(f"{layer.where}: the input layer declares shape {declared} but the first layer takes {weight.shape[1]} inputs; its weight decides")
    n_in = math.prod(in_shape)
    if weight.shape[1] != n_in:
        raise NetworkError(f"{layer.where}: takes {weight.shape[1]} inputs but the layer before it has {n_in} neurons")
    rec = None
    if recurrent:
        rec = layer.array("weight_rec")
        if rec.ndim == 1 and rec.size == out * out:
            rec = rec.reshape(out, out)
        if rec.shape != (out, out):
            raise NetworkError(f"{layer.where}: recurrent weight of shape {rec.shape}, expected {(out, out)}")
        both, exp, clipped = _lava_weights(np.hstack([weight, rec]), layer.where)
        both = applied_exponent(both, exp, layer.where)
        weight, rec = both[:, :n_in], both[:, n_in:]
    else:
        weight, exp, clipped = _lava_weights(weight, layer.where)
        weight = applied_exponent(weight, exp, layer.where)
    if clipped:
        notes.append(f"{layer.where}: weights exceed Lava's 8-bit range and are clipped to [-256, 254], as Lava does")
    delay = _delay_matrix(layer, out, n_in, notes)
    if recurrent and delay is not None:
        raise NetworkError(f"{layer.where}: a recurrent layer with synaptic delays is not supported (lava-dl 0.6 builds it with the input weights' delay matrix)")
    bias = _bias(layer)
    if bias is not None and bias.size not in (1, out):
        raise NetworkError(f"{layer.where}: bias of {bias.size} values for {out} neurons")
    return DenseLayer(
        neuron=_neuron(layer, notes), bias=bias, scale=layer.attr_float(ATTR_SCALE, 1.0), name=layer.where,
        weight=weight, in_shape=in_shape, delay=delay, weight_rec=rec,
    )


def _meta(f: Any) -> dict:
    if ATTR_META not in f.attrs:
        return {}
    try:
        raw = f.attrs[ATTR_META]
        raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        meta = json.loads(raw)
    except (ValueError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _read_layers(f: Any, p: Path) -> tuple[list, tuple[int, ...] | None, dict, list[str]]:
    """The neuron layers of an open NetX file (and its input shape, metadata and notes)."""
    import h5py

    meta = _meta(f)
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        raise NetworkError(f"{p} has no 'layer' group: not a NetX network description")
    root = _Reader(f["layer"], str(p), p.stat().st_size)
    keys = list(f["layer"].keys())
    if sorted(keys, key=lambda k: int(k) if k.isdigit() else -1) != [str(i) for i in range(len(keys))]:
        raise NetworkError(f"{p}: layers must be numbered 0, 1, 2, ... without gaps (found {sorted(map(str, keys))[:8]})")
    layers, notes = [], []
    input_shape: tuple[int, ...] | None = None
    flatten_next = False
    for i in range(len(keys)):
        layer = root.child(str(i))
        layer.where = f"{p} layer {i}"
        ltype = layer.text("type") if layer.has("type") else ""
        prev_shape = layers[-1].out_shape if layers else input_shape
        if ltype == "input":
            if layers:
                raise NetworkError(f"{layer.where}: an input layer after other layers is not supported")
            neurons, input_shape = _read_input(layer, notes)
            if neurons is not None:
                layers.append(neurons)
        elif ltype == "flatten":
            flatten_next = True
        elif ltype == "conv":
            if flatten_next:
                raise NetworkError(f"{layer.where}: a flatten layer must be followed by a dense layer")
            layers.append(_read_conv(layer, prev_shape or (), notes))
        elif ltype in ("dense", "dense_rec"):
            if layers and len(prev_shape) == 3 and not flatten_next:
                raise NetworkError(f"{layer.where}: a dense layer after the (C, H, W) layer before it needs a flatten layer")
            layers.append(_read_dense(layer, prev_shape if layers else None, input_shape, ltype == "dense_rec", notes))
            flatten_next = False
        elif ltype == "dense_comp":
            raise NetworkError(f"{layer.where}: complex dense layers are not supported (CUBA LIF only)")
        elif ltype in NETX_CANNOT_BUILD:
            raise NetworkError(f"{layer.where}: {NETX_CANNOT_BUILD[ltype]} layers are not supported: NetX cannot build them (Loihi networks pool with strided convolutions)")
        else:
            raise NetworkError(f"{layer.where}: unknown layer type '{ltype}' (NetX knows input, conv, flatten, dense, dense_rec)")
    if flatten_next:
        raise NetworkError(f"{p}: the last layer is a flatten layer; a dense layer must follow it")
    return layers, input_shape, meta, notes


def read_netx(path: str | os.PathLike[str]) -> Network:
    """The ``Network`` (Loihi arithmetic) a NetX HDF5 file describes, as Lava builds it;
    ``NetworkError`` naming the file and layer for a missing, unreadable or unsupported file."""
    import h5py

    p = Path(path)
    if p.is_dir():
        raise NetworkError(f"{p} is a folder, not a NetX file: pass the .net file (export one with `nmprivacy export`)")
    if not p.is_file():
        raise NetworkError(f"NetX file not found: {p} (export one with `nmprivacy export --model DIR --out FILE.net`)")
    try:
        f = h5py.File(p, "r")
    except Exception as exc:
        raise NetworkError(f"{p} is not a readable HDF5 file ({exc.__class__.__name__}); re-export it with `nmprivacy export`") from None
    try:
        with f:
            layers, input_shape, meta, notes = _read_layers(f, p)
    except NetworkError:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError, OSError, OverflowError, IndexError, AttributeError, MemoryError) as exc:
        # h5py and numpy raise these for a damaged file structure: the file, not the code, is wrong
        raise NetworkError(f"{p} is truncated or corrupt ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}); re-export it") from None
    if not layers:
        raise NetworkError(f"{p} has no neuron layers")
    first = layers[0]
    shape = tuple(first.in_shape)
    meta_shape = meta.get("input_shape")
    if (
        isinstance(first, DenseLayer) and len(shape) == 1 and isinstance(meta_shape, list)
        and all(isinstance(s, int) and s > 0 for s in meta_shape) and math.prod(meta_shape) == shape[0]
    ):  # nmprivacy's own files record the (C, H, W) layout the first dense layer flattens
        shape = tuple(meta_shape)
        layers[0] = dataclasses.replace(first, in_shape=shape)
    return Network(input_shape=shape, layers=tuple(layers), meta=meta, notes=tuple(notes), name=str(p))
