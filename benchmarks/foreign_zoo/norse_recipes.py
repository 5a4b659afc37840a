"""Norse recipe of the zoo, written with Norse's own NIR exporter (``norse.torch.utils.export_nir.to_nir``).

- ``mnist_mlp`` -- Norse's "Training an MNIST classifier" notebook
  (https://github.com/norse/notebooks, mnist_classifiers.ipynb): a hidden layer of LIF neurons
  with ``v_th = 0.5`` and SuperSpike ``alpha = 100``, a ``Linear(bias=False)`` into leaky
  integrators (LI) as read-out, decoded by the maximum of each read-out voltage over time then
  ``log_softmax``; ``nll_loss``; ``Adam(lr=2e-3)``; ``T = 32``; batch 256; the notebook's
  ``PoissonEncoder`` input. ``params["sizes"]`` gives the layer widths (784-100-10 as the
  notebook; 784-256-128-10 for the two-hidden-layer member).

What the export forces, findings about Norse 1.1.0's ``to_nir`` (not nmprivacy):
- the notebook's ``LIFRecurrentCell`` and its ``LICell`` read-out have no NIR export (``to_nir``
  returns no node for them; ``nn.Flatten`` neither), so the members use the feed-forward cells
  it does export, ``LIFBoxCell`` (LIF without synaptic current) and ``LIBoxCell``, with the same
  ``tau_mem_inv = 100``, ``v_th``, ``alpha``;
- ``to_nir`` writes ``tau = dt / tau_mem_inv``, so at its default ``dt = 1e-3`` the graph holds
  tau = 10 us (100x too short; nmprivacy then refuses the graph: a time constant shorter than
  --dt). The members are written with ``to_nir(..., dt=1.0)``, which stores the true
  ``tau = 1 / tau_mem_inv`` = 10 ms, and are read with nmprivacy's ``--dt 1e-3`` (Norse's step);
- the ``PoissonEncoder`` runs with ``f_max = 1000`` Hz at ``dt = 1e-3`` (spike probability = the
  intensity per step, nmprivacy's rate code) on unnormalised intensities; the notebook's
  ``f_max = 20`` (2 % of that) on normalised images would not be what nmprivacy feeds;
- parameters are per-neuron tensors (``to_nir`` needs their shapes to type the graph).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn


def build_model(sizes: list[int]) -> nn.Module:
    import norse.torch as norse

    layers: list[nn.Module] = []
    for a, b in pairwise(sizes[:-1]):
        p = norse.LIFBoxParameters(tau_mem_inv=torch.full((b,), 100.0), v_leak=torch.zeros(b), v_th=torch.full((b,), 0.5),
                                   v_reset=torch.zeros(b), alpha=torch.tensor(100.0))
        layers += [nn.Linear(a, b), norse.LIFBoxCell(p)]
    n = sizes[-1]
    layers += [nn.Linear(sizes[-2], n, bias=False), norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.full((n,), 100.0), v_leak=torch.zeros(n)))]
    return norse.SequentialState(*layers)


def voltages(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Read-out voltages ``[T, B, C]`` for time-first spikes ``x`` ``[T, B, ...]``."""
    state, out = None, []
    for t in range(x.shape[0]):
        y, state = model(x[t].reshape(x.shape[1], -1), state)
        out.append(y)
    return torch.stack(out)


def decode(v: torch.Tensor) -> torch.Tensor:
    """The notebook's ``decode``: max over time, then log_softmax."""
    x, _ = torch.max(v, 0)
    return torch.nn.functional.log_softmax(x, dim=1)


def mnist_mlp(m: Any, splits: Any, path: Any) -> dict:
    import nir
    import norse.torch as norse
    from norse.torch.utils.export_nir import to_nir

    sizes = m.params["sizes"]
    model = build_model(sizes)
    encoder = norse.PoissonEncoder(m.steps, f_max=1000, dt=1e-3)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    n, history, batch = len(splits.train), [], 256

    def encode(x: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))  # the encoder draws from the global generator
        return encoder(x.reshape(x.shape[0], -1))

    for epoch in range(m.epochs):
        order = torch.randperm(n, generator=gen)
        losses = []
        for b0 in range(0, n, batch):
            idx = order[b0 : b0 + batch]
            loss = torch.nn.functional.nll_loss(decode(voltages(model, encode(splits.train.x[idx]))), splits.train.y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        correct = 0
        with torch.no_grad():
            for b0 in range(0, len(splits.test), 500):
                pred = decode(voltages(model, encode(splits.test.x[b0 : b0 + 500]))).argmax(1)
                correct += int((pred == splits.test.y[b0 : b0 + 500]).sum())
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "test_accuracy": correct / len(splits.test)})
        print(f"  epoch {epoch}: loss {np.mean(losses):.3f} test {correct / len(splits.test):.3f}", flush=True)
    graph = to_nir(model, torch.zeros(sizes[0]), dt=1.0)  # tau = 1 / tau_mem_inv (see the module docstring)
    for node in graph.nodes.values():
        for key, value in list(vars(node).items()):
            if isinstance(value, torch.Tensor):
                setattr(node, key, value.detach().cpu().numpy())
    nir.write(str(path), graph)
    return {"framework_test_accuracy": history[-1]["test_accuracy"], "architecture": "Linear " + "-".join(map(str, sizes)) +
            ", LIFBoxCell (v_th 0.5) hidden, LIBoxCell read-out", "train_samples": n, "test_samples": len(splits.test),
            "framework_history": history, "encoding": f"norse PoissonEncoder(T={m.steps}, f_max=1000, dt=1e-3): p = intensity per step",
            "loss": "nll_loss(log_softmax(max over time of LI voltage))", "readout": "max over time of the LI read-out voltage",
            "neuron": {"tau_mem_inv": 100.0, "v_th": 0.5, "alpha": 100.0, "readout_tau_mem_inv": 100.0}, "optimizer": "Adam(lr=2e-3)",
            "batch": batch}
