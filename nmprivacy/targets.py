"""Loading the model to attack or validate, and choosing its time steps T: one place for both.

A target is named by a checkpoint folder (``nmprivacy train``), a NetX file (``*.net``, ``*.h5``,
``*.hdf5``: the bit-exact Loihi emulation of the file), a NIR graph (``*.nir``: its Loihi version,
the float model beside it), or given as a model or network object. ``load_target`` returns the
model with what its source says of itself (data set, T, NetX file); ``fit_to_data`` maps a flat
network input onto a data set's ``(C, H, W)`` layout, or says in one line why it cannot;
``choose_steps`` applies the rule for T: what the user asks for, else what the model or its
file says, else the data set's preset.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel

NETX_SUFFIXES = (".net", ".h5", ".hdf5")
NIR_SUFFIXES = (".nir",)
HOW = "pass a checkpoint folder (nmprivacy train), a NetX file (*.net) or a NIR graph (*.nir)"


@dataclass
class Target:
    """A loaded model and what its source says of it.

    ``netx``: the NetX file the model emulates (None for checkpoints and objects); ``float_model``:
    the float model of a NIR graph or Norse module whose Loihi version ``model`` is; ``meta``:
    ``dataset``, ``steps``, ``kind``, ``dt`` and whatever else the source records."""

    model: TargetModel
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    netx: Path | None = None
    float_model: TargetModel | None = None
    report: Any = None  # the quantisation report of a float source mapped onto Loihi

    @property
    def dataset(self) -> str | None:
        value = self.meta.get("dataset")
        return value if isinstance(value, str) else None

    @property
    def steps(self) -> int | None:
        value = self.meta.get("steps")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def load_target(spec: str | os.PathLike[str] | TargetModel | Any, steps: int | None = None, input_shape: tuple[int, ...] | None = None, dt: float | None = None) -> Target:
    """The model named by ``spec`` (see the module docstring); ``steps`` overrides the T the source
    records, ``input_shape`` reads a flat network input as that layout, ``dt`` is a NIR graph's
    time step in seconds (default 1 ms)."""
    from nmprivacy.network import Network

    if isinstance(spec, TargetModel):
        target = Target(spec, spec.info.kind, {"kind": spec.info.kind})
    elif isinstance(spec, Network):
        from nmprivacy.models.network_model import NetworkModel

        target = Target(NetworkModel(spec, kind=spec.meta.get("kind", "network"), input_shape=input_shape).freeze(), spec.name, dict(spec.meta))
    else:
        target = _load_path(Path(spec), input_shape, dt)
    if steps is not None:
        if steps < 1:
            raise NmprivacyError(f"--steps must be >= 1, got {steps}")
        target.meta["steps"] = int(steps)
    return target


def declared_training(value: Any) -> dict[str, Any] | None:
    """The training defences a source declares of itself (a checkpoint's training record, the
    metadata ``nmprivacy export`` writes into a NetX file, or into a NIR graph as JSON text) as
    ``{"dp": ..., "defences": ...}``, or None when it declares none or not in that form (a file's
    metadata may be any shape)."""
    from nmprivacy.models.checkpoint import is_finite_number as _number

    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    dp, free = value.get("dp"), value.get("defences")
    if dp is not None:
        if not isinstance(dp, dict) or not isinstance(dp.get("accountant"), str):
            return None
        fields = ("delta", "noise_multiplier", "max_grad_norm", "sample_rate", "steps")
        if not all(_number(dp.get(k)) for k in fields) or not (dp.get("epsilon") is None or _number(dp.get("epsilon"))):
            return None
    if free is not None:
        stop = free.get("early_stopping") if isinstance(free, dict) else None
        if (not isinstance(free, dict) or any(free.get(k) is not None and not _number(free[k]) for k in ("weight_decay", "dropout"))
                or (stop is not None and not (isinstance(stop, dict) and all(_number(stop.get(k)) for k in ("patience", "epochs_run", "epoch_budget", "best_epoch"))))):
            return None
    if dp is None and not free:
        return None
    return {"dp": dp, **({"defences": free} if free else {})}


def _load_path(path: Path, input_shape: tuple[int, ...] | None, dt: float | None) -> Target:
    if path.is_dir():
        from nmprivacy.models.checkpoint import load, load_info
        from nmprivacy.training import defence_fields

        info = load_info(path)
        meta = {k: info.get(k) for k in ("dataset", "steps", "kind") if info.get(k) is not None}
        if training := declared_training(defence_fields(info.get("train_report") or info.get("report"))):  # the cache's / nmprivacy train's record
            meta["training"] = training
        return Target(load(path), str(path), meta)
    if not path.exists():
        raise NmprivacyError(f"--model {path} does not exist: {HOW}")
    suffix = path.suffix.lower()
    if suffix in NIR_SUFFIXES:
        return load_nir_target(path, dt=dt, input_shape=input_shape)
    if suffix not in NETX_SUFFIXES:
        raise NmprivacyError(f"--model {path} is neither a checkpoint folder, a NetX file nor a NIR graph: {HOW}")
    from hw_export.netx_emulation import load_netx

    model = load_netx(path, input_shape=input_shape)
    meta = {k: v for k, v in model.network().meta.items() if k in ("dataset", "steps", "kind", "dt") and v is not None}
    meta.setdefault("kind", "netx")
    if training := declared_training(model.network().meta.get("training")):
        meta["training"] = training
    return Target(model, str(path), meta, netx=path)


def float_target(network: Any, source: str, kind: str, meta: dict[str, Any] | None = None) -> Target:
    """A float ``Network`` as a target: its Loihi version (the model: what the chip runs) and the
    float model beside it, with the quantisation records of every layer."""
    from nmprivacy.models.network_model import NetworkModel
    from nmprivacy.network.quantize import quantize

    loihi_net, records = quantize(network)
    return Target(
        NetworkModel(loihi_net, kind=kind).freeze(), source, {"kind": kind, "dt": network.meta.get("dt"), **(meta or {})},
        float_model=NetworkModel(network, kind=f"{kind}-float").freeze(),
        report={"mapping": f"{kind} float -> CUBA", "lossless": False, "layers": records, "notes": loihi_net.notes},
    )


def load_nir_target(path: str | os.PathLike[str], dt: float | None = None, input_shape: tuple[int, ...] | None = None) -> Target:
    """A NIR file as a target (``float_target`` of its graph)."""
    from nmprivacy.network.nir_import import read_nir

    network = read_nir(path, dt=dt, input_shape=input_shape)
    meta: dict[str, Any] = {"file": str(path)}
    if training := declared_training(network.meta.get("training")):
        meta["training"] = training
    return float_target(network, str(path), "nir", meta)


def fit_to_data(target: Target, input_shape: tuple[int, ...], num_classes: int, dataset: str) -> Target:
    """``target`` reading inputs of the data set's ``input_shape``: a flat network input (a dense
    first layer) takes the layout as it is; any other difference is a one-line error naming both."""
    from nmprivacy.models.network_model import NetworkModel

    model = target.model
    have, want = tuple(model.info.input_shape), tuple(int(s) for s in input_shape)
    if model.info.num_classes != num_classes:
        raise NmprivacyError(
            f"{target.source} has {model.info.num_classes} outputs but '{dataset}' has {num_classes} classes: use the data set it was trained for (--dataset)"
        )
    if have == want:
        return target
    if isinstance(model, NetworkModel) and math.prod(have) == math.prod(want) and len(model.network().input_shape) == 1:
        refit = NetworkModel(model.network(), kind=model.info.kind, surrogate_slope=model.surrogate_slope, input_shape=want).freeze()
        return replace(target, model=refit)
    raise NmprivacyError(
        f"{target.source} takes inputs of shape {have} but '{dataset}' has {want}: use the data set it was trained for "
        "(or its preprocessing options, e.g. --option polarity=...)"
    )


def choose_steps(requested: int | None, target: Target | None, dataset: str, overrides: dict[str, Any] | None = None) -> int:
    """T of spike inputs: ``requested`` (``--steps``), else ``overrides["steps"]`` (``--set steps=N``),
    else the target's recorded T, else the data set's preset."""
    if requested is None and overrides and overrides.get("steps") is not None:
        requested = overrides["steps"]
    if requested is not None:
        if requested < 1:
            raise NmprivacyError(f"--steps must be >= 1, got {requested}")
        return int(requested)
    if target is not None and target.steps is not None:
        return target.steps
    from nmprivacy.presets import preset_for

    return preset_for(dataset).steps
