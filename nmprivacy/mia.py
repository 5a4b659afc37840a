"""Membership inference (``nmprivacy mia``): train reference models on random halves of a
population on the Dask cluster, query every model at a threat level through an oracle (float
model, bit-exact Loihi emulation, or Lava), run the attacks of ``nmprivacy.membership`` and write
``mia.json``, ``mia.md``, ``roc.png`` and ``scores.npz`` (docs/method.md §9).

Population: the data set's training and test splits together (after ``limit_train`` /
``limit_test``). ``Z`` records of the test split (``population``; by default 10 % of the
population, at most 500 and at most half the test split, a quarter for a file target) are kept out of every model's training:
RMIA's population samples. The other records are audited: each of the ``N`` models (``--references``)
trains on its own random half of them (``nmprivacy.membership.protocol.random_halves``).

- A target *kind* (``snn-lava``, ``snn-norse``, ``ann``, ...): the N models are all of that kind;
  each in turn is the target and the other N - 1 its references (LiRA's protocol); the pairs of
  all N targets are pooled.
- A target *file* (NetX, NIR graph, checkpoint folder) trained elsewhere: it is the one target,
  its members assumed to be the data set's training split; the N models are its references,
  trained with nmprivacy's recipe for the same layer sizes (``reference_recipe``; the report says so).

Each reference model is one task (train or reuse it through ``nmprivacy.audit.train_or_load``,
then record its answers to every record's queries), cached under the model cache
(``mia-<data set>-<kind>-r<i>-<key>.pt`` beside the checkpoint folders), so an interrupted run
resumes where it stopped. ``mia.json``'s stable keys: ``attacks.<name>.auc``,
``attacks.<name>.tpr_at_fpr["0.001"|"0.01"]``, ``attacks.<name>.balanced_acc``, each with a
``<key>_ci`` sibling ``[lo, hi]`` (``tpr_at_fpr_ci`` a dict of them); ``target.train_acc``,
``target.test_acc``, ``references``, ``threat``, ``oracle``; plus ``runinfo.run_metadata``.
``scores.npz`` holds, per attack, ``<name>.scores``, ``<name>.members``, ``<name>.target`` (the
pooled pairs). Python API: ``run_mia(MiaConfig(...))``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from nmprivacy.cache import cache_key, cache_root, entry_path, load_entry, save_entry
from nmprivacy.errors import NmprivacyError
from nmprivacy.membership import MEMBERSHIP_ATTACKS, attack_settings, check_attacks, get_membership_attack
from nmprivacy.membership.metrics import FPR_TARGETS, fpr_key, summarize
from nmprivacy.membership.observables import (
    COUNT_TEMPERATURE, LABEL_SMOOTHING, THREATS, Observations, attacker_view, check_threat, encode_queries, engine_answer,
    logit_confidence, model_outputs, observe, queries_for, readout_logprob,
)
from nmprivacy.membership.protocol import Pooled, random_halves, leave_one_out, single_target
from nmprivacy.model_kinds import kinds_with
from nmprivacy.presets import Budget, preset_for, with_overrides
from nmprivacy.progress import bar as progress_bar
from nmprivacy.runinfo import Stopwatch, atomic_dir, atomic_write_json, atomic_write_text, run_metadata, to_jsonable

KINDS = (*kinds_with("target"), "ann")  # what --target may name as a kind
ORACLES = ("float", "emulation", "lava")
LOIHI_KINDS = ("snn-lava", "snn-lava-conv")  # kinds whose float model is Loihi's arithmetic
ENTRY_FORMAT = 1  # bump when a cached observation entry changes meaning


@dataclass(frozen=True)
class MiaConfig:
    """Everything one membership-inference run depends on (recorded in mia.json under ``config``).

    ``None`` fields take their defaults: ``references`` 16 (``quick`` budget: 4), ``threat``
    ``counts`` (image models: ``membrane``, their logits), ``oracle`` ``emulation`` for Loihi
    targets (snn-lava, NetX files, NIR graphs) else ``float``, ``queries`` 4 (quick: 2),
    ``population`` (Z) as the module docstring says, ``lava_check`` 16 records (quick: 8; 0: off)."""

    dataset: str = "digits"
    target: str = "snn-lava"
    out: str = "runs/mia"
    attacks: tuple[str, ...] = tuple(MEMBERSHIP_ATTACKS)
    references: int | None = None
    threat: str | None = None
    oracle: str | None = None
    queries: int | None = None
    count_temperature: float = COUNT_TEMPERATURE
    label_smoothing: float = LABEL_SMOOTHING
    budget: Budget = "default"
    hidden: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # preset fields by dotted name (snn_train.epochs, ...)
    attack_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # {"rmia": {"mode": "offline"}, ...}
    population: int | None = None
    bootstrap: int = 200
    lava_check: int | None = None
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    workers: int = 1  # Dask worker processes; 0: train in this process without a cluster
    scheduler: str | None = None
    threads: int | None = None
    seed: int = 0
    cache: str | None = None
    dt: float | None = None


@dataclass(frozen=True)
class Plan:
    """The run as resolved from a config: data, kinds, T, sizes, oracles, record indices."""

    splits: Any
    preset: Any
    kind: str  # kind of the trained models (the target's, or the references' recipe for a file)
    hidden: int | None
    steps: int | None
    references: int
    threat: str
    oracle: str
    reference_oracle: str
    queries: int
    pool_x: torch.Tensor
    pool_y: torch.Tensor
    in_train_split: np.ndarray  # [pool] bool
    audited: np.ndarray  # pool indices of the audited records [A]
    population: np.ndarray  # pool indices of the Z records no model trains on
    keep: np.ndarray  # [N, A]
    foreign: Any = None  # nmprivacy.targets.Target of a file, else None
    notes: tuple[str, ...] = ()

    @property
    def records(self) -> np.ndarray:
        """Pool indices of every observed record: audited, then population."""
        return np.concatenate([self.audited, self.population])


# --- configuration --------------------------------------------------------------------------------

def _defaults(config: MiaConfig) -> MiaConfig:
    quick = config.budget == "quick"
    return replace(
        config,
        references=config.references if config.references is not None else (4 if quick else 16),
        queries=config.queries if config.queries is not None else (2 if quick else 4),
        lava_check=config.lava_check if config.lava_check is not None else (8 if quick else 16),
    )


def check_config(config: MiaConfig) -> None:
    """One-line errors for settings that cannot run, before anything is loaded or trained."""
    check_attacks(list(config.attacks))
    for name in config.attack_settings:
        if name not in config.attacks:
            raise NmprivacyError(f"settings given for membership attack '{name}', which this run does not include (--attacks)")
        attack_settings(name, config.attack_settings[name])
    if config.threat is not None:
        check_threat(config.threat)
    if config.oracle is not None and config.oracle not in ORACLES:
        raise NmprivacyError(f"unknown oracle '{config.oracle}': choose one of {', '.join(ORACLES)}")
    if (config.queries or 1) < 1 or config.bootstrap < 0 or (config.lava_check or 0) < 0 or config.workers < 0:
        raise NmprivacyError("--queries must be >= 1 and --bootstrap, --lava-check and --workers >= 0")
    if config.count_temperature <= 0 or config.label_smoothing <= 0:
        raise NmprivacyError("--count-temperature and the label smoothing must be > 0")
    if config.threads is not None and config.threads < 1:
        raise NmprivacyError(f"--threads must be >= 1, got {config.threads}")
    if config.population is not None and config.population < 1:
        raise NmprivacyError(f"--population must be >= 1, got {config.population}")


def reference_recipe(target: Any) -> tuple[str, int, str]:
    """(kind, hidden size, note) of the references for a model nmprivacy did not train: a
    checkpoint's own kind and size; a dense input -> hidden -> output network (NetX, NIR) gets
    ``snn-lava`` references of the same sizes; anything else is refused in one line."""
    from nmprivacy.network import DenseLayer, Network

    model = target.model
    kind = target.meta.get("kind")
    config = getattr(model, "config", None)
    if kind in KINDS and getattr(config, "hidden", None) is not None:
        return kind, int(config.hidden), f"references: {kind} models of the checkpoint's size (hidden {config.hidden}), trained with nmprivacy's recipe"
    network = getattr(model, "network", None)
    if isinstance(network, Network):
        layers = network.layers
        plain = len(layers) == 2 and all(isinstance(x, DenseLayer) and x.weight_rec is None and x.delay is None for x in layers)
        if plain:
            sizes = "-".join(str(s) for s in network.sizes)
            return "snn-lava", int(network.sizes[1]), (
                f"references: snn-lava models (Lava-DL CUBA, the preset's schedule) of the file's layer sizes {sizes}, trained with nmprivacy's "
                "recipe, not with the file's own training")
        raise NmprivacyError(
            f"{target.source} is not a dense input -> hidden -> output network ({network.describe()}): membership inference needs "
            "reference models of the same architecture, which nmprivacy can train only for that shape (or pass a checkpoint folder)")
    raise NmprivacyError(f"{target.source}: cannot tell which reference models to train for it: pass a NetX file, a NIR graph or a checkpoint folder")


def default_population(pool: int, test: int, file_target: bool = False) -> int:
    """Z: 10 % of the population, at most 500 and at most half the test split (a quarter for a
    file target, whose only known non-members are test records), at least 1."""
    return max(1, min(500, round(0.1 * pool), test // (4 if file_target else 2)))


def make_plan(config: MiaConfig) -> Plan:
    """Load the data and the target, resolve every default and choose who trains on what."""
    from nmprivacy.data import load_dataset

    splits = load_dataset(config.dataset, root=config.data_root, **config.data_options)
    preset = preset_for(config.dataset, config.budget)
    preset = with_overrides(preset, {**({"hidden": config.hidden} if config.hidden is not None else {}), **config.overrides})
    notes: list[str] = []
    foreign = None
    if config.target in KINDS:
        kind, hidden = config.target, preset.hidden
        steps = preset.steps if splits.domain == "image" else None
    elif Path(config.target).exists():
        from nmprivacy.targets import choose_steps, fit_to_data, load_target

        foreign = fit_to_data(load_target(config.target, dt=config.dt), splits.input_shape, splits.num_classes, splits.name)
        kind, hidden, note = reference_recipe(foreign)
        notes.append(note)
        if config.hidden is not None and config.hidden != hidden:
            notes.append(f"--hidden {config.hidden} was not used: the references take the target's own hidden size ({hidden})")
        notes.append("membership of the target: the data set's training split (after --limit-train) is taken to be what the file was trained on")
        steps = choose_steps(None, foreign, splits.name) if splits.domain == "image" else None
    else:
        raise NmprivacyError(f"--target '{config.target}' is neither a kind ({', '.join(KINDS)}) nor an existing NetX file, NIR graph or checkpoint folder")
    if foreign is not None and foreign.model.info.domain != "spikes" and kind != "ann":
        raise NmprivacyError(f"--target {config.target} is neither a spiking network nor an ann checkpoint: give a target nmprivacy can train references for")
    image_model = kind == "ann"
    threat = config.threat or ("membrane" if image_model else "counts")
    if image_model and threat == "counts":
        raise NmprivacyError("the counts threat does not apply to an ann target (n/a: it has no output spikes): use --threat membrane (its logits) or label")
    loihi_target = kind in LOIHI_KINDS if foreign is None else (foreign.netx is not None or foreign.float_model is not None or kind == "snn-lava")
    oracle = config.oracle or ("emulation" if loihi_target and not image_model else "float")
    if image_model and oracle != "float":
        raise NmprivacyError(f"the {oracle} oracle does not apply to an ann target (n/a: it has no Loihi form): use --oracle float")
    if foreign is not None and oracle == "float" and foreign.netx is not None:
        raise NmprivacyError(f"{config.target} is a NetX file, which has no float model: use --oracle emulation or lava")
    # the references of a file are observed as its target is, but through the bit-exact emulation instead of Lava (the Lava check shows they agree)
    reference_oracle = "emulation" if (foreign is not None and oracle == "lava") else oracle
    if image_model:
        notes.append("ann target: counts n/a (no output spikes); membrane = the logits; one query per record (deterministic)")
    queries = queries_for("image" if image_model else "spikes", splits.domain, int(config.queries))
    if splits.domain != "image" and not image_model:
        notes.append("event data are spikes already: one query per record")
    n = int(config.references)
    if foreign is None and n < 4:
        raise NmprivacyError(f"--references {n}: a target kind needs at least 4 models (each is the target once, with the others as its references)")
    if foreign is not None and n < 2:
        raise NmprivacyError(f"--references {n}: a target file needs at least 2 reference models")

    pool_x = torch.cat([splits.train.x, splits.test.x])
    pool_y = torch.cat([splits.train.y, splits.test.y])
    n_train, n_test = len(splits.train), len(splits.test)
    in_train = np.arange(n_train + n_test) < n_train
    if n_test < 2:
        raise NmprivacyError(f"'{splits.name}' has {n_test} test records: population records need at least 2 (raise --limit-test)")
    z = int(config.population) if config.population is not None else default_population(n_train + n_test, n_test, foreign is not None)
    if z > n_test // 2:
        raise NmprivacyError(f"--population {z} exceeds half the test split ({n_test} records): lower it or raise --limit-test")
    rng = np.random.default_rng(config.seed)
    population = np.sort(n_train + rng.permutation(n_test)[:z])
    audited = np.setdiff1d(np.arange(n_train + n_test), population)
    if audited.size < 4:
        raise NmprivacyError(f"only {audited.size} records to audit: raise --limit-train / --limit-test")
    keep = random_halves(n, audited.size, config.seed + 1)
    return Plan(splits, preset, kind, hidden, steps, n, threat, oracle, reference_oracle, queries, pool_x, pool_y, in_train, audited,
                population, keep, foreign, tuple(notes))


# --- one reference model: train (or reuse) and observe ------------------------------------------------

def _digest(idx: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(idx, dtype=np.int64).tobytes()).hexdigest()[:16]


def reference_jobs(config: MiaConfig, plan: Plan, cache: Path) -> list[dict[str, Any]]:
    """One job per model: what ``reference_job`` needs, and the key of its cache entry."""
    from nmprivacy.training import settings_for

    jobs = []
    records = plan.records
    for i in range(plan.references):
        train_idx, held_idx = plan.audited[plan.keep[i]], plan.audited[~plan.keep[i]]
        job = {
            "index": i, "dataset": config.dataset, "data_root": config.data_root, "data_options": dict(config.data_options),
            "kind": plan.kind, "hidden": plan.hidden, "preset": plan.preset, "budget": config.budget, "seed": config.seed + i,
            "steps": plan.steps, "train": train_idx, "held_out": held_idx, "records": records, "oracle": plan.reference_oracle,
            "queries": plan.queries, "observe_seed": config.seed, "cache": str(cache),
        }
        # what the model and its answers depend on: not the whole preset, whose attack settings do not matter here
        key = cache_key(purpose="mia-reference", format=ENTRY_FORMAT, source=plan.splits.source, schedule=settings_for(plan.kind, plan.preset),
                        target_config=plan.preset.target_config,
                        **{k: v for k, v in job.items() if k not in ("index", "train", "held_out", "records", "cache", "preset")},
                        train=_digest(train_idx), held_out=_digest(held_idx), observed=_digest(records))
        job["entry"] = str(entry_path(f"mia-{config.dataset}-{plan.kind}-r{i}", key, cache))
        jobs.append(job)
    return jobs


@functools.lru_cache(maxsize=2)
def _dataset(name: str, root: str | None, options: str) -> Any:
    from nmprivacy.data import load_dataset

    return load_dataset(name, root=root, **json.loads(options))


def _check_entry(content: Any) -> None:
    logp = content["logp"]
    if not isinstance(logp, torch.Tensor) or logp.dim() != 3 or content["pred"].shape != logp.shape[:1]:
        raise ValueError("its observations have the wrong shape")
    json.loads(content["record"])


def load_observations(path: str | Path) -> tuple[Observations, dict[str, Any]] | None:
    """A reference model's cached observations and record, or None (absent or unusable)."""
    content = load_entry(Path(path), _check_entry)
    if content is None:
        return None
    counts = content.get("counts")
    return Observations(content["logp"], counts if isinstance(counts, torch.Tensor) else None, content["pred"]), json.loads(content["record"])


