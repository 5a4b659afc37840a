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


def flush_lines(*streams: Any) -> None:
    """Make each text stream (default: this process's stdout and stderr) line-buffered, so the
    stage lines of a long run (``training ...``, ``attack ...``, epoch lines) reach a log file or
    pipe when they are written, not when the run ends. Streams without ``reconfigure`` (e.g. a
    test's capture) are left as they are."""
    import sys

    for stream in streams or (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(line_buffering=True)
            except (ValueError, OSError):  # closed or detached stream
                pass


def step_line(progress: tqdm, text: str) -> None:
    """Write ``text`` as a line when ``progress`` (a ``bar``) is not drawn, so a log file still
    records each finished step of long work (a drawn bar already shows it)."""
    if progress.disable:
        tqdm.write(text)


def duration(seconds: float) -> str:
    """``seconds`` for a progress line: ``"42 s"`` under two minutes, else ``"3.5 min"``."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
