"""The attack-cost results as types: each ``to_json`` gives the stable keys of the result file.

``CostReport.to_json()`` is the whole file: per attack of the first configuration a summary
(``speedup_vs_reference``, ``roofline_fraction``), per configuration and attack an
``AttackCost``, BL-v2 on the Loihi target (``LoihiCost``), the scaling sweeps (``SweepPoint``),
the GEMM peaks, machine, versions and the run record. Roofline fields are computed with the
report's peak (the larger of the peaks measured at the start and the end).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.attack_cost.config import BenchOptions, CostConfig
from benchmarks.attack_cost.ours import OursTiming
from benchmarks.attack_cost.reference_timing import ReferenceTiming
from benchmarks.attack_cost.roofline import GemmPeak, roofline_fields
from benchmarks.attack_cost.timing import Timing


def _s(t: Timing | None) -> float | None:
    return t.seconds if t is not None else None


def _mb(t: Timing | None) -> float | None:
    return t.peak_mb if t is not None else None


@dataclass(frozen=True)
class DensityPoint:
    """BL-v2 (ours) at a fixed spike density: seconds per iteration, speed-up, input path taken."""

    density: float
    ours_s_per_iter: float
    speedup_vs_reference: float
    input_path: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BLv2Record:
    """BL-v2's timed settings, its spike density per iteration and the fixed-density sweep."""

    init: float
    iterations: int
    variant: str
    spike_density_per_iteration: list[float]
    density_sweep: list[DensityPoint]


@dataclass(frozen=True)
class AttackCost:
    """One attack on one configuration: the reference structure vs ours (and its variants)."""

    config: CostConfig
    attack: str
    reference: ReferenceTiming
    timing: OursTiming
    gflop_per_iter: float
    blv2: BLv2Record | None = None  # bl-v2 only
    oracle: str | None = None  # mi-face: the oracle class make_oracle picked

    @property
    def speedup_vs_reference(self) -> float:
        return self.reference.s_per_iter / self.timing.ours.seconds

    def to_json(self, peak_gflops: float) -> dict[str, Any]:
        """The ``configs.<config>.<attack>`` record."""
        ours, batched = self.timing.ours, self.timing.batched
        out: dict[str, Any] = {
            "reference_s_per_iter": self.reference.s_per_iter,
            "ours_s_per_iter": ours.seconds,
            "ours_dense_s_per_iter": _s(self.timing.dense),
            "batched_autograd_s_per_iter": _s(batched),
            "speedup_vs_reference": self.speedup_vs_reference,
            "speedup_vs_batched_autograd": batched.seconds / ours.seconds if batched and batched.seconds else None,
            "gflop_per_iter": self.gflop_per_iter,
            "peak_rss_mb": {"reference": self.reference.peak_mb, "ours": ours.peak_mb, "batched_autograd": _mb(batched)},
            "reference_timed": self.reference.to_json(),
            **roofline_fields(self.gflop_per_iter, ours.seconds, peak_gflops, dense=True, dense_seconds=_s(self.timing.dense)),
        }
        if self.blv2 is not None:
            b = self.blv2
            out["settings"] = {"init": b.init, "iterations": b.iterations, "variant": b.variant}
            out["spike_density_per_iteration"] = b.spike_density_per_iteration
            out["density_sweep"] = [p.to_json() for p in b.density_sweep]
        if self.oracle is not None:
            out["oracle"] = self.oracle
        c = self.config
        out["config"] = {"name": c.name, "network": c.network, "steps": c.steps if self.attack != "mi-face" else None,
                         "population": c.population if self.attack == "bl-v2" else None, "classes": c.classes}
        return out


@dataclass(frozen=True)
class LoihiCost:
    """BL-v2 on the snn-lava target: the engine's fixed-point path vs batched autograd through slayer."""

    ours: Timing
    batched: Timing | None
    gflop_per_iter: float
    target: str = "snn-lava (loihi arithmetic)"

    def to_json(self, peak_gflops: float) -> dict[str, Any]:
        """The ``loihi.<config>.bl-v2`` record."""
        return {
            "target": self.target,
            "ours_s_per_iter": self.ours.seconds,
            "batched_autograd_s_per_iter": _s(self.batched),
            "speedup_vs_batched_autograd": self.batched.seconds / self.ours.seconds if self.batched and self.batched.seconds else None,
            "gflop_per_iter": self.gflop_per_iter,
            "peak_rss_mb": {"ours": self.ours.peak_mb, "batched_autograd": _mb(self.batched)},
            **roofline_fields(self.gflop_per_iter, self.ours.seconds, peak_gflops),
        }


