"""The data-set interface: one registry, one split container with documented tensor layouts.

Layouts (every loader returns exactly these):
- image data sets (``domain == "image"``): ``x`` float32 ``[N, C, H, W]`` with values in [0, 1];
- event data sets (``domain == "events"``): ``x`` uint8 ``[N, T, C, H, W]`` binary voxels
  (at most one event per voxel), already cut to the data set's fixed T;
- labels ``y``: int64 ``[N]`` with values in ``range(len(classes))``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Protocol

import torch

from nmprivacy.errors import NmprivacyError

Domain = Literal["image", "events"]


@dataclass(frozen=True)
class Split:
    """One split of a data set: ``x`` in the layout of its domain, ``y`` int64 ``[N]``."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")

    def __len__(self) -> int:
        return int(self.y.shape[0])


# ``DatasetSplits.info`` entries that say how the samples were made (``content_options``).
CONTENT_INFO = ("pipeline", "saccade")


@dataclass(frozen=True)
class DatasetSplits:
    """A loaded data set: train/test splits, class names, per-sample input shape and provenance.

    ``input_shape`` is the shape of one sample without the time axis: ``(C, H, W)``.
    ``source`` says where the files were found (or "bundled with scikit-learn").
    """

    name: str
    domain: Domain
    train: Split
    test: Split
    classes: tuple[str, ...]
    input_shape: tuple[int, ...]
    source: str
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def content_options(self) -> dict:
        """The settings that change the samples beyond name, source and sizes (an event data set's
        pipeline: bins, polarity, denoising, clamping; a saccade simulation's seed, threshold,
        amplitude), empty for image sets: part of every cache key of a model trained on them."""
        return {k: self.info[k] for k in CONTENT_INFO if k in self.info}

    @property
    def num_inputs(self) -> int:
        """Number of input neurons of a flattened sample (product of ``input_shape``)."""
        return math.prod(self.input_shape)


class Loader(Protocol):
    """A data-set loader: reads local files (never downloads) and returns ``DatasetSplits``."""

    def __call__(self, root: Path | None = None, **options: object) -> DatasetSplits: ...


@dataclass(frozen=True)
class DatasetEntry:
    """A registry line: loader, domain, and a one-line description of where its files come from.

    ``locate(root)`` (optional) checks that the files exist without loading them and returns where
    they are (a folder, or a text such as "bundled with scikit-learn"); it raises
    ``DatasetNotFoundError`` when they are missing.
    """

    name: str
    loader: Callable[..., DatasetSplits]
    domain: Domain
    description: str
    locate: Callable[[Path | None], object] | None = None


REGISTRY: dict[str, DatasetEntry] = {}


def register(
    name: str,
    domain: Domain,
    description: str,
    locate: Callable[[Path | None], object] | None = None,
) -> Callable[[Callable[..., DatasetSplits]], Callable[..., DatasetSplits]]:
    """Decorator adding a loader (and optionally its file check ``locate``) to the registry."""

    def deco(fn: Callable[..., DatasetSplits]) -> Callable[..., DatasetSplits]:
        REGISTRY[name] = DatasetEntry(name, fn, domain, description, locate)
        return fn

    return deco


def data_roots(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for data-set files, in order: ``root``, ``$NMPRIVACY_DATA``, well-known paths."""
    roots: list[Path] = []
    if root is not None:
        roots.append(Path(root))
    env = os.environ.get("NMPRIVACY_DATA")
    if env:
        roots.extend(Path(p) for p in env.split(os.pathsep) if p)
    roots.extend([Path.home() / ".nmprivacy" / "data", Path("/usr/share/datasets")])
    return roots


def unknown_dataset(name: str) -> NmprivacyError:
    """The error for a data-set name that is not registered."""
    return NmprivacyError(f"unknown data set '{name}': choose one of {', '.join(sorted(REGISTRY))}")
