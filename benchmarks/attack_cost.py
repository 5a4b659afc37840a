"""``attack-cost``: seconds per attack iteration, reference structure vs this project vs the machine.

For the paper's configurations (MNIST 784-3000-10, T=25, K=7; N-MNIST 1156-3000-10, T=100,
K=5; 10 classes) and each attack (BL-v1, BL-v2, MI-Face on the ANN for MNIST), measured side by
side in one process:

1. ``reference``: the published notebooks' structure (``benchmarks.reference``, snnTorch
   ``snn.Leaky`` neurons as the notebooks use them): one class, one sample, one time step at a
   time, autograd with weight gradients. Timed on a subset
   (``reference_classes`` x ``reference_samples``) and extrapolated linearly to all classes x K
   (said in the JSON under ``reference_timed``).
2. ``ours``: the real attack classes (``nmprivacy.attacks``) with ``make_oracle``, i.e. what
   ``nmprivacy audit`` runs, seconds per iteration over all classes; also with the sparse input
   path disabled (``ours_dense``) and with the plain batched autograd oracle (``batched_autograd``).
3. ``roofline``: FLOPs of one iteration / the peak of a large fp32 matmul measured in this run
   (at its start and end; the larger). Every time is the fastest of ``repeats`` runs.
   FLOPs counted: what the algorithm needs, 2 x MACs of every dense layer forward
   (input->hidden, hidden->classes) and of the input-gradient backward (dL/dz1 = dL/dI2 @ W2 per
   sample; dL/dx = dL/dI1 @ W1 per sample for BL-v1 / MI-Face, but for BL-v2 only on the
   population-weighted sum of dL/dI1, i.e. over T x classes rows, plus the weighting); no weight
   gradients, no elementwise neuron updates; dense even when the sparse input path skips zeros.

Targets are randomly initialised (``snn-norse``, ``ann``). The attacks run with the audit's
settings for the configuration (``nmprivacy.presets``, paper budget): "ours" is seconds per
iteration over a whole attack (10 iterations from the preset's start, BL-v2's X_p at 0.5 for
MNIST). BL-v2's cost depends on the spike density of its samples (binary inputs take the gather or
subset-table paths of ``nmprivacy.attacks.currents``), which falls from 0.5 to ~0.05 over a run on
trained and random targets alike; the run's density trajectory is recorded, and a density sweep
(``lr = 0`` keeps X_p at its start) gives the cost at fixed densities. The reference structure's
cost does not depend on the density (batch-1 dense GEMVs). Peak memory is the resident-set growth
over the run's baseline, sampled every 2 ms.

Usage: ``python -m benchmarks.attack_cost [--quick] [--json FILE]`` or
``nmprivacy bench attack-cost [--quick] [--json FILE]``.
"""

from __future__ import annotations

import math
import argparse
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from nmprivacy.runinfo import atomic_path, atomic_write_json, machine_info, package_versions, run_metadata

DEFAULT_JSON = Path("runs/bench/attack-cost.json")


@dataclass(frozen=True)
class CostConfig:
    """One network / attack configuration to time."""

    name: str
    input_shape: tuple[int, ...]
    steps: int
    population: int
    classes: int = 10
    hidden: int = 3000
    ann: bool = True  # time MI-Face on the ANN baseline too
    preset: str = "mnist"  # data-set family whose attack settings (nmprivacy.presets, paper budget) are used

    @property
    def inputs(self) -> int:
        return math.prod(self.input_shape)


MNIST = CostConfig("mnist", (1, 28, 28), steps=25, population=7)
NMNIST = CostConfig("nmnist", (1, 34, 34), steps=100, population=5, ann=False, preset="nmnist")


