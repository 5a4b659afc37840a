"""Run a batch of inputs through a NetX network on Lava's CPU simulator in ONE run.

Samples are laid back to back, each ``S = T + G`` steps long (``G`` zero steps after a sample
for networks with recurrent or delayed synapses, else 0), and the neurons reset between samples
with ``Network(reset_interval=S, reset_offset=d0)`` (LIFReset): Lava resets layer ``l`` when the
first input of a sample reaches it. The time axis is the description's (``nmprivacy.network``):
fire index ``j`` of sample ``k``, in every layer, is Lava time step ``k*S + 1 + d0 + j``, where
``d0`` is 1 when the input enters through a synapse and 0 when it feeds an input layer's neurons
directly; steps ``j < l`` of layer ``l`` are still the tail of sample ``k - 1`` and are returned
as zeros (the per-sample view, in which layer ``l`` starts at step ``l``).

A reset clears neuron states, not synapse buffers: a recurrent synapse or a delayed one could
carry the previous sample's last spikes across it. The run checks Lava's own record for such
spikes (a recurrent layer spiking at the step before its reset, or a delayed synapse's source
spiking within its delay of it) and runs every affected sample again on its own, so results are
always exactly the per-sample ones. Inputs and every layer's spikes stream through numpy
memmaps (``hw_export.lava_procs``), never through Lava's slow Var reads; (C, H, W) layers are
transposed to Lava's (W, H, C) and back.

Returned spikes ``[B, T, N_l]`` use that time axis (what ``NetworkModel.layer_spikes`` gives at
``[j]``), neurons in (C, H, W) order.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hw_export.netx_format import read_netx
from nmprivacy.errors import NetworkError, NmprivacyError
from nmprivacy.network import DenseLayer, InputLayer, Network, loihi

QUIET_STEPS = 4  # zero steps beyond the longest delay after each sample of a recurrent/delayed network
GRADED_BITS = 16  # message bits of graded input spikes into a first synapse layer


@dataclass(frozen=True)
class LavaRun:
    """Spikes of every layer ``[B, T, N_l]`` (uint8) from one Lava run, plus run facts.

    ``output_membrane`` ``[B, T, classes]`` (float32, model units, pre-reset voltage rebuilt from
    Lava's recorded ``u`` and post-reset ``v``) when ``record_membrane=True``, else None;
    ``isolated`` lists the samples that were run again on their own (see the module docstring)."""

    layers: tuple[torch.Tensor, ...]
    steps: int
    seconds: float
    run_seconds: float
    output_membrane: torch.Tensor | None = None
    isolated: tuple[int, ...] = ()

    @property
    def output(self) -> torch.Tensor:
        """Output-layer spikes ``[B, T, classes]``."""
        return self.layers[-1]

    @property
    def samples_per_s(self) -> float:
        return self.layers[0].shape[0] / self.seconds if self.seconds > 0 else float("inf")


def as_inputs(data: np.ndarray | torch.Tensor, network: Network) -> np.ndarray:
    """``data`` ``[B, T, ...]`` as int64 ``[B, T, N]`` (neurons in (C, H, W) order); one-line errors
    for bad shapes or values (binary spikes, or integer graded values)."""
    arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if arr.ndim < 3:
        raise NmprivacyError(f"inputs must be [B, T, N] (or [B, T, C, H, W]), got shape {arr.shape}")
    if arr.size == 0:
        raise NmprivacyError(f"inputs must hold at least one sample and one step, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise NmprivacyError(f"inputs have dtype {arr.dtype}: pass numbers (binary spikes or integer graded values)")
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    if arr.shape[-1] != network.input_size:
        raise NetworkError(f"input has {arr.shape[-1]} neurons per step but {network.name} expects {network.input_size}")
    if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
        raise NmprivacyError("spikes must be binary (0/1) or integer graded values: sample Bernoulli spikes before running on Lava")
    if np.abs(arr).max(initial=0) >= 1 << 23:
        raise NmprivacyError("graded input values must stay within Loihi's 24-bit range")
    return arr.astype(np.int64)


def padding_steps(network: Network) -> int:
    """Zero steps after each sample: 0 for feed-forward networks without delays."""
    if not network.recurrent and network.max_delay == 0:
        return 0
    return network.max_delay + QUIET_STEPS


def _to_lava(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Rows ``[R, N]`` in (C, H, W) order as Lava's (W, H, C) order, flattened."""
    if len(shape) != 3:
        return rows
    return rows.reshape(rows.shape[0], *shape).transpose(0, 3, 2, 1).reshape(rows.shape[0], -1)


def _from_lava(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Rows ``[R, N]`` in Lava's (W, H, C) order back in (C, H, W) order."""
    if len(shape) != 3:
        return rows
    c, h, w = shape
    return rows.reshape(rows.shape[0], w, h, c).transpose(0, 3, 2, 1).reshape(rows.shape[0], -1)


def _membrane(u: np.ndarray, v_post: np.ndarray, network: Network) -> np.ndarray:
    """Pre-reset voltage ``[B, T, N]`` (Loihi units) of the output layer from Lava's ``u`` and
    post-reset ``v`` of each sample's window."""
    layer = network.layers[-1]
    keep = loihi.DECAY_UNIT - layer.neuron.v_decay
    first = len(network.layers) - 1  # the output layer's reset step within each sample
    prev = np.zeros_like(v_post, dtype=np.int64)
    prev[:, first + 1 :] = v_post[:, first:-1]
    bias = layer.bias_per_neuron(layer.out_shape)
    bias = 0 if bias is None else bias.reshape(-1) << loihi.ACT_SHIFT_BITS
    pre = loihi.clip_voltage(loihi.rstz(prev, keep) + u.astype(np.int64) + bias)
    pre[:, :first] = 0  # steps before the sample reaches the output layer
    return pre


def _input_neurons(lava, path: Path, network: Network, stride: int, d0: int):
    """The input layer's neurons as the Lava process NetX would make for them (``LIFReset``)."""
    from lava.lib.dl.netx.utils import NetDict

    params = dict(lava.netx.Network.get_neuron_params(
        NetDict(str(path))["layer"][0]["neuron"], input=True, reset_interval=stride, reset_offset=d0 + 1
    ))
    process = params.pop("neuron_proc")
    params.pop("bias_key", None)
    params.pop("num_message_bits", None)
    return process(shape=tuple(reversed(network.input_shape)), **params)  # Lava's (W, H, C)


def _contaminated(records: list[np.ndarray], network: Network, x: np.ndarray, stride: int, d0: int) -> list[int]:
    """Samples whose window may hold the previous sample's spikes (see the module docstring)."""
    bad: set[int] = set()
    b = x.shape[0]
    for i, layer in enumerate(network.layers):
        if not isinstance(layer, DenseLayer):
            continue
        for k in range(1, b):
            if layer.weight_rec is not None and records[i][k * stride + d0 + i - 1].any():
                bad.add(k)
            if layer.delay is not None and i > 0:
                lo = max(0, k * stride + d0 + i - 1 - layer.max_delay)
                if records[i - 1][lo : k * stride + d0 + i - 1].any():
                    bad.add(k)
    return sorted(bad)


def run_lava(
    path: str | os.PathLike[str],
    spikes: np.ndarray | torch.Tensor,
    record_membrane: bool = False,
    workdir: str | os.PathLike[str] | None = None,
) -> LavaRun:
    """Run ``spikes`` ``[B, T, ...]`` (binary, or integer graded values) through the NetX file
    ``path`` with ``Loihi2SimCfg(select_tag='fixed_pt')`` in one run; every layer's spikes come
    back ``[B, T, N_l]``."""
    start = time.perf_counter()
    network = read_netx(path)
    x = as_inputs(spikes, network)
    run = _run_once(Path(path), network, x, record_membrane, workdir)
    layers, membrane, steps, run_seconds, isolated = run
    for k in isolated:  # exact per-sample results for samples the batched run could not isolate
        alone = _run_once(Path(path), network, x[k : k + 1], record_membrane, workdir)
        if alone[4]:
            raise NetworkError(f"{network.name}: a recurrent or delayed layer spikes before the sample reaches it; it cannot be run sample by sample")
        for layer, single in zip(layers, alone[0]):
            layer[k] = single[0]
        if membrane is not None:
            membrane[k] = alone[1][0]
        run_seconds += alone[3]
    out_membrane = None
    if membrane is not None:
        out_membrane = torch.from_numpy((membrane / (loihi.VOLTAGE_UNIT * network.layers[-1].scale)).astype(np.float32))
    return LavaRun(
        layers=tuple(torch.from_numpy(layer) for layer in layers), steps=steps, seconds=time.perf_counter() - start,
        run_seconds=run_seconds, output_membrane=out_membrane, isolated=tuple(isolated),
    )


def _run_once(
    path: Path, network: Network, x: np.ndarray, record_membrane: bool, workdir: str | os.PathLike[str] | None
) -> tuple[list[np.ndarray], np.ndarray | None, int, float, list[int]]:
    """One Lava run of ``x`` ``[B, T, N]``: per-layer windows ``[B, T, N_l]``, the output
    membrane ``[B, T, C]`` (Loihi units) or None, steps, run seconds and contaminated samples."""
    from hw_export.lava_env import lava_modules

    b, t, n = x.shape
    d0 = 0 if network.has_input_neurons else 1
    stride = t + padding_steps(network)
    steps = b * stride + d0
    first = network.layers[0]
    rows = np.zeros((steps, n), dtype=np.int64)
    rows[: b * stride].reshape(b, stride, n)[:, :t] = x
    if isinstance(first, InputLayer):  # the input encoder applies NetX's stored input transform
        rows = first.weight * rows + first.bias_in
    graded = bool(((rows != 0) & (rows != 1)).any())
    dtype = np.int32 if graded else np.uint8
    lava = lava_modules()
    with tempfile.TemporaryDirectory(prefix="nmprivacy-lava-", dir=workdir) as tmp:
        in_file = os.path.join(tmp, "input.bin")
        mm_in = np.memmap(in_file, dtype=dtype, mode="w+", shape=(steps, n))
        mm_in[:] = _to_lava(rows, (n,) if isinstance(first, DenseLayer) else network.input_shape)  # as net.inp's layout
        mm_in.flush()
        del mm_in
        message_bits = GRADED_BITS if graded and not isinstance(first, InputLayer) else 0
        source = lava.procs.MemmapSource(path=in_file, size=n, steps=steps, dtype=np.dtype(dtype).name)
        if isinstance(first, InputLayer):
            # NetX's Input block cannot be compiled by Lava 0.10 (its port is not wired to its
            # neurons), so, as lava-dl's own examples, the network is built without it and the
            # input layer's neurons are a Lava LIF process with NetX's own parameters for it.
            net = lava.netx.Network(net_config=str(path), skip_layers=1, reset_interval=stride, reset_offset=d0 + 1)
            lava_layers = [_input_neurons(lava, path, network, stride, d0), *net.layers]
            entry = lava_layers[0].a_in
        else:
            net = lava.netx.Network(net_config=str(path), reset_interval=stride, reset_offset=d0, input_message_bits=message_bits)
            lava_layers = list(net.layers)
            entry = net.inp
        if len(lava_layers) != len(network.layers):
            raise NetworkError(f"{network.name}: Lava built {len(lava_layers)} layers, the file describes {len(network.layers)}")
        (source.s_out if len(entry.shape) == 1 else source.s_out.reshape(entry.shape)).connect(entry)
        if isinstance(first, InputLayer):
            lava_layers[0].s_out.connect(net.inp)
        sink_files = []
        for i, layer in enumerate(network.layers):
            size = math.prod(layer.out_shape)
            f = os.path.join(tmp, f"layer{i}.u8")
            np.memmap(f, dtype=np.uint8, mode="w+", shape=(steps, size)).flush()
            sink = lava.procs.MemmapSink(path=f, size=size, steps=steps)
            out = lava_layers[i].s_out if i == 0 and isinstance(first, InputLayer) else lava_layers[i].out
            (out if len(out.shape) == 1 else out.flatten()).connect(sink.a_in)
            sink_files.append(f)
        probe_files, probes = {}, []
        if record_membrane:
            neuron = lava_layers[-1] if len(lava_layers) == 1 and isinstance(first, InputLayer) else lava_layers[-1].neuron
            size = network.num_outputs
            for var in ("u", "v"):
                f = os.path.join(tmp, f"out_{var}.i32")
                np.memmap(f, dtype=np.int32, mode="w+", shape=(steps, size)).flush()
                probes.append(lava.procs.MemmapProbe(var=getattr(neuron, var), path=f, steps=steps))
                probe_files[var] = f
        run_start = time.perf_counter()
        try:
            net.run(condition=lava.RunSteps(num_steps=steps), run_cfg=lava.Loihi2SimCfg(select_tag="fixed_pt"))
            run_seconds = time.perf_counter() - run_start
            index = (np.arange(b)[:, None] * stride + d0 + np.arange(t)[None, :])  # [B, T] rows of each window
            records, windows = [], []
            for i, (layer, f) in enumerate(zip(network.layers, sink_files)):
                rec = _from_lava(np.array(np.memmap(f, dtype=np.uint8, mode="r", shape=(steps, math.prod(layer.out_shape)))), layer.out_shape)
                records.append(rec)
                window = rec[index]
                window[:, :i] = 0  # before sample k reaches layer i (see module docstring)
                windows.append(window)
            membrane = None
            if record_membrane:
                last = network.layers[-1]
                u, v = (
                    _from_lava(np.array(np.memmap(probe_files[k], dtype=np.int32, mode="r", shape=(steps, network.num_outputs))), last.out_shape)[index]
                    for k in ("u", "v")
                )
                membrane = _membrane(u, v, network)
        finally:
            if net.runtime is not None:
                net.stop()
    return windows, membrane, steps, run_seconds, _contaminated(records, network, x, stride, d0)
