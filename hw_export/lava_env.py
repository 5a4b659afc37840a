"""The one place that imports Lava's runtime (it sets the multiprocessing start method to fork).

``lava.magma`` calls ``multiprocessing.set_start_method('fork')`` at import time, which fails if
the start method was already fixed. ``lava_modules()`` imports Lava safely: when the method is
already ``fork`` (e.g. after ``multiprocessing.get_start_method()``), the identical setting is
re-applied; any other method is a clear error.
"""

from __future__ import annotations

import multiprocessing
import sys
from types import SimpleNamespace

from nmprivacy.errors import ExportError

_CACHE: dict[str, SimpleNamespace] = {}


def lava_modules() -> SimpleNamespace:
    """Lava objects used by the hardware path: ``netx`` (hdf5 module), ``RunSteps``,
    ``Loihi2SimCfg``, ``netx_utils``, ``weightutils`` and ``procs`` (our memmap processes)."""
    if "lava" in _CACHE:
        return _CACHE["lava"]
    if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules:
        method = multiprocessing.get_start_method(allow_none=True)
        if method not in (None, "fork"):
            raise ExportError(
                f"Lava needs the 'fork' multiprocessing start method but '{method}' is already set: "
                "import hw_export before setting a start method, or run Lava in its own process"
            )
        if method == "fork":  # same setting; let Lava's unconditional set_start_method succeed
            multiprocessing.context._default_context._actual_context = None  # type: ignore[attr-defined]
    from nmprivacy.lava_import import import_lava

    import_lava()  # quiet first import (banners silenced)
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