@dataclass(frozen=True)
class BenchOptions:
    """How much to measure."""

    quick: bool = False
    iterations: int | None = None  # attack iterations per timed run (None: the preset's, a whole attack)
    reference_classes: int = 1
    reference_samples: int | None = None  # BL-v2 samples per reference class (None: K)
    xp_init: float | None = None  # BL-v2's starting X_p (None: the preset's)
    densities: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)  # BL-v2 density sweep (first configuration)
    seed: int = 0
    sweeps: bool = True
    warmup: bool = True  # one untimed run (1 attack iteration; the reference subset) before timing
    repeats: int = 3  # timed runs per measurement (reference and ours alike); the fastest is kept
    variants: bool = True  # also time the dense-only engine and the batched autograd oracle
    loihi: bool = True  # also time BL-v2 on the snn-lava target (fixed-point engine path)

    @staticmethod
    def for_budget(quick: bool) -> "BenchOptions":
        """Full measurement, or a smoke run that finishes in well under a minute."""
        if quick:
            return BenchOptions(quick=True, iterations=1, reference_samples=1, variants=False, repeats=1, densities=(0.1, 0.5))
        return BenchOptions()


# ---------------------------------------------------------------- measurement helpers


class PeakRSS:
    """Peak resident-set growth (MB) of this process inside a ``with`` block (sampled by a thread)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def rss_bytes() -> int:
        """Current resident set size of this process in bytes."""
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self.rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._base = self._peak = self.rss_bytes()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self.rss_bytes())
        self.peak_mb = (self._peak - self._base) / 2**20


def timed(fn: Callable[[], Any], repeats: int = 1, warmup: bool = False) -> tuple[float, float]:
    """Fastest wall seconds of ``repeats`` calls of ``fn()`` (after one untimed call if ``warmup``)
    and the largest peak RSS growth (MB)."""
    if warmup:
        fn()
    best, peak = float("inf"), 0.0
    for _ in range(max(1, repeats)):
        with PeakRSS() as mem:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        peak = max(peak, mem.peak_mb)
    return best, peak


def measure_peak_gflops(shapes: Sequence[tuple[int, int, int]] = ((2048, 2048, 2048),), repeats: int = 3) -> dict[str, float]:
    """Best fp32 GEMM rate (GFLOP/s) per ``(m, k, n)`` shape and their maximum under ``"peak"``."""
    out: dict[str, float] = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        c = torch.empty(m, n)
        torch.mm(a, b, out=c)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=c)
            best = min(best, time.perf_counter() - start)
        out[f"{m}x{k}x{n}"] = 2.0 * m * k * n / best / 1e9
    out["peak"] = max(out.values())
    return out


def snn_iteration_flops(steps: int, batch: int, inputs: int, hidden: int, classes: int, groups: int | None = None) -> float:
    """FLOPs (2 x MACs) an iteration needs for ``inputs -> hidden -> classes`` over ``steps * batch``
    rows (the ANN is ``steps = 1``): the forward and dL/dz1 = dL/dI2 @ W2 per row; the input
    gradient dL/dI1 @ W1 per row, or, for a population of ``groups`` weighted sums (BL-v2), the
    weighting (``steps * batch * hidden`` MACs) and dL/dI1 @ W1 over ``steps * groups`` rows."""
    macs_forward = steps * batch * (inputs * hidden + hidden * classes)
    macs_backward = steps * batch * hidden * classes
    if groups is None:
        macs_backward += steps * batch * hidden * inputs
    else:
        macs_backward += steps * batch * hidden + steps * groups * hidden * inputs
    return 2.0 * (macs_forward + macs_backward)


# ---------------------------------------------------------------- targets


def build_targets(cfg: CostConfig, seed: int) -> tuple[Any, Any]:
    """Randomly initialised ``snn-norse`` and (if ``cfg.ann``) ``ann`` targets of ``cfg``'s shape."""
    from nmprivacy.models.ann import ANN, ANNConfig
    from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig

    torch.manual_seed(seed)
    snn = SNNNorse(SNNNorseConfig(input_shape=cfg.input_shape, num_classes=cfg.classes, hidden=cfg.hidden)).freeze()
    ann = ANN(ANNConfig(input_shape=cfg.input_shape, num_classes=cfg.classes, hidden=cfg.hidden)).freeze() if cfg.ann else None
    return snn, ann


def reference_snn(snn: Any) -> Any:
    """The notebook-structured SNN with the target's effective weights (trainable)."""
    from benchmarks.reference import ReferenceSNN

    w1, w2 = (layer.weight for layer in snn.lif_layers())
    return ReferenceSNN(w1, w2, beta=snn.config.leak, threshold=snn.config.threshold)


