"""snnTorch recipes of the zoo, written with snnTorch's own NIR exporter
(``snntorch.export_nir.export_to_nir``; snnTorch writes its graphs for dt = 1e-4 s).

- ``t5_mlp`` -- snnTorch tutorial 5, "Training Spiking Neural Networks with snnTorch"
  (https://snntorch.readthedocs.io/en/latest/tutorials/tutorial_5.html): ``Linear`` 784-1000-10,
  ``snn.Leaky(beta=0.95)`` (default subtractive reset, default ATan surrogate), ``num_steps = 25``,
  loss = the sum over steps of ``nn.CrossEntropyLoss`` on the output membrane,
  ``Adam(lr=5e-4, betas=(0.9, 0.999))``, batch 128, accuracy from the output spike count. The
  tutorial feeds the image itself every step; here the input is ``spikegen.rate`` (tutorial 1's
  rate code: Bernoulli, p = intensity), the code nmprivacy feeds. ``params["loss"] = "mse_count"``
  swaps in tutorial 7's ``SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)``.
- ``t6_conv`` -- tutorial 6, "Surrogate Gradient Descent in a Convolutional SNN"
  (https://snntorch.readthedocs.io/en/latest/tutorials/tutorial_6.html): 12C5-MP2-64C5-MP2-1024FC10,
  ``snn.Leaky(beta=0.5, spike_grad=surrogate.fast_sigmoid(slope=25))``, ``num_steps = 50``, the
  image fed directly every step, ``SF.ce_rate_loss()``, ``Adam(lr=1e-2, betas=(0.9, 0.999))``,
  batch 128, ``SF.accuracy_rate``.
- ``t7_conv`` -- tutorial 7, "Neuromorphic Datasets with Tonic + snnTorch"
  (https://snntorch.readthedocs.io/en/latest/tutorials/tutorial_7.html): 12C5-MP2-32C5-MP2-800FC10
  on both polarities, ``snn.Leaky(beta=0.5, spike_grad=surrogate.atan())``, tonic
  ``Denoise(filter_time=10000)`` and ``ToFrame`` (event counts per frame; 3 ms frames here, 1 ms
  in the tutorial), ``SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)``,
  ``Adam(lr=2e-2, betas=(0.9, 0.999))``, batch 128. (The tutorial's RandomRotation augmentation
  is not done.)

Two changes the export forces, both findings about snnTorch 1.0 + nir, not nmprivacy:
- ``export_to_nir`` has no ``MaxPool2d`` ("[WARNING] module not implemented: MaxPool2d", then
  ``AttributeError: 'NoneType' object has no attribute 'input_type'`` in ``nir_graph.infer_types``),
  so the conv recipes pool with ``nn.AvgPool2d(2)`` (which it exports) instead of ``MaxPool2d(2)``;
- with a scalar ``beta`` (as every tutorial writes it) the export fails type inference
  (``ValueError: Type inference error: type mismatch: 1.output: [[100]] -> 2.input: []``), so
  ``beta`` and ``threshold`` are given per neuron (the same values, fixed: ``learn_beta=False``).
The subtractive reset is not in the graph (snnTorch's LIF node has ``v_reset = 0``): Loihi and
nmprivacy reset to zero.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn


def leaky(beta: float, shape: tuple[int, ...], grad: Any, output: bool = False) -> nn.Module:
    import snntorch as snn

    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape), spike_grad=grad, init_hidden=True, output=output)


def export(model: nn.Module, input_shape: tuple[int, ...], path: Any) -> None:
    import nir
    from snntorch.export_nir import export_to_nir

    graph = export_to_nir(model, torch.zeros(1, *input_shape), ignore_dims=[0])
    for node in graph.nodes.values():  # nir.write takes numpy arrays only
        for key, value in list(vars(node).items()):
            if isinstance(value, torch.Tensor):
                setattr(node, key, value.detach().cpu().numpy())
    nir.write(str(path), graph)


def run(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and membrane of the output layer ``[T, B, C]`` for time-first input ``x``."""
    from snntorch import utils

    utils.reset(model)
    spk, mem = [], []
    for t in range(x.shape[0]):
        s, v = model(x[t])
        spk.append(s)
        mem.append(v)
    return torch.stack(spk), torch.stack(mem)


def fit(model: nn.Module, splits: Any, encode: Any, loss_fn: Any, epochs: int, lr: float, batch: int = 128) -> tuple[float, list]:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(0)
    n, history = len(splits.train), []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        losses = []
        for b0 in range(0, n, batch):
            idx = order[b0 : b0 + batch]
            spk, mem = run(model, encode(splits.train.x[idx], gen))
            loss = loss_fn(spk, mem, splits.train.y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        acc = test(model, splits, encode, gen)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "test_accuracy": acc})
        print(f"  epoch {epoch}: loss {np.mean(losses):.3f} test {acc:.3f}", flush=True)
    return history[-1]["test_accuracy"], history


@torch.no_grad()
def test(model: nn.Module, splits: Any, encode: Any, gen: torch.Generator) -> float:
    """snnTorch's accuracy: the class with the most output spikes (``SF.accuracy_rate``)."""
    model.eval()
    correct = 0
    for b0 in range(0, len(splits.test), 200):
        spk, _ = run(model, encode(splits.test.x[b0 : b0 + 200], gen))
        correct += int((spk.sum(0).argmax(-1) == splits.test.y[b0 : b0 + 200]).sum())
    return correct / len(splits.test)


