"""Export spiking targets to Loihi-compatible NetX HDF5.

- slayer models (``blocks`` of lava-dl ``block.cuba`` Input, Conv, Flatten, Dense, Recurrent:
  ``snn-lava``, ``snn-lava-conv``): each block writes itself through slayer's own
  ``export_hdf5(group)``; lossless, because slayer trains with 8-bit weights (or the model's
  ``weight_bits``: a shorter mantissa with one power-of-two exponent per layer), 12-bit decays and
  a 6-bit-fraction threshold (the report checks that every layer read back is exact, and records
  the weight bits and exponent NetX derives for each dense layer).
- float networks (a float ``nmprivacy.network.Network``, or a model whose ``network()`` is
  float, e.g. ``snn-norse``): mapped onto CUBA by ``nmprivacy.network.quantize`` with each
  layer's quantisation error recorded;
- a Loihi ``Network`` (e.g. read from another NetX file) is written as it is.

Every file is written atomically and read back before it is published (``netx_writer``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hw_export.netx_format import ATTR_META, ATTR_SCALE, netx_weight_bits, read_netx
from hw_export.netx_writer import write_netx
from nmprivacy.errors import NetworkError
from nmprivacy.models.base import TargetModel
from nmprivacy.network import InputLayer, Network, loihi
from nmprivacy.network.quantize import LayerQuantization, quantize
from nmprivacy.runinfo import atomic_path, to_jsonable

LayerExport = LayerQuantization  # one exported layer and its error against the source


@dataclass(frozen=True)
class ExportReport:
    """Result of ``export_netx``: file, source kind, mapping, per-layer quantisation errors."""

    path: str
    kind: str
    mapping: str
    lossless: bool
    layers: tuple[LayerQuantization, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


SLAYER_BLOCKS = ("Input", "Conv", "Flatten", "Dense", "Recurrent")


def _slayer_blocks(model: torch.nn.Module) -> list[torch.nn.Module] | None:
    """The slayer CUBA blocks of ``model`` (None if it has none), refusing what NetX cannot run."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        return None
    from lava.lib.dl import slayer

    out = []
    for i, block in enumerate(blocks):
        name = type(block).__name__
        if not any(isinstance(block, getattr(slayer.block.cuba, kind)) for kind in SLAYER_BLOCKS):
            raise NetworkError(f"block {i} is a {type(block).__module__}.{name}: only slayer block.cuba {', '.join(SLAYER_BLOCKS)} are exportable")
        if name == "Flatten":
            out.append(block)
            continue
        if getattr(block, "delay", None) is not None and (name != "Dense" or i == len(blocks) - 1):
            raise NetworkError(f"block {i} ({name}) has learnable axonal delays: NetX applies a layer's delays to its input synapses, which "
                               "gives the same spikes only for a hidden Dense block (a read-out's voltage would lag; NetX ignores conv delays)")
        if not getattr(block, "delay_shift", True):
            raise NetworkError(f"block {i} uses delay_shift=False; Lava adds one step per layer, so train with delay_shift=True")
        neuron = block.neuron
        if neuron is None:
            raise NetworkError(f"block {i} ({name}) has no neuron: NetX input layers without neurons carry no computation")
        if getattr(neuron, "graded_spike", False):
            raise NetworkError(f"block {i} emits graded spikes, which Lava's CUBA neuron does not: train with binary spikes")
        if not getattr(neuron, "shared_param", True):
            raise NetworkError(f"block {i} has per-neuron decays (shared_param=False); NetX needs one decay per layer")
        if getattr(block, "mask", None) is not None or getattr(neuron, "norm", None) is not None:
            raise NetworkError(f"block {i} uses a synapse mask or normalisation, which is not supported")
        out.append(block)
    return out


def _effective_weights(block: torch.nn.Module) -> list[np.ndarray]:
    """The float weights a slayer block computes with (its input and recurrent synapses)."""
    if type(block).__name__ == "Input":
        return [] if block.weight is None else [block.pre_hook_fx(block.weight).detach().double().cpu().numpy()]
    synapses = [block.input_synapse, block.recurrent_synapse] if hasattr(block, "recurrent_synapse") else [block.synapse]
    return [s.pre_hook_fx(s.weight).detach().double().cpu().numpy() for s in synapses]


def _write_slayer(f: Any, model: Any, blocks: list[torch.nn.Module], input_shape: tuple[int, ...]) -> None:
    if any(getattr(b, "neuron", None) is not None and b.neuron.shape is None for b in blocks):
        with torch.no_grad():  # slayer learns neuron shapes on the first forward: one zero step through the model sets them
            model(torch.zeros(1, 1, *input_shape))
    group = f.create_group("layer")
    index = 0
    if type(blocks[0]).__name__ == "Conv":  # NetX needs the input shape of a first convolution
        g = group.create_group(str(index))
        g.create_dataset("type", (1,), "S10", [b"input"])
        g.create_dataset("shape", data=np.asarray(input_shape))
        index += 1
    for block in blocks:
        g = group.create_group(str(index))
        block.export_hdf5(g)
        g.attrs[ATTR_SCALE] = 1.0
        index += 1


