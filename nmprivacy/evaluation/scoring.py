"""Scoring reconstructions with independent evaluation classifiers (docs/method.md §6).

Reconstruction forms, one per attacked class (class axis first):
- spikes ``[K, T, *input_shape]`` binary (BL-v1; BL-v2's Bernoulli sample of X_p);
- Bernoulli probabilities ``[K, T, *input_shape]`` in [0, 1] (scored on one sample);
- images ``[K, *input_shape]`` (MI-Face; min-max scaled to [0, 1] per image before scoring).
Each evaluator gets the form it takes: an image evaluator gets rate-decoded spikes (mean over
T), a spiking evaluator gets rate-encoded images (``nmprivacy.encoding.rate_encode``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from nmprivacy.attacks.base import Inversion
from nmprivacy.attacks.layout import per_sample_minmax, to_model_layout
from nmprivacy.errors import NmprivacyError
from nmprivacy.evaluation.metrics import all_metrics
from nmprivacy.models.base import TargetModel
from nmprivacy.progress import bar


def is_spike_form(recon: torch.Tensor, input_shape: Sequence[int]) -> bool:
    """True for ``[K, T, *input_shape]`` spike/probability tensors, False for ``[K, *input_shape]`` images."""
    return recon.dim() == len(input_shape) + 2


def is_binary(x: torch.Tensor) -> bool:
    """True when every value of ``x`` is 0 or 1."""
    return bool(((x == 0) | (x == 1)).all())


def coerce_reconstructions(recon: torch.Tensor, input_shape: Sequence[int], num_classes: int, source: str = "reconstructions") -> torch.Tensor:
    """Reshape reconstructions saved in another layout (``[C, H, W]``, ``[C, 1, N]``, ``[C, T, 1, N]``)
    to ``[C, *input_shape]`` images or ``[C, T, *input_shape]`` spikes/probabilities."""
    per = math.prod(input_shape)
    if recon.dim() < 2 or recon.shape[0] != num_classes:
        raise NmprivacyError(
            f"{source} has shape {tuple(recon.shape)}: expected one reconstruction per class, first axis {num_classes}"
        )
    n = recon[0].numel()
    if n == per:
        return recon.reshape(num_classes, *input_shape).float()
    if n % per == 0 and recon.dim() >= 3:
        return recon.reshape(num_classes, n // per, *input_shape).float()
    raise NmprivacyError(
        f"{source} has {n} values per class, which is neither one input {tuple(input_shape)} nor T of them: "
        "save images [C, H, W] / [C, 1, N] or spikes [C, T, 1, N]"
    )


def check_scorable(recon: torch.Tensor, input_shape: Sequence[int], source: str = "reconstructions") -> torch.Tensor:
    """``recon`` if it can be scored: finite, and spike forms binary or probabilities in [0, 1]."""
    if recon.numel() == 0:
        raise NmprivacyError(f"{source} holds no values (shape {tuple(recon.shape)}): save one reconstruction per class")
    if not bool(torch.isfinite(recon).all()):
        raise NmprivacyError(f"{source} contains NaN or infinite values: save finite reconstructions")
    if is_spike_form(recon, input_shape) and (recon.min() < 0 or recon.max() > 1):
        raise NmprivacyError(f"{source}: spike reconstructions must be binary or probabilities in [0, 1]: rescale them before scoring")
    return recon


def load_scorable(path: str, input_shape: Sequence[int], num_classes: int, dataset: str = "the data set") -> tuple[torch.Tensor, list[int]]:
    """(reconstructions ``[C, *input_shape]`` or ``[C, T, *input_shape]``, classes) from file
    ``path`` (``attacks.io.load_reconstructions``), checked to be scorable for a data set of
    ``num_classes`` classes before any evaluator is trained or loaded."""
    from nmprivacy.attacks.io import load_reconstructions

    recon, classes = load_reconstructions(path)
    if classes is None:
        classes = list(range(num_classes))  # a bare tensor: classes 0..C-1 (its first axis is checked below)
    elif len(classes) != num_classes:
        raise NmprivacyError(f"{path} holds {len(classes)} classes but metrics need one reconstruction for each of the {num_classes} classes of {dataset}")
    elif max(classes) >= num_classes:
        raise NmprivacyError(f"{path} names class {max(classes)} but {dataset} has classes 0..{num_classes - 1}: pass the data set the reconstructions were made for")
    recon = coerce_reconstructions(recon, input_shape, len(classes), source=str(path))
    return check_scorable(recon, input_shape, source=str(path)), classes


def scored_form(recon: torch.Tensor, input_shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """The form metrics are computed on: spikes as they are, probabilities -> one Bernoulli
    sample, images -> min-max scaled to [0, 1] per reconstruction."""
    check_scorable(recon, input_shape)
    if not is_spike_form(recon, input_shape):
        return per_sample_minmax(recon.float())
    if is_binary(recon):
        return recon.float()
    return torch.bernoulli(recon.float(), generator=generator)


def evaluator_input(recon: torch.Tensor, model: TargetModel, generator: torch.Generator, steps: int | None = None) -> torch.Tensor:
    """``recon`` (spikes ``[K, T, ...]`` or images ``[K, ...]``) in ``model``'s input layout."""
    shape = model.info.input_shape
    spikes = is_spike_form(recon, shape)
    if model.info.domain == "image":
        return recon.float().mean(dim=1) if spikes else recon.float()
    if spikes:
        return to_model_layout(recon.float(), "spikes")
    from nmprivacy.encoding import rate_encode

    t = steps or getattr(model, "steps", None)
    if not t:
        raise NmprivacyError(f"spiking model '{model.info.kind}' does not say its time steps: pass steps=T")
    return rate_encode(recon.float().clamp(0, 1), int(t), generator)