def reference_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train (or reuse) reference model ``job["index"]`` on its half and record its answers to
    every observed record's queries into its cache entry; returns its record (run on a Dask
    worker or in this process)."""
    if _on_worker():  # the main process reports progress; a worker's training lines would only interleave there
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return _reference_job(job)
    return _reference_job(job)


def _on_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _reference_job(job: dict[str, Any]) -> dict[str, Any]:
    from nmprivacy.audit import train_or_load
    from nmprivacy.data.base import DatasetSplits, Split

    cached = load_observations(job["entry"])
    if cached is not None:
        return {**cached[1], "observations_cached": True}
    from nmprivacy.lava_import import use_fork_for_lava

    use_fork_for_lava()  # a Dask worker is spawned, and exporting or running NetX imports Lava, which needs fork
    splits = _dataset(job["dataset"], job["data_root"], json.dumps(job["data_options"], sort_keys=True))
    pool_x = torch.cat([splits.train.x, splits.test.x])
    pool_y = torch.cat([splits.train.y, splits.test.y])
    train, held = torch.as_tensor(job["train"]), torch.as_tensor(job["held_out"])
    half = DatasetSplits(
        name=splits.name, domain=splits.domain, train=Split(pool_x[train], pool_y[train]), test=Split(pool_x[held], pool_y[held]),
        classes=splits.classes, input_shape=splits.input_shape,
        source=f"{splits.source}; membership reference {job['index']} (half {_digest(job['train'])})", info=splits.info,
    )
    preset = with_overrides(job["preset"], {"hidden": job["hidden"]}) if job["hidden"] is not None else job["preset"]
    trained = train_or_load(job["kind"], half, preset, job["seed"], job["steps"], Path(job["cache"]), job["budget"])
    model = trained.model.eval()
    start = time.perf_counter()
    x = pool_x[torch.as_tensor(job["records"])]
    with tempfile.TemporaryDirectory(prefix="nmprivacy-mia-") as tmp:
        obs = observe_with(model, job["oracle"], x, splits.domain, job["steps"], job["queries"], job["observe_seed"], Path(tmp))
    seconds = time.perf_counter() - start
    record = to_jsonable({**trained.record, "index": job["index"], "observe_seconds": seconds, "oracle": job["oracle"]})
    content: dict[str, Any] = {"logp": obs.logp, "pred": obs.pred, "record": json.dumps(record)}
    if obs.counts is not None:
        content["counts"] = obs.counts
    save_entry(Path(job["entry"]), content)
    return {**record, "observations_cached": False}


# --- oracles -----------------------------------------------------------------------------------------

def netx_file(model: Any, workdir: Path, foreign: Any = None) -> Path:
    """The NetX file a model runs on Loihi as: a target file's own, else an export into ``workdir``."""
    if foreign is not None and foreign.netx is not None:
        return Path(foreign.netx)
    from hw_export.netx_export import export_netx

    path = workdir / "model.net"
    export_netx(model, path)
    return path


