"""Training and accuracy of every model kind: one loop, Adam, the losses and read-outs of docs/method.md §1.

``train_model(kind, splits, config, settings, seed)`` builds a model from the registry, trains it
on ``splits.train`` and reports validation accuracy on ``splits.test`` after every epoch.
Inputs per batch: spiking models get ``[T, B, C, H, W]`` spikes from ``nmprivacy.encoding.to_spikes``
(static images rate-encoded anew per batch from a seeded generator; event data are already
spikes), image models get ``[B, C, H, W]``. Losses: ``membrane_cross_entropy`` (spiking) or
cross-entropy of the logits (image). Same seed, same data, same machine: same weights.
Evaluation classifiers train from a seed derived from (kind, seed), never the target's.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from nmprivacy.data.base import DatasetSplits, Split
from nmprivacy.errors import NmprivacyError
from nmprivacy.models import build, kind_entry
from nmprivacy.models.base import TargetModel, membrane_cross_entropy, spike_readout
from nmprivacy.presets import Preset, TrainSettings
from nmprivacy.progress import bar as progress_bar

EVAL_BATCH = 256


@dataclass(frozen=True)
class TrainReport:
    """What one training run did: schedule, seeds, curves per epoch, final accuracy, speed."""

    kind: str
    dataset: str
    seed: int  # as requested
    model_seed: int  # seed actually used for init, shuffling and encoding (derived for evaluators)
    steps: int | None  # T of the spike input (None for image models)
    settings: TrainSettings
    train_samples: int
    test_samples: int
    train_loss: tuple[float, ...]  # mean loss per epoch
    train_accuracy: tuple[float, ...]  # accuracy on the training batches per epoch (read-out argmax)
    val_accuracy: tuple[float, ...]  # test-split accuracy after each epoch
    final_val_accuracy: float
    seconds: float
    samples_per_s: float
    device: str = "cpu"  # where it trained (train_model's device)
    engine: str | None = None  # snn-lava: "sparse" (nmprivacy.models.sparse_cuba) or "slayer" at the end of training


def model_seed(kind: str, seed: int) -> int:
    """The seed a model of ``kind`` trains with: ``seed`` for targets, a distinct derived one for evaluators."""
    if kind_entry(kind).role == "evaluator":
        return zlib.crc32(f"{kind}:{seed}".encode()) & 0x7FFFFFFF
    return int(seed)


def settings_for(kind: str, preset: Preset) -> TrainSettings:
    """The preset's schedule for ``kind`` (the registry names it; the spiking evaluator falls
    back to the image evaluator's schedule where the preset gives none of its own)."""
    schedule = getattr(preset, kind_entry(kind).schedule)
    return schedule if schedule is not None else preset.evaluator_train


def _domain_of(x: torch.Tensor) -> str:
    """Data domain of a split's ``x``: ``[N, T, C, H, W]`` events or ``[N, C, H, W]`` images."""
    return "events" if x.dim() == 5 else "image"


def model_input(model: TargetModel, x: torch.Tensor, steps: int | None, generator: torch.Generator) -> torch.Tensor:
    """A batch of a split (``[B, C, H, W]`` images or ``[B, T, C, H, W]`` events) in ``model``'s input layout."""
    domain = _domain_of(x)
    if model.info.domain == "image":
        if domain != "image":
            raise NmprivacyError(f"model '{model.info.kind}' takes images but the data are events; use a spiking model (snn-norse, snn-lava, evaluator-snn)")
        return x.to(torch.float32)
    from nmprivacy.encoding import to_spikes

    return to_spikes(x, domain, steps, generator).to(torch.float32)


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device to train on: ``"cpu"`` (the default) or ``"cuda"`` / ``"cuda:N"`` (slayer's
    CUDA path for snn-lava); a one-line ``NmprivacyError`` when it is unknown or not present."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise NmprivacyError(f"unknown device {device!r}: use cpu or cuda (cuda:N for the N-th GPU)") from None
    if dev.type not in ("cpu", "cuda"):
        raise NmprivacyError(f"device {device!r} is not supported: use cpu or cuda")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise NmprivacyError(f"device {device!r} requested but torch sees {torch.cuda.device_count()} CUDA GPU(s) here; train with device cpu")
    return dev


def _device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def check_compatible(kind: str, splits: DatasetSplits, config: Any) -> None:
    """One-line ``NmprivacyError`` if ``config`` does not fit ``splits`` or the kind cannot read the domain."""
    if kind_entry(kind).domain == "image" and splits.domain != "image":
        raise NmprivacyError(f"model '{kind}' takes images but data set '{splits.name}' holds events; use snn-norse, snn-lava or evaluator-snn")
    if tuple(config.input_shape) != tuple(splits.input_shape) or config.num_classes != splits.num_classes:
        raise NmprivacyError(
            f"model config expects input {tuple(config.input_shape)} with {config.num_classes} classes but '{splits.name}' "
            f"has {tuple(splits.input_shape)} and {splits.num_classes}; build the config from this data set"
        )


