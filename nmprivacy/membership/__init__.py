"""Membership-inference attacks on spiking (and ANN) classifiers: core library (docs/method.md §9).

One registry like the inversion attacks': ``MEMBERSHIP_ATTACKS`` maps a name to its class (each
algorithm in its own module, each class taking its settings dataclass); ``get_membership_attack``
builds one. The interface is ``nmprivacy.membership.base`` (``AttackInput`` -> scores), what an
attacker sees per threat level is ``observables``, the evaluation protocol ``protocol`` and the
metrics ``metrics``. The pipeline that trains reference models and writes ``mia.json`` is
``nmprivacy.mia``.
"""

from __future__ import annotations

import types
from dataclasses import fields, replace
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from nmprivacy.errors import NmprivacyError
from nmprivacy.membership.base import AttackInput, MembershipAttack
from nmprivacy.membership.lira import LiRA, LiRAOffline, LiRASettings
from nmprivacy.membership.loss import LossAttack, LossSettings
from nmprivacy.membership.rmia import RMIA, RMIASettings
from nmprivacy.membership.shadow import ShadowAttack, ShadowSettings

MEMBERSHIP_ATTACKS: dict[str, type[MembershipAttack]] = {
    "lira": LiRA,
    "lira-offline": LiRAOffline,
    "rmia": RMIA,
    "loss": LossAttack,
    "shadow": ShadowAttack,
}

SETTINGS: dict[str, type] = {"lira": LiRASettings, "lira-offline": LiRASettings, "rmia": RMIASettings, "loss": LossSettings, "shadow": ShadowSettings}


def check_attacks(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``names`` if every one is a registered attack (one-line error otherwise)."""
    unknown = [n for n in names if n not in MEMBERSHIP_ATTACKS]
    if unknown or not names:
        raise NmprivacyError(f"unknown membership attack {', '.join(unknown) or '(none given)'}: choose from {', '.join(MEMBERSHIP_ATTACKS)}")
    return tuple(names)


def attack_settings(name: str, values: dict[str, Any] | None = None) -> Any:
    """The settings dataclass of attack ``name`` with fields replaced from ``values`` (one-line
    errors for an unknown field or a value of the wrong kind)."""
    check_attacks([name])
    settings = SETTINGS[name]()
    if not values:
        return settings
    hints = get_type_hints(type(settings))
    known = [f.name for f in fields(settings)]
    for key, value in values.items():
        if key not in known:
            raise NmprivacyError(f"membership attack '{name}' has no setting '{key}': its settings are {', '.join(known) or '(none)'}")
        settings = replace(settings, **{key: _checked_value(f"{name}.{key}", hints[key], value)})
    return settings


def _checked_value(where: str, hint: Any, value: Any) -> Any:
    """``value`` if it fits the settings field's type ``hint`` (ints widen to floats)."""
    options = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if get_origin(option) is Literal and value in get_args(option):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option in (int, str, bool) and type(value) is option:
            return value
    allowed = ", ".join(repr(a) for o in options for a in (get_args(o) if get_origin(o) is Literal else ()))
    raise NmprivacyError(f"setting {where} is {value!r}: " + (f"choose one of {allowed}" if allowed else f"give a value of type {hint}"))


def get_membership_attack(name: str, settings: Any = None) -> MembershipAttack:
    """The attack registered as ``name`` with ``settings`` (its settings dataclass; None: defaults)."""
    check_attacks([name])
    return MEMBERSHIP_ATTACKS[name](settings)  # type: ignore[call-arg]


__all__ = ["MEMBERSHIP_ATTACKS", "AttackInput", "MembershipAttack", "attack_settings", "check_attacks", "get_membership_attack"]
