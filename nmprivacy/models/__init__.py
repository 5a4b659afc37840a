"""Target models and evaluation classifiers; see ``nmprivacy.models.base`` for the protocol.

One registry: ``MODEL_KINDS`` maps a kind name to its model class and frozen config class;
``build(kind, config)`` makes a fresh model, ``default_config(kind, ...)`` the spec defaults for
a data set. ``snn-lava`` imports Lava-DL only when built.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel


@dataclass(frozen=True)
class ModelKind:
    """A registry line: where the model and its config class live, and what it is."""

    module: str
    model: str
    config: str
    domain: str  # "spikes" or "image" (input layout)
    description: str

    def classes(self) -> tuple[type, type]:
        """(model class, config class), importing the module on first use."""
        mod = importlib.import_module(self.module)
        return getattr(mod, self.model), getattr(mod, self.config)


MODEL_KINDS: dict[str, ModelKind] = {
    "snn-norse": ModelKind("nmprivacy.models.snn_norse", "SNNNorse", "SNNNorseConfig", "spikes", "Norse LIF target: in -> hidden LIF -> classes LIF"),
    "snn-lava": ModelKind("nmprivacy.models.snn_lava", "SNNLava", "SNNLavaConfig", "spikes", "Lava-DL CUBA target (Loihi fixed point), NetX-exportable"),
    "ann": ModelKind("nmprivacy.models.ann", "ANN", "ANNConfig", "image", "MI-Face baseline: in -> hidden sigmoid -> classes"),
    "evaluator": ModelKind("nmprivacy.models.evaluator", "Evaluator", "EvaluatorConfig", "image", "evaluation CNN with ReLU"),
    "evaluator-snn": ModelKind("nmprivacy.models.evaluator", "SpikingEvaluator", "EvaluatorConfig", "spikes", "evaluation CNN with Norse LIF"),
}


def kind_entry(kind: str) -> ModelKind:
    """The registry entry of ``kind`` (one-line ``NmprivacyError`` for an unknown name)."""
    try:
        return MODEL_KINDS[kind]
    except KeyError:
        raise NmprivacyError(f"unknown model kind '{kind}': choose one of {', '.join(MODEL_KINDS)}") from None


def config_class(kind: str) -> type:
    """The frozen config dataclass of ``kind``."""
    return kind_entry(kind).classes()[1]


def build(kind: str, config: Any) -> TargetModel:
    """A freshly initialised model of ``kind`` from its config (uses torch's global RNG)."""
    model_cls, cfg_cls = kind_entry(kind).classes()
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
    """Spec defaults of ``kind`` for a data set (presets table): hidden size, evaluator neuron and padding."""
    from nmprivacy.models.evaluator import evaluator_padding
    from nmprivacy.presets import preset_for

    preset = preset_for(dataset, budget)  # type: ignore[arg-type]
    cfg_cls = config_class(kind)
    shape = tuple(int(s) for s in input_shape)
    if kind in ("snn-norse", "snn-lava", "ann"):
        return cfg_cls(input_shape=shape, num_classes=num_classes, hidden=hidden if hidden is not None else preset.hidden)
    pad = evaluator_padding(shape)
    if kind == "evaluator":
        return cfg_cls(input_shape=shape, num_classes=num_classes, padding=pad)
    slope = 40.0 if preset.evaluator_neuron == "fast-sigmoid" else 1.5
    return cfg_cls(
        input_shape=shape,
        num_classes=num_classes,
        padding=pad,
        leak=preset.evaluator_beta,
        surrogate=preset.evaluator_neuron,
        surrogate_slope=slope,
    )
