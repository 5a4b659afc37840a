"""A study spec (YAML or JSON file, or CLI flags) and the cells it expands into.

A spec names the data set and the audit settings every cell shares (``budget``, ``seeds``,
``evaluators``, ``seed``, ``target``, ``attacks``: by default BL-v1 and BL-v2, ...), settings applied to every cell (``base``) and one or
more ``grids``: each a product of ``factors`` (setting name -> list of levels) with settings of
its own (``base``). A setting name is an audit field (``target``, ``variant``, ``hidden``, ``dt`` of a network file) or a
dotted preset field (``bl_v2.lr``, ``bl_v1.mask``, ``snn_train.epochs``,
``target_config.reset``, ``evaluator``; ``nmprivacy.presets.with_overrides``)::

    dataset: digits-28
    seeds: 3
    base: {ann_baseline: false}
    grids:
      - name: bl-v2 step
        factors: {bl_v2.lr: [0.1, 1.0], bl_v2.accumulator: [rmsprop, unbounded]}

A cell is one full audit (``nmprivacy.audit.AuditConfig``); its key hashes the settings its
numbers depend on as the audit resolves them (the preset after the overrides), so cells of two
grids that come to the same audit run once, and a changed spec never reuses a stale cell.

Training-seed replicates: the setting ``seed`` (a whole number >= 0) is the cell's
``AuditConfig.seed`` (the seed of its target, ANN, evaluators, attack seeds and reference models;
the spec's ``seed`` when the cell does not set it). ``training_seeds: [0, 1, 2]`` (or
``--training-seeds 0,1,2``) adds the factor ``seed`` with these levels to every grid that does not
vary ``seed`` itself; cells that differ only in ``seed`` are replicates, pooled by the study table.
A cell's key hashes its seed as before, so a cell whose seed is the spec's has the key it had
without the setting and a finished study's cells are reused.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nmprivacy.cache import cache_key
from nmprivacy.errors import NmprivacyError
from nmprivacy.network.timestep import checked_dt
from nmprivacy.presets import DEFAULT_VARIANT, VARIANTS, Budget, resolve as resolve_preset
from nmprivacy.runinfo import to_jsonable

AUDIT_SETTINGS = ("target", "variant", "hidden", "dt", "references", "seed")  # audit fields a cell may vary; every other name is a preset field


def attack_names() -> tuple[str, ...]:
    """The names a spec's ``attacks`` may list: every registered inversion attack
    (``nmprivacy.attacks.ATTACKS``) and membership attack (``nmprivacy.membership``)."""
    from nmprivacy.attacks import registry
    from nmprivacy.membership import MEMBERSHIP_ATTACKS

    return (*registry(), *MEMBERSHIP_ATTACKS)


def check_attacks(attacks: Any, where: str) -> tuple[str, ...]:
    """``attacks`` (a name or a list of names) as a tuple of registered attack names; one-line error naming ``where`` otherwise."""
    names = tuple(attacks if isinstance(attacks, (list, tuple)) else [attacks])
    unknown = [a for a in names if a not in attack_names()]
    if unknown or not names:
        raise NmprivacyError(f"{where} {','.join(map(str, unknown)) or '(none)'}: choose from {', '.join(attack_names())}")
    return names
SPEC_FIELDS = ("dataset", "data_root", "data_options", "budget", "seeds", "evaluators", "seed", "training_seeds", "target", "hidden", "attacks", "cache", "base", "grids")


@dataclass(frozen=True)
class Grid:
    """One product of factors: ``factors`` maps a setting name to its levels; ``base`` holds
    settings of this grid's every cell."""

    name: str
    factors: dict[str, tuple[Any, ...]]
    base: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    """Everything a study depends on (recorded in study.json)."""

    grids: tuple[Grid, ...]
    dataset: str = "digits-28"
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    budget: Budget = "default"
    seeds: int = 3
    evaluators: int = 3
    seed: int = 0
    target: str = "snn-lava"
    hidden: int | None = None
    attacks: tuple[str, ...] = ("bl-v1", "bl-v2")  # the audit's attacks each cell runs (AuditConfig.attacks)
    cache: str | None = None
    base: dict[str, Any] = field(default_factory=dict)
    training_seeds: tuple[Any, ...] = ()  # levels of the factor ``seed`` added to every grid (none: no replicates)


