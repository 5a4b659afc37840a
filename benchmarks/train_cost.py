"""``train-cost``: samples/s of ``snn-lava`` training, the sparse engine against slayer's dense CPU path.

For each network, one process times optimiser steps (forward, ``membrane_cross_entropy``,
backward, Adam; input encoding excluded) of two copies of the same randomly initialised
``SNNLava`` on the same batch, interleaved (sparse, slayer, sparse, slayer, ...), so the ratio
is measured under the same conditions even on a shared machine:

- ``mnist``: 784-3000-10, T = 25, 100 digits-28 images (scikit-learn digits upscaled to 28x28,
  mean intensity ~0.16; MNIST's is ~0.13) rate-coded with ``nmprivacy.encoding.rate_encode``;
- ``nmnist``: 2312-3000-10, T = 100, 100 recordings cycled from the 20 labelled real N-MNIST
  recordings in ``tests/data/nmnist-sample`` (3 ms frames, 40 ms denoising, both polarities:
  ~1.7 % event density);
- ``nmnist-delays`` (not in the default set): the Lava-DL N-MNIST tutorial's 2312-512-512-10,
  T = 100, with learned axonal delays in both hidden layers (drawn in 0..3 steps), the same input.

``ours`` is ``SNNLava.engine = "sparse"`` (``nmprivacy.models.sparse_cuba``), ``slayer`` is
``engine = "slayer"`` (lava-dl's own blocks). Each is timed at every load of ``--loads``: 0 (as
the machine is) and next to L busy loops (``python3 -c 'while True: pass'``) that the benchmark
starts itself; at each load the thread count is chosen again by ``nmprivacy.resources`` (as a
run starting then would) and recorded. Every time is the fastest of ``--repeats`` steps after
one warm-up step. ``dense_gflop_per_step`` counts what the dense algorithm needs per step:
forward currents ``2 R (N H + H C)`` and weight gradients ``2 R (N H + H C)`` plus the hidden
spike gradient ``2 R H C`` (``R = T B`` rows; no elementwise neuron work), and
``roofline_fraction`` = (those FLOPs / the peak of a large fp32 GEMM measured in this run) /
the measured step: above 1 means faster than a dense GEMM implementation could be.

``--json FILE`` writes per network (keys ``mnist``, ``nmnist``) ``ours_samples_per_s``,
``slayer_samples_per_s`` and ``speedup`` (at the first load, normally idle), per load the
seconds per step of both, ``slowdown`` (loaded / first load), ``budget_minutes`` (the default
budget's optimiser steps at our idle rate), the spike densities, and the run record.

``--dropout P`` trains both with inverted dropout on the hidden spikes
(``nmprivacy.training.hidden_dropout``: slayer's blocks through forward hooks, the sparse engine
with the same masks drawn itself), the defence ``snn_train.dropout`` trains with.

Usage: ``nmprivacy bench train-cost [--quick] [--loads 0,1] [--dropout 0.3] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch

BUSY = "while True: pass"
DEFAULT_JSON = Path("runs/bench/train-cost.json")
SAMPLE_FOLDER = Path(__file__).resolve().parent.parent / "tests" / "data" / "nmnist-sample"


@dataclass(frozen=True)
class Network:
    """One timed configuration: shape, T, batch and input."""

    name: str
    input_shape: tuple[int, ...]
    steps: int
    batch: int = 100
    hidden: int = 3000
    classes: int = 10
    extra_hidden: tuple[int, ...] = ()  # further hidden layers
    delay_layers: tuple[int, ...] = ()  # hidden layers with learned axonal delays (Lava-DL's delay=True)

    @property
    def inputs(self) -> int:
        return math.prod(self.input_shape)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, self.hidden, *self.extra_hidden, self.classes)

    @property
    def label(self) -> str:
        """``inputs-hidden-...-classes`` (``+delays`` with learned delays)."""
        return "-".join(map(str, self.sizes)) + ("+delays" if self.delay_layers else "")

    def dense_gflop(self) -> float:
        """GFLOP of one training step of the dense algorithm (module docstring; every layer after
        the first also needs its input gradient)."""
        rows = self.steps * self.batch
        pairs = list(zip(self.sizes, self.sizes[1:]))
        return 2.0 * rows * sum((2 if i == 0 else 3) * a * b for i, (a, b) in enumerate(pairs)) / 1e9

    def model(self, seed: int) -> Any:
        """A fresh ``SNNLava`` of this shape (delays drawn uniformly in 0..3 steps, seeded)."""
        from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

        torch.manual_seed(seed)
        model = SNNLava(SNNLavaConfig(input_shape=self.input_shape, num_classes=self.classes, hidden=self.hidden,
                                      extra_hidden=self.extra_hidden, delay_layers=self.delay_layers))
        for i in self.delay_layers:
            model.blocks[i].delay.delay.data = torch.rand(model.blocks[i].delay.delay.shape) * 4
        return model


NETWORKS: dict[str, Network] = {
    "mnist": Network("mnist", (1, 28, 28), steps=25),
    "nmnist": Network("nmnist", (2, 34, 34), steps=100),
    # the Lava-DL N-MNIST tutorial's shape, learned delays in both hidden layers (the zoo's lavadl-nmnist-* files)
    "nmnist-delays": Network("nmnist-delays", (2, 34, 34), steps=100, hidden=512, extra_hidden=(512,), delay_layers=(0, 1)),
}
QUICK = {"hidden": 64, "batch": 8}  # --quick: tiny widths and batches (T as the full run)
DEFAULT_BUDGET_STEPS = 300  # the default budget's least optimiser steps (nmprivacy.presets.DEFAULT_MIN_STEPS["snn"])


def mnist_batch(net: Network, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Rate-coded digits-28 images ``[T, B, 1, 28, 28]``, labels ``[B]`` and a description."""
    from nmprivacy.data import load_dataset
    from nmprivacy.encoding import rate_encode

    splits = load_dataset("digits-28")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(splits.train), generator=gen)[: net.batch]
    x = rate_encode(splits.train.x[idx], net.steps, gen).to(torch.float32)
    return x, splits.train.y[idx], "digits-28 (scikit-learn digits at 28x28) rate-coded"


