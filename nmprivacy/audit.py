"""The privacy audit: train (or reuse) target, ANN baseline and evaluators, run every attack on
every class, score, and write ``results.json``, ``inversion-<attack>.pt`` and ``report.md``.

``results.json`` keys (a stable contract): ``dataset``, ``family``, ``domain``, ``classes``,
``budget``, ``seeds``, ``models`` (``target``, ``ann``, ``evaluators``: kind, ``val_acc``, ...),
``attacks.<name>`` with ``attack_acc``, ``top3_acc``, ``avg_conf``, ``daa`` (fractions),
``<metric>_std`` across seeds when ``seeds > 1``, ``<metric>_evaluator_std`` across evaluators,
``iterations``, ``seconds_per_iteration``, ``target_confidence``; optional ``hardware``; plus
``runinfo.run_metadata`` (``config``, ``seed``, ``versions``, ``machine``, ``timings_s``, ``created``).
``inversion-<attack>.pt`` (see ``nmprivacy.attacks.io``) and the report's figures hold the first
seed's run. Trained models are cached as checkpoint folders keyed by data set, kind, config,
schedule, seed and T (``cache_key``), so a second audit only attacks and scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from nmprivacy.attacks import get_attack
from nmprivacy.attacks.base import Inversion
from nmprivacy.attacks.io import save_inversion
from nmprivacy.cache import cache_key, cache_root
from nmprivacy.errors import CheckpointError, NmprivacyError
from nmprivacy.evaluation.scoring import redraw_spread, score, summarize, target_confidence
from nmprivacy.models.base import TargetModel
from nmprivacy.presets import Budget, Preset, family_of, preset_for, reference_variant
from nmprivacy.runinfo import Stopwatch, atomic_write_json, run_metadata, to_jsonable

SNN_KINDS = ("snn-lava", "snn-norse")


@dataclass(frozen=True)
class AuditConfig:
    """Everything one audit run depends on (recorded in results.json under ``config``)."""

    dataset: str = "digits"
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)  # loader options (limit_train, ...)
    out: str = "runs/audit"
    seeds: int = 1  # attack repeats (seed, seed + 1, ...)
    evaluators: int = 3  # independently trained evaluation classifiers per input form
    target: str = "snn-lava"  # snn-lava, snn-norse or a NetX file (*.net / *.h5)
    budget: Budget = "default"
    variant: Literal["paper", "reference"] = "paper"
    hardware: bool = False
    seed: int = 0
    hidden: int | None = None  # override the preset's hidden size (tests, small runs)
    redraws: int = 0  # BL-v2: paper's ± over this many Bernoulli re-draws of X_p (0: off)
    cache: str | None = None  # trained-model cache folder (None: nmprivacy.cache.cache_root())
    # torch threads for the whole audit; None keeps torch's default (all cores). Measured on 2
    # cores: idle, the default digits audit takes 30 s with 2 threads vs 45 s with 1; on a loaded
    # machine (load ~4) 2 threads made training 6x and attacks 4-100x slower (OpenMP barriers
    # waiting for a descheduled peer): pass --threads 1 there.
    threads: int | None = None
    # the attacks to run (None: select_attacks' default for the data set and target)
    attacks: tuple[str, ...] | None = None


@dataclass
class TrainedModel:
    """A model ready for the audit and what the results file says about it."""

    model: TargetModel
    record: dict[str, Any]


def train_or_load(kind: str, splits: Any, preset: Preset, seed: int, steps: int | None, cache: Path, budget: Budget = "default") -> TrainedModel:
    """The ``kind`` model for ``splits``: from the cache folder ``cache`` when its key (data set,
    kind, config, schedule, seed, T) matches, else trained with ``training.train_model`` and cached."""
    from nmprivacy.models import checkpoint, default_config
    from nmprivacy.training import settings_for, train_model

    model_cfg = default_config(kind, splits.input_shape, splits.num_classes, dataset=splits.name, hidden=preset.hidden, budget=budget)
    settings = settings_for(kind, preset)
    key = cache_key(dataset=splits.name, source=splits.source, n=[len(splits.train), len(splits.test)], kind=kind,
                    config=model_cfg, settings=settings, seed=seed, steps=steps)
    folder = cache / f"{splits.name}-{kind}-s{seed}-{key}"
    if (folder / "config.json").exists():
        try:
            model = checkpoint.load(folder, kind)
            info = checkpoint.load_info(folder)
        except CheckpointError as exc:
            tqdm.write(f"cached {kind} in {folder} is unusable ({exc}); training it again")
        else:
            tqdm.write(f"reusing cached {kind} (seed {seed}) from {folder}")
            return TrainedModel(model, {"kind": kind, "seed": seed, "val_acc": info.get("val_acc"), "checkpoint": str(folder), "cached": True,
                                        "reset": model.info.reset, "config": model_cfg})
    tqdm.write(f"training {kind} (seed {seed}) on {splits.name}")
    model, report = train_model(kind, splits, model_cfg, settings, seed, steps=steps)
    checkpoint.save(model, folder, extra={"val_acc": report.final_val_accuracy, "train_report": report, "dataset": splits.name, "steps": report.steps, "data_source": splits.source}, seed=seed,
                    timings={"train": report.seconds})
    return TrainedModel(model, {"kind": kind, "seed": seed, "val_acc": report.final_val_accuracy, "checkpoint": str(folder), "cached": False,
                                "reset": model.info.reset, "config": model_cfg, "train_seconds": report.seconds})


def train_evaluators(kind: str, splits: Any, preset: Preset, n: int, seed: int, steps: int | None, cache: Path, budget: Budget = "default") -> list[TrainedModel]:
    """``n`` independently trained evaluation classifiers of ``kind`` (seeds ``seed + 1 ... seed + n``)."""
    return [train_or_load(kind, splits, preset, seed + 1 + i, steps, cache, budget) for i in range(n)]


def load_netx_target(path: str, splits: Any, steps: int) -> TrainedModel:
    """A user's NetX file as the audit target (Loihi fixed-point emulation), with its accuracy here."""
    if not Path(path).is_file():
        raise NmprivacyError(f"NetX file {path} not found: pass an existing file (create one with `nmprivacy export`)")
    from hw_export.netx_emulation import load_netx
    from nmprivacy.training import evaluate_accuracy

    model = load_netx(path)
    n_in, model_in = math.prod(splits.input_shape), math.prod(model.info.input_shape)
    if model_in != n_in or model.info.num_classes != splits.num_classes:
        raise NmprivacyError(
            f"NetX file {path} takes {model_in} inputs / {model.info.num_classes} classes but '{splits.name}' has {n_in} / {splits.num_classes}: "
            "audit it on the data set it was trained for (--dataset)"
        )
    acc = evaluate_accuracy(model, splits.test, steps, seed=0)
    return TrainedModel(model, {"kind": model.info.kind, "file": str(path), "val_acc": acc, "reset": model.info.reset})