@dataclass(frozen=True)
class Cell:
    """One audit of the study: its settings (audit fields and preset overrides, as its grid
    names them), its key and the key of the trained models it needs (``group``: cells with the
    same group share target and evaluators)."""

    settings: dict[str, Any]
    key: str
    group: str

    @property
    def folder(self) -> str:
        """The cell's run folder name inside the study's ``cells/``."""
        return f"cell-{self.key}"


def load_spec(path: str | Path) -> dict[str, Any]:
    """The raw spec mapping of a YAML (``.yaml``/``.yml``) or JSON file."""
    p = Path(path)
    if not p.is_file():
        raise NmprivacyError(f"study spec {p} not found: give a YAML or JSON file (see `nmprivacy study --help`)")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            raw = yaml_load(text)
        else:
            raw = json.loads(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NmprivacyError(f"study spec {p} cannot be parsed ({first}): fix its syntax") from None
    if not isinstance(raw, dict):
        raise NmprivacyError(f"study spec {p} is not a mapping: write 'dataset: ...', 'grids: [...]' at its top level")
    return raw


@functools.lru_cache(maxsize=1)
def _yaml_loader() -> type:
    """PyYAML's SafeLoader with YAML 1.2's float rule, so ``1e-4`` (an exponent without a dot) is
    a float, not a string (built once)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    float_pattern = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", float_pattern, list("-+0123456789."))
    return Loader


def yaml_load(text: str) -> Any:
    """``text`` read as YAML, with numbers such as ``1e-4`` as floats."""
    import yaml

    return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a SafeLoader subclass)


def parse_value(text: str) -> Any:
    """A CLI value as YAML reads it: ``0.1`` or ``1e-4`` a float, ``10`` an int, ``true`` a bool, ``null`` None, else a string."""
    import yaml

    try:
        return yaml_load(text)
    except yaml.YAMLError:
        return text


def parse_assignment(text: str, many: bool) -> tuple[str, Any]:
    """``NAME=VALUE`` (``many``: ``NAME=V1,V2,...``, a list of levels) from the command line."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise NmprivacyError(f"'{text}' is not NAME=VALUE{'[,VALUE...]' if many else ''}: e.g. bl_v2.lr={'0.1,1.0' if many else '0.1'}")
    if many:
        return name.strip(), [parse_value(v) for v in value.split(",")]
    return name.strip(), parse_value(value)


def check_levels(levels: Any, where: str, empty: bool = False) -> tuple[Any, ...]:
    """``levels`` (a list or one value) as a tuple of distinct levels; one-line error naming
    ``where`` for repeated levels or (unless ``empty``) none."""
    levels = list(levels) if isinstance(levels, (list, tuple)) else [levels]
    if (not levels and not empty) or len(set(map(json.dumps, levels))) != len(levels):
        raise NmprivacyError(f"{where} needs distinct levels, got {levels}")
    return tuple(levels)


def build_spec(raw: dict[str, Any]) -> StudySpec:
    """A validated ``StudySpec`` from its raw mapping (one-line errors for unknown keys and bad grids)."""
    unknown = set(raw) - set(SPEC_FIELDS)
    if unknown:
        raise NmprivacyError(f"study spec has unknown keys {sorted(unknown)}: use {', '.join(SPEC_FIELDS)}")
    grids_raw = raw.get("grids") or []
    if not isinstance(grids_raw, list) or not grids_raw:
        raise NmprivacyError("study spec has no grids: add 'grids: [{name: ..., factors: {SETTING: [LEVEL, ...]}}]' or pass --factor NAME=V1,V2")
    grids = []
    for i, g in enumerate(grids_raw):
        if not isinstance(g, dict) or not isinstance(g.get("factors"), dict) or not g["factors"]:
            raise NmprivacyError(f"grid {i + 1} of the study spec has no factors: give 'factors: {{SETTING: [LEVEL, ...]}}'")
        extra = set(g) - {"name", "factors", "base"}
        if extra:
            raise NmprivacyError(f"grid {i + 1} has unknown keys {sorted(extra)}: use name, factors, base")
        factors = {str(name): check_levels(levels, f"factor '{name}' of grid {i + 1}") for name, levels in g["factors"].items()}
        grids.append(Grid(str(g.get("name") or f"grid {i + 1}"), factors, dict(g.get("base") or {})))
    values = {k: v for k, v in raw.items() if k != "grids"}
    if "attacks" in values:
        values["attacks"] = check_attacks(values["attacks"], "study spec's attacks")
    if "training_seeds" in values:
        if not isinstance(values["training_seeds"] or [], list):
            raise NmprivacyError(f"study spec's training_seeds is {values['training_seeds']!r}: give a list of seeds, e.g. [0, 1, 2]")
        values["training_seeds"] = check_levels(values["training_seeds"] or [], "study spec's training_seeds", empty=True)
    for key in ("data_options", "base"):
        if key in values and not isinstance(values[key] or {}, dict):
            raise NmprivacyError(f"study spec's '{key}' must be a mapping")
        values[key] = dict(values.get(key) or {})
    spec = StudySpec(grids=tuple(grids), **values)
    if spec.budget not in ("quick", "default", "paper"):
        raise NmprivacyError(f"study spec's budget '{spec.budget}' is not quick, default or paper")
    if not isinstance(spec.seeds, int) or spec.seeds < 1 or not isinstance(spec.evaluators, int) or spec.evaluators < 1:
        raise NmprivacyError("study spec's seeds and evaluators must be whole numbers of at least 1")
    return spec


def cell_settings(spec: StudySpec, grid: Grid, levels: dict[str, Any]) -> dict[str, Any]:
    """A cell's settings: the spec's target and hidden size, then the spec's base, the grid's base
    and the cell's levels (later ones win), sorted by name."""
    settings: dict[str, Any] = {"target": spec.target, "variant": DEFAULT_VARIANT}
    if spec.hidden is not None:
        settings["hidden"] = spec.hidden
    settings.update(spec.base)
    settings.update(grid.base)
    settings.update(levels)
    return dict(sorted(settings.items()))


def split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(audit fields, preset overrides) of a cell's settings."""
    audit = {k: v for k, v in settings.items() if k in AUDIT_SETTINGS}
    return audit, {k: v for k, v in settings.items() if k not in AUDIT_SETTINGS}


def resolve(spec: StudySpec, settings: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(audit fields, preset) the audit will run a cell with; one-line error for settings the
    audit would refuse (checked before anything runs)."""
    audit, overrides = split_settings(settings)
    if audit.get("variant") not in VARIANTS:
        raise NmprivacyError(f"setting 'variant' is {audit.get('variant')!r}: choose one of {', '.join(VARIANTS)}")
    if not isinstance(audit.get("target"), str):
        raise NmprivacyError(f"setting 'target' is {audit.get('target')!r}: give a target kind or a network file")
    if audit.get("hidden") is not None and (not isinstance(audit["hidden"], int) or audit["hidden"] < 1):
        raise NmprivacyError(f"setting 'hidden' is {audit['hidden']!r}: give a whole number of hidden units")
    dt = audit.get("dt")
    if dt is not None:
        checked_dt(dt, "setting 'dt'")
    if audit.get("references") is not None and (not isinstance(audit["references"], int) or audit["references"] < 2):
        raise NmprivacyError(f"setting 'references' is {audit['references']!r}: give the number of membership reference models (at least 2)")
    if "seed" in audit and (isinstance(audit["seed"], bool) or not isinstance(audit["seed"], int) or audit["seed"] < 0):
        raise NmprivacyError(f"setting 'seed' is {audit['seed']!r}: give the cell's training seed, a whole number of at least 0")
    return audit, resolve_preset(spec.dataset, spec.budget, audit["variant"], audit.get("hidden"), overrides)


def cell_seed(spec: StudySpec, settings: dict[str, Any]) -> int:
    """The seed a cell's audit runs with (``AuditConfig.seed``): its setting ``seed``, else the spec's."""
    return settings.get("seed", spec.seed)


def study_grids(spec: StudySpec) -> tuple[Grid, ...]:
    """The spec's grids, each with the factor ``seed`` over the spec's ``training_seeds`` added
    last (so replicates are neighbours); a grid that varies ``seed`` itself keeps its levels."""
    if not spec.training_seeds:
        return spec.grids
    return tuple(g if "seed" in g.factors else replace(g, factors={**g.factors, "seed": spec.training_seeds}) for g in spec.grids)


def expand(spec: StudySpec) -> list[tuple[Grid, Cell]]:
    """Every (grid, cell) of the spec, grid by grid, in the order of the factors' levels.

    A cell's key hashes what the cell runs: the audit settings it passes and the preset the
    audit resolves from them (``nmprivacy.presets.resolve``), with the settings of the attacks
    it does not run left out; its ``group`` hashes what its trained models depend on but the
    weight precision (``run.training_order``). Both hash
    the cell's seed (``cell_seed``) where they always hashed the spec's, so a cell without the
    setting ``seed`` keeps the key it had before cells could set one."""
    from nmprivacy.attacks import attack_infos

    fields_of = {name: info.settings for name, info in attack_infos().items()}
    out = []
    for grid in study_grids(spec):
        names = list(grid.factors)
        for combo in itertools.product(*(grid.factors[n] for n in names)):
            settings = cell_settings(spec, grid, dict(zip(names, combo)))
            audit, preset = resolve(spec, settings)
            resolved = to_jsonable(preset)
            attacks = resolved.pop("attacks")
            used = {fields_of[a]: attacks[fields_of[a]] for a in spec.attacks if a in fields_of}  # settings of attacks not run do not count
            common = dict(dataset=spec.dataset, data_options=spec.data_options, budget=spec.budget, evaluators=spec.evaluators, seed=cell_seed(spec, audit),
                          target=audit["target"], hidden=audit.get("hidden"), dt=audit.get("dt"))
            extra = {"references": audit["references"]} if audit.get("references") is not None else {}  # only then: older keys stay
            key = cache_key(**common, **extra, seeds=spec.seeds, variant=audit["variant"], attacks=spec.attacks, preset={**resolved, "attacks": used})[:12]
            # the group leaves out the weight precision: a model of one precision is often the very training of
            # another's (nmprivacy.models.weight_grid), adopted from the cache once the group's first cell made it
            models = resolved
            if "weight_bits" in (resolved.get("target_config") or {}):
                models = {**resolved, "target_config": {k: v for k, v in resolved["target_config"].items() if k != "weight_bits"}}
            out.append((grid, Cell(settings, key, cache_key(**common, models=models))))
    return out


def with_cli(spec: StudySpec | None, *, factors: list[tuple[str, list[Any]]], sets: list[tuple[str, Any]], only: list[str] = (),  # type: ignore[assignment]
             **fields: Any) -> StudySpec:
    """``spec`` (or a spec of one grid made of ``factors``) with only the grids named in ``only``
    (all when empty), the CLI's ``--factor`` grid added, ``--set`` settings added to its base and
    the given spec fields (``None``: keep) replaced."""
    grids = tuple(spec.grids) if spec is not None else ()
    if only:
        unknown = [n for n in only if n not in {g.name for g in grids}]
        if unknown:
            raise NmprivacyError(f"no grid named {', '.join(map(repr, unknown))} in the spec: choose among {', '.join(repr(g.name) for g in grids)}")
        grids = tuple(g for g in grids if g.name in only)
    if factors:
        grids = grids + (Grid("command line", {n: tuple(v) for n, v in factors}),)
    if not grids:
        raise NmprivacyError("nothing to study: give a spec file or at least one --factor NAME=V1,V2")
    base = dict(spec.base if spec is not None else {})
    base.update(dict(sets))
    given = {k: v for k, v in fields.items() if v is not None}
    if "attacks" in given:
        given["attacks"] = check_attacks(given["attacks"], "--attacks")
    if "training_seeds" in given:
        given["training_seeds"] = check_levels(given["training_seeds"], "--training-seeds")
    if spec is None:
        return StudySpec(grids=grids, base=base, **given)
    return replace(spec, grids=grids, base=base, **given)