def nmnist_batch(net: Network) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The labelled N-MNIST sample recordings as frames (both polarities) cycled to a batch
    ``[T, B, 2, 34, 34]``, labels ``[B]`` and a description."""
    from nmprivacy.data.events import NMNIST_PIPELINE, event_frames
    from nmprivacy.data.nmnist import read_nmnist_file
    from nmprivacy.errors import NmprivacyError

    files = sorted(SAMPLE_FOLDER.glob("Test/*/*.bin"))
    if not files:
        raise NmprivacyError(f"no N-MNIST sample recordings in {SAMPLE_FOLDER}: run from the repository checkout")
    pipeline = replace(NMNIST_PIPELINE, polarity="both", steps=net.steps)
    frames = [torch.from_numpy(event_frames(read_nmnist_file(f), pipeline)) for f in files]
    labels = [int(f.parent.name) for f in files]
    order = [i % len(files) for i in range(net.batch)]
    x = torch.stack([frames[i] for i in order], dim=1).to(torch.float32)  # [T, B, 2, 34, 34]
    return x, torch.tensor([labels[i] for i in order]), f"{len(files)} real N-MNIST recordings cycled (3 ms frames, both polarities)"


def batch_for(net: Network, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The network's input batch (module docstring)."""
    return mnist_batch(net, seed) if net.name == "mnist" else nmnist_batch(net)


def train_step(model: Any, optim: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """Seconds of one optimiser step (forward, loss, backward, Adam)."""
    from nmprivacy.models.base import membrane_cross_entropy

    start = time.perf_counter()
    loss = membrane_cross_entropy(model(x), y)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    return time.perf_counter() - start


def time_engines(net: Network, x: torch.Tensor, y: torch.Tensor, repeats: int, seed: int, dropout: float = 0.0) -> dict[str, list[float]]:
    """Seconds of ``repeats`` interleaved steps of each engine on identical models (after one
    warm-up step each), with hidden dropout ``dropout`` (each model its own mask generator)."""
    from nmprivacy.training import hidden_dropout

    ours = net.model(seed)
    slayer = copy.deepcopy(ours)
    ours.engine, slayer.engine = "sparse", "slayer"
    models = {"ours": ours, "slayer": slayer}
    optims = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}
    runs: dict[str, list[float]] = {k: [] for k in models}
    with contextlib.ExitStack() as stack:
        for m in models.values():
            m.train()
            stack.enter_context(hidden_dropout(m, dropout, torch.Generator().manual_seed(seed)))
        for k, m in models.items():
            train_step(m, optims[k], x, y)
        for _ in range(repeats):
            for k, m in models.items():
                runs[k].append(train_step(m, optims[k], x, y))
    return runs


