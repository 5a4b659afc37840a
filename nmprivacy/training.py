"""Training and accuracy of every model kind: one loop, Adam, the losses and read-outs of docs/method.md §1.

``train_model(kind, splits, config, settings, seed)`` builds a model from the registry, trains it
on ``splits.train`` and reports validation accuracy on ``splits.test`` after every epoch.
Inputs per batch: spiking models get ``[T, B, C, H, W]`` spikes from ``nmprivacy.encoding.to_spikes``
(static images rate-encoded anew per batch from a seeded generator; event data are already
spikes), image models get ``[B, C, H, W]``. Losses: ``membrane_cross_entropy`` (spiking) or
cross-entropy of the logits (image). Same seed, same data, same machine: same weights.
Evaluation classifiers train from a seed derived from (kind, seed), never the target's.

Defences (``TrainSettings``; README "Defences", docs/method.md §10), off by default:

- ``dp``: DP-SGD through ``nmprivacy.dp.dp_wrap``: Poisson batches (an empty one still takes a
  noise-only step), per-sample clipping to ``dp.max_grad_norm`` (``grad_clip`` is not used),
  Gaussian noise, Opacus's accountant; ``TrainReport.dp`` records what was spent. Refused for
  evaluators (they judge the attacks and are not audited).
- ``weight_decay``: decoupled weight decay (``torch.optim.AdamW``) instead of Adam.
- ``dropout``: inverted dropout on the hidden layer's output during training only (``ann``: the
  sigmoid units; spiking kinds: the hidden neurons' spikes, one mask per sample held over all
  time steps, as slayer's ``neuron.Dropout``), applied by forward hooks removed after training,
  so inference and export are unchanged. snn-lava's sparse engine, which does not run the hidden
  blocks as modules, draws the same masks from the same generator itself (``dropout_masks``).
- ``early_stopping``: patience in epochs on the validation accuracy, which is measured on the
  data set's test split (this project has no separate validation split); the best epoch's
  weights are kept.
"""

from __future__ import annotations

import contextlib
import math
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from nmprivacy.data.base import DatasetSplits, Split
from nmprivacy.errors import NmprivacyError
from nmprivacy.models import build, kind_entry
from nmprivacy.models.base import TargetModel, membrane_cross_entropy, spike_readout
from nmprivacy.models.weight_grid import WeightGrid
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
    # DP-SGD's privacy spent (``dp_record``), None without DP
    dp: dict[str, Any] | None = None
    # what the defences did: optimizer, weight_decay, dropout (and where), early_stopping (``defence_record``)
    defences: dict[str, Any] = field(default_factory=dict)
    # per quantised slayer layer, its widest weight over every weight state of the training on slayer's finest
    # grid (``nmprivacy.models.weight_grid``: which weight precisions train the same model); None for other kinds
    weight_grid: tuple[int, ...] | None = None


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


