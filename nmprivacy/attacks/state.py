"""Search states that split across parts of the attacked classes by their fields' metadata.

An attack's state is a dataclass whose every field declares where its class axis is
(``per_class(axis)``: ``[k, ...]`` tensors axis 0, per-iteration records ``[iterations, k]``
axis 1, nested states their own). ``ClassState.part(classes)`` then builds the state of a slice
of the classes from views of the whole (updating the part updates the whole), so
``nmprivacy.attacks.executor`` can run each part on its own thread; a field that declares no
axis is an error, never a field silently left whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import torch

CLASS_AXIS = "class_axis"
S = TypeVar("S", bound="ClassState")


def per_class(axis: int = 0) -> Any:
    """A state field whose class axis is ``axis`` (0: ``[k, ...]``; 1: ``[iterations, k]``)."""
    return field(metadata={CLASS_AXIS: axis})


class ClassState:
    """Base of dataclass search states whose fields are split by ``per_class`` metadata."""

    def part(self: S, classes: slice) -> S:
        """The state of ``classes`` (views: updating the part updates the whole)."""
        parts = {}
        for f in fields(self):  # type: ignore[arg-type]
            if CLASS_AXIS not in f.metadata:
                raise TypeError(f"{type(self).__name__}.{f.name} does not declare its class axis: declare it with per_class(axis)")
            value = getattr(self, f.name)
            if isinstance(value, ClassState):
                parts[f.name] = value.part(classes)
            else:
                parts[f.name] = value[(slice(None),) * f.metadata[CLASS_AXIS] + (classes,)]
        return type(self)(**parts)


@dataclass
class BestSoFar(ClassState):
    """Per class the search point whose population scored the highest mean target confidence,
    that confidence, and the iterations since it last rose by more than a tolerance (the
    plateau stop's counter). Shared by BL-v2 and its query form (``keep="best"``)."""

    point: torch.Tensor = per_class()  # [k, ...] the best point (X_p or rate parameters)
    conf: torch.Tensor = per_class()  # [k] its confidence (-1 before the first iteration)
    stale: torch.Tensor = per_class()  # [k] iterations since the confidence rose by more than the tolerance

    @classmethod
    def start(cls, point: torch.Tensor) -> "BestSoFar":
        """Nothing seen yet: ``point`` (cloned) is the best, with confidence -1."""
        k = point.shape[0]
        return cls(point.clone(), torch.full((k,), -1.0), torch.zeros(k, dtype=torch.long))

    def record(self, conf: torch.Tensor, point: torch.Tensor, tol: float = 0.0) -> None:
        """A population drawn from ``point`` ``[k, ...]`` scored ``conf`` ``[k]``: keep it where it
        beats the best; reset the stale count where it beats it by more than ``tol``."""
        better = conf > self.conf
        self.point[better] = point[better]
        improved = conf > self.conf + tol
        self.conf.copy_(torch.where(better, conf, self.conf))
        self.stale.copy_(torch.where(improved, torch.zeros_like(self.stale), self.stale + 1))
