"""Timing of the published notebooks' loop structure (``benchmarks.reference``).

One class, one sample, one time step at a time, autograd with weight gradients: timed on a subset
(``reference_classes`` x ``reference_samples``) and extrapolated linearly to all classes x K;
``ReferenceTiming`` says how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from benchmarks.attack_cost.config import BenchOptions, CostConfig
from benchmarks.attack_cost.timing import timed
from nmprivacy.presets import BLv1Settings, BLv2Settings, MIFaceSettings


@dataclass(frozen=True)
class ReferenceTiming:
    """The reference structure's seconds per iteration over all classes: the fastest run of a
    timed subset (``seconds``, ``peak_mb``) times ``scale``."""

    classes: int  # classes timed
    seconds: float
    scale: float  # all classes (x K) / the timed subset
    extrapolation: str
    peak_mb: float
    samples_per_class: int | None = None  # BL-v2: population samples timed per class
    iterations_per_class: int | None = None  # MI-Face: iterations timed per class
    implementation: str | None = None  # the SNN's neurons

    @property
    def s_per_iter(self) -> float:
        """Extrapolated seconds per iteration over all classes."""
        return self.seconds * self.scale

    def to_json(self) -> dict[str, Any]:
        """The ``reference_timed`` record (fields that apply to this attack)."""
        out: dict[str, Any] = {"classes": self.classes}
        if self.samples_per_class is not None:
            out["samples_per_class"] = self.samples_per_class
        if self.iterations_per_class is not None:
            out["iterations_per_class"] = self.iterations_per_class
        out.update(seconds=self.seconds, scale=self.scale, extrapolation=self.extrapolation)
        if self.implementation is not None:
            out["implementation"] = self.implementation
        return out


def reference_snn(snn: Any) -> Any:
    """The notebook-structured SNN with the target's effective weights (trainable)."""
    from benchmarks.reference import ReferenceSNN

    w1, w2 = (layer.weight for layer in snn.lif_layers())
    return ReferenceSNN(w1, w2, beta=snn.config.leak, threshold=snn.config.threshold)


def _neurons() -> str:
    from benchmarks.reference import snntorch_version

    return f"snnTorch {snntorch_version()} snn.Leaky"


def time_reference_blv1(cfg: CostConfig, snn: Any, settings: BLv1Settings, opts: BenchOptions) -> ReferenceTiming:
    """One batch-1 BL-v1 pass per timed class."""
    from benchmarks.reference import blv1_class_iteration

    net = reference_snn(snn)
    rc = min(opts.reference_classes, cfg.classes)
    x = torch.zeros(cfg.steps, cfg.inputs)
    run = timed(lambda: [blv1_class_iteration(net, c, x, settings) for c in range(rc)], opts.repeats, opts.warmup)
    return ReferenceTiming(rc, run.seconds, cfg.classes / rc, "linear in classes", run.peak_mb, implementation=_neurons())


def time_reference_blv2(cfg: CostConfig, snn: Any, settings: BLv2Settings, opts: BenchOptions) -> ReferenceTiming:
    """``reference_samples`` (default K) batch-1 BL-v2 passes and the update, per timed class."""
    from benchmarks.reference import ReferenceBLv2State, blv2_class_iteration

    net = reference_snn(snn)
    samples = opts.reference_samples or cfg.population
    rc = min(opts.reference_classes, cfg.classes)
    torch.manual_seed(opts.seed)
    shape = (cfg.steps, cfg.inputs)

    def reference() -> None:
        for c in range(rc):
            state = ReferenceBLv2State(xp=torch.full(shape, settings.init), r=torch.zeros(shape), nu=torch.zeros(shape))
            blv2_class_iteration(net, c, state, settings, samples=samples)

    run = timed(reference, opts.repeats, opts.warmup)
    return ReferenceTiming(
        rc, run.seconds, (cfg.classes * cfg.population) / (rc * samples),
        "linear: seconds x (classes x K) / (timed classes x timed samples); includes the per-class update", run.peak_mb,
        samples_per_class=samples, implementation=_neurons(),
    )


def time_reference_miface(cfg: CostConfig, ann: Any, settings: MIFaceSettings, iterations: int, opts: BenchOptions) -> ReferenceTiming:
    """``iterations`` batch-1 MI-Face steps per timed class."""
    from benchmarks.reference import miface_class_iteration, trainable_copy

    net = trainable_copy(ann)
    rc = min(opts.reference_classes, cfg.classes)

    def reference() -> None:
        for c in range(rc):
            x = torch.zeros(1, *cfg.input_shape)
            for _ in range(iterations):
                x = miface_class_iteration(net, c, x, settings)

    run = timed(reference, opts.repeats, opts.warmup)
    return ReferenceTiming(
        rc, run.seconds, cfg.classes / (rc * iterations), "linear in classes; per-iteration mean over the timed iterations", run.peak_mb,
        iterations_per_class=iterations,
    )
