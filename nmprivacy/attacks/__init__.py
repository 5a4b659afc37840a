"""Model-inversion attacks; see ``nmprivacy.attacks.base`` for the interface.

A new attack is one module with a class taking its settings (``name``, ``run``) plus one line
in ``ATTACKS``.
"""

from __future__ import annotations

from typing import Any

from nmprivacy.attacks.base import Attack, Inversion
from nmprivacy.attacks.blv1 import BrainLeaksV1
from nmprivacy.attacks.blv2 import BrainLeaksV2
from nmprivacy.attacks.blv2_query import BrainLeaksV2Query
from nmprivacy.attacks.miface import MIFace
from nmprivacy.errors import NmprivacyError

ATTACKS: dict[str, type] = {
    "bl-v1": BrainLeaksV1,
    "bl-v2": BrainLeaksV2,
    "bl-v2-query": BrainLeaksV2Query,
    "mi-face": MIFace,
}


def get_attack(name: str, settings: Any = None, **options: Any) -> Attack:
    """The attack registered as ``name`` built with ``settings`` (its settings dataclass; None: defaults)."""
    if name not in ATTACKS:
        raise NmprivacyError(f"unknown attack '{name}': choose one of {', '.join(ATTACKS)}")
    cls = ATTACKS[name]
    return cls(settings, **options) if settings is not None else cls(**options)


__all__ = ["ATTACKS", "Attack", "Inversion", "get_attack"]