def hidden_density(net: Network, x: torch.Tensor, seed: int) -> float:
    """Spike density of the hidden block (after its delay) for ``x`` at initialisation."""
    model = net.model(seed).freeze()
    with torch.no_grad():
        return float(model.run(x)[0].mean())


class BusyLoops:
    """``count`` busy-looping Python processes for the duration of a ``with`` block."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> BusyLoops:
        self.procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(self.count)]
        if self.count:
            time.sleep(1.0)  # let the loops start
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def measure_network(net: Network, loads: Sequence[int], repeats: int, seed: int, threads: int | None, dropout: float = 0.0) -> dict[str, Any]:
    """The network's record (module docstring; the roofline fields are added by ``main``)."""
    from nmprivacy import resources

    x, y, source = batch_for(net, seed)
    record: dict[str, Any] = {
        "network": net.label, "steps": net.steps, "batch": net.batch, "input": source,
        "input_density": float(x.mean()), "hidden_density_at_init": hidden_density(net, x, seed),
        "dense_gflop_per_step": net.dense_gflop(), "dropout": dropout, "loads": {},
    }
    base_threads = torch.get_num_threads()
    for load in loads:
        with BusyLoops(load):
            plan = resources.plan_threads(threads)
            torch.set_num_threads(plan.threads)
            try:
                runs = time_engines(net, x, y, repeats, seed, dropout)
            finally:
                torch.set_num_threads(base_threads)
        best = {k: min(v) for k, v in runs.items()}
        record["loads"][str(load)] = {
            "ours_s_per_step": best["ours"], "slayer_s_per_step": best["slayer"],
            "ours_samples_per_s": net.batch / best["ours"], "slayer_samples_per_s": net.batch / best["slayer"],
            "speedup": best["slayer"] / best["ours"], "runs": runs, "thread_plan": plan.record(),
        }
    first = record["loads"][str(loads[0])]
    record.update(
        ours_samples_per_s=first["ours_samples_per_s"], slayer_samples_per_s=first["slayer_samples_per_s"], speedup=first["speedup"],
        ours_s_per_step=first["ours_s_per_step"], slayer_s_per_step=first["slayer_s_per_step"],
        budget_minutes=DEFAULT_BUDGET_STEPS * first["ours_s_per_step"] / 60.0,
        slayer_budget_minutes=DEFAULT_BUDGET_STEPS * first["slayer_s_per_step"] / 60.0,
        slowdown={str(load): {k: record["loads"][str(load)][f"{k}_s_per_step"] / first[f"{k}_s_per_step"] for k in ("ours", "slayer")}
                  for load in loads[1:]},
    )
    return record


