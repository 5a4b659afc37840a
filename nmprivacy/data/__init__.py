"""Data-set registry and loaders; see ``nmprivacy.data.base`` for layouts.

``load_dataset(name, root, **options)`` reads a registered data set from local files (never
downloading); ``dataset_names()`` lists them; ``dataset_status(root)`` checks which are present
without loading them. Common options: ``limit_train`` / ``limit_test`` (class-balanced subsets);
event sets also take ``steps`` (fixed T) and ``cache``; ``dvs-gesture`` takes ``downsample``;
``*-saccade`` sets take ``seed``, ``threshold`` and ``amplitude``; ``att-faces`` takes ``variant``.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

from nmprivacy.data.base import REGISTRY, DatasetSplits, Split, data_roots, unknown_dataset
from nmprivacy.errors import DatasetNotFoundError, NmprivacyError

LOADER_MODULES = ("digits", "idx", "faces", "nmnist", "dvs_gesture", "saccade")

__all__ = ["DatasetSplits", "Split", "data_roots", "dataset_names", "dataset_status", "load_dataset", "loader_options"]


def _import_loaders() -> None:
    for module in LOADER_MODULES:
        importlib.import_module(f"nmprivacy.data.{module}")


def dataset_names() -> list[str]:
    """Names of every registered data set, sorted."""
    _import_loaders()
    return sorted(REGISTRY)


def loader_options(name: str) -> list[str]:
    """The options ``load_dataset(name, ...)`` accepts besides ``root``."""
    _import_loaders()
    if name not in REGISTRY:
        raise unknown_dataset(name)
    params = inspect.signature(REGISTRY[name].loader).parameters
    return [p for p in params if p != "root"]


def load_dataset(name: str, root: str | os.PathLike[str] | None = None, **options: object) -> DatasetSplits:
    """Load data set ``name`` from local files found under ``data_roots(root)``."""
    allowed = loader_options(name)
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise NmprivacyError(f"data set '{name}' has no option {', '.join(bad)}; its options are {', '.join(allowed)}")
    return REGISTRY[name].loader(Path(root) if root is not None else None, **options)


def dataset_status(root: str | os.PathLike[str] | None = None) -> list[tuple[str, bool, str]]:
    """(name, found, where-or-reason) for every data set, checking files only (nothing is loaded)."""
    out = []
    for name in dataset_names():
        entry = REGISTRY[name]
        if entry.locate is None:
            out.append((name, False, "no file check available for this data set"))
            continue
        try:
            where = entry.locate(Path(root) if root is not None else None)
        except DatasetNotFoundError as exc:
            out.append((name, False, str(exc)))
        else:
            out.append((name, True, str(where)))
    return out
