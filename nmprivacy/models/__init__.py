"""Target models and evaluation classifiers; see ``nmprivacy.models.base`` for the protocol.

One registry (``nmprivacy.model_kinds.MODEL_KINDS``, re-exported here): a kind's model and config
classes, role, input domain, training schedule and capabilities. ``build(kind, config)`` makes a
fresh model, ``default_config(kind, ...)`` the paper's defaults for a data set. The Lava-DL
kinds import slayer only when built.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from nmprivacy.errors import NmprivacyError
from nmprivacy.model_kinds import MODEL_KINDS, ModelKind, kind_entry  # noqa: F401 (the registry lives there)
from nmprivacy.models.base import TargetModel


def kind_classes(kind: str) -> tuple[type, type]:
    """(model class, config class) of ``kind``, importing its module on first use."""
    entry = kind_entry(kind)
    mod = importlib.import_module(entry.module)
    return getattr(mod, entry.model), getattr(mod, entry.config)


def config_class(kind: str) -> type:
    """The frozen config dataclass of ``kind``."""
    return kind_classes(kind)[1]


def build(kind: str, config: Any) -> TargetModel:
    """A freshly initialised model of ``kind`` from its config (uses torch's global RNG)."""
    model_cls, cfg_cls = kind_classes(kind)
    if not isinstance(config, cfg_cls):
        raise TypeError(f"model kind '{kind}' needs a {cfg_cls.__name__}, got {type(config).__name__}")
    return model_cls(config)


def config_from_dict(kind: str, values: dict[str, Any]) -> Any:
    """Rebuild the config of ``kind`` from its JSON form (lists back to tuples); unknown keys are an error."""
    cfg_cls = config_class(kind)
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = set(values) - names
    if unknown:
        raise NmprivacyError(f"config of model kind '{kind}' has unknown fields {sorted(unknown)}: the checkpoint was written by another nmprivacy version")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cfg_cls(**fixed)


def default_config(
    kind: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    dataset: str = "mnist",
    hidden: int | None = None,
    budget: str = "paper",
) -> Any:
    """Paper defaults of ``kind`` for a data set (presets table, docs/method.md §4), from the
    kind's own ``configure`` function (hidden size, evaluator neuron and padding, ...)."""
    from nmprivacy.presets import preset_for

    preset = preset_for(dataset, budget)  # type: ignore[arg-type]
    entry = kind_entry(kind)
    configure = getattr(importlib.import_module(entry.module), entry.configure)
    return configure(tuple(int(s) for s in input_shape), num_classes, preset, hidden)
