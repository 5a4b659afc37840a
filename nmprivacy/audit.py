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

import json

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from nmprivacy.attacks import get_attack
from nmprivacy.attacks.base import Inversion
from nmprivacy.attacks.io import save_inversion
from nmprivacy.cache import cache_root
from nmprivacy.errors import NmprivacyError
from nmprivacy.evaluation.diagnostics import data_density, diagnose
from nmprivacy.evaluation.scoring import redraw_spread, score, summarize, target_confidence, target_confidences
from nmprivacy.models.base import TargetModel
from nmprivacy.progress import bar
from nmprivacy.results import AttackResult, AuditResult
from nmprivacy.presets import AUDIT_VARIANT, Budget, Preset, Variant, family_of, resolve
from nmprivacy.runinfo import Stopwatch, atomic_dir, atomic_write_json, run_metadata, to_jsonable

from nmprivacy.trained import SNN_KINDS, WEAK_FACTOR, TrainedModel, evaluator_kind, too_weak, train_evaluators, train_or_load


@dataclass(frozen=True)
class AuditConfig:
    """Everything one audit run depends on (recorded in results.json under ``config``)."""

    dataset: str = "digits"
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)  # loader options (limit_train, ...)
    out: str = "runs/audit"
    seeds: int = 1  # attack repeats (seed, seed + 1, ...)
    evaluators: int = 3  # independently trained evaluation classifiers per input form
    target: str = "snn-lava"  # a target kind (snn-lava, snn-lava-conv, snn-norse), a NetX file, a NIR graph or a checkpoint folder
    dt: float | None = None  # time step (s) of a NIR target (None: 1 ms)
    budget: Budget = "default"
    variant: Variant = AUDIT_VARIANT  # attack settings (nmprivacy.presets.attack_variant); auto also runs bl-auto (attack_plan)
    hardware: bool = False
    lava_samples: int | None = None  # --hardware: inputs run on Lava in each check (None: all; --quick: 20)
    seed: int = 0
    hidden: int | None = None  # override the preset's hidden size (tests, small runs)
    redraws: int = 0  # BL-v2: paper's ± over this many Bernoulli re-draws of X_p (0: off)
    cache: str | None = None  # trained-model cache folder (None: nmprivacy.cache.cache_root())
    # torch threads for the whole audit; None keeps torch's default (all cores). On an idle machine
    # more threads are faster; on a loaded one every multi-threaded op waits at OpenMP barriers for
    # descheduled peers, which makes training and attacks far slower: pass --threads 1 there
    # (README "The audit" has measured times).
    threads: int | None = None
    # the attacks to run (None: select_attacks' default for the data set and target)
    attacks: tuple[str, ...] | None = None
    # preset fields replaced by dotted name (``{"bl_v2.lr": 0.1, "snn_train.epochs": 3}``;
    # ``nmprivacy.presets.with_overrides``), applied after ``variant``: what ``nmprivacy study`` varies
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"  # where models train (nmprivacy.training.resolve_device); not part of a model's cache key
    references: int | None = None  # membership attacks: reference models (None: nmprivacy mia's default, 16; --quick 4)


def load_foreign_target(spec: str, splits: Any, dt: float | None = None, overrides: dict[str, Any] | None = None) -> tuple[TrainedModel, Any, int]:
    """A user's network (NetX file, NIR graph, checkpoint folder) as the audit target, reading the
    data set's layout, with its accuracy here; returns it, its ``nmprivacy.targets.Target`` and
    the T it is attacked with (``--set steps=N``, else its own, else the data set's preset)."""
    from nmprivacy.targets import choose_steps, fit_to_data, load_target
    from nmprivacy.training import evaluate_accuracy

    target = fit_to_data(load_target(spec, dt=dt), splits.input_shape, splits.num_classes, splits.name)
    steps = choose_steps(None, target, splits.name, overrides) if splits.domain == "image" else int(splits.train.x.shape[1])
    model = target.model.freeze()
    acc = evaluate_accuracy(model, splits.test, steps, seed=0)
    record: dict[str, Any] = {"kind": model.info.kind, "file": str(spec), "val_acc": acc, "reset": model.info.reset, "steps": steps}
    if target.meta.get("training"):  # what the checkpoint or file says of its training: reported as declared, not verified
        record.update(target.meta["training"], training_declared=True)
    network = model.network()
    if network is not None:
        record.update(network=network.describe(), notes=list(network.notes))
    if target.float_model is not None:
        float_model = fit_to_data(replace(target, model=target.float_model), splits.input_shape, splits.num_classes, splits.name).model
        record["float_val_acc"] = evaluate_accuracy(float_model, splits.test, steps, seed=0)
        record["dt"] = target.meta.get("dt")
    return TrainedModel(model, record), target, steps


