"""The command line: help on every subcommand, the doctor's verdict, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nmprivacy.cli import COMMANDS, build_parser, main


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nmprivacy", *args], capture_output=True, text=True, timeout=timeout
    )


def test_every_listed_command_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_subcommand(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


def test_doctor_reports_the_core_stack_ok() -> None:
    proc = run_cli("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for name in ("lava imports", "NetX HDF5 on Loihi2SimCfg(fixed_pt)", "Norse LIF forward+backward", "tonic"):
        assert any(line.strip().startswith("ok") and name in line for line in lines), proc.stdout
    assert "core stack: ok" in proc.stdout
    assert "digits: found" in proc.stdout
    assert "Prophesee" not in proc.stdout + proc.stderr


def test_user_error_is_one_line_without_traceback(tmp_path) -> None:
    proc = run_cli("data", "info", "--dataset", "no-such-set")
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no-such-set" in err[0]
    assert "Traceback" not in proc.stderr
