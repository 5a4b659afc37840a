"""Checkpoint directories: save a trained model with its config and run record, load it back safely.

A checkpoint is a folder holding
- ``weights.pt``: the state dict (read with ``torch.load(weights_only=True)``: a stranger's file
  cannot run code);
- ``config.json``: ``{"format": 1, "kind": ..., "config": {...}, "weights_sha256": ...}``, enough
  to rebuild the model and to tell a damaged weight file;
- ``run.json``: ``runinfo.run_metadata`` (config, seed, versions, machine, timings) plus the
  caller's ``extra`` (validation accuracy, training curves, data set, ...).
The folder is built in a temporary place and moved into place when complete, so a checkpoint is
either whole or absent. Loading checks every value before use (``load``, ``load_info``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import torch

from nmprivacy.errors import CheckpointError, NmprivacyError
from nmprivacy.models import build, config_class, config_from_dict, kind_entry
from nmprivacy.models.base import TargetModel
from nmprivacy.runinfo import atomic_dir, atomic_write_json, check_output, run_metadata, to_jsonable

FORMAT = 1
WEIGHTS, CONFIG, RUN = "weights.pt", "config.json", "run.json"
CHECKPOINT_FILES = (WEIGHTS, CONFIG, RUN)
HOW_TO_GET = "create one with `nmprivacy train --dataset NAME --model KIND --out DIR`"
MAX_JSON_BYTES = 64 << 20  # run.json holds training curves: a few kB to a few MB
MAX_DIM = 1 << 24  # bound of every integer in a config (sizes, classes, channels)
MAX_STEPS = 100_000  # bound of the time steps T a checkpoint may ask for (the paper uses 25-100)


def check_replaceable(directory: str | os.PathLike[str]) -> Path:
    """``directory`` if a checkpoint may be written there: absent, empty, or holding only
    checkpoint files (it is then replaced); else a one-line ``CheckpointError``."""
    out = check_output(directory, folder=True)
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in CHECKPOINT_FILES)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise CheckpointError(f"{out} exists and holds files that are not a checkpoint's ({shown}): choose a new folder or empty it")
    return out


def save(model: TargetModel, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None, seed: int | None = None, timings: dict[str, float] | None = None) -> Path:
    """Write ``model`` as a checkpoint folder (weights, config, run record + ``extra``); returns the folder.

    The folder is built beside ``directory`` and moved into place when complete, replacing an
    older checkpoint there; a folder holding other files is refused (``check_replaceable``).
    """
    out = check_replaceable(directory)
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(f"{type(model).__name__} has no .config: only registry models can be saved")
    record = run_metadata(config=config, seed=seed, timings=timings)
    record["kind"] = model.info.kind
    record.update(to_jsonable(extra or {}))
    with atomic_dir(out) as tmp:
        torch.save(model.state_dict(), tmp / WEIGHTS)
        atomic_write_json(tmp / RUN, record)
        atomic_write_json(tmp / CONFIG, {"format": FORMAT, "kind": model.info.kind, "config": config, "weights_sha256": file_sha256(tmp / WEIGHTS)})
    return out


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _invalid(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{path} {problem}; re-create the checkpoint ({HOW_TO_GET})")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.parent.is_dir():
        raise CheckpointError(f"checkpoint folder {path.parent} does not exist or is not a folder; {HOW_TO_GET}")
    if not path.exists():
        raise CheckpointError(f"no {path.name} in {path.parent}: not an nmprivacy checkpoint; {HOW_TO_GET}")
    if not path.is_file():
        raise _invalid(path, "is a folder, not a JSON file")
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise _invalid(path, f"is {path.stat().st_size} bytes, far larger than a checkpoint's JSON")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise _invalid(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise _invalid(path, f"is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise _invalid(path, f"holds a JSON {type(data).__name__}, not an object")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    """A finite int or float (not a bool): what a JSON record's number must be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_record(info: dict[str, Any], path: Path) -> dict[str, Any]:
    """``info`` (a run record) if the values nmprivacy reads from it are sane: ``dataset`` and
    ``kind`` names, ``steps`` a whole number in 1..``MAX_STEPS``, ``val_acc`` a fraction; else
    ``CheckpointError``."""
    dataset, steps, acc, kind = info.get("dataset"), info.get("steps"), info.get("val_acc"), info.get("kind")
    for what, value in (("data set", dataset), ("model kind", kind)):
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 200):
            raise _invalid(path, f"names {what} {str(value)[:40]!r}, not a name")
    if steps is not None and (not _is_int(steps) or not 1 <= steps <= MAX_STEPS):
        raise _invalid(path, f"says steps = {str(steps)[:40]}, expected a whole number of time steps in 1..{MAX_STEPS}")
    if acc is not None and (not is_finite_number(acc) or not 0 <= acc <= 1):
        raise _invalid(path, f"says val_acc = {str(acc)[:40]}, expected a fraction in [0, 1]")
    return info