def build_parser(prog: str) -> argparse.ArgumentParser:
    """Options of the train-cost benchmark."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"smoke run: hidden {QUICK['hidden']}, batch {QUICK['batch']}, 1 repeat, idle only")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"result file (default {DEFAULT_JSON})")
    p.add_argument("--networks", default="mnist,nmnist", help=f"networks to time, of {','.join(NETWORKS)} (default mnist,nmnist)")
    p.add_argument("--loads", default=None, help="busy loops to time beside, comma-separated (default 0,1; quick 0)")
    p.add_argument("--repeats", type=int, default=None, help="timed steps per engine and load, the fastest is kept (default 3, quick 1)")
    p.add_argument("--batch", type=int, default=None, help="recordings per step (default 100)")
    p.add_argument("--hidden", type=int, default=None, help="hidden width (default 3000)")
    p.add_argument("--threads", type=int, default=None, help="force the thread count (default: nmprivacy.resources chooses at each load)")
    p.add_argument("--dropout", type=float, default=0.0, help="train with this hidden dropout on both engines (default 0: none)")
    p.add_argument("--seed", type=int, default=0)
    return p


def _positive(name: str, value: int | None) -> None:
    from nmprivacy.errors import NmprivacyError

    if value is not None and value < 1:
        raise NmprivacyError(f"--{name} {value} is invalid: give a positive number")


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks.train_cost") -> int:
    """Run the benchmark, print a summary, write the JSON; returns 0."""
    from benchmarks.attack_cost.roofline import measure_gemm_peak
    from nmprivacy.errors import NmprivacyError
    from nmprivacy.models.snn_lava import warm_up_engine
    from nmprivacy.runinfo import atomic_write_json, machine_info, package_versions, run_metadata

    args = build_parser(prog).parse_args(argv)
    for name in ("repeats", "batch", "hidden", "threads"):
        _positive(name, getattr(args, name))
    if not 0.0 <= args.dropout < 1.0:
        raise NmprivacyError(f"--dropout {args.dropout:g}: give a fraction in [0, 1), e.g. 0.3")
    names = [n.strip() for n in args.networks.split(",") if n.strip()]
    if not names or any(n not in NETWORKS for n in names):
        raise NmprivacyError(f"--networks {args.networks!r}: choose from {', '.join(NETWORKS)} (comma-separated)")
    try:
        loads = [int(v) for v in (args.loads or ("0" if args.quick else "0,1")).split(",") if v.strip()]
    except ValueError:
        raise NmprivacyError(f"--loads {args.loads!r}: give whole numbers of busy loops, e.g. 0,1") from None
    if not loads or any(v < 0 for v in loads):
        raise NmprivacyError(f"--loads {args.loads!r}: give whole numbers of busy loops >= 0, e.g. 0,1")
    repeats = args.repeats or (1 if args.quick else 3)
    start = time.perf_counter()
    warm_up_engine()
    peak_start = measure_gemm_peak()
    result: dict[str, Any] = {}
    for name in names:
        net = NETWORKS[name]
        changes = {**(QUICK if args.quick else {}), **{k: getattr(args, k) for k in ("batch", "hidden") if getattr(args, k)}}
        net = replace(net, **changes)
        result[name] = measure_network(net, loads, repeats, args.seed, args.threads, args.dropout)
    peak_end = measure_gemm_peak()
    peak = max(peak_start.peak, peak_end.peak)
    for name in names:  # roofline with the larger peak (the machine may be shared)
        rec = result[name]
        for engine in ("ours", "slayer"):
            rec[f"roofline_fraction_{engine}"] = rec["dense_gflop_per_step"] / peak / rec[f"{engine}_s_per_step"]
    result.update(
        gemm_peak_gflops={"start": peak_start.to_json(), "end": peak_end.to_json(), "peak": peak},
        machine=machine_info(), versions=package_versions(), loads=loads, repeats=repeats, quick=args.quick,
        run=run_metadata(config=vars(args), seed=args.seed, timings={"total": time.perf_counter() - start}),
    )
    try:
        args.json.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NmprivacyError(f"cannot create the result folder {args.json.parent} ({exc.strerror}): pass --json in a writable folder") from None
    atomic_write_json(args.json, result)
    for name in names:
        r = result[name]
        line = (f"{name:7} {r['network']:>12} T={r['steps']:<3} B={r['batch']:<4} ours {r['ours_samples_per_s']:8.1f} samples/s "
                f"({r['ours_s_per_step']:.3f} s/step), slayer {r['slayer_samples_per_s']:7.1f} ({r['slayer_s_per_step']:.2f} s/step): "
                f"{r['speedup']:.1f}x; roofline {r['roofline_fraction_ours']:.0%} vs {r['roofline_fraction_slayer']:.0%}")
        slow = "; ".join(f"beside {load}: ours {v['ours']:.2f}x, slayer {v['slayer']:.2f}x slower" for load, v in r["slowdown"].items())
        print(line + (f"; {slow}" if slow else ""))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    from nmprivacy.errors import NmprivacyError as _Error

    try:
        sys.exit(main())
    except _Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