def weak_models(models: dict[str, TrainedModel], judges: list[TrainedModel], num_classes: int) -> dict[str, str]:
    """Role (``target``, ``ann``, ``evaluator 2``, ...) -> one-line reason, for every model whose
    validation accuracy is below ``WEAK_FACTOR`` x chance."""
    floor = WEAK_FACTOR / num_classes
    named = [(role, tm) for role, tm in models.items()] + [(f"evaluator {i + 1}", tm) for i, tm in enumerate(judges)]
    out = {}
    for role, tm in named:
        acc = tm.record.get("val_acc")
        if too_weak(acc, num_classes):
            out[role] = (f"the {role} ({tm.record.get('kind')}) reaches {100 * acc:.1f} % validation accuracy, below {WEAK_FACTOR:g}x chance "
                         f"({100 * floor:.1f} %): it is too weak to judge")
    return out


def attack_plan(preset: Preset, data_domain: str, config: AuditConfig) -> list[tuple[str, str, Any]]:
    """(attack name, model role, settings) of every attack the audit runs, read off the attack
    registry (``AttackInfo``): the attacks of the spiking target, and those of the ANN baseline
    when the preset trains one on image data; by default those whose ``plan`` is "always", plus
    the "loihi" ones on targets that run bit-exactly on Loihi (snn-lava, NetX files); with
    ``config.attacks``, exactly the attacks named there, plus ``bl-auto`` under the ``auto``
    variant when BL-v1 or BL-v2 is named (the ensemble over all their variants)."""
    from nmprivacy.attacks import attack_infos

    from nmprivacy.membership import MEMBERSHIP_ATTACKS

    ann = preset.ann_baseline and data_domain == "image"
    available = {name: info for name, info in attack_infos().items() if info.model == "target" or (info.model == "ann" and ann)}
    if config.attacks is None:
        loihi = config.target == "snn-lava" or str(config.target).endswith((".net", ".h5", ".hdf5"))
        names = [n for n, info in available.items() if info.plan == "always" or (info.plan == "loihi" and loihi)]
    else:
        unknown = [a for a in config.attacks if a not in available and a not in MEMBERSHIP_ATTACKS]
        if unknown or not config.attacks:
            raise NmprivacyError(f"--attacks {','.join(unknown) or '(empty)'} cannot run in this audit: choose from "
                                 f"{','.join([*available, *MEMBERSHIP_ATTACKS])}")
        asked = set(config.attacks)
        if config.variant == "auto" and asked & {"bl-v1", "bl-v2"} and "bl-auto" in available:
            asked.add("bl-auto")  # auto: no variant is chosen, every one runs (its members are the fixed attacks' runs)
        names = [n for n in available if n in asked]
    return [(n, available[n].model, preset.group(available[n].settings)) for n in names]


def check_training_settings(config: AuditConfig) -> None:
    """Refuse, in one line, ``snn_train`` settings on an audit that trains no SNN: a loaded target
    (file or checkpoint) is not trained again (``presets.check_loaded_target``). Membership attacks
    train reference models with them, so there they apply."""
    from nmprivacy.presets import check_loaded_target

    if config.target not in SNN_KINDS and not membership_attacks(config):
        check_loaded_target(config.target, config.overrides, ", or add membership attacks (--attacks lira,rmia,loss), whose reference models train with it")


