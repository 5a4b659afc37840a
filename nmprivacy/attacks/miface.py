"""MI-Face (Fredrikson et al. 2015) on an image classifier, batched across classes.

``x`` ``[K, C, H, W]`` starts at 0 and descends ``1 - softmax(f(x))_y`` with a fixed step,
clamped to [0, 1] when the preset says so. Each class stops on its own at cost <= goal, after
``patience`` iterations without improvement, or at ``max_iterations``; the reconstruction is
the lowest-cost iterate of each class. The algorithm is ``MIFaceSearch`` (its state, with the
stop rule ``finished``) and ``miface_iteration`` (one step); ``nmprivacy.attacks.executor`` runs it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Sequence

import torch

from nmprivacy.attacks.base import AttackInfo, GradientOracle, Inversion, RegisteredAttack
from nmprivacy.attacks.common import OracleFactory, check_classes, default_oracle, oracle_name, require_domain
from nmprivacy.attacks.executor import ClassParts
from nmprivacy.attacks.state import ClassState, per_class
from nmprivacy.models.base import TargetModel
from nmprivacy.presets import MIFaceSettings


@dataclass
class MIFaceSearch(ClassState):
    """MI-Face's state for the classes ``targets`` ``[k]``: the image being descended, the best
    iterate, the per-class stop state and the per-iteration record. Built for all classes
    (``start``); a ``part`` of it holds views of the whole."""

    targets: torch.Tensor = per_class()  # [k] attacked classes
    x: torch.Tensor = per_class()  # [k, *input_shape] current image
    best_x: torch.Tensor = per_class()  # [k, *input_shape] lowest-cost iterate
    best_cost: torch.Tensor = per_class()  # [k] its cost (inf before the first iteration)
    stale: torch.Tensor = per_class()  # [k] iterations since the cost last fell
    active: torch.Tensor = per_class()  # [k] bool: the class is still descending
    cost: torch.Tensor = per_class()  # [k] the class's latest cost (1 before its first iteration)
    conf: torch.Tensor = per_class()  # [k] the class's latest confidence in its target (0 before its first)
    costs: torch.Tensor = per_class(1)  # [max_iterations, k]: ``cost`` after each iteration
    confs: torch.Tensor = per_class(1)  # [max_iterations, k]: ``conf`` after each iteration

    @classmethod
    def start(cls, targets: torch.Tensor, input_shape: tuple[int, ...], max_iterations: int) -> "MIFaceSearch":
        """x = 0 for images of ``input_shape``, every class active."""
        k = len(targets)
        x = torch.zeros((k, *input_shape))
        return cls(
            targets=targets, x=x, best_x=x.clone(), best_cost=torch.full((k,), float("inf")), stale=torch.zeros(k, dtype=torch.long),
            active=torch.ones(k, dtype=torch.bool), cost=torch.ones(k), conf=torch.zeros(k),
            costs=torch.zeros(max_iterations, k), confs=torch.zeros(max_iterations, k),
        )

    def finished(self) -> bool:
        """The stop rule: every class reached its goal or ran out of patience."""
        return not bool(self.active.any())


def miface_iteration(search: MIFaceSearch, it: int, oracle: GradientOracle, settings: MIFaceSettings) -> None:
    """Iteration ``it`` of MI-Face on the active classes of ``search`` (in place; docs/method.md, MI-Face)."""
    s = settings
    idx = search.active.nonzero().squeeze(1)
    if len(idx):
        out = oracle(search.x[idx], search.targets[idx], "identity")
        cost = out.loss
        search.cost[idx] = cost
        search.conf[idx] = out.probs.gather(1, search.targets[idx, None]).squeeze(1)
        better = cost < search.best_cost[idx]
        search.best_cost[idx] = torch.where(better, cost, search.best_cost[idx])
        search.best_x[idx[better]] = search.x[idx[better]]
        search.stale[idx] = torch.where(better, torch.zeros_like(search.stale[idx]), search.stale[idx] + 1)
        step = search.x[idx] - s.lr * out.grad
        search.x[idx] = step.clamp(0.0, 1.0) if s.clamp else step
        search.active[idx] = (cost > s.cost_goal) & (search.stale[idx] < s.patience)
    search.costs[it] = search.cost
    search.confs[it] = search.conf


class MIFace(RegisteredAttack):
    """MI-Face on an image-domain model; ``run`` attacks all classes in one batch."""

    name = "mi-face"
    info = AttackInfo(settings="mi_face", settings_type=MIFaceSettings, model="ann", domain="image", iterations="max_iterations",
                      quick={"max_iterations": 200})

    def __init__(self, settings: MIFaceSettings = MIFaceSettings(), oracle: OracleFactory = default_oracle) -> None:
        self.settings = settings
        self.oracle_factory = oracle

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion:
        """Invert ``model`` for ``classes``; reconstructions are images ``[K, *input_shape]``."""
        require_domain(model, "image", self.name)
        s = self.settings
        targets = check_classes(model, classes)
        search = MIFaceSearch.start(targets, tuple(model.info.input_shape), s.max_iterations)
        oracle = self.oracle_factory(model)
        parts = ClassParts(oracle, len(targets))
        steps = [partial(miface_iteration, search.part(p.classes), oracle=p.oracle, settings=s) for p in parts.parts]
        done = parts.run(
            steps, s.max_iterations, stop=lambda it: search.finished(), desc=self.name,
            status=lambda it: {"active": int(search.active.sum()), "cost": f"{search.best_cost.mean():.3f}"} if (it + 1) % 50 == 0 else None,
        )
        return Inversion(
            attack=self.name,
            classes=targets.tolist(),
            reconstructions=search.best_x,
            loss_curve=search.costs[: done.iterations],
            confidence_curve=search.confs[: done.iterations],
            iterations=done.iterations,
            seconds_per_iteration=done.seconds_per_iteration,
            seed=seed,
            config={**asdict(s), "oracle": oracle_name(oracle)},
        )
