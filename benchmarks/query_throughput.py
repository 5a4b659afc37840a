"""``query-throughput``: queries per second of bl-v2-query's oracles on this machine.

For each network (784-3000-10 as in the paper, and 784-300-10; T = 25; an snn-lava target with
random weights exported to NetX through slayer) and a batch of ``batch`` binary queries at
~MNIST ink density (one attack iteration: 10 classes x population 20 = 200 by default):
- ``emulation_engine_queries_per_s``: ``EmulationOracle`` with the attack engine's forward (the
  default backend for NetX files);
- ``emulation_layer_spikes_queries_per_s``: ``EmulationOracle`` through
  ``NetxEmulation.layer_spikes`` (the bit-exact emulation's own forward);
- ``lava_queries_per_s``: ``LavaOracle``, the batch in one ``run_lava`` call (wall clock
  including network build, compile and read-back; ``lava_run_queries_per_s`` counts only the
  simulator's run);
- ``attack_queries_per_s``: a whole ``bl-v2-query`` run (10 classes, ``attack_queries`` queries
  in batches of ``batch``) on the engine oracle: oracle plus sampling, fitness and update.
All oracles' answers (output spike counts) are compared (``mismatches``: queries whose counts differ).

Usage: ``nmprivacy bench query-throughput [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch

NETWORKS = {"784-3000-10": 3000, "784-300-10": 300}
STEPS = 25


def _timed(fn, repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls of ``fn`` and its last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def measure(networks: Sequence[str] = tuple(NETWORKS), batch: int = 200, lava_batch: int = 100, attack_queries: int = 100_000, seed: int = 0) -> dict[str, Any]:
    """Throughput per network name (module docstring for the keys)."""
    from benchmarks.lava_throughput import _network
    from hw_export.lava_oracle import LavaOracle
    from hw_export.netx_emulation import load_netx
    from nmprivacy.attacks.blv2_query import BrainLeaksV2Query
    from nmprivacy.attacks.query_oracle import EmulationOracle
    from nmprivacy.presets import BLv2QuerySettings
    from nmprivacy.runinfo import run_metadata

    results: dict[str, Any] = {}
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, STEPS, 1, 28, 28, generator=gen) < 0.15).float()
    with tempfile.TemporaryDirectory(prefix="nmprivacy-bench-") as tmp:
        for name in networks:
            path = _network(Path(tmp) / f"{name}.net", NETWORKS[name], seed)
            emu = load_netx(path)
            engine = EmulationOracle(emu, "counts", backend="engine")
            spikes = EmulationOracle(emu, "counts", backend="layer-spikes")
            engine(x[:2])  # warm-up (buffers, kernels)
            t_engine, a_engine = _timed(lambda: engine(x), 3)
            t_spikes, a_spikes = _timed(lambda: spikes(x), 2)
            lava = LavaOracle(path, "counts")
            start = time.perf_counter()
            a_lava = lava(x[:lava_batch])
            t_lava = time.perf_counter() - start
            mismatches = int((a_engine.counts != a_spikes.counts).any(dim=1).sum()) + int((a_engine.counts[:lava_batch] != a_lava.counts).any(dim=1).sum())
            settings = BLv2QuerySettings(population=batch // 10, query_budget=attack_queries)
            attack = BrainLeaksV2Query(settings, steps=STEPS)
            start = time.perf_counter()
            inv = attack.run(emu, list(range(10)), seed=seed)
            t_attack = time.perf_counter() - start
            results[name] = {
                "batch": batch,
                "lava_batch": lava_batch,
                "steps": STEPS,
                "emulation_engine_queries_per_s": batch / t_engine,
                "emulation_layer_spikes_queries_per_s": batch / t_spikes,
                "lava_queries_per_s": lava_batch / lava.seconds,
                "lava_call_seconds": t_lava,
                "lava_run_queries_per_s": lava_batch / lava.run_seconds if lava.run_seconds else None,
                "attack_queries_per_s": inv.queries / t_attack,
                "attack_queries": inv.queries,
                "mismatches": mismatches,
                "output_spikes_per_query": float(a_engine.counts.sum()) / batch,
            }
    results["meta"] = run_metadata(config={"networks": list(networks), "batch": batch, "lava_batch": lava_batch, "attack_queries": attack_queries, "steps": STEPS}, seed=seed)
    return results


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks.query_throughput") -> int:
    """Command-line entry: print (and optionally save) the measurements."""
    import json

    from nmprivacy.runinfo import atomic_write_json

    p = argparse.ArgumentParser(prog=prog, description="Queries/s of bl-v2-query's emulation and Lava oracles.")
    p.add_argument("--quick", action="store_true", help="the small network, batches of 40 queries, Lava batch 20, an attack of 400 queries (~15 s)")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    if args.quick:
        res = measure(networks=("784-300-10",), batch=40, lava_batch=20, attack_queries=400)
    else:
        res = measure()
    print(json.dumps({k: v for k, v in res.items() if k != "meta"}, indent=2))
    if args.json:
        atomic_write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