def run_audit(config: AuditConfig) -> dict[str, Any]:
    """Run the whole audit described by ``config``; returns the results dict also written to disk."""
    from nmprivacy.attacks.common import torch_threads

    if config.seeds < 1 or config.evaluators < 1 or (config.threads is not None and config.threads < 1):
        raise NmprivacyError("--seeds, --evaluators and --threads must be at least 1")
    check_training_settings(config)
    from nmprivacy.training import resolve_device

    resolve_device(config.device)  # a missing GPU is one line before any work
    with torch_threads(config.threads or torch.get_num_threads()):
        return _run_audit(config)


def _run_audit(config: AuditConfig) -> dict[str, Any]:
    """The audit, built in a temporary folder that takes ``config.out``'s place when it is done
    (an audit that fails leaves nothing behind; a finished one replaces an older one)."""
    with atomic_dir(config.out) as out:
        results = _audit_into(config, out)
    results_path = Path(config.out) / "results.json"
    return json.loads(results_path.read_text()) if results_path.is_file() else results


def audit_models(config: AuditConfig, splits: Any, preset: Preset, plan: list[tuple[str, str, Any]]
                 ) -> tuple[dict[str, TrainedModel], Any, int, str, list[TrainedModel]]:
    """The models an audit of ``config`` attacks and judges with: (``{"target": ..., "ann": ...}``
    (the ANN when ``plan`` attacks it), the ``nmprivacy.targets.Target`` of a user's own network or
    None, the T attacks run at, the evaluator kind, the evaluators), each trained or loaded from the
    model cache."""
    steps = preset.steps
    train_steps = steps if splits.domain == "image" else None  # event data keep their own T
    cache = cache_root(config.cache)
    models: dict[str, TrainedModel] = {}
    foreign = None
    if config.target in SNN_KINDS:
        models["target"] = train_or_load(config.target, splits, preset, config.seed, train_steps, cache, config.budget, config.device)
    elif Path(config.target).exists():
        models["target"], foreign, steps = load_foreign_target(config.target, splits, config.dt, config.overrides)
    else:
        raise NmprivacyError(
            f"--target '{config.target}' is neither a target kind ({', '.join(SNN_KINDS)}) nor an existing NetX file, NIR graph or checkpoint folder"
        )
    if any(role == "ann" for _, role, _ in plan):
        models["ann"] = train_or_load("ann", splits, preset, config.seed, None, cache, config.budget, config.device)
    judge_kind = preset.evaluator or evaluator_kind(splits.domain)
    judges = train_evaluators(judge_kind, splits, preset, config.evaluators, config.seed, train_steps, cache, config.budget, config.device)
    return models, foreign, steps, judge_kind, judges