@dataclass(frozen=True)
class SweepPoint:
    """BL-v2 (ours) with one parameter (K, T, hidden width or classes) at ``value``."""

    param: str
    value: int
    ours: Timing
    gflop_per_iter: float

    def to_json(self, peak_gflops: float) -> dict[str, Any]:
        """One row of ``sweeps.<param>``."""
        return {self.param: self.value, "ours_s_per_iter": self.ours.seconds, "gflop_per_iter": self.gflop_per_iter,
                "peak_rss_mb": self.ours.peak_mb, **roofline_fields(self.gflop_per_iter, self.ours.seconds, peak_gflops)}


Sweeps = dict[str, list[SweepPoint]]

FLOPS_COUNTED = (
    "what the dense algorithm needs: 2 x MACs of the dense forward (input->hidden, hidden->classes) and of the "
    "input-gradient backward (dL/dz1 = dL/dI2 @ W2 per sample; dL/dx = dL/dI1 @ W1 per sample for BL-v1 and MI-Face, but for "
    "BL-v2 only on the population-weighted sum of dL/dI1 (T x classes rows instead of T x classes x K) plus the weighting "
    "(T x classes x K x hidden MACs)); no weight gradients, no elementwise neuron updates; dense even when the binary-input "
    "paths skip zeros or use subset sums"
)


def notes(reference: str, opts: BenchOptions, threads: int) -> list[str]:
    """How to read the numbers (``notes`` of the result file), for a run with ``opts`` on ``threads`` torch threads."""
    return [
        f"reference = published-notebook structure (benchmarks/reference.py; SNNs in {reference}, the ANN in plain torch), timed on reference_timed subsets "
        "and extrapolated linearly to all classes x K (see reference_timed: timed seconds, scale)",
        "ours = nmprivacy.attacks classes with make_oracle (FastLIFOracle for SNNs, autograd for the ANN) and the audit's "
        "settings (nmprivacy.presets, paper budget); seconds_per_iteration of a whole run after a 1-iteration warm-up",
        f"every time is the fastest of {opts.repeats} repeat(s) of {opts.iterations or 'the preset'}'s iterations, for the reference and ours alike "
        "(the machine may be shared: see load_average); batched_autograd: 1 run of <= 2 iterations; sweeps: 1 run; density sweep: best of <= 2 runs",
        "BL-v2's cost depends on its samples' spike density (binary inputs take the row gather or the subset-sum table of "
        "nmprivacy.attacks.currents): spike_density_per_iteration is the mean input of each iteration of the timed settings; "
        "density_sweep holds the cost at fixed densities (lr = 0 keeps X_p at its start); the reference's batch-1 GEMVs cost the same at any density",
        "roofline_fraction compares with the dense FLOP count; above 1 the binary-input paths beat what a dense fp32 GEMM could reach. "
        "roofline_fraction_dense is the GEMM-only engine's (sparse_density=0)",
        "targets are randomly initialised (X_p's density falls from 0.5 to ~0.05 over a run on trained targets too)",
        "peak_rss_mb = resident-set growth over the measurement's baseline, sampled every 2 ms",
        "on a shared (loaded) machine every multi-threaded torch op waits for a descheduled peer at its barrier: "
        "small-batch attacks (MI-Face, BL-v1), the reference and the batched autograd suffer most; compare a --threads 1 run",
        f"ours with {threads} torch thread(s): FastLIFOracle splits each batch into engine_workers shards "
        "computed on their own threads with one torch thread each (BL-v2 then keeps its own loop on one thread)",
    ]


