"""The hardware path: NetX HDF5 export, bit-exact Loihi emulation, Lava execution, validation.

Public API (imported lazily, so ``import hw_export`` does not import Lava):
- ``export_netx(model, path) -> ExportReport`` (``hw_export.netx_export``);
- ``load_netx(path) -> NetxEmulation`` (``hw_export.netx_emulation``);
- ``run_lava(path, spikes) -> LavaRun`` (``hw_export.lava_run``);
- ``validate(model_or_path, ...) -> dict`` (``hw_export.validation``);
- ``netx_selfcheck() -> (ok, detail)`` (``hw_export.selfcheck``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "export_netx": "hw_export.netx_export",
    "ExportReport": "hw_export.netx_export",
    "load_netx": "hw_export.netx_emulation",
    "NetxEmulation": "hw_export.netx_emulation",
    "run_lava": "hw_export.lava_run",
    "LavaRun": "hw_export.lava_run",
    "validate": "hw_export.validation",
    "netx_selfcheck": "hw_export.selfcheck",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hw_export' has no attribute {name!r}")