def _audit_into(config: AuditConfig, out: Path) -> dict[str, Any]:
    from nmprivacy.data import load_dataset
    from nmprivacy.report import write_report

    sw = Stopwatch()
    with sw("data"):
        splits = load_dataset(config.dataset, root=config.data_root, **config.data_options)
    preset = resolve(config.dataset, config.budget, config.variant, config.hidden, config.overrides)
    plan = attack_plan(preset, splits.domain, config)
    if config.attacks is not None and "bl-auto" not in config.attacks and any(name == "bl-auto" for name, _, _ in plan):
        tqdm.write("variant auto: bl-auto runs beside BL-v1/BL-v2 (every variant, per class; --variant default runs only the attacks named)")
    classes = list(range(splits.num_classes))

    with sw("train"):
        models, foreign, steps, judge_kind, judge = audit_models(config, splits, preset, plan)

    weak = weak_models(models, judge, splits.num_classes)
    for why in weak.values():
        tqdm.write(f"warning: {why}; its attack rows are marked invalid (train longer, or pass --allow-weak to accept them)")
    attacks: dict[str, AttackResult] = {}
    first: dict[str, Inversion] = {}
    shared = ensemble_members(plan)  # fixed attacks that bl-auto runs as members: run once, reported twice
    runs: dict[str, list[Inversion]] = {member: [] for member in shared.values()}
    with sw("attacks"):
        for name, role, settings in sorted(plan, key=lambda p: p[0] != "bl-auto"):  # the ensemble first, its members kept
            reasons = [why for who, why in weak.items() if who == role or who.startswith("evaluator")]
            member = shared.get(name)
            attacks[name], first[name] = run_attack(name, role, settings, models[role].model, judge, judge_kind, classes, steps, config, reasons,
                                                    splits, given=runs[member] if member else None, keep=runs if name == "bl-auto" else None,
                                                    given_by=f"bl-auto/{member}" if member else None)
            save_inversion(out / f"inversion-{name}.pt", first[name])
    attacks = {name: attacks[name] for name, _, _ in plan}  # the plan's order

    result = AuditResult(
        dataset=splits.name, family=family_of(config.dataset), domain=splits.domain, classes=list(splits.classes),
        data_source=splits.source, budget=config.budget, variant=config.variant, seeds=[config.seed + r for r in range(config.seeds)],
        steps=steps, models={**{role: tm.record for role, tm in models.items()}, "evaluators": [tm.record for tm in judge]},
        attacks=attacks, weak_models=weak,
    )
    if config.hardware:
        with sw("hardware"):
            result.hardware = hardware_check(foreign or models["target"].model, splits, steps, out, config)
    membership = membership_attacks(config)
    if membership:
        with sw("membership"):
            result.membership = membership_check(membership, out, config)
    result.record = run_metadata(config=config, seed=config.seed, timings=sw.seconds)
    results = result.to_json()  # the report reads exactly what results.json holds
    with sw("report"):
        write_report(out, results, first, list(splits.classes), events=splits.domain == "events")
    result.record["timings_s"] = to_jsonable(sw.seconds)
    results = result.to_json()
    atomic_write_json(out / "results.json", results)
    return results


def ensemble_members(plan: list[tuple[str, str, Any]]) -> dict[str, str]:
    """Fixed attack of ``plan`` -> the member of the plan's ``bl-auto`` that runs exactly it (same
    attack and settings: bit for bit the same run, tests/test_auto.py), for the fixed attacks that
    have one. The audit runs each such attack once, inside the ensemble, and scores it as both."""
    from nmprivacy.attacks.auto import member_running

    auto = next((settings for name, role, settings in plan if name == "bl-auto" and role == "target"), None)
    if auto is None:
        return {}
    found = {name: member_running(auto, name, settings) for name, role, settings in plan if role == "target" and name in ("bl-v1", "bl-v2")}
    return {name: member for name, member in found.items() if member is not None}