def _loss(model: TargetModel, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if model.info.domain == "spikes":
        return membrane_cross_entropy(out, y)
    return nn.functional.cross_entropy(out, y)


def _readout_argmax(model: TargetModel, out: torch.Tensor) -> torch.Tensor:
    return (spike_readout(out) if model.info.domain == "spikes" else out).argmax(dim=-1)


@torch.no_grad()
def evaluate_accuracy(model: TargetModel, split: Split, steps: int | None, seed: int, batch_size: int = EVAL_BATCH, progress: bool = False) -> float:
    """Fraction of ``split`` that ``model.predict`` classifies correctly (spike inputs encoded with ``seed``)."""
    if len(split) == 0:
        raise NmprivacyError("cannot evaluate accuracy on an empty split; check --max-train-samples / the data set limits")
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))
    correct = 0
    device = _device_of(model)
    try:
        for start in progress_bar(range(0, len(split), batch_size), desc="evaluate", unit="batch", quiet=not progress, leave=False):
            xb = model_input(model, split.x[start : start + batch_size], steps, gen).to(device)
            correct += int((model.predict(xb).cpu() == split.y[start : start + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / len(split)


def _training_subset(split: Split, limit: int | None, generator: torch.Generator) -> Split:
    if limit is None or limit >= len(split):
        return split
    if limit < 1:
        raise NmprivacyError(f"max_train_samples must be >= 1, got {limit}")
    idx = torch.randperm(len(split), generator=generator)[:limit].sort().values
    return Split(split.x[idx], split.y[idx])


def train_model(
    kind: str,
    splits: DatasetSplits,
    config: Any,
    settings: TrainSettings,
    seed: int,
    steps: int | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[TargetModel, TrainReport]:
    """Train a new ``kind`` model (from ``config``) on ``splits.train``; returns it (eval mode) and its report.

    ``steps`` is T of the spike input (required for spiking models on image data; event data
    keep their own T when None). Validation accuracy on ``splits.test`` is measured per epoch.
    ``device``: where to train (``resolve_device``); the model is initialised on the CPU (same
    weights on any device) and returned on the CPU.
    """
    check_compatible(kind, splits, config)
    spiking = kind_entry(kind).domain == "spikes"
    if spiking and splits.domain == "image" and not steps:
        raise NmprivacyError(f"spiking model '{kind}' on image data needs the number of time steps; pass --steps T")
    if settings.epochs < 1 or settings.batch_size < 1 or settings.lr <= 0:
        raise NmprivacyError(f"invalid schedule {settings}: epochs and batch size must be >= 1 and the learning rate > 0")
    use_seed = model_seed(kind, seed)
    torch.manual_seed(use_seed)
    dev = resolve_device(device)
    model = build(kind, config).to(dev)
    data_gen = torch.Generator().manual_seed(use_seed + 1)  # subset, shuffling and spike encoding
    train = _training_subset(splits.train, settings.max_train_samples, data_gen)
    t_steps = (steps or int(splits.train.x.shape[1])) if spiking else None
    optim = torch.optim.Adam(model.parameters(), lr=settings.lr)
    losses: list[float] = []
    accs: list[float] = []
    vals: list[float] = []
    n, seen, start = len(train), 0, time.perf_counter()
    epochs = settings.epochs_for(n)  # at least settings.min_steps optimiser steps on small data
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=data_gen)
        total_loss, total_correct, epoch_seen = 0.0, 0, 0
        bar = progress_bar(range(0, n, settings.batch_size), desc=f"{kind} epoch {epoch + 1}/{epochs}", unit="batch", quiet=not progress)
        for b0 in bar:
            idx = order[b0 : b0 + settings.batch_size]
            xb, yb = model_input(model, train.x[idx], t_steps, data_gen).to(dev), train.y[idx].to(dev)
            out = model(xb)
            loss = _loss(model, out, yb)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optim.step()
            bsz = int(yb.shape[0])
            total_loss += float(loss) * bsz
            total_correct += int((_readout_argmax(model, out.detach()) == yb).sum())
            epoch_seen += bsz
            seen += bsz
            bar.set_postfix(loss=f"{total_loss / epoch_seen:.4f}", acc=f"{total_correct / epoch_seen:.3f}", samples_s=f"{seen / (time.perf_counter() - start):.0f}")
        losses.append(total_loss / epoch_seen)
        accs.append(total_correct / epoch_seen)
        vals.append(evaluate_accuracy(model, splits.test, t_steps, seed=use_seed + 2))
        if progress:
            tqdm.write(f"{kind} epoch {epoch + 1}: loss {losses[-1]:.4f}, train acc {accs[-1]:.4f}, val acc {vals[-1]:.4f}")
    seconds = time.perf_counter() - start
    model.to("cpu").eval()
    report = TrainReport(
        kind=kind,
        dataset=splits.name,
        seed=int(seed),
        model_seed=use_seed,
        steps=t_steps,
        settings=settings,
        train_samples=n,
        test_samples=len(splits.test),
        train_loss=tuple(losses),
        train_accuracy=tuple(accs),
        val_accuracy=tuple(vals),
        final_val_accuracy=vals[-1],
        seconds=seconds,
        samples_per_s=seen / seconds if seconds > 0 else float("nan"),
        device=str(dev),
        engine=getattr(model, "engine", None),
    )
    return model, report
