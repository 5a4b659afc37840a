"""The hardware path: NetX HDF5 read/write and export, Lava execution, spike comparisons.

Public API (imported lazily, so ``import hw_export`` does not import Lava):
- ``read_netx(path) -> Network`` / ``write_netx(network, path)`` (``hw_export.netx_format``, ``netx_writer``);
- ``export_netx(model, path) -> ExportReport`` (``hw_export.netx_export``);
- ``load_netx(path) -> NetworkModel`` (``hw_export.netx_emulation``: the bit-exact emulation);
- ``run_lava(path, spikes) -> LavaRun`` (``hw_export.lava_run``);
- ``export_fidelity``, ``attack_validation`` (``hw_export.fidelity``);
- ``netx_selfcheck() -> (ok, detail)`` (``hw_export.selfcheck``).
The validation pipeline that uses them is ``nmprivacy.validation``.
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
    "read_netx": "hw_export.netx_format",
    "write_netx": "hw_export.netx_writer",
    "export_fidelity": "hw_export.fidelity",
    "attack_validation": "hw_export.fidelity",
    "netx_selfcheck": "hw_export.selfcheck",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hw_export' has no attribute {name!r}")
