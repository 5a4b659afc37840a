"""Tiny networks of every kind a user brings, for any input shape: built and written the way
their tools write them (slayer's own ``export_hdf5``, a NetX file from another lava-dl user,
``nir.write``), so tests can run every subcommand on every kind of target."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import nir
import numpy as np
import torch

CUBA = {"threshold": 1.0, "current_decay": 0.5, "voltage_decay": 0.2}


def dense_netx(path: Path, inputs: int, classes: int = 10, hidden: int = 24, seed: int = 0) -> Path:
    """A dense CUBA file as another lava-dl user writes it: flat input, no input layer, no nmprivacy metadata."""
    from hw_export.netx_writer import write_dense_layer

    rng = np.random.default_rng(seed)
    gain = max(1, int(round(8 * math.sqrt(64 / inputs))))
    with h5py.File(path, "w") as f:
        g = f.create_group("layer")
        write_dense_layer(g, 0, rng.integers(-4 * gain, 6 * gain, (hidden, inputs)) * 2, 4096, 1229, 60)
        write_dense_layer(g, 1, rng.integers(-60, 70, (classes, hidden)) * 2, 4096, 1229, 60)
        for i in ("0", "1"):
            del g[i].attrs["nmprivacy_scale"]
    return path


def conv_netx(path: Path, input_shape: tuple[int, int, int], classes: int = 10, seed: int = 0) -> Path:
    """A PilotNet-style slayer network: an input layer with neurons (graded input), a strided
    convolution, flatten and a dense read-out, written with slayer's own ``export_hdf5``."""
    from nmprivacy.lava_import import import_slayer

    import_slayer()
    from lava.lib.dl import slayer

    torch.manual_seed(seed)
    c, h, w = input_shape
    blocks = torch.nn.ModuleList([
        slayer.block.cuba.Input(CUBA, weight=1.5, bias=0.0),
        slayer.block.cuba.Conv(CUBA, c, 4, 3, stride=2, padding=1, weight_scale=3),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(CUBA, 4 * ((h + 1) // 2) * ((w + 1) // 2), classes, weight_scale=3),
    ])
    with torch.no_grad():  # slayer learns its neuron shapes on a first forward pass
        x = torch.zeros(1, c, h, w, 1)
        for block in blocks:
            x = block(x)
    with h5py.File(path, "w") as f:
        group = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(group.create_group(str(i)))
    return path


def nir_chain(path: Path, inputs: int, classes: int = 10, hidden: int = 20, seed: int = 1) -> Path:
    """A feed-forward NIR graph: Affine, LIF, Affine, LI (Norse's time constants at dt 1 ms)."""
    rng = np.random.default_rng(seed)
    scale = math.sqrt(64 / inputs)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([inputs])),
        nir.Affine(weight=rng.normal(0.05 * scale, 0.4 * scale, (hidden, inputs)), bias=np.zeros(hidden)),
        nir.LIF(tau=np.full(hidden, 0.01), r=np.full(hidden, 10.0), v_leak=np.zeros(hidden), v_threshold=np.ones(hidden), v_reset=np.zeros(hidden)),
        nir.Affine(weight=rng.normal(0.0, 0.5, (classes, hidden)), bias=np.zeros(classes)),
        nir.LI(tau=np.full(classes, 0.01), r=np.full(classes, 10.0), v_leak=np.zeros(classes)),
        nir.Output(output_type=np.array([classes])),
    )
    nir.write(str(path), graph)
    return path


def _cuba(n: int) -> nir.CubaLIF:
    """A CubaLIF of ``n`` neurons with uniform per-neuron arrays (alpha 0.8, beta 0.9 at dt 0.1 ms)."""
    return nir.CubaLIF(tau_syn=np.full(n, 5e-4), tau_mem=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.full(n, 5.0))


def recurrent_nir(path: Path, inputs: int, classes: int = 10, hidden: int = 16, seed: int = 2) -> Path:
    """The NIR paper's Braille shape at any size: Affine, a recurrent CubaLIF written flat as
    ``lif1.lif`` / ``lif1.w_rec`` (dotted names, as nirtorch writes a subgraph), Affine, CubaLIF;
    meant for dt 1e-4."""
    rng = np.random.default_rng(seed)
    scale = math.sqrt(12 / inputs)
    nodes = {
        "input": nir.Input(input_type=np.array([inputs])),
        "fc1": nir.Affine(weight=rng.normal(0.15 * scale, 0.5 * scale, (hidden, inputs)), bias=np.zeros(hidden)),
        "lif1.lif": _cuba(hidden),
        "lif1.w_rec": nir.Linear(weight=rng.normal(-0.05, 0.4, (hidden, hidden))),
        "fc2": nir.Affine(weight=rng.normal(0.0, 0.4, (classes, hidden)), bias=np.zeros(classes)),
        "lif2": _cuba(classes),
        "output": nir.Output(output_type=np.array([classes])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"), ("lif1.w_rec", "lif1.lif"), ("lif1.lif", "fc2"),
             ("fc2", "lif2"), ("lif2", "output")]
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    return path


def lava_check(path: Path | str, x: torch.Tensor) -> tuple[list[int], list[int]]:
    """(mismatches per layer, emulation spikes per layer) of the NetX file ``path`` on Lava for ``x`` ``[T, B, ...]``."""
    from hw_export.lava_run import run_lava
    from hw_export.netx_emulation import load_netx

    emu = load_netx(path)
    with torch.no_grad():
        expected = [s.transpose(0, 1).to(torch.uint8) for s in emu.layer_spikes(x)]
    run = run_lava(path, x.transpose(0, 1))
    return [int((e != g).sum()) for e, g in zip(expected, run.layers)], [int(e.sum()) for e in expected]
