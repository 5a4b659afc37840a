"""Per-class diagnostics of a spiking inversion, so a low score is never silent about its cause:
the reconstruction's spike density beside the data set's, the target's confidence in the class,
and flags for degenerate reconstructions (docs/method.md §6):

- ``all-zero``: (almost) no spikes, density below ``ZERO_DENSITY`` (e.g. BL-v2 whose X_p never
  left a start of 0);
- ``saturated``: spikes almost everywhere, density above ``max(SATURATED_DENSITY, SATURATED_FACTOR x``
  the data's);
- ``too-sparse``: spikes, but fewer than ``SPARSE_FACTOR x`` the data's density: evaluators trained
  on the data cannot judge such inputs (measured with ``benchmarks/auto_selection`` on 15 image
  networks: bl-auto's chosen reconstructions below 0.2x the data's density were recognised 11-22 %
  of the time, near chance, against 64-99 % above 0.33x), so a low score there says little about
  what the target leaks: the reconstruction is likely adversarial to the target;
- ``target-unconvinced``: the target itself gives the class less than ``UNCONVINCED_FACTOR x``
  chance: the attack found no input the target puts in the class.

These read the data set only to report; no attack reads them to choose anything.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

ZERO_DENSITY = 1e-4
SATURATED_DENSITY = 0.5
SATURATED_FACTOR = 4.0
SPARSE_FACTOR = 0.2
UNCONVINCED_FACTOR = 2.0


def data_density(splits: Any) -> float:
    """The mean spike density of the input domain from the test split (disjoint from training):
    mean event occupancy for events, mean pixel value (the Bernoulli rate) for images."""
    return float(splits.test.x.float().mean().clamp(0.0, 1.0))


def class_density(inversion_tensor: torch.Tensor) -> torch.Tensor:
    """Mean spike probability per class ``[K]`` of spike-form reconstructions or X_p ``[K, T, ...]``."""
    return inversion_tensor.float().reshape(inversion_tensor.shape[0], -1).mean(dim=1)


def flags_of(density: float, data: float, confidence: float, chance: float) -> list[str]:
    """The degeneracy flags of one class (module docstring)."""
    flags = []
    if density < ZERO_DENSITY:
        flags.append("all-zero")
    elif density < SPARSE_FACTOR * data:
        flags.append("too-sparse")
    if density > max(SATURATED_DENSITY, SATURATED_FACTOR * data):
        flags.append("saturated")
    if confidence < UNCONVINCED_FACTOR * chance:
        flags.append("target-unconvinced")
    return flags


def diagnose(inversion_tensor: torch.Tensor, target_confidence: torch.Tensor, classes: Sequence[int], data: float, num_classes: int,
             extra: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per class density, target confidence and flags of spike-form ``inversion_tensor`` (X_p or
    spikes ``[K, T, ...]``) whose target confidences are ``target_confidence`` ``[K]``; ``extra``:
    more per-class fields (e.g. bl-auto's winning member). ``degenerate`` maps each flagged class
    to its flags (empty: none)."""
    dens = class_density(inversion_tensor)
    chance = 1.0 / num_classes
    per_class = []
    for i, c in enumerate(classes):
        row = {"class": int(c), "density": float(dens[i]), "target_confidence": float(target_confidence[i]),
               "flags": flags_of(float(dens[i]), data, float(target_confidence[i]), chance)}
        if extra is not None:
            row.update(extra[i])
        per_class.append(row)
    return {"data_density": data, "per_class": per_class, "degenerate": {str(r["class"]): r["flags"] for r in per_class if r["flags"]}}