def run_attack(
    name: str, role: str, settings: Any, target: TargetModel, judge: list[TrainedModel], judge_kind: str, classes: list[int], steps: int,
    config: AuditConfig, reasons: list[str], splits: Any = None, given: list[Inversion] | None = None,
    keep: dict[str, list[Inversion]] | None = None, given_by: str | None = None,
) -> tuple[AttackResult, Inversion]:
    """Attack ``name`` on ``target`` for every class over the audit's seeds, scored by every
    evaluator; the summary and the first seed's inversion (kept for the report's figures).
    ``given``: the attack's inversions per seed, already run (by ``given_by``, an ensemble member
    that is this attack bit for bit); ``keep``: member name -> list, filled with an ensemble's
    member inversions per seed."""
    table, confs, iters, spi, first = [], [], [], [], None
    part_tables: dict[str, list[list[dict[str, float]]]] = {}  # an ensemble's members, each scored as the attack it is
    for r in bar(range(config.seeds), desc=f"{name} seeds", leave=False, quiet=config.seeds == 1):
        seed = config.seed + r
        options = {"steps": steps} if target.info.domain == "spikes" else {}
        attack = get_attack(name, settings, **options)
        if given is not None:
            inv = given[r]
            tqdm.write(f"attack {name} on {role} ({target.info.kind}), seed {seed}: the run of {given_by}")
        else:
            tqdm.write(f"attack {name} on {role} ({target.info.kind}), seed {seed}")
            if splits is not None:
                attack.prepare(splits)  # public statistics of the domain, for attacks that may use them
            inv = attack.run(target, classes, seed=seed)
        for member, kept in (keep or {}).items():
            kept.append(inv.members[member].inversion)  # type: ignore[attr-defined]
        table.append([score(e.model, inv.reconstructions, classes, seed, steps) for e in judge])
        for part, recon in attack.parts(inv).items():
            part_tables.setdefault(part, []).append([score(e.model, recon, classes, seed, steps) for e in judge])
        confs.append(target_confidence(target, inv, seed))
        iters.append(inv.iterations)
        spi.append(inv.seconds_per_iteration)
        first = first or inv
    oracle = first.config.get("oracle")
    extra: dict[str, Any] = attack.summarise(first, [e.model for e in judge], classes, config.seed, steps)  # e.g. a query attack's leakage vs queries
    if target.info.domain == "spikes" and splits is not None:  # degenerate reconstructions are reported, never silent
        shown = first.probabilities if first.probabilities is not None else first.reconstructions
        extra["diagnostics"] = diagnose(shown, target_confidences(target, first, config.seed), first.classes, data_density(splits), target.info.num_classes)
    if part_tables:
        extra["parts"] = {part: summarize(rows) for part, rows in part_tables.items()}
    if given_by is not None:
        extra["run_by"] = given_by
    if config.redraws > 0 and first.probabilities is not None:
        extra.update(redraw_spread(judge[0].model, first.probabilities, classes, config.redraws, config.seed))
    summary = AttackResult(
        scores=summarize(table), model=role, evaluator_kind=judge_kind,
        iterations=iters[0] if len(set(iters)) == 1 else sum(iters) / len(iters),
        seconds_per_iteration=sum(spi) / len(spi), target_confidence=sum(confs) / len(confs),
        per_seed=[{"seed": config.seed + r, "evaluators": row, "target_confidence": confs[r], "iterations": iters[r]} for r, row in enumerate(table)],
        settings=settings, oracle=oracle, valid=not reasons, invalid_reason="; ".join(reasons) or None, extra=extra,
    )
    return summary, first


def membership_attacks(config: AuditConfig) -> tuple[str, ...]:
    """The membership attacks (``nmprivacy.membership``) named in ``config.attacks``."""
    from nmprivacy.membership import MEMBERSHIP_ATTACKS

    return tuple(a for a in config.attacks or () if a in MEMBERSHIP_ATTACKS)


def membership_check(attacks: tuple[str, ...], out: Path, config: AuditConfig) -> dict[str, Any]:
    """``nmprivacy mia`` with the audit's data, target, budget and settings, written into
    ``out/membership`` (mia.json, mia.md, roc.png); returns its mia.json content."""
    from nmprivacy.mia import MiaConfig, run_mia

    return run_mia(MiaConfig(
        dataset=config.dataset, target=config.target, out=str(out / "membership"), attacks=attacks, budget=config.budget, hidden=config.hidden,
        references=config.references,
        overrides=config.overrides, data_root=config.data_root, data_options=config.data_options, workers=0, threads=config.threads,
        seed=config.seed, cache=config.cache, dt=config.dt,
    ))


def hardware_check(model: Any, splits: Any, steps: int, out: Path, config: AuditConfig) -> dict[str, Any]:
    """``nmprivacy.validation.validate`` of the target (a model, or a user's ``Target``): NetX
    export fidelity on the Lava simulator and the spiking reconstructions run on Lava (writes
    validation.json/.md, and model.net for an exported target, into ``out``)."""
    from nmprivacy.validation import validate

    spiking_runs = any(out.glob("inversion-bl-v*.pt"))  # validate reads every spiking inversion-*.pt in out
    # a --quick smoke run checks a few inputs; otherwise 100 test inputs and draws per class, all on Lava
    samples, lava_samples = (10, 20) if config.budget == "quick" else (100, None)
    if config.lava_samples is not None:
        lava_samples = config.lava_samples
    result = validate(model, splits, inversion=out if spiking_runs else None, samples=samples, lava_samples=lava_samples,
                      steps=steps, out=out, seed=config.seed, recorded_out=config.out)
    return to_jsonable(result)