@torch.no_grad()
def confidence_matrix(model: TargetModel, recon: torch.Tensor, generator: torch.Generator, steps: int | None = None) -> torch.Tensor:
    """``[K, C]`` class probabilities ``model`` assigns to each reconstruction (row = attacked class)."""
    model.eval()
    return model.probabilities(evaluator_input(recon, model, generator, steps)).float()


def square(conf: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """The ``[K, K]`` sub-matrix of ``conf`` ``[K, C]`` on the attacked classes (rows in ``classes`` order)."""
    idx = torch.as_tensor(list(classes), dtype=torch.long)
    if len(set(idx.tolist())) != len(idx) or conf.shape[0] != len(idx):
        raise NmprivacyError("metrics need exactly one reconstruction per attacked class, no class twice")
    return conf[:, idx]


def score(model: TargetModel, recon: torch.Tensor, classes: Sequence[int], seed: int, steps: int | None = None) -> dict[str, float]:
    """Metrics (``attack_acc``, ``top3_acc``, ``avg_conf``, ``daa``) of ``recon`` judged by ``model``."""
    g = torch.Generator().manual_seed(seed)
    form = scored_form(recon, model.info.input_shape, g)
    return all_metrics(square(confidence_matrix(model, form, g, steps), classes))


def target_confidences(target: TargetModel, inversion: Inversion, seed: int = 0) -> torch.Tensor:
    """Per class ``[K]``: the attacked model's confidence in the attacked class on the attack's own output."""
    g = torch.Generator().manual_seed(seed)
    conf = confidence_matrix(target, inversion.reconstructions, g)
    idx = torch.as_tensor(inversion.classes, dtype=torch.long)
    return conf[torch.arange(len(idx)), idx]


def target_confidence(target: TargetModel, inversion: Inversion, seed: int = 0) -> float:
    """Mean confidence of the attacked model in the attacked class on the attack's own output."""
    return float(target_confidences(target, inversion, seed).mean())


def redraw_spread(model: TargetModel, probabilities: torch.Tensor, classes: Sequence[int], draws: int, seed: int) -> dict[str, float]:
    """The paper's ± : std of attack and top-3 accuracy over ``draws`` Bernoulli re-draws of X_p."""
    g = torch.Generator().manual_seed(seed)
    runs = [
        all_metrics(square(confidence_matrix(model, torch.bernoulli(probabilities, generator=g), g), classes))
        for _ in bar(range(draws), desc="re-draws of X_p", leave=False, quiet=draws < 50)
    ]
    acc = torch.tensor([r["attack_acc"] for r in runs])
    top3 = torch.tensor([r["top3_acc"] for r in runs])
    return {
        "attack_acc_redraw_mean": float(acc.mean()),
        "attack_acc_redraw_std": float(acc.std(unbiased=False)),
        "top3_acc_redraw_mean": float(top3.mean()),
        "top3_acc_redraw_std": float(top3.std(unbiased=False)),
        "redraws": draws,
    }


def summarize(table: Sequence[Sequence[dict[str, float]]]) -> dict[str, float]:
    """Aggregate metrics ``table[seed][evaluator]``: mean over everything, ``<m>_std`` across seeds
    (of the evaluator mean) when repeated, ``<m>_evaluator_std`` across evaluators when several."""
    names = list(table[0][0])
    vals = torch.tensor([[[run[n] for n in names] for run in row] for row in table], dtype=torch.float64)  # [R, E, M]
    out: dict[str, float] = {}
    for m, n in enumerate(names):
        out[n] = float(vals[:, :, m].mean())
        if vals.shape[0] > 1:
            out[f"{n}_std"] = float(vals[:, :, m].mean(dim=1).std(unbiased=True))
        if vals.shape[1] > 1:
            out[f"{n}_evaluator_std"] = float(vals[:, :, m].mean(dim=0).std(unbiased=True))
    return out
