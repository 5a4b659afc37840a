"""Checkpoint directories: save a trained model with its config and run record, load it back safely.

A checkpoint is a folder holding
- ``weights.pt``: the state dict (read with ``torch.load(weights_only=True)``: a stranger's file
  cannot run code);
- ``config.json``: ``{"format": 1, "kind": ..., "config": {...}}``, enough to rebuild the model;
- ``run.json``: ``runinfo.run_metadata`` (config, seed, versions, machine, timings) plus the
  caller's ``extra`` (validation accuracy, training curves, data set, ...).
Every file is written atomically; ``config.json`` is written last, so a folder without it is
not a checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from nmprivacy.errors import CheckpointError, NmprivacyError
from nmprivacy.models import build, config_from_dict, kind_entry
from nmprivacy.models.base import TargetModel
from nmprivacy.runinfo import atomic_path, atomic_write_json, run_metadata, to_jsonable

FORMAT = 1
WEIGHTS, CONFIG, RUN = "weights.pt", "config.json", "run.json"
HOW_TO_GET = "create one with `nmprivacy train --dataset NAME --model KIND --out DIR`"


def save(model: TargetModel, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None, seed: int | None = None, timings: dict[str, float] | None = None) -> Path:
    """Write ``model`` as a checkpoint folder (weights, config, run record + ``extra``); returns the folder."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(f"{type(model).__name__} has no .config: only registry models can be saved")
    with atomic_path(out / WEIGHTS) as tmp:
        torch.save(model.state_dict(), tmp)
    record = run_metadata(config=config, seed=seed, timings=timings)
    record["kind"] = model.info.kind
    record.update(to_jsonable(extra or {}))
    atomic_write_json(out / RUN, record)
    atomic_write_json(out / CONFIG, {"format": FORMAT, "kind": model.info.kind, "config": config})
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"no {path.name} in {path.parent}: not an nmprivacy checkpoint; {HOW_TO_GET}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is unreadable or corrupt ({type(exc).__name__}); re-create the checkpoint ({HOW_TO_GET})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object; re-create the checkpoint ({HOW_TO_GET})")
    return data


def load_info(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The run record of a checkpoint (``run.json``: metadata, validation accuracy, curves, ...)."""
    return _read_json(Path(directory) / RUN)


def checkpoint_kind(directory: str | os.PathLike[str]) -> str:
    """The model kind stored in a checkpoint folder."""
    path = Path(directory) / CONFIG
    if not Path(directory).is_dir():
        raise CheckpointError(f"checkpoint folder {directory} does not exist; {HOW_TO_GET}")
    kind = _read_json(path).get("kind")
    if not isinstance(kind, str):
        raise CheckpointError(f"{path} names no model kind; re-create the checkpoint ({HOW_TO_GET})")
    return kind


def load(directory: str | os.PathLike[str], kind: str | None = None) -> TargetModel:
    """The model saved in checkpoint folder ``directory`` (eval mode); ``kind`` checks what it must be."""
    folder = Path(directory)
    stored = checkpoint_kind(folder)
    if kind is not None and stored != kind:
        raise CheckpointError(f"checkpoint {folder} holds a '{stored}' model but '{kind}' was requested; pass a '{kind}' checkpoint or use --model {stored}")
    meta = _read_json(folder / CONFIG)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {folder} has format {meta.get('format')!r}, this nmprivacy reads {FORMAT}; re-create it ({HOW_TO_GET})")
    try:
        kind_entry(stored)
        config = config_from_dict(stored, dict(meta.get("config") or {}))
    except (NmprivacyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {folder} has an invalid config ({str(exc).splitlines()[0]}); re-create it ({HOW_TO_GET})") from None
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"no {WEIGHTS} in {folder}: the checkpoint is incomplete; re-create it ({HOW_TO_GET})")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, forbidden global: all mean a bad file
        raise CheckpointError(f"{weights} is truncated or corrupt ({type(exc).__name__}); re-create the checkpoint ({HOW_TO_GET})") from None
    model = build(stored, config)
    if not isinstance(state, dict):
        raise CheckpointError(f"{weights} does not hold a state dict; re-create the checkpoint ({HOW_TO_GET})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{weights} does not match its config.json ({first}); re-create the checkpoint ({HOW_TO_GET})") from None
    return model.eval()