def load_info(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The run record of a checkpoint (``run.json``: metadata, validation accuracy, curves, ...),
    with ``dataset``, ``steps`` and ``val_acc`` checked (``check_record``)."""
    path = Path(directory) / RUN
    return check_record(_read_json(path), path)


def checkpoint_kind(directory: str | os.PathLike[str]) -> str:
    """The model kind stored in a checkpoint folder."""
    path = Path(directory) / CONFIG
    if not Path(directory).is_dir():
        raise CheckpointError(f"checkpoint folder {directory} does not exist; {HOW_TO_GET}")
    kind = _read_json(path).get("kind")
    if not isinstance(kind, str):
        raise _invalid(path, "names no model kind")
    return kind


def _check_value(name: str, hint: Any, value: Any) -> Any:
    """``value`` of config field ``name`` converted from JSON (lists to tuples) if it fits ``hint``;
    ``ValueError`` otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is int:
        low = 0 if name in ("padding", "dense_hidden", "delay_layers") else 1  # the integer fields that may be 0
        if not _is_int(value) or not low <= value <= MAX_DIM:
            raise ValueError(f"{name} = {str(value)[:40]} is not a whole number in {low}..{MAX_DIM}")
        return value
    if hint is float:
        if not is_finite_number(value):
            raise ValueError(f"{name} = {str(value)[:40]} is not a finite number")
        return float(value)
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ValueError(f"{name} = {str(value)[:40]} is not a {hint.__name__}")
        return value
    if origin is Literal:
        if not isinstance(value, (str, int, float)) or value not in args:
            raise ValueError(f"{name} = {str(value)[:40]} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _check_value(name, options[0], value) if len(options) == 1 else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} = {str(value)[:40]} is not a list")
        if len(args) == 2 and args[1] is Ellipsis:
            if not 1 <= len(value) <= 8:
                raise ValueError(f"{name} has {len(value)} entries, expected 1..8")
            return tuple(_check_value(name, args[0], v) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{name} has {len(value)} entries, expected {len(args)}")
        return tuple(_check_value(name, a, v) for a, v in zip(args, value))
    return value


def check_config(kind: str, values: object) -> Any:
    """The config of ``kind`` rebuilt from its JSON form, every field's type and bounds checked;
    ``ValueError`` / ``NmprivacyError`` for a bad one."""
    if not isinstance(values, dict):
        raise ValueError(f"config is a JSON {type(values).__name__}, not an object")
    hints = typing.get_type_hints(config_class(kind))
    checked = {k: _check_value(k, hints[k], v) if k in hints else v for k, v in values.items()}
    return config_from_dict(kind, checked)


def _expected_state(kind: str, config: Any, folder: Path) -> dict[str, torch.Tensor]:
    """The state dict a ``kind`` model of ``config`` has, built on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            skeleton = build(kind, config)
    except (NmprivacyError, TypeError, ValueError, RuntimeError, ZeroDivisionError, OverflowError) as exc:
        raise _invalid(folder / CONFIG, f"describes a model that cannot be built ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
    return skeleton.state_dict()


def _check_state(state: object, expected: dict[str, torch.Tensor], weights: Path) -> dict[str, torch.Tensor]:
    """``state`` if it holds exactly the ``expected`` tensors (names, shapes, dtypes), honest and finite."""
    from nmprivacy.tensorfile import check_tensor

    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise _invalid(weights, f"holds {type(state).__name__}, not a state dict (tensors by name)")
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + ([f"unexpected {', '.join(unexpected[:3])}"] if unexpected else [])
        raise _invalid(weights, f"does not match its config.json ({'; '.join(parts)})")
    for name, want in expected.items():
        try:
            t = check_tensor(state[name], name)
        except ValueError as exc:
            raise _invalid(weights, f"is damaged: {exc}") from None
        if t.shape != want.shape or t.dtype != want.dtype:
            raise _invalid(weights, f"does not match its config.json ({name} is {tuple(t.shape)} {t.dtype}, the config needs {tuple(want.shape)} {want.dtype})")
    return state  # type: ignore[return-value]


def load(directory: str | os.PathLike[str], kind: str | None = None) -> TargetModel:
    """The model saved in checkpoint folder ``directory`` (eval mode); ``kind`` checks what it must be.

    Every part is checked before use: the JSON's types and bounds, the weight file's sha256 (when
    recorded), and each tensor's name, shape and dtype against a model built on the meta device
    (no memory), its storage and finiteness; the weights are read with ``weights_only=True`` and
    the real model is built only from a state that passed.
    """
    from nmprivacy.tensorfile import load_tensor_file

    folder = Path(directory)
    stored = checkpoint_kind(folder)
    if kind is not None and stored != kind:
        raise CheckpointError(f"checkpoint {folder} holds a '{stored}' model but '{kind}' was requested; pass a '{kind}' checkpoint or use --model {stored}")
    meta = _read_json(folder / CONFIG)
    fmt = meta.get("format")
    if not _is_int(fmt) or fmt != FORMAT:
        raise CheckpointError(f"checkpoint {folder} has format {str(fmt)[:20]!r}, this nmprivacy reads {FORMAT}; re-create it ({HOW_TO_GET})")
    try:
        kind_entry(stored)
        config = check_config(stored, meta.get("config"))
    except (NmprivacyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {folder} has an invalid config ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); re-create it ({HOW_TO_GET})") from None
    weights = folder / WEIGHTS
    if not weights.is_file():
        what = "is a folder, not a file" if weights.is_dir() else "is missing"
        raise CheckpointError(f"{weights} {what}: the checkpoint is incomplete; re-create it ({HOW_TO_GET})")
    expected = _expected_state(stored, config, folder)
    digest = meta.get("weights_sha256")  # absent in checkpoints written before it was recorded
    if digest is not None and (not isinstance(digest, str) or digest != file_sha256(weights)):
        raise _invalid(weights, "is truncated or corrupt: its sha256 differs from the one config.json recorded")
    state = _check_state(load_tensor_file(weights, "checkpoint weights", f"re-create the checkpoint ({HOW_TO_GET})", CheckpointError), expected, weights)
    model = build(stored, config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise _invalid(weights, f"does not match its config.json ({first})") from None
    return model.eval()
