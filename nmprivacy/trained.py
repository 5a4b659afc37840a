"""Trained models of an audit, a study or a membership run: from the model cache when their key
matches, else trained now and cached.

A model's cache folder is ``<cache>/<data set>-<kind>-s<seed>-<key>``, the key a hash of the data
set (name, source, sizes; for event data also the options that made the samples), the kind, its config (``model_config``: the kind's defaults with the
preset's ``target_config`` / ``ann_quantize``), the training schedule, the seed and T
(``nmprivacy.cache.cache_key``). Target, ANN baseline, evaluators and membership reference models
all come through ``train_or_load``, so each is trained once whoever asks first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from nmprivacy.cache import cache_key
from nmprivacy.errors import CheckpointError, NmprivacyError
from nmprivacy.model_kinds import kinds_with
from nmprivacy.models.base import TargetModel
from nmprivacy.presets import Budget, Preset
from nmprivacy.runinfo import source_version, to_jsonable

SNN_KINDS = kinds_with("target")  # trainable attack targets: snn-lava, snn-lava-conv, snn-norse


@dataclass
class TrainedModel:
    """A model ready for an audit (or a membership run) and what the results file says about it."""

    model: TargetModel
    record: dict[str, Any]


def model_config(kind: str, splits: Any, preset: Preset, budget: Budget = "default") -> Any:
    """The config of a ``kind`` model for ``splits`` under ``preset``: the kind's defaults (hidden
    size), the preset's ``target_config`` fields on a target kind (surrogate, weight bits,
    ``extra_hidden``, ...) and ``ann_quantize`` on an ``ann``."""
    from nmprivacy.models import default_config

    model_cfg = default_config(kind, splits.input_shape, splits.num_classes, dataset=splits.name, hidden=preset.hidden, budget=budget)
    if kind in SNN_KINDS and preset.target_config:
        try:
            model_cfg = replace(model_cfg, **preset.target_config)
        except TypeError:
            raise NmprivacyError(f"target_config {preset.target_config} names fields that a {kind} config does not have") from None
    if kind == "ann" and preset.ann_quantize:
        model_cfg = replace(model_cfg, quantize=preset.ann_quantize)  # post-training quantisation (nmprivacy.models.ann)
    return model_cfg


def model_cache_key(kind: str, splits: Any, model_cfg: Any, settings: Any, seed: int, steps: int | None) -> str:
    """The cache key of a ``kind`` model trained on ``splits``: data set (name, source, sizes and,
    for event data, the options that made the samples: ``DatasetSplits.content_options``), kind,
    config, schedule, seed and T. Two event encodings of one data set (say, denoised counts and
    binary bins of the same shape) never share a model."""
    content = splits.content_options
    return cache_key(dataset=splits.name, source=splits.source, n=[len(splits.train), len(splits.test)], kind=kind,
                     config=model_cfg, settings=settings, seed=seed, steps=steps,
                     **({"content": content} if content else {}))  # only when set: image-set keys stay as they were


def model_folder(cache: Path, kind: str, splits: Any, model_cfg: Any, settings: Any, seed: int, steps: int | None) -> Path:
    """The cache folder of a ``kind`` model (module docstring): ``<cache>/<data set>-<kind>-s<seed>-<key>``."""
    return cache / f"{splits.name}-{kind}-s{seed}-{model_cache_key(kind, splits, model_cfg, settings, seed, steps)}"


def train_or_load(kind: str, splits: Any, preset: Preset, seed: int, steps: int | None, cache: Path, budget: Budget = "default",
                  device: str = "cpu") -> TrainedModel:
    """The ``kind`` model for ``splits``: from the cache folder ``cache`` when its key (data set,
    kind, config, schedule, seed, T) matches, else trained with ``training.train_model`` and cached."""
    from nmprivacy.models import checkpoint
    from nmprivacy.training import defence_fields, settings_for, train_model

    model_cfg = model_config(kind, splits, preset, budget)
    settings = settings_for(kind, preset)
    folder = model_folder(cache, kind, splits, model_cfg, settings, seed, steps)
    if not (folder / "config.json").exists():
        adopt_other_precision(kind, splits, model_cfg, settings, seed, steps, cache, folder)
    if (folder / "config.json").exists():
        try:
            model = checkpoint.load(folder, kind)
            info = checkpoint.load_info(folder)
        except CheckpointError as exc:
            tqdm.write(f"cached {kind} in {folder} is unusable ({exc}); training it again")
        else:
            trained_by = trained_by_code(info)
            tqdm.write(f"reusing cached {kind} (seed {seed}) from {folder}")
            if trained_by["same_code"] is False:
                tqdm.write(f"  note: it was trained by other nmprivacy code (source {trained_by['nmprivacy-source']}, now "
                           f"{source_version()['nmprivacy-source']}); a fresh training may not reproduce it exactly (delete {folder} to retrain)")
            return TrainedModel(model, {"kind": kind, "seed": seed, "val_acc": info.get("val_acc"), "checkpoint": str(folder), "cached": True,
                                        "trained_by": trained_by, "reset": model.info.reset, "config": model_cfg,
                                        **({"weights_from": info["weights_from"]} if info.get("weights_from") else {}),
                                        **defence_fields(info.get("train_report"))})
    tqdm.write(f"training {kind} (seed {seed}) on {splits.name}")
    model, report = train_model(kind, splits, model_cfg, settings, seed, steps=steps, device=device)
    checkpoint.save(model, folder, extra={"val_acc": report.final_val_accuracy, "train_report": report, "dataset": splits.name, "steps": report.steps, "data_source": splits.source,
                                                     **({"data_content": splits.content_options} if splits.content_options else {})}, seed=seed,
                    timings={"train": report.seconds})
    return TrainedModel(model, {"kind": kind, "seed": seed, "val_acc": report.final_val_accuracy, "checkpoint": str(folder), "cached": False,
                                "reset": model.info.reset, "config": model_cfg, "train_seconds": report.seconds, **defence_fields(to_jsonable(report))})


def adopt_other_precision(kind: str, splits: Any, model_cfg: Any, settings: Any, seed: int, steps: int | None, cache: Path,
                          folder: Path) -> Path | None:
    """Write the checkpoint ``folder`` of a model with ``model_cfg`` from a cached model that differs
    only in its weight precision (``weight_bits``) when that model's training record vouches that
    both trainings are the same computation (``nmprivacy.models.weight_grid``: every layer's widest
    weight stayed within the narrower precision's mantissa), so the weights are the ones this
    training would produce, to the bit; the record names the source (``weights_from``). Returns the
    source folder, or None (no such model: train)."""
    from nmprivacy.models import build, checkpoint
    from nmprivacy.models.weight_grid import same_training_bits
    from nmprivacy.network.loihi import WEIGHT_BITS, mantissa_high

    bits = getattr(model_cfg, "weight_bits", None)
    if bits is None:
        return None
    for other in sorted(WEIGHT_BITS, reverse=True):
        if other == bits:
            continue
        source = model_folder(cache, kind, splits, replace(model_cfg, weight_bits=other), settings, seed, steps)
        if not (source / "config.json").exists():
            continue
        try:
            info = checkpoint.load_info(source)
            widest = (info.get("train_report") or {}).get("weight_grid")
            if bits not in same_training_bits(widest, other):
                continue
            trained = checkpoint.load(source, kind)
        except CheckpointError:
            continue
        model = build(kind, model_cfg)
        model.load_state_dict(trained.state_dict())
        # what trained the weights (code, machine, its time) is the source's; a source that was itself
        # adopted names the model that trained them
        kept = ("val_acc", "train_report", "dataset", "steps", "data_source", "data_content", "versions", "machine", "timings_s")
        origin = info.get("weights_from") or {"checkpoint": str(source), "weight_bits": other}
        narrow = min(bits, other)
        why = (f"every layer's widest weight stayed within {max(widest)} steps of slayer's finest grid throughout that training, "
               f"inside the {narrow}-bit mantissa (at most {mantissa_high(narrow)}), so training at {bits} bits is the same computation")
        checkpoint.save(model.eval(), folder, seed=seed, extra={
            **{k: info[k] for k in kept if k in info},
            "weights_from": {"checkpoint": origin["checkpoint"], "weight_bits": origin["weight_bits"], "widest_mantissa": max(widest), "why": why}})
        tqdm.write(f"{kind} (seed {seed}) at {bits}-bit weights: the same training as the cached {other}-bit model {source} "
                   f"(widest weight {max(widest)} steps); its weights reused")
        return source
    return None


def trained_by_code(info: dict[str, Any]) -> dict[str, Any]:
    """Which code trained a cached model, from its run record: ``nmprivacy-source`` (None in
    records older than the fingerprint), ``torch_threads`` (threads change the summation order,
    so the last digits of a training), and ``same_code``: whether that is the code running now
    (None when the record does not say)."""
    source = (info.get("versions") or {}).get("nmprivacy-source")
    return {"nmprivacy-source": source, "torch_threads": (info.get("machine") or {}).get("torch_threads"),
            "same_code": None if source is None else source == source_version()["nmprivacy-source"]}


WEAK_FACTOR = 2.0  # a model is too weak to judge below this multiple of chance accuracy (1 / classes)
EVALUATOR_ATTEMPTS = 3  # trainings of one evaluator, the first included, before a collapsed one is kept (and its attacks marked invalid)
REPLACEMENT_SEED_STRIDE = 10_000  # a collapsed evaluator of seed s is replaced by seed s + 10000, then s + 20000: outside every set's own seeds


def too_weak(val_acc: float | None, num_classes: int) -> bool:
    """Whether a model at validation accuracy ``val_acc`` is too weak to judge (below
    ``WEAK_FACTOR`` x chance for ``num_classes`` classes); a model without one is not."""
    return val_acc is not None and val_acc < WEAK_FACTOR / num_classes


def train_evaluators(kind: str, splits: Any, preset: Preset, n: int, seed: int, steps: int | None, cache: Path, budget: Budget = "default",
                     device: str = "cpu") -> list[TrainedModel]:
    """``n`` independently trained evaluation classifiers of ``kind`` (seeds ``seed + 1 ... seed + n``).

    An evaluator is the audit's measuring instrument, not what it audits: one whose training
    collapsed (too weak to judge, ``too_weak``: say a CNN whose ReLUs all died, at chance) is
    replaced by a fresh training of seed ``s + REPLACEMENT_SEED_STRIDE`` (then ``+ 2 x``), at most
    ``EVALUATOR_ATTEMPTS`` trainings in all. Its record keeps what it replaced (``replaces``: seed
    and validation accuracy of each collapsed training), which the report names; if every attempt
    collapses, the last is kept and the audit marks its attack rows invalid as before."""
    judges = []
    for i in range(n):
        first = seed + 1 + i
        judge = train_or_load(kind, splits, preset, first, steps, cache, budget, device)
        collapsed: list[dict[str, Any]] = []
        while too_weak(judge.record.get("val_acc"), splits.num_classes) and len(collapsed) + 1 < EVALUATOR_ATTEMPTS:
            collapsed.append({"seed": judge.record["seed"], "val_acc": judge.record["val_acc"]})
            replacement = first + REPLACEMENT_SEED_STRIDE * len(collapsed)
            tqdm.write(f"evaluator {i + 1} ({kind}, seed {judge.record['seed']}) collapsed to {100 * judge.record['val_acc']:.1f} % "
                       f"validation accuracy (below {WEAK_FACTOR:g}x chance): training seed {replacement} in its place")
            judge = train_or_load(kind, splits, preset, replacement, steps, cache, budget, device)
        if collapsed:
            judge.record["replaces"] = collapsed
        judges.append(judge)
    return judges


def evaluator_kind(data_domain: str) -> str:
    """The evaluation classifier of a data set: the image CNN for image data (one judge for SNN
    and ANN attacks alike; spike reconstructions are rate-decoded for it), the spiking CNN for
    event data."""
    return "evaluator" if data_domain == "image" else "evaluator-snn"
