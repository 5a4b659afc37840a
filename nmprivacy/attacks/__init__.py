"""Model-inversion attacks; see ``nmprivacy.attacks.base`` for the interface.

A new attack is one module with a class (``info``: an ``AttackInfo``, and ``run``) plus one
line in ``ATTACKS`` (or, for an attack of your own outside nmprivacy, one entry of
``$NMPRIVACY_ATTACKS``): the command line, the audit's plan, the study's attack names, the
preset's settings (``--set <info.settings>.<field>=...``) and ``--quick`` are derived from it.
The registry names classes as ``"module:Class"`` (or holds the class itself), so reading the
names (``nmprivacy attack --help``) imports no torch.
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from nmprivacy.errors import NmprivacyError

if TYPE_CHECKING:
    from nmprivacy.attacks.base import Attack, AttackInfo, Inversion

PLUGINS_ENV = "NMPRIVACY_ATTACKS"  # "name=module:Class,...": attacks of your own, registered without editing nmprivacy

ATTACKS: dict[str, Any] = {
    "bl-v1": "nmprivacy.attacks.blv1:BrainLeaksV1",
    "bl-v2": "nmprivacy.attacks.blv2:BrainLeaksV2",
    "mi-face": "nmprivacy.attacks.miface:MIFace",
    "bl-v2-query": "nmprivacy.attacks.blv2_query:BrainLeaksV2Query",
    "bl-auto": "nmprivacy.attacks.auto:BrainLeaksAuto",
}


@lru_cache(maxsize=None)
def _load(entry: str) -> type:
    module, _, cls = entry.partition(":")
    return getattr(importlib.import_module(module), cls)


def registry() -> dict[str, Any]:
    """``ATTACKS`` plus the attacks named in ``$NMPRIVACY_ATTACKS`` (``name=module:Class``,
    comma-separated; inherited by a study's worker processes)."""
    out = dict(ATTACKS)
    for item in filter(None, (x.strip() for x in os.environ.get(PLUGINS_ENV, "").split(","))):
        name, sep, entry = item.partition("=")
        if not sep or ":" not in entry or not name.strip():
            raise NmprivacyError(f"{PLUGINS_ENV} entry '{item}' is not name=module:Class")
        out[name.strip()] = entry.strip()
    return out


def attack_class(name: str) -> type:
    """The class registered as ``name`` (one-line ``NmprivacyError`` for an unknown name); the
    registry's name becomes the class's ``name``, so a module need not repeat it."""
    known = registry()
    if name not in known:
        raise NmprivacyError(f"unknown attack '{name}': choose one of {', '.join(known)}")
    entry = known[name]
    try:
        cls = _load(entry) if isinstance(entry, str) else entry
    except (ImportError, AttributeError) as exc:
        raise NmprivacyError(f"attack '{name}' is registered as {entry!r}, which cannot be loaded ({exc}): fix the registry entry") from None
    if getattr(cls, "name", None) in (None, "spiking-attack"):
        cls.name = name
    return cls


def attack_infos() -> dict[str, "AttackInfo"]:
    """Name -> ``AttackInfo`` of every registered attack, in registry order."""
    return {name: attack_class(name).info for name in registry()}


def settings_types() -> dict[str, type]:
    """Preset field -> settings type of every registered attack (``{"bl_v2": BLv2Settings, ...}``)."""
    return {info.settings: info.settings_type for info in attack_infos().values()}


def get_attack(name: str, settings: Any = None, **options: Any) -> "Attack":
    """The attack registered as ``name`` built with ``settings`` (its settings dataclass; None: defaults)."""
    cls = attack_class(name)
    return cls(settings, **options) if settings is not None else cls(**options)


def __getattr__(name: str) -> Any:
    if name in ("Attack", "AttackInfo", "Inversion"):
        from nmprivacy.attacks import base

        return getattr(base, name)
    raise AttributeError(f"module 'nmprivacy.attacks' has no attribute '{name}'")


__all__ = ["ATTACKS", "Attack", "AttackInfo", "Inversion", "attack_class", "attack_infos", "get_attack", "registry", "settings_types"]
