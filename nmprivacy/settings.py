"""Settings dataclasses that check themselves, and dotted-name overrides of them.

A settings dataclass calls ``check_settings(self)`` in ``__post_init__``: every field is checked
against its type hint (ints widen to floats, lists become tuples, a ``Literal`` takes one of its
values) and against the range its field declares with ``ranged(default, low=..., high=...)``. A
bad value raises ``SettingsError``, one line naming the field, the value and what to give instead,
so ``BLv2Settings(population=0)``, ``--iterations -1`` and ``--set bl_v2.population=0`` all fail
before anything runs. ``with_overrides(obj, {"bl_v2.lr": 0.1})`` replaces fields by dotted name
(what ``--set`` and ``nmprivacy study`` factors do); the error then names the dotted setting.
"""

from __future__ import annotations

import functools
import math
import types
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal, Mapping, Union, get_args, get_origin, get_type_hints

from nmprivacy.errors import NmprivacyError


class SettingsError(NmprivacyError):
    """A setting with a value of the wrong type or outside its range (``name``: the field)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"setting '{name}' {problem}")
        self.name, self.problem = name, problem

    def renamed(self, name: str) -> "SettingsError":
        """The same problem reported under the dotted ``name`` the user wrote."""
        return SettingsError(name, self.problem)


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: ``low`` <= value (< when ``open_low``), likewise ``high``."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def admits(self, value: float) -> bool:
        """True if ``value`` lies in the range (NaN never does)."""
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.open_high else value > self.high):
            return False
        return True

    def describe(self) -> str:
        """``'at least 1'``, ``'in (0, 1]'``, ... for error messages."""
        if self.high is None:
            return f"{'above' if self.open_low else 'at least'} {self.low:g}"
        if self.low is None:
            return f"{'below' if self.open_high else 'at most'} {self.high:g}"
        return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


def ranged(default: Any, low: float | None = None, high: float | None = None, *, open_low: bool = False, open_high: bool = False) -> Any:
    """A dataclass field with ``default`` whose numbers must lie in the range (checked by ``check_settings``)."""
    return field(default=default, metadata={"range": Range(low, high, open_low, open_high)})


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def check_settings(obj: Any) -> None:
    """Check (and normalise: int -> float, list -> tuple) every field of the frozen settings
    dataclass ``obj`` against its type hint and declared range; ``SettingsError`` on the first bad one."""
    hints = _hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        fixed = checked_value(hints[f.name], value, f.name)
        span = f.metadata.get("range")
        if span is not None and fixed is not None and not span.admits(fixed):
            kind = "whole number" if isinstance(fixed, int) else "number"
            raise SettingsError(f.name, f"is {value!r}: give a {kind} {span.describe()}")
        if fixed is not value:
            object.__setattr__(obj, f.name, fixed)


def checked_value(hint: Any, value: Any, name: str) -> Any:
    """``value`` if it fits the type ``hint`` (ints widen to floats, lists become tuples); else ``SettingsError``."""
    origin = get_origin(hint)
    if origin is Literal:
        if value in get_args(hint) and type(value) in {type(a) for a in get_args(hint)}:
            return value
        raise SettingsError(name, f"is {value!r}: choose one of {', '.join(map(repr, get_args(hint)))}")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        for option in (a for a in get_args(hint) if a is not type(None)):
            try:
                return checked_value(option, value, name)
            except SettingsError:
                continue
        raise SettingsError(name, f"is {value!r}: give a value of type {_type_name(hint)}")
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    if hint in (bool, int, str) and type(value) is hint:
        return value
    if hint in (bool, int, str, float) or origin in (tuple, dict):
        if origin is dict and isinstance(value, dict):
            return value
        raise SettingsError(name, f"is {value!r}: give a value of type {_type_name(hint)}")
    return value


def _type_name(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint))
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


class Overridable:
    """Marks a settings container whose groups are reached by dotted names through
    ``group(name)``/``with_group(name, value)`` as well as its fields (``Preset``'s attack settings)."""

    def group_names(self) -> tuple[str, ...]:
        """Names reachable besides the dataclass fields."""
        return ()

    def group(self, name: str) -> Any:
        """The group called ``name``."""
        raise KeyError(name)

    def with_group(self, name: str, value: Any) -> Any:
        """A copy with the group ``name`` replaced by ``value``."""
        raise KeyError(name)


def with_overrides(obj: Any, overrides: Mapping[str, Any]) -> Any:
    """``obj`` (a settings dataclass such as a ``Preset``) with fields replaced by dotted name,
    e.g. ``{"bl_v2.lr": 0.1, "snn_train.epochs": 3, "target_config.reset": "subtract"}``; an
    unknown name or a bad value is a one-line ``NmprivacyError`` naming the dotted setting."""
    for name, value in overrides.items():
        try:
            obj = _replaced(obj, name.split("."), value, name)
        except SettingsError as exc:
            raise exc.renamed(name) from None
    return obj


def _replaced(obj: Any, parts: list[str], value: Any, name: str) -> Any:
    """``obj`` (a settings dataclass, or a dict of model-config fields) with ``parts`` set to ``value``."""
    head, rest = parts[0], parts[1:]
    if isinstance(obj, dict):
        if rest or not head:
            raise NmprivacyError(f"setting '{name}': name one field of the model config after '{name.split('.')[0]}.'")
        return {**obj, head: value}
    known = [f.name for f in fields(obj)]
    groups = obj.group_names() if isinstance(obj, Overridable) else ()
    if head in groups:
        current = obj.group(head)
        if not rest:
            raise NmprivacyError(f"setting '{name}' is a group of settings: name one of its fields ('{name}.<field>')")
        return obj.with_group(head, _replaced(current, rest, value, name))
    if head not in known:
        raise NmprivacyError(f"unknown setting '{name}': '{head}' is not one of {', '.join([*known, *groups])}")
    current = getattr(obj, head)
    if rest:
        if current is None or not (is_dataclass(current) or isinstance(current, dict)):
            raise NmprivacyError(f"setting '{name}': '{head}' has no fields to set (drop '.{'.'.join(rest)}')")
        return replace(obj, **{head: _replaced(current, rest, value, name)})
    if is_dataclass(current):
        raise NmprivacyError(f"setting '{name}' is a group of settings: name one of its fields ('{name}.<field>')")
    return replace(obj, **{head: checked_value(_hints(type(obj))[head], value, head)})


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls``."""
    for f in fields(cls):
        if f.name == name:
            return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    raise KeyError(name)
