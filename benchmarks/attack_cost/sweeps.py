"""BL-v2 (ours) at other operating points: fixed spike densities, and scaling sweeps over K, T,
hidden width and classes (one at a time, the others at the base configuration), with a plot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from benchmarks.attack_cost.config import MNIST, BenchOptions, CostConfig, attack_settings, build_targets
from benchmarks.attack_cost.ours import AttackCase, DensityProbe, time_ours
from benchmarks.attack_cost.report import DensityPoint, SweepPoint, Sweeps
from benchmarks.attack_cost.roofline import snn_iteration_flops
from nmprivacy.runinfo import atomic_path


def density_sweep(case: AttackCase, opts: BenchOptions, densities: Sequence[float], reference_s_per_iter: float) -> list[DensityPoint]:
    """BL-v2 ``case`` at each fixed density (``lr = 0`` keeps X_p at its start, so every iteration
    samples at that density): best of <= 2 runs, speed-up over ``reference_s_per_iter``."""
    points = []
    for d in tqdm(densities, desc="density sweep", leave=False):
        probes: list[DensityProbe] = []
        seconds = time_ours(case.with_settings(lr=0.0, init=float(d)), replace(opts, repeats=min(opts.repeats, 2)), DensityProbe.factory(probes)).seconds
        points.append(DensityPoint(float(d), seconds, reference_s_per_iter / seconds, getattr(probes[-1].oracle, "last_path", "")))
    return points


def sweep_points(quick: bool) -> dict[str, list[int]]:
    """Values of each swept parameter (others at the MNIST configuration)."""
    if quick:
        return {"population": [1, 7], "steps": [10, 25], "hidden": [500, 3000], "classes": [2, 10]}
    return {"population": [1, 3, 7, 14], "steps": [10, 25, 50, 100], "hidden": [500, 1000, 2000, 3000], "classes": [2, 5, 10]}


def blv2_flops(cfg: CostConfig) -> float:
    """FLOPs of one BL-v2 iteration of ``cfg`` (all classes x K, weighted input gradient)."""
    return snn_iteration_flops(cfg.steps, cfg.classes * cfg.population, cfg.inputs, cfg.hidden, cfg.classes, groups=cfg.classes)


def run_sweeps(opts: BenchOptions, base: CostConfig = MNIST, points: dict[str, list[int]] | None = None) -> Sweeps:
    """BL-v2 (ours, one run each) seconds per iteration vs each parameter of ``points`` (default
    ``sweep_points``), the others at ``base``."""
    from nmprivacy.attacks.engine import make_oracle

    out: Sweeps = {}
    points = points or sweep_points(opts.quick)
    bar = tqdm(total=sum(len(v) for v in points.values()), desc="sweeps", leave=False)
    for param, values in points.items():
        rows = []
        for value in values:
            cfg = replace(base, ann=False, **{param: value})
            case = AttackCase("bl-v2", attack_settings(cfg, opts).bl_v2, build_targets(cfg, opts.seed).snn, cfg.classes, cfg.steps)
            rows.append(SweepPoint(param, value, time_ours(case, replace(opts, repeats=1), make_oracle), blv2_flops(cfg) / 1e9))
            bar.update(1)
        out[param] = rows
    bar.close()
    return out


def plot_sweeps(sweeps: Sweeps, peak_gflops: float, path: Path, base: CostConfig = MNIST) -> Path:
    """PNG of seconds per BL-v2 iteration vs each swept parameter, with the roofline time at ``peak_gflops``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"population": "population K", "steps": "time steps T", "hidden": "hidden width", "classes": "classes"}
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4 * len(sweeps), 3.4), squeeze=False)
    axes = axes[0]
    for ax, (param, rows) in zip(axes, sweeps.items()):
        xs = [r.value for r in rows]
        ax.plot(xs, [r.ours.seconds * 1e3 for r in rows], "o-", label="ours (BL-v2)")
        ax.plot(xs, [r.gflop_per_iter / peak_gflops * 1e3 for r in rows], "k--", label="matmul roofline")
        ax.set_xlabel(labels.get(param, param))
        ax.set_ylabel("ms per iteration")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(
        f"BL-v2 iteration cost (others at {base.name}: {base.network}, "
        f"T={base.steps}, K={base.population}, {base.classes} classes)"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
