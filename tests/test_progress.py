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


def test_each_finished_reference_model_is_a_counted_line_in_a_log(tmp_path, monkeypatch, capsys) -> None:
    """Without a drawn bar, a membership run writes one line per finished reference model, counted
    (a disabled tqdm bar does not count, so the count is kept apart)."""
    from types import SimpleNamespace

    from nmprivacy.mia import references

    monkeypatch.setattr(references, "reference_job", lambda job: {"index": job["index"]})
    jobs = [{"index": i, "entry": str(tmp_path / f"absent-{i}.pt")} for i in range(3)]
    mode = progress_mode()
    set_progress(False)
    try:
        records = references.train_references(SimpleNamespace(workers=0, scheduler=None), jobs)
    finally:
        set_progress(mode)
    assert records == [{"index": 0}, {"index": 1}, {"index": 2}]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("reference model")]
    assert [line.split(" done in ")[0] for line in lines] == ["reference model 0", "reference model 1", "reference model 2"]
    assert [line.rsplit("(", 1)[1] for line in lines] == ["1 of 3)", "2 of 3)", "3 of 3)"]
    assert all(" s (" in line for line in lines)