def _slayer_records(blocks: list[torch.nn.Module], network: Network) -> list[LayerQuantization]:
    """Per neuron layer of the read-back ``network``: its error against the slayer block."""
    records = []
    neuron_blocks = [b for b in blocks if type(b).__name__ != "Flatten"]
    for i, (block, layer) in enumerate(zip(neuron_blocks, network.layers)):
        written = [np.asarray([layer.weight])] if isinstance(layer, InputLayer) else [np.asarray(layer.weight)]
        if getattr(layer, "weight_rec", None) is not None:
            written.append(np.asarray(layer.weight_rec))
        effective = _effective_weights(block)
        errs = [np.abs(w.reshape(e.shape) / loihi.ACT_SHIFT - e) for w, e in zip(written, effective)] or [np.zeros(1)]
        norm = max(float(np.sqrt(sum((e**2).sum() for e in effective))) if effective else 0.0, 1e-30)
        th = float(block.neuron.threshold)
        bits = netx_weight_bits(written[0]) if type(layer).__name__ == "DenseLayer" and np.asarray(written[0]).any() else (None, None)
        records.append(
            LayerQuantization(
                index=i, kind=type(layer).__name__.replace("Layer", "").lower(),
                in_features=int(np.prod(layer.in_shape)), out_features=int(np.prod(layer.out_shape)),
                i_decay=layer.neuron.i_decay, v_decay=layer.neuron.v_decay, vth_mant=layer.neuron.vth_mant, scale=1.0,
                weight_max_abs_error=float(max(e.max() for e in errs)),
                weight_rel_rms_error=float(np.sqrt(sum((e**2).sum() for e in errs))) / norm,
                threshold_rel_error=abs(layer.neuron.vth_mant / loihi.ACT_SHIFT - th) / max(abs(th), 1e-30),
                leak_abs_error=0.0, weight_bits=bits[0], weight_exponent=bits[1],
            )
        )
    return records


def _header(model: Any, kind: str, mapping: str, meta: dict | None) -> dict:
    info = getattr(model, "info", None)
    return {
        "kind": kind,
        "mapping": mapping,
        "input_shape": list(info.input_shape) if info is not None else None,
        "num_classes": info.num_classes if info is not None else None,
        **(meta or {}),
    }


def export_netx(model: TargetModel | Network, path: str | os.PathLike[str], meta: dict | None = None) -> ExportReport:
    """Write ``model`` (slayer blocks, a float-LIF model such as snn-norse, or a ``Network``) to
    the NetX HDF5 file ``path``; ``meta`` (e.g. data set name) is stored with it."""
    import h5py

    target = Path(path)
    network = model if isinstance(model, Network) else None
    kind = network.meta.get("kind", "network") if network is not None else getattr(getattr(model, "info", None), "kind", type(model).__name__)
    blocks = None if network is not None else _slayer_blocks(model)  # type: ignore[arg-type]
    if blocks is not None:
        header = _header(model, kind, "slayer export_hdf5", meta)
        with atomic_path(target) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs[ATTR_META] = json.dumps(to_jsonable(header))
                _write_slayer(f, model, blocks, tuple(model.info.input_shape))  # type: ignore[union-attr]
            try:
                back = read_netx(tmp)
            except NetworkError as exc:
                raise NetworkError(str(exc).replace(tmp.name, target.name)) from None
            records = _slayer_records(blocks, back)
        lossless = all(r.weight_max_abs_error == 0 and r.threshold_rel_error == 0 for r in records)
        return ExportReport(str(target), kind, header["mapping"], lossless, tuple(records), back.notes)
    if network is None:
        network = model.network() if callable(getattr(model, "network", None)) else None
        if network is None:
            raise NetworkError(f"model kind '{kind}' has neither slayer blocks nor a network description: it cannot be exported to NetX")
    if network.arithmetic == "float":
        loihi_net, records = quantize(network)
        mapping = "float LIF -> CUBA"
        notes = (*loihi_net.notes, "float LIF mapped onto CUBA with per-layer weight/threshold scaling: close to, not equal to, the float model")
    else:
        loihi_net, records, mapping, notes = network, (), "NetX", network.notes
    header = _header(model, kind, mapping, meta)
    written = write_netx(loihi_net, target, meta=header)
    return ExportReport(str(target), kind, mapping, mapping == "NetX", tuple(records), tuple(dict.fromkeys((*notes, *written.notes))))


def model_network(model: TargetModel | Network) -> Network:
    """The ``Network`` a model computes: its own description (``TargetModel.network()``), or, for
    slayer models without one (convolutional ``snn-lava-conv``), the Loihi network their lossless
    NetX export holds."""
    if isinstance(model, Network):
        return model
    own = model.network() if callable(getattr(model, "network", None)) else None
    if own is not None:
        return own
    if _slayer_blocks(model) is None:
        raise NetworkError(f"model kind '{model.info.kind}' has no network description to export")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nmprivacy-export-") as tmp:
        export_netx(model, Path(tmp) / "model.net")
        return read_netx(Path(tmp) / "model.net")