# ---------------------------------------------------------------- per attack


def comparison(opts: BenchOptions) -> BenchOptions:
    """Lighter settings for the slow comparison column (batched autograd): at most 2 timed
    iterations, one repeat."""
    return replace(opts, iterations=min(opts.iterations or 2, 2), repeats=1)


def attack_settings(cfg: CostConfig, opts: BenchOptions) -> tuple[Any, Any, Any]:
    """BL-v1, BL-v2 and MI-Face settings of ``cfg``: the audit's (paper preset of ``cfg.preset``)
    with ``cfg``'s population, no early stop, and ``opts``' iterations / X_p start if given."""
    from nmprivacy.presets import preset_for

    p = preset_for(cfg.preset, "paper")
    v2 = replace(p.bl_v2, population=cfg.population, plateau_patience=0)
    v2 = replace(v2, init=v2.init if opts.xp_init is None else opts.xp_init, iterations=opts.iterations or v2.iterations)
    return replace(p.bl_v1, iterations=opts.iterations or p.bl_v1.iterations), v2, p.mi_face


class DensityProbe:
    """Wraps an oracle and records the mean input (spike density) of every call; calls on several
    lanes (``lane=i``, one part of the classes each) are combined per iteration."""

    def __init__(self, oracle: Any) -> None:
        self.oracle = oracle
        self._calls: dict[int, list[tuple[float, int]]] = {}  # per lane: (sum, count) of each call's input
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.oracle, name)

    def _record(self, x: torch.Tensor, lane: int | None) -> None:
        with self._lock:
            self._calls.setdefault(lane or 0, []).append((float(x.sum()), x.numel()))

    @property
    def densities(self) -> list[float]:
        """Spike density of each call (of each iteration, over all lanes)."""
        lanes = list(self._calls.values())
        return [sum(c[0] for c in calls) / sum(c[1] for c in calls) for calls in zip(*lanes)]

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._record(x, None)
        return self.oracle(x, *args, **kwargs)

    def population_gradient(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._record(x, kwargs.get("lane"))
        return self.oracle.population_gradient(x, *args, **kwargs)

    @staticmethod
    def factory(probes: list["DensityProbe"]) -> Callable[[Any], "DensityProbe"]:
        """An oracle factory: ``make_oracle``'s oracle wrapped in a probe, appended to ``probes``."""
        from nmprivacy.attacks.engine import make_oracle

        def make(model: Any) -> DensityProbe:
            probes.append(DensityProbe(make_oracle(model)))
            return probes[-1]

        return make


def _ours(make_attack: Callable[[Callable, int | None], Any], model: Any, classes: list[int], opts: BenchOptions, factory: Callable) -> tuple[float, float]:
    """Seconds per iteration of the real attack (fastest of ``opts.repeats`` runs of
    ``opts.iterations`` iterations, None: the settings', after a 1-iteration warm-up) and peak
    RSS growth in MB."""
    if opts.warmup:
        make_attack(factory, 1).run(model, classes, seed=opts.seed)
    per_iteration: list[float] = []

    def run() -> None:
        per_iteration.append(make_attack(factory, opts.iterations).run(model, classes, seed=opts.seed).seconds_per_iteration)

    _, mb = timed(run, opts.repeats)
    return float(min(per_iteration)), mb


def _snn_variants(
    make_attack: Callable[[Callable, int], Any], snn: Any, classes: list[int], opts: BenchOptions
) -> tuple[float, float, float | None, float | None, float | None]:
    """Seconds per iteration and peak MB of the attack core (auto path), and with
    ``opts.variants`` also of the dense-only engine and of batched autograd:
    ``(ours, ours_mb, dense, batched, batched_mb)``."""
    from nmprivacy.attacks.engine import FastLIFOracle, make_oracle
    from nmprivacy.attacks.oracle import AutogradOracle

    ours, ours_mb = _ours(make_attack, snn, classes, opts, make_oracle)
    if not opts.variants:
        return ours, ours_mb, None, None, None
    dense, _ = _ours(make_attack, snn, classes, opts, lambda m: FastLIFOracle(m, sparse_density=0.0))
    batched, batched_mb = _ours(make_attack, snn, classes, comparison(opts), AutogradOracle)
    return ours, ours_mb, dense, batched, batched_mb


def measure_blv2(cfg: CostConfig, snn: Any, opts: BenchOptions, densities: Sequence[float] = ()) -> dict[str, Any]:
    """BL-v2 cost: reference subset (extrapolated), ours over a whole attack (auto / dense-only /
    batched autograd), the run's density trajectory and, for ``densities``, ours at fixed density."""
    from benchmarks.reference import ReferenceBLv2State, blv2_class_iteration, snntorch_version
    from nmprivacy.attacks.blv2 import BrainLeaksV2

    _, settings, _ = attack_settings(cfg, opts)
    classes = list(range(cfg.classes))

    def attack(factory: Callable, iterations: int | None, settings: Any = settings) -> BrainLeaksV2:
        return BrainLeaksV2(replace(settings, iterations=iterations or settings.iterations), oracle=factory, steps=cfg.steps)

    ours, ours_mb, dense, batched, batched_mb = _snn_variants(attack, snn, classes, opts)
    probes: list[DensityProbe] = []
    attack(DensityProbe.factory(probes), opts.iterations).run(snn, classes, seed=opts.seed)

    net = reference_snn(snn)
    samples = opts.reference_samples or cfg.population
    rc = min(opts.reference_classes, cfg.classes)
    torch.manual_seed(opts.seed)
    shape = (cfg.steps, cfg.inputs)

    def reference() -> None:
        for c in range(rc):
            state = ReferenceBLv2State(xp=torch.full(shape, settings.init), r=torch.zeros(shape), nu=torch.zeros(shape))
            blv2_class_iteration(net, c, state, settings, samples=samples)

    ref_s, ref_mb = timed(reference, opts.repeats, opts.warmup)
    scale = (cfg.classes * cfg.population) / (rc * samples)
    flops = snn_iteration_flops(cfg.steps, cfg.classes * cfg.population, cfg.inputs, cfg.hidden, cfg.classes, groups=cfg.classes)
    row = _row(ref_s * scale, ours, dense, batched, flops, ref_mb, ours_mb, batched_mb,
               {"classes": rc, "samples_per_class": samples, "seconds": ref_s, "scale": scale,
                "extrapolation": "linear: seconds x (classes x K) / (timed classes x timed samples); includes the per-class update",
                "implementation": f"snnTorch {snntorch_version()} snn.Leaky"})
    row["settings"] = {"init": settings.init, "iterations": opts.iterations or settings.iterations, "variant": settings.variant}
    row["spike_density_per_iteration"] = probes[0].densities
    sweep = []
    for d in tqdm(densities, desc="density sweep", leave=False):
        fixed = replace(settings, lr=0.0, init=float(d))  # lr 0: X_p stays at d, every iteration samples at density d
        probe: list[DensityProbe] = []
        seconds, _ = _ours(lambda f, n, fixed=fixed: attack(f, n, fixed), snn, classes, replace(opts, repeats=min(opts.repeats, 2)),
                           DensityProbe.factory(probe))
        sweep.append({"density": float(d), "ours_s_per_iter": seconds, "speedup_vs_reference": row["reference_s_per_iter"] / seconds,
                      "input_path": getattr(probe[-1].oracle, "last_path", "")})
    row["density_sweep"] = sweep
    return row


def measure_blv1(cfg: CostConfig, snn: Any, opts: BenchOptions) -> dict[str, Any]:
    """BL-v1 cost: one batch-1 pass per class (reference) vs the batched attack."""
    from benchmarks.reference import blv1_class_iteration, snntorch_version
    from nmprivacy.attacks.blv1 import BrainLeaksV1

    settings, _, _ = attack_settings(cfg, opts)
    classes = list(range(cfg.classes))

    def attack(factory: Callable, iterations: int | None) -> BrainLeaksV1:
        return BrainLeaksV1(replace(settings, iterations=iterations or settings.iterations), oracle=factory, steps=cfg.steps)

    ours, ours_mb, dense, batched, batched_mb = _snn_variants(attack, snn, classes, opts)

    net = reference_snn(snn)
    rc = min(opts.reference_classes, cfg.classes)
    x = torch.zeros(cfg.steps, cfg.inputs)
    ref_s, ref_mb = timed(lambda: [blv1_class_iteration(net, c, x, settings) for c in range(rc)], opts.repeats, opts.warmup)
    scale = cfg.classes / rc
    flops = snn_iteration_flops(cfg.steps, cfg.classes, cfg.inputs, cfg.hidden, cfg.classes)
    return _row(ref_s * scale, ours, dense, batched, flops, ref_mb, ours_mb, batched_mb,
                {"classes": rc, "seconds": ref_s, "scale": scale, "extrapolation": "linear in classes",
                 "implementation": f"snnTorch {snntorch_version()} snn.Leaky"})


def measure_miface(cfg: CostConfig, ann: Any, opts: BenchOptions) -> dict[str, Any]:
    """MI-Face cost on the ANN: one batch-1 step per class (reference) vs the batched attack."""
    from benchmarks.reference import miface_class_iteration, trainable_copy
    from nmprivacy.attacks.engine import make_oracle
    from nmprivacy.attacks.miface import MIFace
    from nmprivacy.attacks.oracle import AutogradOracle
    classes = list(range(cfg.classes))
    _, _, base = attack_settings(cfg, opts)
    reps = opts.iterations or 10

    def attack(factory: Callable, iterations: int | None) -> MIFace:
        iterations = iterations or reps
        # Never stop early: every class stays active for exactly ``iterations`` steps.
        return MIFace(replace(base, max_iterations=iterations, patience=iterations + 1, cost_goal=-1.0), oracle=factory)

    ours, ours_mb = _ours(attack, ann, classes, opts, make_oracle)
    batched, batched_mb = ours, ours_mb  # make_oracle is the batched autograd oracle for the ANN
    net = trainable_copy(ann)
    rc = min(opts.reference_classes, cfg.classes)

    def reference() -> None:
        for c in range(rc):
            x = torch.zeros(1, *cfg.input_shape)
            for _ in range(reps):
                x = miface_class_iteration(net, c, x, base)

    ref_s, ref_mb = timed(reference, opts.repeats, opts.warmup)
    scale = cfg.classes / (rc * reps)
    flops = snn_iteration_flops(1, cfg.classes, cfg.inputs, cfg.hidden, cfg.classes)
    row = _row(ref_s * scale, ours, None, batched, flops, ref_mb, ours_mb, batched_mb,
               {"classes": rc, "iterations_per_class": reps, "seconds": ref_s, "scale": scale,
                "extrapolation": "linear in classes; per-iteration mean over the timed iterations"})
    row["oracle"] = type(make_oracle(ann)).__name__
    return row


def measure_loihi_blv2(cfg: CostConfig, opts: BenchOptions) -> dict[str, Any]:
    """BL-v2 on the Lava-DL target (``snn-lava``): the engine's exact fixed-point path vs batched
    autograd through slayer's blocks (no reference structure exists for fixed point)."""
    from nmprivacy.attacks.blv2 import BrainLeaksV2
    from nmprivacy.attacks.engine import make_oracle
    from nmprivacy.attacks.oracle import AutogradOracle
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

    torch.manual_seed(opts.seed)
    model = SNNLava(SNNLavaConfig(input_shape=cfg.input_shape, num_classes=cfg.classes, hidden=cfg.hidden)).freeze()
    _, settings, _ = attack_settings(cfg, opts)
    classes = list(range(cfg.classes))

    def attack(factory: Callable, iterations: int | None) -> BrainLeaksV2:
        return BrainLeaksV2(replace(settings, iterations=iterations or settings.iterations), oracle=factory, steps=cfg.steps)

    ours, ours_mb = _ours(attack, model, classes, opts, make_oracle)
    batched, batched_mb = _ours(attack, model, classes, comparison(opts), AutogradOracle) if opts.variants else (None, None)
    flops = snn_iteration_flops(cfg.steps, cfg.classes * cfg.population, cfg.inputs, cfg.hidden, cfg.classes, groups=cfg.classes)
    row = {
        "target": "snn-lava (loihi arithmetic)",
        "ours_s_per_iter": ours,
        "batched_autograd_s_per_iter": batched,
        "speedup_vs_batched_autograd": batched / ours if batched else None,
        "gflop_per_iter": flops / 1e9,
        "peak_rss_mb": {"ours": ours_mb, "batched_autograd": batched_mb},
    }
    return apply_roofline(row, _PEAK["peak"])


_PEAK: dict[str, float] = {}


def apply_roofline(row: dict[str, Any], peak_gflops: float) -> dict[str, Any]:
    """Fill ``row``'s roofline fields from its ``gflop_per_iter`` and times, for a GEMM peak in GFLOP/s."""
    roof = row["gflop_per_iter"] / peak_gflops
    row["roofline_s_per_iter"] = roof
    row["roofline_fraction"] = roof / row["ours_s_per_iter"]
    if "ours_dense_s_per_iter" in row:
        row["roofline_fraction_dense"] = roof / row["ours_dense_s_per_iter"] if row["ours_dense_s_per_iter"] else None
    row["achieved_gflops"] = row["gflop_per_iter"] / row["ours_s_per_iter"]
    return row


def _row(ref: float, ours: float, dense: float | None, batched: float | None, flops: float, ref_mb: float, ours_mb: float,
         batched_mb: float | None, timed_subset: dict[str, Any]) -> dict[str, Any]:
    row = {
        "reference_s_per_iter": ref,
        "ours_s_per_iter": ours,
        "ours_dense_s_per_iter": dense,
        "batched_autograd_s_per_iter": batched,
        "speedup_vs_reference": ref / ours,
        "speedup_vs_batched_autograd": batched / ours if batched else None,
        "gflop_per_iter": flops / 1e9,
        "peak_rss_mb": {"reference": ref_mb, "ours": ours_mb, "batched_autograd": batched_mb},
        "reference_timed": timed_subset,
    }
    return apply_roofline(row, _PEAK["peak"])


# ---------------------------------------------------------------- sweeps


def sweep_points(quick: bool) -> dict[str, list[int]]:
    """Values of each swept parameter (others at the MNIST configuration)."""
    if quick:
        return {"population": [1, 7], "steps": [10, 25], "hidden": [500, 3000], "classes": [2, 10]}
    return {"population": [1, 3, 7, 14], "steps": [10, 25, 50, 100], "hidden": [500, 1000, 2000, 3000], "classes": [2, 5, 10]}


def run_sweeps(opts: BenchOptions, base: CostConfig = MNIST, points: dict[str, list[int]] | None = None) -> dict[str, list[dict[str, float]]]:
    """BL-v2 (ours) seconds per iteration vs K, T, hidden width and number of classes (one at a
    time, the others at ``base``); needs ``measure_peak`` to have run."""
    from nmprivacy.attacks.blv2 import BrainLeaksV2
    from nmprivacy.attacks.engine import make_oracle

    out: dict[str, list[dict[str, float]]] = {}
    points = points or sweep_points(opts.quick)
    total = sum(len(v) for v in points.values())
    bar = tqdm(total=total, desc="sweeps", leave=False)
    for param, values in points.items():
        rows = []
        for value in values:
            cfg = replace(base, ann=False, **{param: value})
            snn, _ = build_targets(cfg, opts.seed)
            _, settings, _ = attack_settings(cfg, opts)

            def attack(factory: Callable, iterations: int | None, cfg: CostConfig = cfg, settings: Any = settings) -> BrainLeaksV2:
                return BrainLeaksV2(replace(settings, iterations=iterations or settings.iterations), oracle=factory, steps=cfg.steps)

            seconds, mb = _ours(attack, snn, list(range(cfg.classes)), replace(opts, repeats=1), make_oracle)
            flops = snn_iteration_flops(cfg.steps, cfg.classes * cfg.population, cfg.inputs, cfg.hidden, cfg.classes, groups=cfg.classes)
            row = {param: value, "ours_s_per_iter": seconds, "gflop_per_iter": flops / 1e9, "peak_rss_mb": mb}
            rows.append(apply_roofline(row, _PEAK["peak"]))
            bar.update(1)
        out[param] = rows
    bar.close()
    return out


def plot_sweeps(sweeps: dict[str, list[dict[str, float]]], path: Path, base: CostConfig = MNIST) -> Path:
    """PNG of seconds per BL-v2 iteration vs each swept parameter, with the roofline time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"population": "population K", "steps": "time steps T", "hidden": "hidden width", "classes": "classes"}
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4 * len(sweeps), 3.4), squeeze=False)
    axes = axes[0]
    for ax, (param, rows) in zip(axes, sweeps.items()):
        xs = [r[param] for r in rows]
        ax.plot(xs, [r["ours_s_per_iter"] * 1e3 for r in rows], "o-", label="ours (BL-v2)")
        ax.plot(xs, [r["roofline_s_per_iter"] * 1e3 for r in rows], "k--", label="matmul roofline")
        ax.set_xlabel(labels.get(param, param))
        ax.set_ylabel("ms per iteration")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(
        f"BL-v2 iteration cost (others at {base.name}: {base.inputs}-{base.hidden}-{base.classes}, "
        f"T={base.steps}, K={base.population}, {base.classes} classes)"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- driver


def measure_peak() -> dict[str, float]:
    """Measure (and keep for the roofline) the fp32 GEMM peak: a 2048^3 square and the MNIST
    BL-v2 input-layer shape; the larger rate is the peak."""
    _PEAK.clear()
    _PEAK.update(measure_peak_gflops(((2048, 2048, 2048), (MNIST.steps * MNIST.classes * MNIST.population, MNIST.inputs, MNIST.hidden))))
    return dict(_PEAK)


def measure(opts: BenchOptions = BenchOptions(), configs: Sequence[CostConfig] = (MNIST, NMNIST)) -> dict[str, Any]:
    """Run every measurement and return the JSON-ready result (stable keys per attack name,
    taken from the first configuration)."""
    from benchmarks.reference import snntorch_version

    reference = f"snnTorch {snntorch_version()} (snn.Leaky, surrogate.fast_sigmoid(slope=40))"  # fails before measuring if missing
    start = time.perf_counter()
    load_start = list(os.getloadavg())
    measure_peak()
    results: dict[str, dict[str, Any]] = {}
    jobs = [(cfg, name) for cfg in configs for name in (("bl-v1", "bl-v2", "mi-face") if cfg.ann else ("bl-v1", "bl-v2"))]
    for cfg, name in tqdm(jobs, desc="attack-cost", leave=False):
        snn, ann = build_targets(cfg, opts.seed)
        if name == "bl-v1":
            row = measure_blv1(cfg, snn, opts)
        elif name == "bl-v2":
            row = measure_blv2(cfg, snn, opts, opts.densities if cfg is configs[0] else ())
        else:
            row = measure_miface(cfg, ann, opts)
        row["config"] = {"name": cfg.name, "network": f"{cfg.inputs}-{cfg.hidden}-{cfg.classes}", "steps": cfg.steps if name != "mi-face" else None,
                         "population": cfg.population if name == "bl-v2" else None, "classes": cfg.classes}
        results.setdefault(cfg.name, {})[name] = row
    loihi = {configs[0].name: {"bl-v2": measure_loihi_blv2(configs[0], opts)}} if opts.loihi else {}
    sweeps = run_sweeps(opts, configs[0]) if opts.sweeps else {}
    # the peak is re-measured at the end (the machine may be shared); the larger one is the roofline
    end_peak = measure_peak_gflops()
    peak = max(_PEAK["peak"], end_peak["peak"])
    rows = [r for group in (results, loihi) for attacks in group.values() for r in attacks.values()]
    for row in rows + [r for points in sweeps.values() for r in points]:
        apply_roofline(row, peak)
    out: dict[str, Any] = {
        "benchmark": "attack-cost",
        "quick": opts.quick,
        "machine": machine_info(),
        "versions": package_versions(),
        "load_average": {"start": load_start, "end": list(os.getloadavg())},
        "peak_gflops": dict(_PEAK),
        "peak_gflops_at_end": end_peak,
        "roofline_peak_gflops": peak,
        "engine_workers": torch.get_num_threads(),
        "flops_counted": "what the dense algorithm needs: 2 x MACs of the dense forward (input->hidden, hidden->classes) and of the "
        "input-gradient backward (dL/dz1 = dL/dI2 @ W2 per sample; dL/dx = dL/dI1 @ W1 per sample for BL-v1 and MI-Face, but for "
        "BL-v2 only on the population-weighted sum of dL/dI1 (T x classes rows instead of T x classes x K) plus the weighting "
        "(T x classes x K x hidden MACs)); no weight gradients, no elementwise neuron updates; dense even when the binary-input "
        "paths skip zeros or use subset sums",
        "reference_implementation": reference,
        "notes": [
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
            f"ours with {torch.get_num_threads()} torch thread(s): FastLIFOracle splits each batch into engine_workers shards "
            "computed on their own threads with one torch thread each (BL-v2 then keeps its own loop on one thread)",
        ],
    }
    main_cfg = configs[0].name
    for name, row in results.get(main_cfg, {}).items():
        out[name] = {"config": main_cfg, "speedup_vs_reference": row["speedup_vs_reference"], "roofline_fraction": row["roofline_fraction"]}
    out["configs"] = results
    out["loihi"] = loihi
    out["sweeps"] = sweeps
    out["run"] = run_metadata(config=opts, seed=opts.seed, timings={"total": time.perf_counter() - start})
    return out


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table of every configuration x attack."""
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


def build_parser(prog: str = "python -m benchmarks.attack_cost") -> argparse.ArgumentParser:
    """Options of the attack-cost benchmark."""
    p = argparse.ArgumentParser(prog=prog, description="Seconds per attack iteration: reference structure vs nmprivacy vs matmul roofline.")
    p.add_argument("--quick", action="store_true", help="smoke run (< 1 minute): 1 iteration, 1 reference sample, small sweeps")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"result file (default {DEFAULT_JSON}); the plot goes beside it")
    p.add_argument("--iterations", type=int, default=None, help="attack iterations per timed run (default: the preset's, a whole attack; quick 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement, the fastest is kept (default 3, quick 1)")
    p.add_argument("--reference-classes", type=int, default=None, help="classes timed for the reference structure")
    p.add_argument("--reference-samples", type=int, default=None, help="BL-v2 samples per timed reference class (default K)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--no-sweeps", action="store_true", help="skip the scaling sweeps")
    p.add_argument("--no-loihi", action="store_true", help="skip BL-v2 on the snn-lava (fixed-point) target")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks.attack_cost") -> int:
    """Run the benchmark, print the table, write JSON and the sweep plot; returns 0."""
    from nmprivacy.errors import NmprivacyError

    args = build_parser(prog).parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise NmprivacyError(f"--threads {args.threads} is invalid: give a positive number of threads")
        torch.set_num_threads(args.threads)
    opts = BenchOptions.for_budget(args.quick)
    for field, value in (("iterations", args.iterations), ("repeats", args.repeats), ("reference_classes", args.reference_classes), ("reference_samples", args.reference_samples)):
        if value is not None:
            if value < 1:
                raise NmprivacyError(f"--{field.replace('_', '-')} {value} is invalid: give a positive number")
            opts = replace(opts, **{field: value})
    opts = replace(opts, seed=args.seed, sweeps=not args.no_sweeps, loihi=not args.no_loihi)
    folder = args.json.parent
    try:  # fail before minutes of measuring, not after
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NmprivacyError(f"cannot create the result folder {folder} ({exc.strerror}): pass --json in a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise NmprivacyError(f"result folder {folder} is not writable: pass --json in a writable folder")
    result = measure(opts)
    if result["sweeps"]:
        png = args.json.with_suffix(".png")
        plot_sweeps(result["sweeps"], png)
        result["figures"] = [str(png)]
    atomic_write_json(args.json, result)
    print(format_table(result))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    import sys

    from nmprivacy.errors import NmprivacyError

    try:
        sys.exit(main())
    except NmprivacyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