def t5_mlp(m: Any, splits: Any, path: Any) -> dict:
    import snntorch.functional as SF
    from snntorch import spikegen, surrogate

    sizes = m.params["sizes"]
    grad = surrogate.atan()
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers += [nn.Linear(a, b), leaky(0.95, (b,), grad, output=i == len(sizes) - 2)]
    model = nn.Sequential(*layers)
    steps = m.steps

    def encode(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))  # spikegen.rate draws from the global generator
        return spikegen.rate(x, num_steps=steps)

    if m.params.get("loss") == "mse_count":
        mse = SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)
        loss_fn, loss = (lambda spk, mem, y: mse(spk, y)), "SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)"
    else:
        ce = nn.CrossEntropyLoss()
        loss_fn, loss = (lambda spk, mem, y: sum(ce(mem[t], y) for t in range(mem.shape[0]))), "sum over steps of CrossEntropyLoss(membrane)"
    acc, history = fit(model, splits, encode, loss_fn, m.epochs, lr=5e-4)
    export(model, tuple(splits.input_shape), path)
    return {"framework_test_accuracy": acc, "architecture": "Linear " + "-".join(map(str, sizes)) + ", snn.Leaky beta 0.95",
            "train_samples": len(splits.train), "test_samples": len(splits.test), "framework_history": history,
            "encoding": f"spikegen.rate (Bernoulli, p = intensity), T={steps}", "loss": loss, "readout": "output spike count",
            "neuron": {"beta": 0.95, "threshold": 1.0, "reset": "subtract (snnTorch default; not in the NIR graph)", "surrogate": "atan"},
            "optimizer": "Adam(lr=5e-4, betas=(0.9, 0.999))", "batch": 128}


def _conv_net(in_ch: int, size: int, mid: int, grad: Any) -> tuple[nn.Module, str]:
    s1 = (size - 4) // 2
    s2 = (s1 - 4) // 2
    model = nn.Sequential(
        nn.Conv2d(in_ch, 12, 5), nn.AvgPool2d(2), leaky(0.5, (12, s1, s1), grad),
        nn.Conv2d(12, mid, 5), nn.AvgPool2d(2), leaky(0.5, (mid, s2, s2), grad),
        nn.Flatten(), nn.Linear(mid * s2 * s2, 10), leaky(0.5, (10,), grad, output=True),
    )
    return model, f"12C5-AP2-{mid}C5-AP2-{mid * s2 * s2}FC10, snn.Leaky beta 0.5"


def t6_conv(m: Any, splits: Any, path: Any) -> dict:
    import snntorch.functional as SF
    from snntorch import surrogate

    model, arch = _conv_net(1, 28, 64, surrogate.fast_sigmoid(slope=25))
    steps = m.steps

    def encode(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return x.float().unsqueeze(0).expand(steps, *x.shape)

    ce = SF.ce_rate_loss()
    acc, history = fit(model, splits, encode, lambda spk, mem, y: ce(spk, y), m.epochs, lr=1e-2)
    export(model, tuple(splits.input_shape), path)
    return {"framework_test_accuracy": acc, "architecture": arch, "train_samples": len(splits.train), "test_samples": len(splits.test),
            "framework_history": history, "encoding": f"the image itself every step (direct input), T={steps}", "loss": "SF.ce_rate_loss()",
            "readout": "output spike count (SF.accuracy_rate)", "optimizer": "Adam(lr=1e-2, betas=(0.9, 0.999))", "batch": 128,
            "neuron": {"beta": 0.5, "threshold": 1.0, "reset": "subtract (not in the NIR graph)", "surrogate": "fast_sigmoid(slope=25)"},
            "pooling": "AvgPool2d(2) instead of the tutorial's MaxPool2d(2) (export_to_nir has no MaxPool2d)"}


def t7_conv(m: Any, splits: Any, path: Any) -> dict:
    import snntorch.functional as SF
    from snntorch import surrogate

    c, h, _ = splits.input_shape
    model, arch = _conv_net(c, h, 32, surrogate.atan())

    def encode(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return x.float().transpose(0, 1)  # [B, T, C, H, W] -> [T, B, C, H, W] (tonic's PadTensors(batch_first=False))

    mse = SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)
    acc, history = fit(model, splits, encode, lambda spk, mem, y: mse(spk, y), m.epochs, lr=2e-2)
    export(model, tuple(splits.input_shape), path)
    return {"framework_test_accuracy": acc, "architecture": arch, "train_samples": len(splits.train), "test_samples": len(splits.test),
            "framework_history": history, "encoding": "event frames: both polarities, denoise 10 ms, event counts per 3 ms frame, T=100",
            "loss": "SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)", "readout": "output spike count (SF.accuracy_rate)",
            "optimizer": "Adam(lr=2e-2, betas=(0.9, 0.999))", "batch": 128,
            "neuron": {"beta": 0.5, "threshold": 1.0, "reset": "subtract (not in the NIR graph)", "surrogate": "atan"},
            "pooling": "AvgPool2d(2) instead of the tutorial's MaxPool2d(2) (export_to_nir has no MaxPool2d)"}
