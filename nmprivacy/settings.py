"""Settings dataclasses that check themselves, and dotted-name overrides of them.

A settings dataclass calls ``check_settings(self)`` in ``__post_init__``: every field is checked
against its type hint (ints widen to floats, lists become tuples, a ``Literal`` takes one of its
values) and against the range its field declares with ``ranged(default, low=..., high=...)``. A
bad value raises ``SettingsError``, one line naming the field, the value and what to give instead,
so ``BLv2Settings(population=0)``, ``--iterations -1`` and ``--set bl_v2.population=0`` all fail
before anything runs. ``with_overrides(obj, {"bl_v2.lr": 0.1})`` replaces fields by dotted name
(what ``--set`` and ``nmprivacy study`` factors do); the error then names the dotted setting. An
optional group that is None (``snn_train.dp``) is created from its type's defaults when one of
its fields is set, and ``null`` removes it.
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
    if isinstance(hint, type) and is_dataclass(hint):  # a group of settings: itself, or its fields as a mapping
        if isinstance(value, hint):
            return value
        if isinstance(value, dict):
            return _apply(hint, _Node(children={str(k): _Node(value=v, name=f"{name}.{k}") for k, v in value.items()}), name + ".")
        raise SettingsError(name, f"is {value!r}: give {hint.__name__} settings (a mapping of its fields)")
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
    unknown name or a bad value is a one-line ``NmprivacyError`` naming the dotted setting.

    The fields of one group are replaced together (their order does not matter, and a group is
    checked once, with all its new values). A group that is None (an optional group, e.g.
    ``snn_train.dp``) is created from its type's defaults and the fields named
    (``snn_train.dp.epsilon=8`` builds ``DPSettings(epsilon=8)``); ``snn_train.dp=null`` removes
    it, and a mapping (``snn_train.dp={epsilon: 8}``) gives the whole group anew. A group set
    and also named into (``snn_train.dp`` and ``snn_train.dp.epsilon``) takes the group first."""
    root = _Node()
    for name, value in overrides.items():
        node = root
        for part in name.split("."):
            node = node.children.setdefault(part, _Node())
        node.value, node.name = value, name
    return _apply(obj, root, "")


_UNSET = object()


@dataclass
class _Node:
    """Overrides below one dotted prefix: the value set at the prefix itself (``value``, named
    ``name``) and the overrides of its fields (``children``)."""

    value: Any = _UNSET
    name: str = ""
    children: dict[str, _Node] = field(default_factory=dict)

    def any_name(self) -> str:
        """The dotted name of one override at or below this node (for messages)."""
        if self.value is not _UNSET:
            return self.name
        return next(iter(self.children.values())).any_name()


def group_type(hint: Any) -> type | None:
    """The settings dataclass a field of type ``hint`` holds (``X`` or ``X | None``), else None."""
    if isinstance(hint, type) and is_dataclass(hint):
        return hint
    if get_origin(hint) in (Union, types.UnionType):
        options = [a for a in get_args(hint) if isinstance(a, type) and is_dataclass(a)]
        return options[0] if len(options) == 1 else None
    return None


def _apply(obj: Any, node: _Node, prefix: str) -> Any:
    """``obj`` (a settings dataclass, a dict of model-config fields, or a settings dataclass *type*
    to build from its defaults) with the overrides of ``node``'s children; ``prefix``: the dotted
    name of ``obj`` plus ``.`` (``""`` at the top)."""
    if isinstance(obj, dict):
        out = dict(obj)
        for head, child in node.children.items():
            if child.children or not head:
                raise NmprivacyError(f"setting '{child.any_name()}': name one field of the model config after '{prefix}'")
            out[head] = child.value
        return out
    cls = obj if isinstance(obj, type) else type(obj)
    known = [f.name for f in fields(cls)]
    groups = obj.group_names() if isinstance(obj, Overridable) else ()
    changes: dict[str, Any] = {}
    for head, child in node.children.items():
        path = prefix + head
        if head in groups:
            if child.value is not _UNSET:
                raise NmprivacyError(f"setting '{path}' is a group of settings: name one of its fields ('{path}.<field>')")
            obj = obj.with_group(head, _apply(obj.group(head), child, path + "."))
            continue
        if head not in known:
            raise NmprivacyError(f"unknown setting '{child.any_name()}': '{head}' is not one of {', '.join([*known, *groups])}")
        hint = _hints(cls)[head]
        current = field_default(cls, head) if isinstance(obj, type) else getattr(obj, head)
        if child.value is not _UNSET:
            current = _leaf(hint, current, child.value, path)
        if child.children:
            if is_dataclass(current) or isinstance(current, dict):
                current = _apply(current, child, path + ".")
            elif current is None and group_type(hint) is not None:
                current = _apply(group_type(hint), child, path + ".")
            else:
                rest = child.any_name()[len(path) + 1:]
                raise NmprivacyError(f"setting '{child.any_name()}': '{head}' has no fields to set (drop '.{rest}')")
        changes[head] = current
    try:
        if isinstance(obj, type):
            return obj(**changes)
        return replace(obj, **changes) if changes else obj
    except SettingsError as exc:
        raise exc.renamed(prefix + exc.name) from None


def _leaf(hint: Any, current: Any, value: Any, name: str) -> Any:
    """The value of the field ``name`` (of type ``hint``, now ``current``) set to ``value`` as a whole."""
    group = group_type(hint)
    if group is None:
        try:
            return checked_value(hint, value, name)
        except SettingsError as exc:
            raise exc.renamed(name) from None
    if value is None and type(None) in get_args(hint):
        return None
    if isinstance(value, group):
        return value
    if isinstance(value, dict):
        return checked_value(group, value, name)
    off = " or null to remove it" if type(None) in get_args(hint) else ""
    raise NmprivacyError(f"setting '{name}' is a group of settings: name one of its fields ('{name}.<field>'){off}")


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls``."""
    for f in fields(cls):
        if f.name == name:
            return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    raise KeyError(name)
