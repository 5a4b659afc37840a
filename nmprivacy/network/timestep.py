"""The simulation time step ``dt`` of a NIR graph: its default and the one check of a user's value."""

from __future__ import annotations

import math
from typing import Any

from nmprivacy.errors import NetworkError

DEFAULT_DT = 1e-3  # seconds (Norse's default step; snnTorch exports with 1e-4)


def checked_dt(dt: Any, what: str = "--dt") -> float:
    """``dt`` in seconds as a float; a one-line error naming ``what`` unless it is a positive finite number."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise NetworkError(f"{what} is {dt!r}: give the network's time step in seconds as a positive number "
                           "(e.g. 1e-3, Norse's default; 1e-4, snnTorch's)")
    return float(dt)
