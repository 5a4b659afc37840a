"""``lava-throughput``: samples per second of the hardware path on this machine.

For each network (paper MNIST 784-3000-10 and a small 784-300-10; T = 25; an snn-lava target
with random weights exported through slayer, so spiking activity is like an untrained model's):
- ``batched_samples_per_s``: ``run_lava`` of ``samples`` inputs in ONE Lava run (reset between
  samples), wall clock including network build, compile and read-back;
- ``batched_run_samples_per_s``: the same, counting only ``net.run`` (steady-state stepping);
- ``rebuild_samples_per_s``: one ``run_lava`` call (build + run + stop) per sample, over
  ``rebuild_samples`` inputs: what a naive per-sample loop costs;
- ``emulation_samples_per_s``: the bit-exact torch emulation's forward on the same batch.
Every Lava result is also checked spike for spike against the emulation (``mismatches``).

Usage: ``python -m benchmarks.lava_throughput [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

NETWORKS = {"784-3000-10": 3000, "784-300-10": 300}
STEPS = 25


def _network(path: Path, hidden: int, seed: int) -> Path:
    from hw_export.netx_export import export_netx
    from nmprivacy.models import build
    from nmprivacy.models.snn_lava import SNNLavaConfig

    torch.manual_seed(seed)
    model = build("snn-lava", SNNLavaConfig(input_shape=(1, 28, 28), num_classes=10, hidden=hidden, weight_scale=3.0))
    export_netx(model, path)
    return path


@dataclass(frozen=True)
class NetworkThroughput:
    """What was measured on one network (module docstring): the timed runs and their spike check."""

    samples: int  # inputs in the batched run
    steps: int
    batched_seconds: float  # the whole batched run_lava call
    batched_run_seconds: float  # its net.run only
    rebuild_samples: int
    rebuild_seconds: float  # all the per-sample run_lava calls
    emulation_seconds: float
    mismatches: int  # spike bins where Lava and the emulation differ
    spikes_per_sample: list[float]  # per layer

    def to_json(self) -> dict[str, Any]:
        """The network's record (stable keys)."""
        return {
            "samples": self.samples,
            "steps": self.steps,
            "batched_samples_per_s": self.samples / self.batched_seconds,
            "batched_run_samples_per_s": self.samples / self.batched_run_seconds,
            "batched_seconds": self.batched_seconds,
            "rebuild_samples_per_s": self.rebuild_samples / self.rebuild_seconds,
            "rebuild_seconds_per_sample": self.rebuild_seconds / self.rebuild_samples,
            "emulation_samples_per_s": self.samples / self.emulation_seconds,
            "mismatches": self.mismatches,
            "spikes_per_sample": self.spikes_per_sample,
        }


@dataclass(frozen=True)
class LavaThroughput:
    """A lava-throughput run: one record per network name, and the run record (``meta``)."""

    networks: dict[str, NetworkThroughput]
    meta: dict[str, Any]

    def to_json(self, meta: bool = True) -> dict[str, Any]:
        """The result file's content: per network name its record, then ``meta`` (unless ``meta`` is False)."""
        out: dict[str, Any] = {name: n.to_json() for name, n in self.networks.items()}
        if meta:
            out["meta"] = self.meta
        return out


def measure(networks: Sequence[str] = tuple(NETWORKS), samples: int = 100, rebuild_samples: int = 3, steps: int = STEPS, seed: int = 0) -> LavaThroughput:
    """Throughput of each network of ``NETWORKS`` named in ``networks`` (see module docstring)."""
    from hw_export.lava_run import run_lava
    from hw_export.netx_emulation import load_netx
    from nmprivacy.runinfo import run_metadata

    results: dict[str, NetworkThroughput] = {}
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(samples, steps, 784, generator=gen) < 0.15).to(torch.uint8)  # ~MNIST ink density
    with tempfile.TemporaryDirectory(prefix="nmprivacy-bench-") as tmp:
        for name in networks:
            path = _network(Path(tmp) / f"{name}.net", NETWORKS[name], seed)
            emu = load_netx(path)
            start = time.perf_counter()
            with torch.no_grad():
                expected = emu.layer_spikes(x.transpose(0, 1).float())
            emu_s = time.perf_counter() - start
            batched = run_lava(path, x)
            mismatches = sum(int((e.transpose(0, 1).to(torch.uint8) != g).sum()) for e, g in zip(expected, batched.layers))
            start = time.perf_counter()
            for k in range(rebuild_samples):
                run_lava(path, x[k : k + 1])
            rebuild_s = time.perf_counter() - start
            results[name] = NetworkThroughput(
                samples, steps, batched.seconds, batched.run_seconds, rebuild_samples, rebuild_s, emu_s, mismatches,
                [float(e.sum()) / samples for e in expected],
            )
    meta = run_metadata(config={"networks": list(networks), "samples": samples, "rebuild_samples": rebuild_samples, "steps": steps}, seed=seed)
    return LavaThroughput(results, meta)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: print (and optionally save) the measurements."""
    import json

    from nmprivacy.runinfo import atomic_write_json

    p = argparse.ArgumentParser(prog="python -m benchmarks.lava_throughput", description="Samples/s of run_lava (batched vs rebuilt) and of the emulation.")
    p.add_argument("--quick", action="store_true", help="small network and few samples (a smoke run)")
    p.add_argument("--samples", type=int, help="inputs in the batched run (default 100, quick 20)")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    if args.quick:
        res = measure(networks=("784-300-10",), samples=args.samples or 20, rebuild_samples=2)
    else:
        res = measure(samples=args.samples or 100)
    print(json.dumps(res.to_json(meta=False), indent=2))
    if args.json:
        atomic_write_json(args.json, res.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
