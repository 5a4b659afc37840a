"""Export trained spiking targets to Loihi-compatible NetX HDF5.

- ``snn-lava`` targets (slayer ``block.cuba.Dense`` blocks): each block writes itself through
  slayer's own ``block.export_hdf5(group)``; lossless, because slayer already trains with 8-bit
  weights, 12-bit decays and a 6-bit-fraction threshold.
- float LIF targets (``lif_layers()`` with arithmetic ``"float"``, e.g. Norse's LIFBox MLP:
  ``v <- leak * v + W s``, hard reset, spike when ``v > th``) are mapped onto CUBA: current decay 1
  (``iDecay = 4096``), ``vDecay = round((1 - leak) * 4096)``, weights and threshold multiplied per
  layer by ``k = 3.97 / max|W|`` so the weights use the 8-bit range (even integers in
  [-256, 254], like slayer's), ``vThMant = round(th * k * 64)``. The quantisation error of every
  layer is recorded in the report. Lava adds one step per layer, which Norse does not.

Files carry nmprivacy metadata as HDF5 attributes (ignored by other NetX readers): the source
kind, input shape and per-layer ``scale`` (so the emulation reports membranes in the source
model's units). Every file is written atomically and re-read before it is published.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hw_export.netx_format import ATTR_META, ATTR_SCALE, read_netx
from nmprivacy.errors import ExportError
from nmprivacy.models.base import LIFLayer, TargetModel
from nmprivacy.runinfo import atomic_path

WEIGHT_RANGE = 3.97  # largest |weight| after per-layer scaling (x64 -> 254, the largest even 8-bit value)


@dataclass(frozen=True)
class LayerExport:
    """What was written for one layer and how far it is from the source model.

    Errors compare the exported layer, converted back to the source's units, with the weights,
    threshold and leak the source model computes with (0 for slayer blocks).
    """

    index: int
    in_features: int
    out_features: int
    i_decay: int
    v_decay: int
    vth_mant: int
    scale: float
    weight_max_abs_error: float
    weight_rel_rms_error: float
    threshold_rel_error: float
    leak_abs_error: float


@dataclass(frozen=True)
class ExportReport:
    """Result of ``export_netx``: file, source kind, mapping, per-layer quantisation errors."""

    path: str
    kind: str
    mapping: str
    lossless: bool
    layers: tuple[LayerExport, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def _slayer_dense_blocks(model: torch.nn.Module) -> list[torch.nn.Module] | None:
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        return None
    from lava.lib.dl import slayer

    out = []
    for i, block in enumerate(blocks):
        name = type(block).__name__
        if not isinstance(block, slayer.block.cuba.Dense):
            raise ExportError(f"block {i} is a {type(block).__module__}.{name}: only slayer block.cuba.Dense is exportable")
        if getattr(block, "delay", None) is not None:
            raise ExportError(f"block {i} has learnable axonal delays, which the NetX dense path here does not support")
        if not getattr(block, "delay_shift", True):
            raise ExportError(f"block {i} uses delay_shift=False; Lava adds one step per layer, so train with delay_shift=True")
        if getattr(block.neuron, "graded_spike", False):
            raise ExportError(f"block {i} emits graded spikes; only binary spikes are supported")
        if not getattr(block.neuron, "shared_param", True):
            raise ExportError(f"block {i} has per-neuron decays (shared_param=False); NetX needs one decay per layer")
        if getattr(block, "mask", None) is not None or getattr(block.neuron, "norm", None) is not None:
            raise ExportError(f"block {i} uses a synapse mask or normalisation, which is not supported")
        out.append(block)
    return out


def _write_slayer(f: Any, blocks: list[torch.nn.Module]) -> list[LayerExport]:
    layers = []
    group = f.create_group("layer")
    if any(block.neuron.shape is None for block in blocks):
        # slayer learns neuron shapes on the first forward; one zero step sets them
        with torch.no_grad():
            z = torch.zeros(1, blocks[0].synapse.in_channels, 1, device=blocks[0].synapse.weight.device)
            for block in blocks:
                z = block(z)
    for i, block in enumerate(blocks):
        g = group.create_group(str(i))
        block.export_hdf5(g)
        g.attrs[ATTR_SCALE] = 1.0
        with torch.no_grad():
            effective = block.synapse.pre_hook_fx(block.synapse.weight).reshape(block.synapse.weight.shape[:2])
        written = np.asarray(g["weight"][()], dtype=np.float64) / 64.0
        err = np.abs(written - effective.double().cpu().numpy())
        vth = int(g["neuron/vThMant"][()])
        th = float(block.neuron.threshold)
        layers.append(
            LayerExport(
                index=i,
                in_features=int(written.shape[1]),
                out_features=int(written.shape[0]),
                i_decay=int(g["neuron/iDecay"][()]),
                v_decay=int(g["neuron/vDecay"][()]),
                vth_mant=vth,
                scale=1.0,
                weight_max_abs_error=float(err.max()),
                weight_rel_rms_error=float(np.sqrt((err**2).sum()) / max(np.sqrt((effective.double().cpu().numpy() ** 2).sum()), 1e-30)),
                threshold_rel_error=abs(vth / 64.0 - th) / max(abs(th), 1e-30),
                leak_abs_error=0.0,
            )
        )
    return layers


def float_lif_to_cuba(layer: LIFLayer) -> dict[str, Any]:
    """The CUBA parameters (``weight`` even int ``[out, in]``, ``iDecay``, ``vDecay``, ``vThMant``,
    ``scale``) and the quantisation errors of one float LIF layer."""
    w = layer.weight.detach().double().cpu().numpy()
    wmax = float(np.abs(w).max())
    k = WEIGHT_RANGE / wmax if wmax > 0 else 1.0
    w_int = np.clip(np.round(w * k * 64 / 2) * 2, -256, 254)
    v_decay = int(round((1.0 - float(layer.leak)) * 4096))
    vth = int(round(float(layer.threshold) * k * 64))
    if not 0 < vth < (1 << 17):
        raise ExportError(f"threshold {layer.threshold} x scale {k:.3g} does not fit Loihi's 17-bit threshold")
    back = w_int / (64 * k)
    err = np.abs(back - w)
    return {
        "weight": w_int.astype(np.float32),
        "iDecay": 4096,
        "vDecay": v_decay,
        "vThMant": vth,
        "scale": k,
        "weight_max_abs_error": float(err.max()),
        "weight_rel_rms_error": float(np.sqrt((err**2).sum()) / max(np.sqrt((w**2).sum()), 1e-30)),
        "threshold_rel_error": abs(vth / (64 * k) - float(layer.threshold)) / max(abs(float(layer.threshold)), 1e-30),
        "leak_abs_error": abs((1.0 - v_decay / 4096) - float(layer.leak)),
    }


def write_dense_layer(
    layers_group: Any, index: int, weight: np.ndarray, i_decay: int, v_decay: int, vth_mant: int, scale: float = 1.0
) -> None:
    """Write one dense CUBA layer ``layer/<index>`` in slayer's NetX layout (``weight`` ``[out, in]``
    integers in [-256, 254]; ``scale`` stored as the nmprivacy membrane-unit attribute)."""
    out_f, in_f = weight.shape
    g = layers_group.create_group(str(index))
    g.create_dataset("type", (1,), "S10", [b"dense"])
    g.create_dataset("shape", data=np.array([out_f]))
    g.create_dataset("inFeatures", data=in_f)
    g.create_dataset("outFeatures", data=out_f)
    g.create_dataset("weight", data=np.asarray(weight, dtype=np.float32))
    g.create_dataset("neuron/type", (1,), "S10", [b"CUBA"])
    g.create_dataset("neuron/iDecay", data=int(i_decay))
    g.create_dataset("neuron/vDecay", data=int(v_decay))
    g.create_dataset("neuron/vThMant", data=int(vth_mant))
    g.create_dataset("neuron/refDelay", data=1)
    g.create_dataset("neuron/gradedSpike", data=False)
    g.attrs[ATTR_SCALE] = float(scale)


def _write_float(f: Any, lif: list[LIFLayer]) -> list[LayerExport]:
    layers = []
    group = f.create_group("layer")
    for i, layer in enumerate(lif):
        if layer.arithmetic != "float":
            raise ExportError(f"layer {i} has arithmetic '{layer.arithmetic}'; only float LIF layers are mapped onto CUBA")
        c = float_lif_to_cuba(layer)
        out_f, in_f = c["weight"].shape
        write_dense_layer(group, i, c["weight"], c["iDecay"], c["vDecay"], c["vThMant"], c["scale"])
        layers.append(
            LayerExport(
                index=i, in_features=in_f, out_features=out_f, i_decay=c["iDecay"], v_decay=c["vDecay"],
                vth_mant=c["vThMant"], scale=c["scale"], weight_max_abs_error=c["weight_max_abs_error"],
                weight_rel_rms_error=c["weight_rel_rms_error"], threshold_rel_error=c["threshold_rel_error"],
                leak_abs_error=c["leak_abs_error"],
            )
        )
    return layers


def export_netx(model: TargetModel, path: str | os.PathLike[str], meta: dict | None = None) -> ExportReport:
    """Write ``model`` (snn-lava slayer blocks, or any float-LIF ``lif_layers()`` model such as
    snn-norse) to the NetX HDF5 file ``path``; ``meta`` (e.g. data set name) is stored with it."""
    import h5py

    kind = getattr(getattr(model, "info", None), "kind", type(model).__name__)
    blocks = _slayer_dense_blocks(model)
    notes: list[str] = []
    lif: list[LIFLayer] | None = None
    if blocks is None:
        if not hasattr(model, "lif_layers"):
            raise ExportError(f"model kind '{kind}' has neither slayer blocks nor lif_layers(): it cannot be exported to NetX")
        lif = list(model.lif_layers())
        if lif and lif[0].arithmetic == "loihi":
            raise ExportError(f"model kind '{kind}' already runs Loihi arithmetic: copy its NetX file instead of re-exporting")
        if any(layer.delay == 0 for layer in lif[1:]):
            notes.append("the source has no per-layer delay; Lava adds one step per layer (output lags by layers-1 steps)")
        notes.append("float LIF mapped onto CUBA with per-layer weight/threshold scaling: close to, not equal to, the float model")
    info = getattr(model, "info", None)
    header = {
        "kind": kind,
        "mapping": "slayer export_hdf5" if blocks is not None else "float LIF -> CUBA",
        "input_shape": list(info.input_shape) if info is not None else None,
        "num_classes": info.num_classes if info is not None else None,
        **(meta or {}),
    }
    target = Path(path)
    with atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs[ATTR_META] = json.dumps(header)
            layers = _write_slayer(f, blocks) if blocks is not None else _write_float(f, lif or [])
        read_netx(tmp)  # the file we publish must parse as a supported NetX network
    lossless = blocks is not None and all(l.weight_max_abs_error == 0 and l.threshold_rel_error == 0 for l in layers)
    return ExportReport(
        path=str(target), kind=kind, mapping=header["mapping"], lossless=lossless, layers=tuple(layers), notes=tuple(notes)
    )