def _sample_losses(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each sample's own training loss ``[B]`` of an image model's logits (their mean is ``_loss``;
    only ghost clipping needs them, and only image models are ghost-clippable)."""
    return nn.functional.cross_entropy(out, y, reduction="none")


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


def _optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """Adam at ``settings.lr``, or AdamW (decoupled weight decay) when ``settings.weight_decay`` > 0."""
    if settings.weight_decay > 0:
        return torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=settings.lr)


DropoutSite = tuple[nn.Module, "int | None", "int | None"]


def dropout_sites(model: TargetModel) -> list[DropoutSite]:
    """Where dropout acts in ``model``: (module, which element of its output holds the hidden
    activity (None: the output itself), its time dimension (None: none)) per hidden layer."""
    kind = model.info.kind
    if kind == "ann":
        return [(m, None, None) for m in model.net if isinstance(m, nn.Sigmoid)]
    if kind == "snn-norse":
        return [(model.lif1, 0, 0)]  # (spikes [T, B, hidden], voltages)
    if kind in ("snn-lava", "snn-lava-conv"):  # slayer blocks: spikes [B, N, T] or [B, C, H, W, T]
        return [(block, None, -1) for block in model.blocks[:-1] if hasattr(block, "neuron")]
    raise NmprivacyError(f"dropout is a defence of the audited models (snn-lava, snn-lava-conv, snn-norse, ann), not of '{kind}': set it to 0")


DROPOUT_WHERE = {
    "ann": "hidden sigmoid units",
    "snn-norse": "hidden LIF spikes (one mask per sample and neuron, held over time)",
    "snn-lava": "hidden CUBA spikes (one mask per sample and neuron, held over time)",
    "snn-lava-conv": "spikes of every hidden CUBA block (one mask per sample and neuron, held over time)",
}


def dropout_keep(shape: list[int] | tuple[int, ...], p: float, generator: torch.Generator) -> torch.Tensor:
    """An inverted-dropout mask of ``shape`` (float32, CPU): 0, or ``1 / (1 - p)`` with probability ``1 - p``."""
    return torch.bernoulli(torch.full(tuple(shape), 1.0 - p), generator=generator) / (1.0 - p)


@contextlib.contextmanager
def hidden_dropout(model: TargetModel, p: float, generator: torch.Generator) -> Iterator[list[int]]:
    """Inverted dropout (keep with probability ``1 - p``, scale by ``1 / (1 - p)``) on the hidden
    activity of ``model`` while it is in training mode, through forward hooks removed on exit
    (and, for a model with its own training engine, ``model.dropout_masks``, which draws the
    same masks from the same generator in the same order). Yields a one-element list counting
    the masks drawn (0 after a training forward means dropout never acted: ``train_model``
    refuses to go on)."""
    fired = [0]
    if p <= 0:
        yield fired
        return
    sites = dropout_sites(model)

    def engine_masks(shape: tuple[int, ...]) -> torch.Tensor:
        fired[0] += 1
        return dropout_keep(shape, p, generator)

    def make_hook(index: int | None, time_dim: int | None) -> Callable:
        def hook(module: nn.Module, _args: tuple, output: Any) -> Any:
            if not module.training:
                return None
            fired[0] += 1
            act = output if index is None else output[index]
            shape = list(act.shape)
            if time_dim is not None:
                shape[time_dim] = 1  # the same mask at every time step
            keep = dropout_keep(shape, p, generator).to(device=act.device, dtype=act.dtype)
            if index is None:
                return act * keep
            out = list(output)
            out[index] = act * keep
            return type(output)(out)

        return hook

    handles = [module.register_forward_hook(make_hook(index, time_dim)) for module, index, time_dim in sites]
    engine = hasattr(model, "dropout_masks")
    if engine:
        model.dropout_masks = engine_masks
    try:
        yield fired
    finally:
        for h in handles:
            h.remove()
        if engine:
            model.dropout_masks = None


def dp_record(record: dict[str, Any], n_train: int, epochs: int) -> dict[str, Any]:
    """``DPTraining.record()`` as JSON can hold it: an infinite epsilon (no noise) becomes None
    with a note; plus the training samples, the epochs run and the mechanism."""
    import opacus

    out = dict(record)
    out.update(n_train=n_train, epochs=epochs, delta_rule="1/N" if record.get("delta") == 1.0 / n_train else "set",
               mechanism=f"DP-SGD (Opacus {opacus.__version__}: per-sample clipping, Gaussian noise, {record['accountant'].upper()} accountant)",
               secure_rng=False)
    if out["epsilon"] is not None and math.isinf(out["epsilon"]):
        out["epsilon"] = None
        out["note"] = "noise_multiplier 0: epsilon is infinite (no privacy guarantee); written as null"
    return out


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
    weights on any device) and returned on the CPU. The defences of ``settings`` (``dp``,
    ``weight_decay``, ``dropout``, ``early_stopping``: module docstring) are applied and recorded
    in the report (``dp``, ``defences``).
    """
    check_compatible(kind, splits, config)
    spiking = kind_entry(kind).domain == "spikes"
    if spiking and splits.domain == "image" and not steps:
        raise NmprivacyError(f"spiking model '{kind}' on image data needs the number of time steps; pass --steps T")
    if settings.epochs < 1 or settings.batch_size < 1 or settings.lr <= 0:
        raise NmprivacyError(f"invalid schedule {settings}: epochs and batch size must be >= 1 and the learning rate > 0")
    if kind_entry(kind).role == "evaluator" and (settings.dp is not None or settings.dropout):
        raise NmprivacyError(f"'{kind}' is an evaluator: evaluators judge the attacks and train without DP-SGD or dropout (set those on snn_train/ann_train)")
    use_seed = model_seed(kind, seed)
    torch.manual_seed(use_seed)
    dev = resolve_device(device)
    model = build(kind, config).to(dev)
    grid = WeightGrid.of(model)  # the widest weight of each quantised layer, over every state a forward reads
    data_gen = torch.Generator().manual_seed(use_seed + 1)  # subset, shuffling (or Poisson batches) and spike encoding
    train = _training_subset(splits.train, settings.max_train_samples, data_gen)
    t_steps = (steps or int(splits.train.x.shape[1])) if spiking else None
    optim = _optimizer(model, settings)
    losses: list[float] = []
    accs: list[float] = []
    vals: list[float] = []
    n, seen, start = len(train), 0, time.perf_counter()
    epochs = settings.epochs_for(n)  # at least settings.min_steps optimiser steps on small data
    run = None
    if settings.dp is not None:
        from nmprivacy.dp import dp_wrap, ghost_clippable

        noise_gen = torch.Generator(device=dev).manual_seed(use_seed + 3)
        run = dp_wrap(model, optim, n, settings.batch_size, epochs, settings.dp, generator=data_gen, noise_generator=noise_gen,
                      ghost=ghost_clippable(model))  # the ann: per-sample norms without per-sample gradients
    step_optim = run.optimizer if run is not None else optim
    forward = run.module if run is not None else model
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None  # early stopping: (val acc, epoch, weights)
    dropout_gen = torch.Generator().manual_seed(use_seed + 4)
    try:
        with hidden_dropout(model, settings.dropout, dropout_gen) as fired:
            for epoch in range(epochs):
                model.train()
                if run is not None:
                    batches: Any = run.batches
                else:
                    order = torch.randperm(n, generator=data_gen)
                    batches = [order[b0 : b0 + settings.batch_size] for b0 in range(0, n, settings.batch_size)]
                total_loss, total_correct, epoch_seen = 0.0, 0, 0
                bar = progress_bar(batches, total=len(batches), desc=f"{kind} epoch {epoch + 1}/{epochs}", unit="batch", quiet=not progress)
                for idx in bar:
                    if idx.numel() == 0:  # an empty Poisson batch: DP-SGD's noise-only step
                        run.empty_step()
                        if grid is not None:
                            grid.update(model)
                        continue
                    xb, yb = model_input(model, train.x[idx], t_steps, data_gen).to(dev), train.y[idx].to(dev)
                    out = forward(xb)
                    if settings.dropout > 0 and not fired[0]:
                        raise NmprivacyError(f"dropout did not reach the hidden layer of '{kind}' (its forward ran outside the hooked modules): train without dropout")
                    step_optim.zero_grad(set_to_none=True)
                    if run is not None and run.ghost:
                        loss = run.backward(_sample_losses(out, yb))
                    else:
                        loss = _loss(model, out, yb)
                        loss.backward()
                    if settings.grad_clip is not None and run is None:  # DP-SGD clips per sample instead
                        nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                    step_optim.step()
                    if grid is not None:
                        grid.update(model)
                    bsz = int(yb.shape[0])
                    total_loss += float(loss) * bsz
                    total_correct += int((_readout_argmax(model, out.detach()) == yb).sum())
                    epoch_seen += bsz
                    seen += bsz
                    bar.set_postfix(loss=f"{total_loss / epoch_seen:.4f}", acc=f"{total_correct / epoch_seen:.3f}",
                                    samples_s=f"{seen / (time.perf_counter() - start):.0f}")
                losses.append(total_loss / epoch_seen if epoch_seen else math.nan)
                accs.append(total_correct / epoch_seen if epoch_seen else math.nan)
                vals.append(evaluate_accuracy(model, splits.test, t_steps, seed=use_seed + 2))
                if progress:
                    tqdm.write(f"{kind} epoch {epoch + 1}: loss {losses[-1]:.4f}, train acc {accs[-1]:.4f}, val acc {vals[-1]:.4f}")
                if settings.early_stopping is not None:
                    if best is None or vals[-1] > best[0]:
                        best = (vals[-1], epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
                    elif epoch - best[1] >= settings.early_stopping:
                        if progress:
                            tqdm.write(f"{kind}: early stop after epoch {epoch + 1} (validation accuracy best at epoch {best[1] + 1}, {best[0]:.4f})")
                        break
        spent = dp_record(run.record(), n, len(vals)) if run is not None else None
    finally:
        if run is not None:
            run.close()
    restored = best is not None and best[1] != len(vals) - 1
    if restored:
        model.load_state_dict(best[2])
    seconds = time.perf_counter() - start
    model.to("cpu").eval()
    final = best[0] if best is not None else vals[-1]
    if spent is not None and progress:
        eps = "inf" if spent["epsilon"] is None else f"{spent['epsilon']:.3g}"
        tqdm.write(f"{kind}: DP-SGD spent epsilon {eps} at delta {spent['delta']:.3g} ({spent['steps']} steps, noise {spent['noise_multiplier']:.3g})")
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
        final_val_accuracy=final,
        seconds=seconds,
        samples_per_s=seen / seconds if seconds > 0 else float("nan"),
        device=str(dev),
        engine=getattr(model, "engine", None),
        dp=spent,
        defences=defence_record(kind, settings, epochs, vals, best, restored),
        weight_grid=tuple(grid.maxima) if grid is not None else None,
    )
    return model, report


def defence_record(kind: str, settings: TrainSettings, budget: int, vals: list[float], best: tuple | None, restored: bool) -> dict[str, Any]:
    """What the defences of ``settings`` did in one training run (``TrainReport.defences``)."""
    stopping = None
    if settings.early_stopping is not None:
        stopping = {
            "patience": settings.early_stopping, "monitor": "validation accuracy on the test split (no separate validation split)",
            "epoch_budget": budget, "epochs_run": len(vals), "stopped_early": len(vals) < budget,
            "best_epoch": best[1] + 1 if best is not None else None, "restored_best": restored,
        }
    return {
        "dp_sgd": settings.dp is not None,
        "optimizer": "AdamW" if settings.weight_decay > 0 else "Adam",
        "weight_decay": settings.weight_decay,  # decoupled (AdamW); 0: plain Adam
        "dropout": settings.dropout,
        "dropout_on": DROPOUT_WHERE.get(kind) if settings.dropout > 0 else None,
        "early_stopping": stopping,
    }


def defence_fields(report: Any) -> dict[str, Any]:
    """A model record's defence entries from its ``TrainReport`` in JSON form (a checkpoint's
    ``train_report``): ``dp`` (the privacy spent, None without DP-SGD) and, when a free defence
    was on, ``defences``."""
    report = report if isinstance(report, dict) else {}
    out: dict[str, Any] = {"dp": report.get("dp")}
    defences = report.get("defences") or {}
    if defences.get("weight_decay") or defences.get("dropout") or defences.get("early_stopping"):
        out["defences"] = defences
    return out