@dataclass
class CostReport:
    """A whole attack-cost run (``to_json``: the result file)."""

    options: BenchOptions
    machine: dict[str, Any]
    versions: dict[str, str]
    load_average: tuple[list[float], list[float]]  # (start, end)
    peak_start: GemmPeak
    peak_end: GemmPeak
    engine_workers: int
    reference_implementation: str
    main_config: str
    configs: dict[str, dict[str, AttackCost]]
    loihi: dict[str, dict[str, LoihiCost]]
    sweeps: Sweeps
    run: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    @property
    def peak(self) -> float:
        """The roofline's GEMM peak: the larger of the start and end measurements."""
        return max(self.peak_start.peak, self.peak_end.peak)

    def to_json(self) -> dict[str, Any]:
        """The result file's content (stable keys)."""
        peak = self.peak
        out: dict[str, Any] = {
            "benchmark": "attack-cost",
            "quick": self.options.quick,
            "machine": self.machine,
            "versions": self.versions,
            "load_average": {"start": self.load_average[0], "end": self.load_average[1]},
            "peak_gflops": self.peak_start.to_json(),
            "peak_gflops_at_end": self.peak_end.to_json(),
            "roofline_peak_gflops": peak,
            "engine_workers": self.engine_workers,
            "flops_counted": FLOPS_COUNTED,
            "reference_implementation": self.reference_implementation,
            "notes": notes(self.reference_implementation, self.options, self.engine_workers),
        }
        for name, row in self.configs.get(self.main_config, {}).items():
            out[name] = {"config": self.main_config, "speedup_vs_reference": row.speedup_vs_reference,
                         "roofline_fraction": roofline_fields(row.gflop_per_iter, row.timing.ours.seconds, peak)["roofline_fraction"]}
        out["configs"] = {cfg: {name: row.to_json(peak) for name, row in rows.items()} for cfg, rows in self.configs.items()}
        out["loihi"] = {cfg: {name: row.to_json(peak) for name, row in rows.items()} for cfg, rows in self.loihi.items()}
        out["sweeps"] = {param: [p.to_json(peak) for p in points] for param, points in self.sweeps.items()}
        out["run"] = self.run
        if self.figures:
            out["figures"] = list(self.figures)
        return out


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table of every configuration x attack of a result file's content."""
    head = f"{'config':8} {'attack':8} {'reference s':>12} {'ours ms':>9} {'dense ms':>9} {'autograd ms':>11} {'speedup':>8} {'GFLOP':>7} {'roofline ms':>11} {'roof %':>7} {'MB ours':>8}"
    lines = [f"roofline peak fp32 GEMM: {result['roofline_peak_gflops']:.1f} GFLOP/s (start {result['peak_gflops']['peak']:.1f}, end {result['peak_gflops_at_end']['peak']:.1f}); "
             f"torch threads {result['machine']['torch_threads']}, load average {result['load_average']['start'][0]:.2f} -> {result['load_average']['end'][0]:.2f}", head, "-" * len(head)]
    for cfg, attacks in result["configs"].items():
        for name, r in attacks.items():
            dense = f"{r['ours_dense_s_per_iter'] * 1e3:9.1f}" if r["ours_dense_s_per_iter"] else f"{'-':>9}"
            batched = f"{r['batched_autograd_s_per_iter'] * 1e3:11.1f}" if r["batched_autograd_s_per_iter"] else f"{'-':>11}"
            lines.append(
                f"{cfg:8} {name:8} {r['reference_s_per_iter']:12.2f} {r['ours_s_per_iter'] * 1e3:9.1f} {dense} "
                f"{batched} {r['speedup_vs_reference']:7.0f}x {r['gflop_per_iter']:7.2f} "
                f"{r['roofline_s_per_iter'] * 1e3:11.1f} {r['roofline_fraction'] * 100:6.0f}% {r['peak_rss_mb']['ours']:8.0f}"
            )
    for cfg, attacks in result["configs"].items():
        r = attacks.get("bl-v2", {})
        if r.get("spike_density_per_iteration"):
            lines.append(f"{cfg} bl-v2 spike density per iteration: " + ", ".join(f"{d:.2f}" for d in r["spike_density_per_iteration"]))
        if r.get("density_sweep"):
            lines.append(f"{cfg} bl-v2 at fixed density: " + ", ".join(
                f"{p['density']:.2f}: {p['ours_s_per_iter'] * 1e3:.0f} ms {p['speedup_vs_reference']:.0f}x ({p['input_path']})" for p in r["density_sweep"]))
    for cfg, attacks in result.get("loihi", {}).items():
        for name, r in attacks.items():
            batched = f", batched autograd (slayer) {r['batched_autograd_s_per_iter'] * 1e3:.0f} ms" if r["batched_autograd_s_per_iter"] else ""
            lines.append(f"{cfg} {name} on snn-lava (loihi fixed point): ours {r['ours_s_per_iter'] * 1e3:.0f} ms, "
                         f"roofline {r['roofline_fraction'] * 100:.0f}%{batched}")
    for param, rows in result.get("sweeps", {}).items():
        pts = ", ".join(f"{r[param]}: {r['ours_s_per_iter'] * 1e3:.0f} ms ({r['roofline_fraction'] * 100:.0f}%)" for r in rows)
        lines.append(f"sweep {param}: {pts}")
    return "\n".join(lines)
