"""An automatic step size for BL-v2's search, after APGD (Croce & Hein 2020): per class, every
``checkpoint`` iterations the best target confidence so far is compared with its value at the
previous checkpoint; a class that did not improve by more than ``tol`` halves its step size and
restarts from its best X_p (optimiser state cleared). A class has converged once its step size
fell below ``min_fraction`` of the first, or its confidence reached ``goal``; the search stops when
every class has. So no step size is tuned per network and the budget follows convergence, not a
fixed count of iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmprivacy.attacks.state import BestSoFar, ClassState, per_class


@dataclass
class HalvingStep(ClassState):
    """The rule's state for ``k`` classes: step sizes and the best confidence at the last checkpoint."""

    lr: torch.Tensor = per_class()  # [k] current step size
    last: torch.Tensor = per_class()  # [k] best confidence at the previous checkpoint (-1 before the first)
    halvings: torch.Tensor = per_class()  # [k] how often the step was halved

    @classmethod
    def start(cls, k: int, lr: float) -> "HalvingStep":
        """Every class at step size ``lr``."""
        return cls(torch.full((k,), float(lr)), torch.full((k,), -1.0), torch.zeros(k, dtype=torch.long))

    def check(self, best: BestSoFar, tol: float) -> torch.Tensor:
        """At a checkpoint: halve the step of every class whose best confidence ``best.conf`` rose
        by at most ``tol`` since the last checkpoint; returns those classes (bool ``[k]``), which
        the caller restarts from ``best.point``."""
        stalled = best.conf <= self.last + tol
        self.lr[stalled] /= 2
        self.halvings[stalled] += 1
        self.last.copy_(best.conf)
        return stalled

    def converged(self, best: BestSoFar, first_lr: float, min_fraction: float, goal: float) -> torch.Tensor:
        """Classes (bool ``[k]``) whose step fell below ``min_fraction * first_lr`` or whose confidence reached ``goal``."""
        return (self.lr < first_lr * min_fraction) | (best.conf >= goal)
