"""Progress bars: one switch for the whole process, and tqdm's rule by default.

``bar(...)`` is ``tqdm`` with ``disable`` taken from the process's mode: ``None`` (the default)
is tqdm's own rule, bars only when the output is a terminal (so logs and pipes get no
carriage-return spam); ``set_progress(True)`` forces them on (``--progress``), ``False`` off
(``--no-progress``). A caller's ``quiet=True`` (e.g. a loop too short to be worth a bar) always wins.
"""

from __future__ import annotations

from typing import Any, Iterable

from tqdm.auto import tqdm

_MODE: bool | None = None


def set_progress(mode: bool | None) -> None:
    """Bars on (True), off (False), or only on a terminal (None: tqdm's rule)."""
    global _MODE
    _MODE = mode


def progress_mode() -> bool | None:
    """The mode ``set_progress`` last set (None: on a terminal only)."""
    return _MODE


def bar(iterable: Iterable[Any] | None = None, *, quiet: bool = False, **kwargs: Any) -> tqdm:
    """A tqdm bar over ``iterable`` (or with ``total=``) that follows the process's mode."""
    disable = True if quiet else (None if _MODE is None else not _MODE)
    return tqdm(iterable, disable=disable, **kwargs)
