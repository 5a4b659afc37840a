"""Lava objects the hardware path uses, gathered once after Lava is imported.

Lava itself is imported through ``nmprivacy.lava_import.import_lava`` (quiet, start-method safe);
this module gathers the objects the hardware path uses.
"""

from __future__ import annotations

from types import SimpleNamespace

_CACHE: dict[str, SimpleNamespace] = {}


def lava_modules() -> SimpleNamespace:
    """Lava objects used by the hardware path: ``netx`` (hdf5 module), ``RunSteps``,
    ``Loihi2SimCfg``, ``netx_utils``, ``weightutils`` and ``procs`` (our memmap processes)."""
    if "lava" in _CACHE:
        return _CACHE["lava"]
    from nmprivacy.lava_import import import_lava

    import_lava()  # quiet, start-method-safe first import
    from lava.lib.dl.netx import hdf5 as netx_hdf5
    from lava.lib.dl.netx import utils as netx_utils
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.utils import weightutils

    from hw_export.lava_procs import memmap_io

    _CACHE["lava"] = SimpleNamespace(
        netx=netx_hdf5,
        netx_utils=netx_utils,
        weightutils=weightutils,
        RunSteps=RunSteps,
        Loihi2SimCfg=Loihi2SimCfg,
        procs=memmap_io,
    )
    return _CACHE["lava"]