def evaluator_kind(data_domain: str) -> str:
    """The evaluation classifier of a data set: the image CNN for image data (one judge for SNN
    and ANN attacks alike; spike reconstructions are rate-decoded for it), the spiking CNN for
    event data."""
    return "evaluator" if data_domain == "image" else "evaluator-snn"


def attack_plan(preset: Preset, data_domain: str) -> list[tuple[str, str, Any]]:
    """(attack name, model role, settings) of every attack the audit runs for a data set."""
    plan = [("bl-v1", "target", preset.bl_v1), ("bl-v2", "target", preset.bl_v2)]
    if preset.ann_baseline and data_domain == "image":
        plan.append(("mi-face", "ann", preset.mi_face))
    return plan


def select_attacks(plan: list[tuple[str, str, Any]], preset: Preset, config: AuditConfig) -> list[tuple[str, str, Any]]:
    """``plan`` plus the query attack ``bl-v2-query`` (emulation oracle, the preset's query
    budget) on targets that run bit-exactly on Loihi (snn-lava, NetX files), cut to
    ``config.attacks`` when given (which may also ask for the query attack on other targets)."""
    full = plan + [("bl-v2-query", "target", preset.bl_v2_query)]
    if config.attacks is None:
        loihi = config.target == "snn-lava" or str(config.target).endswith((".net", ".h5", ".hdf5"))
        return full if loihi else plan
    names = [n for n, _, _ in full]
    unknown = [a for a in config.attacks if a not in names]
    if unknown or not config.attacks:
        raise NmprivacyError(f"--attacks {','.join(unknown) or '(empty)'} cannot run in this audit: choose from {','.join(names)}")
    return [entry for entry in full if entry[0] in config.attacks]


def run_audit(config: AuditConfig) -> dict[str, Any]:
    """Run the whole audit described by ``config``; returns the results dict also written to disk."""
    from nmprivacy.attacks.common import torch_threads

    if config.seeds < 1 or config.evaluators < 1 or (config.threads is not None and config.threads < 1):
        raise NmprivacyError("--seeds, --evaluators and --threads must be at least 1")
    with torch_threads(config.threads or torch.get_num_threads()):
        return _run_audit(config)


