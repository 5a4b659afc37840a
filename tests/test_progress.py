"""Progress output of long runs in a log file: stage lines are line-buffered, and each finished
step is a line where no bar is drawn."""

from __future__ import annotations

import io
import subprocess
import sys

from nmprivacy.progress import bar, progress_mode, set_progress, step_line


def test_the_command_line_flushes_each_line_into_a_pipe_or_file() -> None:
    """``nmprivacy`` makes stdout and stderr line-buffered before anything runs: Python
    block-buffers them into a file, so a long run's stage lines (training, attacks) reached
    ``> log.txt`` only when it ended."""
    code = ("import sys; from nmprivacy import cli; before = sys.stdout.line_buffering; cli.main([]); "
            "print(before, sys.stdout.line_buffering, sys.stderr.line_buffering, file=sys.stderr)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stderr.strip().splitlines()[-1] == "False True True"


def test_a_step_line_is_written_only_where_no_bar_is_drawn(monkeypatch) -> None:
    """``step_line`` writes its line when the bar is off (a log file) and nothing when it is drawn."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    hidden = bar(total=2, quiet=True)
    step_line(hidden, "reference model 0 done in 1.0 min (1 of 2)")
    mode = progress_mode()
    set_progress(True)
    try:
        drawn = bar(total=2, file=io.StringIO())
    finally:
        set_progress(mode)
    step_line(drawn, "not written")
    hidden.close()
    drawn.close()
    assert out.getvalue() == "reference model 0 done in 1.0 min (1 of 2)\n"
