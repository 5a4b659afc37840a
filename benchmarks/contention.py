"""How much slower nmprivacy gets on a busy machine, against its fair share.

``nmprivacy bench contention --json FILE`` times, in one run, three workloads as whole
``nmprivacy`` processes (imports included, as a user runs them), each idle and next to 1 and 3
busy-looping processes (``python3 -c 'while True: pass'``):
- ``train``: a short training run (``nmprivacy train --dataset digits --model snn-lava``);
- ``attack``: BL-v2 on an MNIST-sized target (784-3000-10 snn-lava, T = 25, all 10 classes);
- ``validate``: a Lava validation (``nmprivacy validate``: test inputs and BL-v2 draws on Lava).
and writes per workload the median seconds at each load and ``slowdown`` (loaded / idle). On a
machine with C cores, a fair share next to L busy processes costs ``(L + 1) / C`` of the machine
with one process per core and up to C workers of ours: slowdown <= max(1, 2 (L + 1) / (C + L))
roughly; the issue's targets are <= 2.0 next to 1 and <= 4.0 next to 3 on 2 cores. Each run's
thread plan (``nmprivacy.resources``) is read from its own run record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY = "while True: pass"
LOADS = (0, 1, 3)


def nmprivacy(*args: str) -> list[str]:
    return [sys.executable, "-m", "nmprivacy", *args]


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:5])} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def workloads(tmp: Path, env: dict) -> dict[str, list[str]]:
    """The three commands, after an untimed set-up of the checkpoint they use."""
    ckpt = tmp / "target"
    setup = [
        *nmprivacy("train", "--dataset", "digits-28", "--model", "snn-lava", "--epochs", "1", "--max-train-samples", "200", "--hidden", "3000", "--out", str(ckpt)),
    ]
    subprocess.run(setup, env=env, check=True, capture_output=True)
    inv = tmp / "inv"
    subprocess.run(nmprivacy("attack", "--model", str(ckpt), "--attack", "bl-v2", "--out", str(inv / "inversion.pt")), env=env, check=True, capture_output=True)
    return {
        "train": nmprivacy("train", "--dataset", "digits", "--model", "snn-lava", "--epochs", "2", "--out", str(tmp / "train-out")),
        "attack": nmprivacy("attack", "--model", str(ckpt), "--attack", "bl-v2", "--out", str(tmp / "attack-out" / "inversion.pt")),
        "validate": nmprivacy("validate", "--model", str(ckpt), "--inversion", str(inv), "--samples", "20", "--lava-samples", "40",
                              "--out", str(tmp / "validate-out"), "--no-progress"),
    }


def measure(repeats: int, loads: tuple[int, ...], threads: int | None) -> dict:
    env = dict(os.environ)
    env.pop("NMPRIVACY_THREADS", None)
    if threads is not None:
        env["NMPRIVACY_THREADS"] = str(threads)
    result: dict = {"loads": list(loads), "repeats": repeats, "cores": os.cpu_count(), "workloads": {}}
    with tempfile.TemporaryDirectory(prefix="nmprivacy-contention-") as tmp:
        cmds = workloads(Path(tmp), env)
        times: dict[str, dict[int, list[float]]] = {name: {load: [] for load in loads} for name in cmds}
        for load in loads:
            busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(load)]
            try:
                time.sleep(1.0 if load else 0.0)  # let the loops start
                for _ in range(repeats):
                    for name, cmd in cmds.items():
                        times[name][load].append(timed(cmd, env))
            finally:
                for p in busy:
                    p.kill()
                    p.wait()
    for name, by_load in times.items():
        median = {load: statistics.median(v) for load, v in by_load.items()}
        result["workloads"][name] = {
            "seconds": {str(load): median[load] for load in loads},
            "runs": {str(load): by_load[load] for load in loads},
            "slowdown": {str(load): median[load] / median[0] for load in loads if load},
        }
    return result


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="output file")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each workload at each load (median; default 2)")
    parser.add_argument("--threads", type=int, default=None, help="force a thread count (default: nmprivacy chooses)")
    args = parser.parse_args(argv)
    from nmprivacy.runinfo import atomic_write_json, run_metadata

    result = measure(args.repeats, LOADS, args.threads)
    atomic_write_json(args.json, {**result, **run_metadata(config=vars(args))})
    for name, w in result["workloads"].items():
        print(f"{name:9} idle {w['seconds']['0']:6.1f} s  " + "  ".join(f"next to {load}: {w['seconds'][str(load)]:6.1f} s ({w['slowdown'][str(load)]:.2f}x)" for load in LOADS if load))
    print(json.dumps({n: w["slowdown"] for n, w in result["workloads"].items()}))
    return 0
