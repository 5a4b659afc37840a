"""Run a batch of spike trains through a NetX network on Lava's CPU simulator in ONE run.

Samples are concatenated back to back and the neurons reset between samples with
``Network(reset_interval=T, reset_offset=1)`` (LIFReset). The first synapse adds one step and
every later synapse one more, exactly like slayer's ``delay_shift``, so step ``j`` of sample ``k``
(torch time axis, any layer) is run step ``k*T + 1 + j``; the run lasts ``B*T + 1`` steps.
Lava resets layer ``l`` at run step ``k*T + 1 + l``, when sample ``k``'s first spikes reach it:
its steps ``j < l`` for sample ``k`` are still the tail of sample ``k - 1``. In the per-sample
(torch) view those steps receive no input yet and are silent, so they are returned as zeros
(exact for bias-free layers, which is what the exporters write).
Input and every layer's spikes stream through numpy memmaps (``hw_export.lava_procs``), never
through Lava's slow Var reads.

Returned spikes ``[B, T, N_l]`` use the torch models' time axis: index ``j`` is the step at which
the neuron fired (what ``NetxEmulation.layer_spikes`` gives at ``[j]``).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hw_export.loihi_cuba import UNITY
from hw_export.netx_format import NetxNetwork, read_netx
from nmprivacy.errors import ExportError, NmprivacyError


@dataclass(frozen=True)
class LavaRun:
    """Spikes of every layer ``[B, T, N_l]`` (uint8) from one Lava run, plus run facts.

    ``output_membrane`` ``[B, T, classes]`` (float32, model units, pre-reset voltage rebuilt from
    Lava's recorded ``u`` and post-reset ``v``) when ``record_membrane=True``, else None.
    """

    layers: tuple[torch.Tensor, ...]
    steps: int
    seconds: float
    run_seconds: float
    output_membrane: torch.Tensor | None = None

    @property
    def output(self) -> torch.Tensor:
        """Output-layer spikes ``[B, T, classes]``."""
        return self.layers[-1]

    @property
    def samples_per_s(self) -> float:
        return self.layers[0].shape[0] / self.seconds if self.seconds > 0 else float("inf")


def _as_binary(spikes: np.ndarray | torch.Tensor, width: int, name: str) -> np.ndarray:
    """``spikes`` ``[B, T, ...]`` as uint8 ``[B, T, N]``; one-line errors for bad shapes or values."""
    arr = spikes.detach().cpu().numpy() if isinstance(spikes, torch.Tensor) else np.asarray(spikes)
    if arr.ndim < 3:
        raise NmprivacyError(f"spikes must be [B, T, N] (or [B, T, C, H, W]), got shape {arr.shape}")
    if arr.size == 0:
        raise NmprivacyError(f"spikes must hold at least one sample and one step, got shape {arr.shape}")
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    if arr.shape[-1] != width:
        raise ExportError(f"input has {arr.shape[-1]} neurons per step but {name} expects {width}")
    if not np.isin(arr, (0, 1)).all():
        raise NmprivacyError("spikes must be binary (0/1): sample Bernoulli spikes before running on Lava")
    return arr.astype(np.uint8)


def _membrane(u: np.ndarray, v_post: np.ndarray, net: NetxNetwork) -> np.ndarray:
    """Pre-reset voltage ``[B, T, N]`` (Loihi units) from Lava's ``u`` and post-reset ``v``."""
    layer = net.layers[-1]
    keep = UNITY - layer.v_decay
    first = len(net.layers) - 1  # the output layer's reset step within each sample
    prev = np.zeros_like(v_post, dtype=np.int64)
    prev[:, first + 1 :] = v_post[:, first:-1]
    decayed = prev * keep
    decayed = np.sign(decayed) * (np.abs(decayed) >> 12)
    bias = 0 if layer.bias is None else layer.bias << 6
    pre = np.clip(decayed + u.astype(np.int64) + bias, -(1 << 23) + 1, (1 << 23) - 1)
    pre[:, :first] = 0  # steps before the sample reaches the output layer
    return pre


def run_lava(
    path: str | os.PathLike[str],
    spikes: np.ndarray | torch.Tensor,
    record_membrane: bool = False,
    workdir: str | os.PathLike[str] | None = None,
) -> LavaRun:
    """Run binary ``spikes`` ``[B, T, N]`` through the NetX file ``path`` with
    ``Loihi2SimCfg(select_tag='fixed_pt')`` in one run; every layer's spikes come back ``[B, T, N_l]``."""
    from hw_export.lava_env import lava_modules

    start = time.perf_counter()
    net_desc = read_netx(path)
    x = _as_binary(spikes, net_desc.input_size, Path(path).name)
    b, t, n = x.shape
    steps = b * t + 1
    lava = lava_modules()
    with tempfile.TemporaryDirectory(prefix="nmprivacy-lava-", dir=workdir) as tmp:
        in_file = os.path.join(tmp, "input.u8")
        mm_in = np.memmap(in_file, dtype=np.uint8, mode="w+", shape=(steps, n))
        mm_in[: b * t] = x.reshape(b * t, n)
        mm_in.flush()
        del mm_in
        net = lava.netx.Network(net_config=str(path), reset_interval=t, reset_offset=1)
        source = lava.procs.MemmapSource(path=in_file, size=n, steps=steps)
        source.s_out.connect(net.inp)
        sink_files, sinks = [], []
        for i, layer in enumerate(net_desc.layers):
            f = os.path.join(tmp, f"layer{i}.u8")
            np.memmap(f, dtype=np.uint8, mode="w+", shape=(steps, layer.out_features)).flush()
            sink = lava.procs.MemmapSink(path=f, size=layer.out_features, steps=steps)
            net.layers[i].out.connect(sink.a_in)
            sink_files.append(f)
            sinks.append(sink)
        probe_files = {}
        if record_membrane:
            neuron = net.layers[-1].neuron
            for var in ("u", "v"):
                f = os.path.join(tmp, f"out_{var}.i32")
                np.memmap(f, dtype=np.int32, mode="w+", shape=(steps, net_desc.layers[-1].out_features)).flush()
                probe = lava.procs.MemmapProbe(var=getattr(neuron, var), path=f, steps=steps)
                probe_files[var] = (f, probe)
        run_start = time.perf_counter()
        try:
            net.run(condition=lava.RunSteps(num_steps=steps), run_cfg=lava.Loihi2SimCfg(select_tag="fixed_pt"))
            run_seconds = time.perf_counter() - run_start
            layers = []
            for i, f in enumerate(sink_files):
                rec = np.memmap(f, dtype=np.uint8, mode="r", shape=(steps, net_desc.layers[i].out_features))
                # sample k, step j of every layer is run step k*T + 1 + j
                window = np.array(rec[1 : 1 + b * t]).reshape(b, t, -1)
                window[:, :i] = 0  # before sample k reaches layer i (see module docstring)
                layers.append(torch.from_numpy(window))
            membrane = None
            if record_membrane:
                c = net_desc.layers[-1].out_features
                u, v = (
                    np.array(np.memmap(probe_files[k][0], dtype=np.int32, mode="r", shape=(steps, c))[1 : 1 + b * t]).reshape(b, t, c)
                    for k in ("u", "v")
                )
                pre = _membrane(u, v, net_desc)
                membrane = torch.from_numpy((pre / (UNITY * net_desc.layers[-1].scale)).astype(np.float32))
        finally:
            if net.runtime is not None:
                net.stop()
    return LavaRun(
        layers=tuple(layers), steps=steps, seconds=time.perf_counter() - start, run_seconds=run_seconds, output_membrane=membrane
    )
