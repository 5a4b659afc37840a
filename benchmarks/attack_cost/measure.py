"""One attack-cost run: per configuration and attack the reference structure, ours and the
FLOPs; BL-v2 on the Loihi target; the sweeps; the GEMM peak before and after (``CostReport``)."""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from benchmarks.attack_cost.config import MNIST, NMNIST, BenchOptions, CostConfig, attack_settings, build_targets, loihi_target
from benchmarks.attack_cost.ours import AttackCase, OursTiming, density_trajectory, miface_case, time_ours, time_variants
from benchmarks.attack_cost.reference_timing import time_reference_blv1, time_reference_blv2, time_reference_miface
from benchmarks.attack_cost.report import AttackCost, BLv2Record, CostReport, LoihiCost
from benchmarks.attack_cost.roofline import measure_gemm_peak, measure_start_peak, snn_iteration_flops
from benchmarks.attack_cost.sweeps import blv2_flops, density_sweep, run_sweeps
from nmprivacy.runinfo import machine_info, package_versions, run_metadata


def measure_blv1(cfg: CostConfig, snn: Any, opts: BenchOptions) -> AttackCost:
    """BL-v1: the batched attack vs one batch-1 pass per class (reference)."""
    settings = attack_settings(cfg, opts).bl_v1
    timing = time_variants(AttackCase("bl-v1", settings, snn, cfg.classes, cfg.steps), opts)
    reference = time_reference_blv1(cfg, snn, settings, opts)
    return AttackCost(cfg, "bl-v1", reference, timing, snn_iteration_flops(cfg.steps, cfg.classes, cfg.inputs, cfg.hidden, cfg.classes) / 1e9)


def measure_blv2(cfg: CostConfig, snn: Any, opts: BenchOptions, densities: Sequence[float] = ()) -> AttackCost:
    """BL-v2: ours over a whole attack (auto / dense-only / batched autograd), the run's density
    trajectory, the reference subset (extrapolated) and, for ``densities``, ours at fixed density."""
    settings = attack_settings(cfg, opts).bl_v2
    case = AttackCase("bl-v2", settings, snn, cfg.classes, cfg.steps)
    timing = time_variants(case, opts)
    trajectory = density_trajectory(case, opts)
    reference = time_reference_blv2(cfg, snn, settings, opts)
    record = BLv2Record(settings.init, opts.iterations or settings.iterations, settings.variant, trajectory,
                        density_sweep(case, opts, densities, reference.s_per_iter))
    return AttackCost(cfg, "bl-v2", reference, timing, blv2_flops(cfg) / 1e9, blv2=record)


def measure_miface(cfg: CostConfig, ann: Any, opts: BenchOptions) -> AttackCost:
    """MI-Face on the ANN: the batched attack vs one batch-1 step per class (reference)."""
    from nmprivacy.attacks.engine import make_oracle

    base = attack_settings(cfg, opts).mi_face
    iterations = opts.iterations or 10
    ours = time_ours(miface_case(base, ann, cfg.classes, iterations), opts, make_oracle)
    timing = OursTiming(ours, batched=ours)  # make_oracle is the batched autograd oracle for the ANN
    reference = time_reference_miface(cfg, ann, base, iterations, opts)
    flops = snn_iteration_flops(1, cfg.classes, cfg.inputs, cfg.hidden, cfg.classes)
    return AttackCost(cfg, "mi-face", reference, timing, flops / 1e9, oracle=type(make_oracle(ann)).__name__)


def measure_loihi_blv2(cfg: CostConfig, opts: BenchOptions) -> LoihiCost:
    """BL-v2 on the Lava-DL target (``snn-lava``): the engine's exact fixed-point path vs batched
    autograd through slayer's blocks (no reference structure exists for fixed point)."""
    model = loihi_target(cfg, opts.seed)
    timing = time_variants(AttackCase("bl-v2", attack_settings(cfg, opts).bl_v2, model, cfg.classes, cfg.steps), opts, dense=False)
    return LoihiCost(timing.ours, timing.batched, blv2_flops(cfg) / 1e9)


def measure(opts: BenchOptions = BenchOptions(), configs: Sequence[CostConfig] = (MNIST, NMNIST)) -> CostReport:
    """Run every measurement (summary keys per attack from the first configuration)."""
    from benchmarks.reference import snntorch_version

    reference = f"snnTorch {snntorch_version()} (snn.Leaky, surrogate.fast_sigmoid(slope=40))"  # fails before measuring if missing
    start = time.perf_counter()
    load_start = list(os.getloadavg())
    peak_start = measure_start_peak()
    results: dict[str, dict[str, AttackCost]] = {}
    jobs = [(cfg, name) for cfg in configs for name in cfg.attacks]
    for cfg, name in tqdm(jobs, desc="attack-cost", leave=False):
        targets = build_targets(cfg, opts.seed)
        if name == "bl-v1":
            row = measure_blv1(cfg, targets.snn, opts)
        elif name == "bl-v2":
            row = measure_blv2(cfg, targets.snn, opts, opts.densities if cfg is configs[0] else ())
        else:
            row = measure_miface(cfg, targets.ann, opts)
        results.setdefault(cfg.name, {})[name] = row
    loihi = {configs[0].name: {"bl-v2": measure_loihi_blv2(configs[0], opts)}} if opts.loihi else {}
    sweeps = run_sweeps(opts, configs[0]) if opts.sweeps else {}
    peak_end = measure_gemm_peak()  # re-measured at the end (the machine may be shared); the larger one is the roofline
    return CostReport(
        options=opts, machine=machine_info(), versions=package_versions(), load_average=(load_start, list(os.getloadavg())),
        peak_start=peak_start, peak_end=peak_end, engine_workers=torch.get_num_threads(), reference_implementation=reference,
        main_config=configs[0].name, configs=results, loihi=loihi, sweeps=sweeps,
        run=run_metadata(config=opts, seed=opts.seed, timings={"total": time.perf_counter() - start}),
    )
