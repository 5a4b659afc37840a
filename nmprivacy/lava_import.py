"""The one place that imports Lava (lava-nc, lava-dl slayer and netx), quietly and safely.

lava-dl prints a Prophesee-toolbox warning and torch's cpp_extension a CUDA_HOME notice when
slayer is first imported; neither concerns nmprivacy, so they are silenced. ``lava.magma``
calls ``multiprocessing.set_start_method('fork')`` at import time, which fails once anything
(a tqdm bar, ``get_start_method()``) has fixed the method: when it is already ``fork`` the
identical setting is re-applied; any other method is a clear one-line error.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import sys

from nmprivacy.errors import NmprivacyError

_MAGMA_MP = "lava.magma.runtime.message_infrastructure.multiprocessing"


def _allow_lava_start_method() -> None:
    """Let Lava's unconditional ``set_start_method('fork')`` succeed if fork is already chosen."""
    if _MAGMA_MP in sys.modules:
        return
    method = multiprocessing.get_start_method(allow_none=True)
    if method not in (None, "fork"):
        raise NmprivacyError(
            f"Lava needs the 'fork' multiprocessing start method but '{method}' is already set: "
            "import nmprivacy's Lava parts before setting a start method, or run Lava in its own process"
        )
    if method == "fork":
        multiprocessing.context._default_context._actual_context = None  # type: ignore[attr-defined]


def use_fork_for_lava() -> None:
    """Make 'fork' this process's start method, so Lava can be imported here. For worker
    processes (a Dask worker is spawned and inherits 'spawn'), whose only child processes are
    Lava's; a no-op once Lava is imported or when fork is already the method."""
    if _MAGMA_MP not in sys.modules and multiprocessing.get_start_method(allow_none=True) not in (None, "fork"):
        multiprocessing.set_start_method("fork", force=True)


def import_lava() -> None:
    """Import lava.magma, lava.lib.dl.slayer and lava.lib.dl.netx quietly (no-op when done)."""
    _allow_lava_start_method()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import lava.lib.dl.netx  # noqa: F401
        import lava.lib.dl.slayer  # noqa: F401
        import lava.magma.core.run_configs  # noqa: F401


def import_slayer() -> None:
    """Import only lava.lib.dl.slayer quietly: it does not import lava.magma, so it does not touch
    the multiprocessing start method (safe after tqdm or anything else has fixed it)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import lava.lib.dl.slayer  # noqa: F401