def _run_audit(config: AuditConfig) -> dict[str, Any]:
    from nmprivacy.data import load_dataset
    from nmprivacy.report import write_report

    sw = Stopwatch()
    out = Path(config.out)
    with sw("data"):
        splits = load_dataset(config.dataset, root=config.data_root, **config.data_options)
    preset = preset_for(config.dataset, config.budget)
    if config.variant == "reference":
        preset = reference_variant(config.dataset, preset)
    if config.hidden is not None:
        preset = replace(preset, hidden=config.hidden)
    steps = preset.steps
    train_steps = steps if splits.domain == "image" else None  # event data keep their own T
    plan = select_attacks(attack_plan(preset, splits.domain), preset, config)
    classes = list(range(splits.num_classes))

    models: dict[str, TrainedModel] = {}
    cache = cache_root(config.cache)
    with sw("train"):
        if config.target in SNN_KINDS:
            models["target"] = train_or_load(config.target, splits, preset, config.seed, train_steps, cache, config.budget)
        elif config.target.endswith((".net", ".h5", ".hdf5")):
            models["target"] = load_netx_target(config.target, splits, steps)
        else:
            raise NmprivacyError(f"--target '{config.target}' is neither {' nor '.join(SNN_KINDS)} nor a NetX file (*.net)")
        if any(role == "ann" for _, role, _ in plan):
            models["ann"] = train_or_load("ann", splits, preset, config.seed, None, cache, config.budget)
        judge_kind = evaluator_kind(splits.domain)
        judge = train_evaluators(judge_kind, splits, preset, config.evaluators, config.seed, train_steps, cache, config.budget)

    attacks: dict[str, dict[str, Any]] = {}
    first: dict[str, Inversion] = {}
    with sw("attacks"):
        for name, role, settings in plan:
            target = models[role].model
            table, confs, iters, spi = [], [], [], []
            for r in tqdm(range(config.seeds), desc=f"{name} seeds", leave=False, disable=config.seeds == 1):
                seed = config.seed + r
                options = {"steps": steps} if target.info.domain == "spikes" else {}
                tqdm.write(f"attack {name} on {role} ({target.info.kind}), seed {seed}")
                inv = get_attack(name, settings, **options).run(target, classes, seed=seed)
                table.append([score(e.model, inv.reconstructions, classes, seed, steps) for e in judge])
                confs.append(target_confidence(target, inv, seed))
                iters.append(inv.iterations)
                spi.append(inv.seconds_per_iteration)
                first.setdefault(name, inv)
            summary = summarize(table)
            summary.update(
                model=role,
                evaluator_kind=judge_kind,
                iterations=iters[0] if len(set(iters)) == 1 else sum(iters) / len(iters),
                seconds_per_iteration=sum(spi) / len(spi),
                target_confidence=sum(confs) / len(confs),
                per_seed=[{"seed": config.seed + r, "evaluators": row, "target_confidence": confs[r], "iterations": iters[r]} for r, row in enumerate(table)],
                settings=settings,
            )
            if getattr(first[name], "trace", None) is not None:  # query attacks: the first seed's leakage vs queries
                from nmprivacy.evaluation.leakage import leakage_curve

                summary.update(queries=first[name].queries, oracle=first[name].oracle, threat=first[name].threat,
                               leakage_vs_queries=leakage_curve([e.model for e in judge], first[name].trace, classes, config.seed, steps))
            if config.redraws > 0 and first[name].probabilities is not None:
                summary.update(redraw_spread(judge[0].model, first[name].probabilities, classes, config.redraws, config.seed))
            attacks[name] = summary
            save_inversion(out / f"inversion-{name}.pt", first[name])

    results: dict[str, Any] = {
        "dataset": splits.name,
        "family": family_of(config.dataset),
        "domain": splits.domain,
        "classes": list(splits.classes),
        "data_source": splits.source,
        "budget": config.budget,
        "variant": config.variant,
        "seeds": [config.seed + r for r in range(config.seeds)],
        "steps": steps,
        "models": {
            **{role: tm.record for role, tm in models.items()},
            "evaluators": [tm.record for tm in judge],
        },
        "attacks": attacks,
    }
    if config.hardware:
        with sw("hardware"):
            results["hardware"] = hardware_check(models["target"].model, splits, steps, out, config)
    results.update(run_metadata(config=config, seed=config.seed, timings=sw.seconds))
    results = to_jsonable(results)  # the report reads exactly what results.json holds
    atomic_write_json(out / "results.json", results)
    with sw("report"):
        write_report(out, results, first, list(splits.classes), events=splits.domain == "events")
    results["timings_s"] = to_jsonable(sw.seconds)
    atomic_write_json(out / "results.json", results)
    return results


def hardware_check(model: TargetModel, splits: Any, steps: int, out: Path, config: AuditConfig) -> dict[str, Any]:
    """``hw_export.validate`` of the target: NetX export fidelity on the Lava simulator and the
    BL-v1 / BL-v2 reconstructions run on Lava (writes validation.json/.md and model.net into ``out``)."""
    try:
        from hw_export import validate
    except ImportError as exc:
        raise NmprivacyError(f"--hardware needs the hw_export package ({exc}); reinstall nmprivacy with `make setup`") from None
    spiking_runs = any(out.glob("inversion-bl-v*.pt"))  # validate reads every spiking inversion-*.pt in out
    result = validate(model, splits, inversion=out if spiking_runs else None, steps=steps, out=out, seed=config.seed)
    return to_jsonable(result)
