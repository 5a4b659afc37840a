"""Import Lava (lava-nc, lava-dl slayer and netx) once, with its import-time banners silenced.

lava-dl prints a Prophesee-toolbox warning and torch's cpp_extension a CUDA_HOME notice when
slayer is first imported; neither concerns nmprivacy. Importing lava also sets the
multiprocessing start method to fork, so it is done before anything else picks one.
"""

from __future__ import annotations

import contextlib
import io


def import_lava() -> None:
    """Import lava.magma, lava.lib.dl.slayer and lava.lib.dl.netx quietly (no-op when done)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import lava.lib.dl.netx  # noqa: F401
        import lava.lib.dl.slayer  # noqa: F401
        import lava.magma.core.run_configs  # noqa: F401


def import_slayer() -> None:
    """Import only lava.lib.dl.slayer quietly: it does not import lava.magma, so it does not touch
    the multiprocessing start method (safe after tqdm or anything else has fixed it)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import lava.lib.dl.slayer  # noqa: F401