def emulation_of(model: Any, workdir: Path, foreign: Any = None) -> Any:
    """The bit-exact Loihi emulation (``NetworkModel``) of the NetX file ``netx_file`` gives."""
    from nmprivacy.models.network_model import NetworkModel

    if isinstance(model, NetworkModel) and model.loihi:
        return model
    from hw_export.netx_emulation import load_netx

    return load_netx(netx_file(model, workdir, foreign), input_shape=tuple(model.info.input_shape))


def lava_answer(path: Path) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """An ``observe`` answer function running every batch of spike trains ``[T, B, ...]`` on
    Lava's fixed-point simulator in one run (``hw_export.run_lava``, output membrane recorded)."""
    from hw_export.lava_run import run_lava

    def answer(spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        run = run_lava(path, spikes.transpose(0, 1).to(torch.uint8), record_membrane=True)
        return readout_logprob(run.output_membrane.transpose(0, 1)), run.output.to(torch.int64).sum(dim=1)

    return answer


def observe_with(model: Any, oracle: str, x: torch.Tensor, domain: str, steps: int | None, queries: int, seed: int, workdir: Path,
                 foreign: Any = None, progress: bool = False) -> Observations:
    """``observe`` ``model`` through ``oracle``: ``float`` (its own forward), ``emulation`` (its
    bit-exact Loihi emulation) or ``lava`` (every query on Lava)."""
    if oracle == "float":
        return observe(model, x, domain, steps, queries, seed, progress=progress)
    emulation = emulation_of(model, workdir, foreign)
    if oracle == "emulation":
        return observe(emulation, x, domain, steps, queries, seed, progress=progress)
    return observe(emulation, x, domain, steps, queries, seed, answer=lava_answer(netx_file(model, workdir, foreign)), progress=progress)


def oracle_check(model: Any, float_model: Any, x: torch.Tensor, records: int, domain: str, steps: int | None, seed: int, threat: str,
                 workdir: Path, foreign: Any = None) -> dict[str, Any]:
    """Query 0 of the first ``records`` observed records through Lava, the emulation and the
    float model: per pair, records whose output spike counts differ, differing labels and the
    largest difference of the threat's signal ``phi`` (emulation vs Lava must show none)."""
    start = time.perf_counter()
    spikes = encode_queries(x[: min(int(x.shape[0]), 256)], domain, steps, seed, 0, 0)[:, :records]
    labels = torch.zeros(spikes.shape[1], dtype=torch.long)
    emulation = emulation_of(model, workdir, foreign)
    emulate = engine_answer(emulation) or (lambda batch: model_outputs(emulation, batch))  # the path observe() takes
    answers = {"lava": lava_answer(netx_file(model, workdir, foreign))(spikes), "emulation": emulate(spikes)}
    if float_model is not None:
        answers["float"] = model_outputs(float_model, spikes)

    def compare(a: str, b: str) -> dict[str, Any]:
        (lp_a, ct_a), (lp_b, ct_b) = answers[a], answers[b]
        obs_a = Observations(lp_a[:, None].float(), ct_a[:, None].to(torch.int16), lp_a.argmax(1))
        obs_b = Observations(lp_b[:, None].float(), ct_b[:, None].to(torch.int16), lp_b.argmax(1))
        phi = {t: np.abs(logit_confidence(attacker_view(obs_a, t), labels.numpy()) - logit_confidence(attacker_view(obs_b, t), labels.numpy())).max()
               for t in THREATS}
        return {"count_mismatch_records": int((ct_a != ct_b).any(dim=1).sum()), "spike_count_difference": int((ct_a - ct_b).abs().sum()),
                "label_mismatches": int((attacker_view(obs_a, "label").argmax(-1) != attacker_view(obs_b, "label").argmax(-1)).sum()),
                "phi_max_abs_diff": {t: float(v) for t, v in phi.items()}, "threat_phi_max_abs_diff": float(phi[threat])}

    out: dict[str, Any] = {"records": int(spikes.shape[1]), "query": 0, "lava_vs_emulation": compare("lava", "emulation")}
    if "float" in answers:
        out["float_vs_emulation"] = compare("float", "emulation")
    out["seconds"] = time.perf_counter() - start
    return out


# --- the run -----------------------------------------------------------------------------------------

def run_mia(config: MiaConfig) -> dict[str, Any]:
    """Run membership inference as ``config`` says; returns the mia.json content also written
    (with mia.md, roc.png, scores.npz) into ``config.out``, atomically."""
    from nmprivacy.attacks.common import torch_threads

    check_config(config)
    config = _defaults(config)
    _dataset.cache_clear()  # reference jobs run in this process reuse the data within one run only
    with torch_threads(config.threads or torch.get_num_threads()):
        with atomic_dir(config.out) as out:
            return _mia_into(config, out)


def _train_references(config: MiaConfig, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every job's record: cached ones read here, the rest run on the Dask cluster (``workers``
    local processes, or ``scheduler``) or, with ``workers == 0``, in this process."""
    records: dict[int, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        cached = load_observations(job["entry"])
        if cached is not None:
            records[job["index"]] = {**cached[1], "observations_cached": True}
        else:
            todo.append(job)
    tqdm.write(f"membership references: {len(jobs)} models, {len(jobs) - len(todo)} cached, {len(todo)} to train and observe")
    if not todo:
        return [records[j["index"]] for j in jobs]
    bar = progress_bar(total=len(todo), desc="reference models", unit="model")
    if config.workers == 0 and not config.scheduler:
        for job in todo:
            records[job["index"]] = reference_job(job)
            bar.update(1)
    else:
        from distributed import as_completed

        from nmprivacy.study.run import StudyRun, cluster_client

        with cluster_client(StudyRun(workers=max(config.workers, 1), threads=1, scheduler=config.scheduler)) as client:
            futures = {client.submit(reference_job, job, key=f"mia-ref-{job['index']}-{Path(job['entry']).stem}-{time.time_ns()}", pure=False): job
                       for job in todo}
            for fut in as_completed(list(futures)):
                job = futures[fut]
                try:
                    records[job["index"]] = fut.result()
                except NmprivacyError as exc:
                    raise NmprivacyError(f"reference model {job['index']}: {exc}") from None
                except Exception as exc:  # a worker's failure, in one line
                    first = str(exc).splitlines()[0] if str(exc) else ""
                    raise NmprivacyError(f"reference model {job['index']} failed on its worker ({type(exc).__name__}: {first}); run again to resume") from None
                bar.update(1)
    bar.close()
    return [records[j["index"]] for j in jobs]


def _accuracy(pred: torch.Tensor, y: torch.Tensor, mask: np.ndarray) -> float | None:
    m = torch.as_tensor(mask, dtype=torch.bool)
    return float((pred[m] == y[m]).double().mean()) if bool(m.any()) else None


def _mia_into(config: MiaConfig, out: Path) -> dict[str, Any]:
    sw = Stopwatch()
    with sw("plan"):
        plan = make_plan(config)
    cache = cache_root(config.cache)
    jobs = reference_jobs(config, plan, cache)
    with sw("references"):
        ref_records = _train_references(config, jobs)
    observations = []
    for job in jobs:
        loaded = load_observations(job["entry"])
        if loaded is None:
            raise NmprivacyError(f"the observations of reference model {job['index']} could not be read back from {job['entry']}: check the cache folder (--cache)")
        observations.append(loaded[0])
    a = plan.audited.size
    y_all = plan.pool_y[torch.as_tensor(plan.records)]
    labels, pop_labels = y_all[:a].numpy(), y_all[a:].numpy()

    # accuracies of every trained model on its own training half and on records it never saw
    for i, (rec, obs) in enumerate(zip(ref_records, observations)):
        seen = np.concatenate([plan.keep[i], np.zeros(plan.population.size, dtype=bool)])
        rec["train_acc"] = _accuracy(obs.pred, y_all, seen)
        rec["test_acc"] = _accuracy(obs.pred, y_all, ~seen)

    target_obs = None
    workdir = Path(tempfile.mkdtemp(prefix="nmprivacy-mia-"))
    try:
        if plan.foreign is not None:
            with sw("target"):
                model = plan.foreign.float_model if plan.oracle == "float" and plan.foreign.float_model is not None else plan.foreign.model
                x = plan.pool_x[torch.as_tensor(plan.records)]
                target_obs = observe_with(model, plan.oracle, x, plan.splits.domain, plan.steps, plan.queries, config.seed, workdir,
                                          foreign=plan.foreign, progress=True)
        check = None
        if config.lava_check and plan.kind != "ann":
            with sw("oracle_check"):
                check = _oracle_check(config, plan, ref_records, workdir)
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)

    views = np.stack([attacker_view(o, plan.threat, config.count_temperature, config.label_smoothing) for o in observations])  # [N, A+Z, Q', C]
    target_view = None if target_obs is None else attacker_view(target_obs, plan.threat, config.count_temperature, config.label_smoothing)
    results: dict[str, Any] = {}
    pooled: dict[str, Pooled] = {}
    for name in config.attacks:
        attack = get_membership_attack(name, attack_settings(name, config.attack_settings.get(name)))
        start = time.perf_counter()
        if target_view is None:
            pooled[name] = leave_one_out(attack, views[:, :a], plan.keep, labels, views[:, a:], pop_labels)
        else:
            pooled[name] = single_target(attack, target_view[:a], plan.in_train_split[plan.audited], views[:, :a], plan.keep, labels,
                                         target_view[a:], views[:, a:], pop_labels)
        seconds = time.perf_counter() - start
        results[name] = _attack_result(pooled[name], attack, seconds, config, plan)
        tqdm.write(f"{name}: AUC {_fmt(results[name]['auc'])}, TPR at 1 % FPR {_fmt(results[name]['tpr_at_fpr'][fpr_key(0.01)])} ({seconds:.1f} s)")

    if target_obs is None:
        train_accs = [r["train_acc"] for r in ref_records]
        test_accs = [r["test_acc"] for r in ref_records]
        target = {"spec": config.target, "kind": plan.kind, "file": None, "models": plan.references,
                  "train_acc": float(np.mean(train_accs)), "test_acc": float(np.mean(test_accs)),
                  "train_acc_std": float(np.std(train_accs, ddof=1)), "test_acc_std": float(np.std(test_accs, ddof=1)),
                  "membership": "each model's own training half (leave-one-out over the models)"}
    else:
        y = y_all
        seen = np.concatenate([plan.in_train_split[plan.audited], np.zeros(plan.population.size, dtype=bool)])
        model = plan.foreign.model
        target = {"spec": config.target, "kind": model.info.kind, "file": plan.foreign.source, "models": 1,
                  "train_acc": _accuracy(target_obs.pred, y, seen), "test_acc": _accuracy(target_obs.pred, y, ~seen),
                  "membership": "the data set's training split (assumed: the file's own training data)",
                  "network": getattr(getattr(model, "network", None), "describe", lambda: None)()}
    observed = [r for r in ref_records if not r.get("observations_cached")]  # observed by this run
    trained = [r for r in observed if not r.get("cached")]  # ... and trained by it (not reused from the model cache)
    notes = list(plan.notes) + _notes(config, plan, results, ref_records)
    mia = {
        "dataset": plan.splits.name, "domain": plan.splits.domain, "classes": list(plan.splits.classes), "steps": plan.steps,
        "target": target, "references": plan.references,
        "references_per_target": plan.references - 1 if target_obs is None else plan.references,
        "reference_kind": plan.kind, "threat": plan.threat, "oracle": plan.oracle, "reference_oracle": plan.reference_oracle,
        "queries": plan.queries, "count_temperature": config.count_temperature, "label_smoothing": config.label_smoothing,
        "population": {"records": int(plan.pool_y.numel()), "audited": int(a), "z": int(plan.population.size),
                       "protocol": "leave-one-out" if target_obs is None else "single target"},
        "attacks": results, "reference_models": ref_records, "oracle_check": check, "notes": notes,
        "timings": {"per_reference_model_s": float(np.mean([r["train_seconds"] + r["observe_seconds"] for r in trained])) if trained else None,
                    "reference_models_trained": len(trained), "reference_models_observed": len(observed),
                    "train_s_mean": float(np.mean([r["train_seconds"] for r in trained])) if trained else None,
                    "observe_s_mean": float(np.mean([r["observe_seconds"] for r in observed])) if observed else None,
                    "per_attack_s": {name: r["seconds"] for name, r in results.items()}},
    }
    mia.update(run_metadata(config=config, seed=config.seed, timings=sw.seconds))
    with sw("report"):
        write_scores(out / "scores.npz", pooled)
        roc_figure(out / "roc.png", pooled, f"{plan.splits.name}, {config.target}: threat {plan.threat}, oracle {plan.oracle}")
        atomic_write_text(out / "mia.md", markdown(mia))
    mia["timings_s"] = to_jsonable(sw.seconds)
    mia = to_jsonable(mia)
    atomic_write_json(out / "mia.json", mia)
    return mia


def _oracle_check(config: MiaConfig, plan: Plan, ref_records: list[dict[str, Any]], workdir: Path) -> dict[str, Any] | None:
    """``oracle_check`` on the target file, or on model 0 of a kind (loaded from its checkpoint)."""
    x = plan.pool_x[torch.as_tensor(plan.records)]
    if plan.foreign is not None:
        model, float_model = plan.foreign.model, plan.foreign.float_model
    else:
        from nmprivacy.models import checkpoint

        model = checkpoint.load(ref_records[0]["checkpoint"], plan.kind).freeze()
        float_model = model
    try:
        return oracle_check(model, float_model, x, int(config.lava_check), plan.splits.domain, plan.steps, config.seed, plan.threat, workdir, plan.foreign)
    except NmprivacyError as exc:  # the attack's numbers stand without it; say why it is missing
        tqdm.write(f"warning: the Lava check could not run ({exc})")
        return {"error": str(exc)}


def _attack_result(pooled: Pooled, attack: Any, seconds: float, config: MiaConfig, plan: Plan) -> dict[str, Any]:
    empty = {"auc": None, "auc_ci": None, "tpr_at_fpr": {fpr_key(t): None for t in FPR_TARGETS}, "tpr_at_fpr_ci": {fpr_key(t): None for t in FPR_TARGETS},
             "balanced_acc": None, "balanced_acc_ci": None, "pairs": int(pooled.scores.size), "members": int(pooled.members.sum()),
             "non_members": int((~pooled.members).sum()), "bootstrap": config.bootstrap}
    try:
        metrics = summarize(pooled.scores, pooled.members, bootstrap=config.bootstrap, seed=config.seed)
    except NmprivacyError as exc:
        metrics = {**empty, "error": str(exc)}
    per_target = []
    if plan.foreign is None:
        from nmprivacy.membership.metrics import auc, roc

        for t in range(plan.references):
            mine = pooled.target == t
            ok = mine.any() and pooled.members[mine].any() and not pooled.members[mine].all()
            per_target.append(auc(roc(pooled.scores[mine], pooled.members[mine])) if ok else None)
    return {**metrics, "auc_per_target": per_target, "unscored": pooled.unscored, "seconds": seconds, "settings": attack.settings}


def _notes(config: MiaConfig, plan: Plan, results: dict[str, Any], refs: list[dict[str, Any]]) -> list[str]:
    notes = [
        "protocol: " + ("each of the %d models in turn is the target, the other %d its references (trained on independent random halves of the "
                        "audited records); the (record, member?) pairs of all targets are pooled" % (plan.references, plan.references - 1)
                        if plan.foreign is None else
                        "the file is the one target; %d reference models trained on independent random halves of the audited records" % plan.references),
        f"{plan.population.size} test records are trained on by no model: RMIA's population samples z (not audited)",
    ]
    if plan.threat == "counts":
        notes.append(f"counts threat: the attacker sees output spike counts only; class probabilities are softmax(counts / {config.count_temperature:g}) "
                     "(tied counts get equal probability; the membrane is not used)")
    if plan.threat == "label":
        notes.append(f"label threat: the attacker sees the top-1 label of each of the {plan.queries} queries; probabilities are their "
                     f"smoothed empirical distribution (pseudo-count {config.label_smoothing:g} per class)")
    non_members = [r["non_members"] for r in results.values() if r.get("non_members")]
    if non_members and min(non_members) < 1000:
        notes.append(f"TPR at 0.1 % FPR rests on {min(non_members)} non-member pairs (< 1000): it is coarse (resolution 1/{min(non_members)})")
    chance = 1.0 / plan.splits.num_classes
    weak = [r["index"] for r in refs if r.get("test_acc") is not None and r["test_acc"] < 2 * chance]
    if weak:
        notes.append(f"reference model(s) {', '.join(map(str, weak))} reach below 2x chance on records they never saw: train longer "
                     "(--set snn_train.epochs=N) for meaningful numbers")
    return notes


# --- outputs -----------------------------------------------------------------------------------------

def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _ci(ci: list[float] | None, pct: bool = False) -> str:
    if not ci:
        return ""
    lo, hi = ci
    return f" [{_pct(lo)}, {_pct(hi)}]" if pct else f" [{lo:.3f}, {hi:.3f}]"


def markdown(mia: dict[str, Any]) -> str:
    """``mia.md``: the setting, one row per attack (with the target's train/test accuracy beside
    it), the oracle check, notes and timings."""
    t = mia["target"]
    acc = f"{_pct(t['train_acc'])} / {_pct(t['test_acc'])}"
    lines = [
        f"# Membership inference: {mia['dataset']}, target {t['spec']}",
        "",
        f"Target: {t['kind']}" + (f" ({t['file']})" if t.get("file") else f", {t['models']} models") +
        f"; train / test accuracy {acc} %; membership: {t['membership']}.",
        f"References: {mia['references']} {mia['reference_kind']} models ({mia['references_per_target']} per target); threat **{mia['threat']}**, "
        f"oracle **{mia['oracle']}** (references: {mia['reference_oracle']}); {mia['queries']} queries per record; T = {mia['steps']}.",
        f"Records: {mia['population']['audited']} audited, {mia['population']['z']} population (z) of {mia['population']['records']}.",
        "",
        "| attack | AUC [95 % CI] | TPR @ 0.1 % FPR | TPR @ 1 % FPR | balanced acc. | pairs | target train / test acc. | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in mia["attacks"].items():
        tpr, tci = r["tpr_at_fpr"], r["tpr_at_fpr_ci"]
        lines.append(
            f"| {name} | {_fmt(r['auc'])}{_ci(r['auc_ci'])} | {_pct(tpr['0.001'])}{_ci(tci['0.001'], True)} | {_pct(tpr['0.01'])}{_ci(tci['0.01'], True)} | "
            f"{_pct(r['balanced_acc'])}{_ci(r['balanced_acc_ci'], True)} | {r['pairs']} | {acc} | {r['seconds']:.1f} |")
    lines += ["", "TPR and balanced accuracy in %; intervals: bootstrap over the pooled pairs. TPR at a fixed FPR is the highest TPR of a ROC point "
              "at or below that FPR (no interpolation). `roc.png`: the ROC curves on log-log axes.", ""]
    check = mia.get("oracle_check")
    if check and "error" not in check:
        lv = check["lava_vs_emulation"]
        lines.append(f"Lava check ({check['records']} records, query 0): Lava vs bit-exact emulation: {lv['count_mismatch_records']} records with "
                     f"different output spike counts, {lv['label_mismatches']} different labels, largest phi difference at this threat "
                     f"{lv['threat_phi_max_abs_diff']:.3g}.")
        if "float_vs_emulation" in check:
            fe = check["float_vs_emulation"]
            lines.append(f"Float model vs emulation: {fe['count_mismatch_records']} records with different counts, {fe['label_mismatches']} different labels.")
        lines.append("")
    elif check:
        lines += [f"Lava check: not run ({check['error']}).", ""]
    lines += ["Notes:", ""] + [f"- {n}" for n in mia["notes"]]
    timing = mia["timings"]
    lines += ["", f"Time per reference model: training {_fmt(timing['train_s_mean'], 1)} s ({timing['reference_models_trained']} trained here), "
              f"observing every record {_fmt(timing['observe_s_mean'], 1)} s ({timing['reference_models_observed']} observed here; the rest "
              "from the cache; Dask workers in parallel); attacks (scoring, without the bootstrap): " +
              ", ".join(f"{k} {v:.1f} s" for k, v in timing["per_attack_s"].items()) + "."]
    return "\n".join(lines) + "\n"


def write_scores(path: Path, pooled: dict[str, Pooled]) -> None:
    """``scores.npz``: ``<attack>.scores``, ``<attack>.members``, ``<attack>.target`` per attack."""
    arrays = {}
    for name, p in pooled.items():
        arrays.update({f"{name}.scores": p.scores, f"{name}.members": p.members, f"{name}.target": p.target})
    from nmprivacy.runinfo import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def roc_figure(path: Path, pooled: dict[str, Pooled], title: str) -> None:
    """``roc.png``: every attack's ROC on log-log axes (LiRA's plot), with chance as the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nmprivacy.membership.metrics import auc, roc
    from nmprivacy.runinfo import atomic_path

    fig, ax = plt.subplots(figsize=(5, 5))
    low = 1e-4
    for name, p in pooled.items():
        if p.members.all() or not p.members.any():
            continue
        curve = roc(p.scores, p.members)
        low = max(min(low, 1.0 / max(int((~p.members).sum()), 1)), 1e-5)
        ax.plot(np.maximum(curve.fpr, 1e-6), np.maximum(curve.tpr, 1e-6), label=f"{name} (AUC {auc(curve):.3f})")
    ax.plot([1e-6, 1], [1e-6, 1], "k--", lw=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
