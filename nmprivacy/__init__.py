"""nmprivacy: measure how much private training data leaks out of spiking neural networks.

Data flows one way: dataset -> encoding -> model -> attack -> evaluation -> export/validation -> report.

The Python API (``import nmprivacy as nmp``; ``nmprivacy.api`` documents each function):
``load_model``, ``load`` (model with its source's facts), ``get_attack``, ``export_netx``,
``load_netx``, ``run_lava``, ``validate``, ``score``, ``train``; membership inference
``run_mia(MiaConfig(...))`` (``nmprivacy.mia``, as ``nmprivacy mia``); the attack classes and
their settings (``BrainLeaksV1``/``BLv1Settings``, ``BrainLeaksV2``/``BLv2Settings``,
``MIFace``/``MIFaceSettings``), ``Inversion``, ``Network``. Names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    **{name: "nmprivacy.api" for name in ("load", "load_model", "get_attack", "export_netx", "load_netx", "run_lava", "validate", "score", "train")},
    "BrainLeaksV1": "nmprivacy.attacks.blv1",
    "BrainLeaksV2": "nmprivacy.attacks.blv2",
    "MIFace": "nmprivacy.attacks.miface",
    "BLv1Settings": "nmprivacy.presets",
    "BLv2Settings": "nmprivacy.presets",
    "MIFaceSettings": "nmprivacy.presets",
    "Inversion": "nmprivacy.attacks.base",
    "Network": "nmprivacy.network",
    "Target": "nmprivacy.targets",
    "run_mia": "nmprivacy.mia",
    "MiaConfig": "nmprivacy.mia",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nmprivacy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
