"""Lava-DL (slayer) recipes of the zoo, exported with the blocks' own ``export_hdf5`` (NetX).

Every recipe trains with ``slayer.utils.Assistant`` (forward, loss, ``Adam``, statistics in
``slayer.utils.LearningStats``) and classifies with ``slayer.classifier.Rate.predict`` (the
output spike rate), as the tutorials do; test accuracy is measured at the last epoch (the
tutorials keep the epoch of best test accuracy; we do not select on the test set).

- ``gaurav_dense`` -- R. Gaurav, "Lava Tutorial: MNIST Training on GPU and Evaluation on Loihi2"
  (https://r-gaurav.github.io/2024/04/13/Lava-Tutorial-MNIST-Training-on-GPU-and-Evaluation-on-Loihi2.html;
  code https://github.com/R-Gaurav/mnist-on-loihi, net_utils/snns.py ``SlayerDenseSNN``,
  net_utils/utils.py ``ExpDataset``, train_eval_snn.py): ``cuba.Dense`` 784-128-64-10, neurons
  ``threshold 1.0, current_decay 0.1, voltage_decay 0.1, requires_grad False``, no weight norm,
  no delay; images -> deterministic integrate-and-fire spikes (``v += gain * x + bias``, spike
  when ``v > 1``, reset to 0; gain 1, bias 0) for ``n_tsteps = 32``; ``SpikeRate(true_rate=0.9,
  false_rate=0.01, reduction='sum')``; ``Adam(lr=1e-3)``; batch 100; 25 epochs.
- ``nmnist_dense`` -- the Lava-DL N-MNIST tutorial
  (https://github.com/lava-nc/lava-dl/blob/main/tutorials/lava/lib/dl/slayer/nmnist/train.ipynb,
  nmnist.py): ``cuba.Dense`` 2312-512-512-10, ``weight_norm=True``, ``delay=True`` on the hidden
  blocks, neurons ``threshold 1.25, current_decay 0.25, voltage_decay 0.03, tau_grad 0.03,
  scale_grad 3, requires_grad True``, ``slayer.neuron.Dropout(p=0.05)`` on the hidden blocks;
  both polarities, binary bins (its ``NMNISTDataset`` with ``sampling_time=3, sample_length=300``
  -> 100 bins; the tutorial's default is 1 ms x 300); ``augment``: random shifts of up to 4 px
  (the tutorial also rotates by up to 5 degrees: not done); ``SpikeRate(true_rate=0.2,
  false_rate=0.03, reduction='sum')``; ``Adam(lr=1e-3)``; batch 32.
- ``nmnist_style_dense`` -- the same blocks, neurons, dropout and optimiser on images
  (Bernoulli spikes, p = intensity, T = 32), ``SpikeRate`` as above or the tutorial's commented
  alternative ``SpikeMax(mode='logsoftmax')``.
- ``pilotnet_style_conv`` -- the PilotNet SNN layout of
  https://github.com/lava-nc/lava-dl/blob/main/tutorials/lava/lib/dl/netx/pilotnet_snn/run.ipynb:
  ``cuba.Input`` with neurons (graded input: the image's intensities enter every step through the
  input layer's learnable ``weight * x + bias``), two strided ``cuba.Conv`` (``weight_scale=2,
  weight_norm=True``), ``cuba.Flatten``, two ``cuba.Dense``; neurons and loss of the N-MNIST tutorial.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import h5py
import torch
from torch import nn

GAURAV_NEURON = {"threshold": 1.0, "current_decay": 0.10, "voltage_decay": 0.10, "requires_grad": False}
NMNIST_NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3, "requires_grad": True}


def _slayer():
    from nmprivacy.lava_import import import_slayer

    import_slayer()
    from lava.lib.dl import slayer

    return slayer


class Network(nn.Module):
    """Sequential slayer blocks (the tutorials' ``Network``), exported block by block."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, spike: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spike = block(spike)
        return spike

    def export_hdf5(self, filename: str) -> None:
        with h5py.File(filename, "w") as h:
            layer = h.create_group("layer")
            for i, b in enumerate(self.blocks):
                b.export_hdf5(layer.create_group(f"{i}"))


def if_encode(images: torch.Tensor, steps: int, gain: float = 1.0, bias: float = 0.0) -> torch.Tensor:
    """R. Gaurav's ``ExpDataset`` encoder: flat images ``[B, N]`` in [0, 1] -> binary spikes ``[B, N, T]``."""
    v = torch.zeros_like(images)
    out = []
    for _ in range(steps):
        v = v + gain * images + bias
        mask = v > 1.0
        out.append(mask.float())
        v = torch.where(mask, torch.zeros_like(v), v)
    return torch.stack(out, dim=-1)


def shift_augment(frames: torch.Tensor, gen: torch.Generator, max_shift: int = 4) -> torch.Tensor:
    """The N-MNIST tutorial's x/y jitter (``randint(2 * 4) - 4`` px) on frames ``[B, C, H, W, T]`` (zero fill)."""
    out = torch.zeros_like(frames)
    h, w = frames.shape[2:4]
    for i in range(frames.shape[0]):
        dx, dy = (int(torch.randint(2 * max_shift, (1,), generator=gen)) - max_shift for _ in range(2))
        src = frames[i, :, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
        out[i, :, max(0, dy) : max(0, dy) + src.shape[1], max(0, dx) : max(0, dx) + src.shape[2]] = src
    return out


def fit(net: Network, error: nn.Module, encode: Callable[[torch.Tensor, bool], torch.Tensor], splits: Any, epochs: int, batch: int,
        lr: float = 1e-3) -> tuple[float, dict]:
    """The tutorials' loop: ``Assistant.train`` over shuffled batches per epoch, then the test set
    through ``Assistant.test``; returns the last epoch's test accuracy and the stats."""
    slayer = _slayer()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    stats = slayer.utils.LearningStats()
    assistant = slayer.utils.Assistant(net, error, optimizer, stats, classifier=slayer.classifier.Rate.predict)
    gen = torch.Generator().manual_seed(0)
    n = len(splits.train)
    history = []
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for b0 in range(0, n, batch):
            idx = order[b0 : b0 + batch]
            assistant.train(encode(splits.train.x[idx], True), splits.train.y[idx])
        with torch.no_grad():
            for b0 in range(0, len(splits.test), 200):
                assistant.test(encode(splits.test.x[b0 : b0 + 200], False), splits.test.y[b0 : b0 + 200])
        history.append({"epoch": epoch, "train_loss": stats.training.loss, "train_accuracy": stats.training.accuracy,
                        "test_loss": stats.testing.loss, "test_accuracy": stats.testing.accuracy})
        print(f"  epoch {epoch}: train {stats.training.accuracy:.3f} test {stats.testing.accuracy:.3f}", flush=True)
        stats.update()
    return history[-1]["test_accuracy"], {"history": history}


def _record(acc: float, extra: dict, architecture: str, splits: Any, m: Any, **more: Any) -> dict:
    return {"framework_test_accuracy": acc, "architecture": architecture, "train_samples": len(splits.train), "test_samples": len(splits.test),
            "framework_history": extra["history"], **more}


def gaurav_dense(m: Any, splits: Any, path: Any) -> dict:
    slayer = _slayer()
    sizes = m.params["sizes"]
    net = Network([slayer.block.cuba.Dense(GAURAV_NEURON, a, b, weight_norm=False, delay=False) for a, b in pairwise(sizes)])
    error = slayer.loss.SpikeRate(true_rate=0.9, false_rate=0.01, reduction="sum")
    steps = m.steps

    def encode(x: torch.Tensor, train: bool) -> torch.Tensor:
        return if_encode(x.reshape(x.shape[0], -1), steps)

    acc, extra = fit(net, error, encode, splits, m.epochs, batch=100)
    net.export_hdf5(str(path))
    return _record(acc, extra, "cuba.Dense " + "-".join(map(str, sizes)), splits, m,
                   encoding="deterministic integrate-and-fire rate code (gain 1, bias 0, threshold 1, reset to 0)", loss="SpikeRate(0.9, 0.01, sum)",
                   readout="Rate.predict (output spike count)", neuron=GAURAV_NEURON, optimizer="Adam(lr=1e-3)", batch=100)


def _nmnist_blocks(sizes: list[int], delay: bool) -> list[nn.Module]:
    slayer = _slayer()
    drop = {**NMNIST_NEURON, "dropout": slayer.neuron.Dropout(p=0.05)}
    blocks = [slayer.block.cuba.Dense(drop, a, b, weight_norm=True, delay=delay) for a, b in pairwise(sizes[:-1])]
    return blocks + [slayer.block.cuba.Dense(NMNIST_NEURON, sizes[-2], sizes[-1], weight_norm=True)]


def nmnist_dense(m: Any, splits: Any, path: Any) -> dict:
    """Event frames ``[B, T, C, H, W]`` (0/1) -> slayer ``[B, C*H*W, T]`` in (C, H, W) order."""
    slayer = _slayer()
    sizes = m.params["sizes"]
    net = Network(_nmnist_blocks(sizes, delay=True))
    error = slayer.loss.SpikeRate(true_rate=0.2, false_rate=0.03, reduction="sum")
    gen = torch.Generator().manual_seed(1)

    def encode(x: torch.Tensor, train: bool) -> torch.Tensor:
        frames = x.float().permute(0, 2, 3, 4, 1)  # [B, C, H, W, T]
        if train:
            frames = shift_augment(frames, gen)
        return frames.reshape(frames.shape[0], -1, frames.shape[-1])

    acc, extra = fit(net, error, encode, splits, m.epochs, batch=32)
    net.export_hdf5(str(path))
    return _record(acc, extra, "cuba.Dense " + "-".join(map(str, sizes)) + " (weight_norm, delay, dropout 0.05)", splits, m,
                   encoding="event frames, both polarities, 3 ms binary bins, T=100", loss="SpikeRate(0.2, 0.03, sum)",
                   readout="Rate.predict (output spike count)", neuron=NMNIST_NEURON, optimizer="Adam(lr=1e-3)", batch=32,
                   augmentation="random x/y shift up to 4 px (the tutorial's rotation not done)")


def nmnist_style_dense(m: Any, splits: Any, path: Any) -> dict:
    slayer = _slayer()
    sizes = m.params["sizes"]
    net = Network(_nmnist_blocks(sizes, delay=m.params.get("delay", False)))
    if m.params.get("loss") == "SpikeMax":
        error, loss = slayer.loss.SpikeMax(mode="logsoftmax", reduction="sum"), "SpikeMax(mode='logsoftmax', sum)"
    else:
        error, loss = slayer.loss.SpikeRate(true_rate=0.2, false_rate=0.03, reduction="sum"), "SpikeRate(0.2, 0.03, sum)"
    gen = torch.Generator().manual_seed(1)
    steps = m.steps

    def encode(x: torch.Tensor, train: bool) -> torch.Tensor:
        p = x.reshape(x.shape[0], -1, 1).expand(-1, -1, steps)
        return torch.bernoulli(p, generator=gen)

    acc, extra = fit(net, error, encode, splits, m.epochs, batch=32)
    net.export_hdf5(str(path))
    return _record(acc, extra, "cuba.Dense " + "-".join(map(str, sizes)) + (" (weight_norm, delay, dropout 0.05)" if m.params.get("delay") else
                   " (weight_norm, dropout 0.05)"), splits, m, encoding=f"Bernoulli rate code p = intensity, T={steps}", loss=loss,
                   readout="Rate.predict (output spike count)", neuron=NMNIST_NEURON, optimizer="Adam(lr=1e-3)", batch=32)


def pilotnet_style_conv(m: Any, splits: Any, path: Any) -> dict:
    """Graded input: the image ``[B, 1, 28, 28]`` repeated over T as ``[B, 1, 28, 28, T]``."""
    slayer = _slayer()
    cuba = slayer.block.cuba
    neuron = NMNIST_NEURON
    net = Network([
        cuba.Input(neuron, weight=1.0, bias=0.0),
        cuba.Conv(neuron, 1, 16, 3, stride=2, padding=1, weight_scale=2, weight_norm=True),
        cuba.Conv(neuron, 16, 32, 3, stride=2, padding=1, weight_scale=2, weight_norm=True),
        cuba.Flatten(),
        cuba.Dense(neuron, 32 * 7 * 7, 100, weight_scale=2, weight_norm=True),
        cuba.Dense(neuron, 100, 10, weight_scale=2, weight_norm=True),
    ])
    error = slayer.loss.SpikeRate(true_rate=0.2, false_rate=0.03, reduction="sum")
    steps = m.steps

    def encode(x: torch.Tensor, train: bool) -> torch.Tensor:
        return x.float().unsqueeze(-1).expand(*x.shape, steps).contiguous()

    acc, extra = fit(net, error, encode, splits, m.epochs, batch=32)
    net.export_hdf5(str(path))
    return _record(acc, extra, "cuba.Input(graded) - Conv 1>16 3x3 s2 - Conv 16>32 3x3 s2 - Flatten - Dense 1568-100-10", splits, m,
                   encoding=f"graded: intensity in [0, 1] every step into the input layer's neurons, T={steps}", loss="SpikeRate(0.2, 0.03, sum)",
                   readout="Rate.predict (output spike count)", neuron=neuron, optimizer="Adam(lr=1e-3)", batch=32)
