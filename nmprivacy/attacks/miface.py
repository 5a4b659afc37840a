"""MI-Face (Fredrikson et al. 2015) on an image classifier, batched across classes.

``x`` ``[K, C, H, W]`` starts at 0 and descends ``1 - softmax(f(x))_y`` with a fixed step,
clamped to [0, 1] when the preset says so. Each class stops on its own at cost <= goal, after
``patience`` iterations without improvement, or at ``max_iterations``; the reconstruction is
the lowest-cost iterate of each class.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import torch
from tqdm.auto import tqdm

from nmprivacy.attacks.base import Inversion
from nmprivacy.attacks.common import OracleFactory, Timer, check_classes, default_oracle, require_domain
from nmprivacy.models.base import TargetModel
from nmprivacy.presets import MIFaceSettings


class MIFace:
    """MI-Face on an image-domain model; ``run`` attacks all classes in one batch."""

    name = "mi-face"

    def __init__(self, settings: MIFaceSettings = MIFaceSettings(), oracle: OracleFactory = default_oracle) -> None:
        self.settings = settings
        self.oracle_factory = oracle

    def run(self, model: TargetModel, classes: Sequence[int], seed: int = 0) -> Inversion:
        """Invert ``model`` for ``classes``; reconstructions are images ``[K, *input_shape]``."""
        require_domain(model, "image", self.name)
        s = self.settings
        targets = check_classes(model, classes)
        k = len(targets)
        oracle = self.oracle_factory(model)
        x = torch.zeros((k, *model.info.input_shape))
        best_x = x.clone()
        best_cost = torch.full((k,), float("inf"))
        stale = torch.zeros(k, dtype=torch.long)
        active = torch.ones(k, dtype=torch.bool)
        cost_rows, conf_rows = [], []
        last_cost = torch.ones(k)
        last_conf = torch.zeros(k)
        timer = Timer()
        done = 0
        bar = tqdm(total=s.max_iterations, desc=self.name, leave=False)
        while done < s.max_iterations and bool(active.any()):
            idx = active.nonzero().squeeze(1)
            out = oracle(x[idx], targets[idx], "identity")
            cost = out.loss
            last_cost = last_cost.clone()
            last_conf = last_conf.clone()
            last_cost[idx] = cost
            last_conf[idx] = out.probs.gather(1, targets[idx, None]).squeeze(1)
            cost_rows.append(last_cost)
            conf_rows.append(last_conf)
            better = cost < best_cost[idx]
            best_cost[idx] = torch.where(better, cost, best_cost[idx])
            best_x[idx[better]] = x[idx[better]]
            stale[idx] = torch.where(better, torch.zeros_like(stale[idx]), stale[idx] + 1)
            step = x[idx] - s.lr * out.grad
            x[idx] = step.clamp(0.0, 1.0) if s.clamp else step
            active[idx] = (cost > s.cost_goal) & (stale[idx] < s.patience)
            done += 1
            bar.update(1)
            if done % 50 == 0:
                bar.set_postfix(active=int(active.sum()), cost=f"{best_cost.mean():.3f}")
        bar.close()
        seconds = timer.elapsed()
        return Inversion(
            attack=self.name,
            classes=targets.tolist(),
            reconstructions=best_x,
            loss_curve=torch.stack(cost_rows) if cost_rows else torch.zeros(0, k),
            confidence_curve=torch.stack(conf_rows) if conf_rows else torch.zeros(0, k),
            iterations=done,
            seconds_per_iteration=seconds / max(done, 1),
            seed=seed,
            config=asdict(s),
        )
