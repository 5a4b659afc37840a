"""``MiaConfig``: everything one membership-inference run depends on, its defaults and the
one-line checks made before anything is loaded or trained."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nmprivacy.errors import NmprivacyError
from nmprivacy.membership import MEMBERSHIP_ATTACKS, attack_settings, check_attacks
from nmprivacy.membership.observables import (
    COUNT_TEMPERATURE,
    LABEL_SMOOTHING,
    check_threat,
)
from nmprivacy.model_kinds import kinds_with
from nmprivacy.presets import Budget

KINDS = (*kinds_with("target"), "ann")  # what --target may name as a kind
ORACLES = ("float", "emulation", "lava")
LOIHI_KINDS = ("snn-lava", "snn-lava-conv")  # kinds whose float model is Loihi's arithmetic


@dataclass(frozen=True)
class MiaConfig:
    """Everything one membership-inference run depends on (recorded in mia.json under ``config``).

    ``None`` fields take their defaults: ``references`` 16 (``quick`` budget: 4), ``threat``
    ``counts`` (image models: ``membrane``, their logits), ``oracle`` ``emulation`` for Loihi
    targets (snn-lava, NetX files, NIR graphs) else ``float``, ``queries`` 4 (quick: 2),
    ``population`` (Z) as ``nmprivacy.mia`` says, ``lava_check`` 16 records (quick: 8; 0: off)."""

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


def with_defaults(config: MiaConfig) -> MiaConfig:
    """``config`` with the budget's defaults for references, queries and the Lava check."""
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
