"""The model kinds, one registry line each (no torch import: the CLI's ``--help`` reads it).

A line says where the model and its config class live, what it is for (``role``: an attack
``target``, the MI-Face ``baseline``, an ``evaluator``), which input layout it takes
(``domain``), which schedule of a data set's preset trains it (``schedule``: a ``Preset``
field), and what it can do (``netx``: exports to Loihi NetX). A new kind is one model module
(with its config dataclass and a ``default_config(input_shape, num_classes, preset)``) plus one
line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nmprivacy.errors import NmprivacyError

Role = Literal["target", "baseline", "evaluator"]


@dataclass(frozen=True)
class ModelKind:
    """A registry line (see the module docstring)."""

    module: str
    model: str
    config: str
    domain: Literal["spikes", "image"]
    role: Role
    schedule: Literal["snn_train", "ann_train", "evaluator_train", "snn_evaluator_train"]
    description: str
    netx: bool = False
    configure: str = "default_config"  # the module's function (input_shape, num_classes, preset, hidden) -> config


MODEL_KINDS: dict[str, ModelKind] = {
    "snn-lava": ModelKind("nmprivacy.models.snn_lava", "SNNLava", "SNNLavaConfig", "spikes", "target", "snn_train",
                          "Lava-DL CUBA target (Loihi fixed point), NetX-exportable", netx=True),
    "snn-lava-conv": ModelKind("nmprivacy.models.snn_lava_conv", "SNNLavaConv", "SNNLavaConvConfig", "spikes", "target", "snn_train",
                               "Lava-DL CUBA convolutional target (strided convolutions, no pooling), NetX-exportable", netx=True),
    "snn-norse": ModelKind("nmprivacy.models.snn_norse", "SNNNorse", "SNNNorseConfig", "spikes", "target", "snn_train",
                           "Norse LIF target: in -> hidden LIF -> classes LIF (mapped onto CUBA for NetX)", netx=True),
    "ann": ModelKind("nmprivacy.models.ann", "ANN", "ANNConfig", "image", "baseline", "ann_train", "MI-Face baseline: in -> hidden sigmoid -> classes"),
    "evaluator": ModelKind("nmprivacy.models.evaluator", "Evaluator", "EvaluatorConfig", "image", "evaluator", "evaluator_train", "evaluation CNN with ReLU",
                           configure="image_config"),
    "evaluator-snn": ModelKind("nmprivacy.models.evaluator", "SpikingEvaluator", "EvaluatorConfig", "spikes", "evaluator", "snn_evaluator_train",
                               "evaluation CNN with Norse LIF", configure="spiking_config"),
}


def kind_entry(kind: str) -> ModelKind:
    """The registry line of ``kind`` (one-line ``NmprivacyError`` for an unknown name)."""
    try:
        return MODEL_KINDS[kind]
    except KeyError:
        raise NmprivacyError(f"unknown model kind '{kind}': choose one of {', '.join(MODEL_KINDS)}") from None


def kinds_with(role: Role) -> tuple[str, ...]:
    """The kinds of one role, in registry order."""
    return tuple(name for name, entry in MODEL_KINDS.items() if entry.role == role)
