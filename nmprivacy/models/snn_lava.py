"""``snn-lava``: the BrainLeaks SNN target built from Lava-DL slayer CUBA blocks (Loihi fixed point).

Topology as ``snn-norse`` (input -> hidden -> classes, dense, no bias) from
``lava.lib.dl.slayer.block.cuba.Dense`` blocks kept in ``self.blocks`` so that
``blocks[i].export_hdf5(group)`` writes the NetX network. What trains is what Loihi runs:

- weights pass through the block's ``pre_hook_fx`` (slayer ``quantize_8bit``): step 2/64 in
  [-4, 3.97]; NetX stores them as ``w * 64``, even integers in [-256, 254];
- neuron dynamics are slayer's CPU fixed-point CUBA (``current_decay = 1`` i.e. iDecay 4096:
  no synaptic memory; ``voltage_decay = 0.3`` -> vDecay 1229, leak 0.69995; threshold
  ``vThMant / 64``; hard reset to 0; spike when ``v * 4096 > vThMant << 6``);
- ``delay_shift`` (slayer default) delays every block's spikes by one step, as Lava does.

Layouts: input spikes ``[T, B, C, H, W]`` are fed to slayer as ``[B, N, T]``. ``forward``
returns the output block's voltage *before reset* in slayer's float units (Loihi ``v`` / 4096)
as ``[T, B, classes]``; index t is Lava's output-layer index t. Because the hidden block's
spikes are delayed one step, the output voltage at t=0 is always 0 and the input of the last
step never reaches the output within T steps (what the chip sees for a T-step input).

Surrogate: slayer's CUBA default is an exponential ``scale_rho/(2 tau_rho) exp(-|v - th|/tau_rho)``
with ``tau_rho = 100 * tau_grad * th`` and ``scale_rho = 0.1 * scale_grad`` (nearly flat:
~5e-4 everywhere); ``surrogate="fast-sigmoid"`` (default) replaces only the block neuron's
``spike`` backward by the fast sigmoid ``1 / (1 + 40 |v - th|)^2``
(v in float units; docs/method.md §2.3), the forward is unchanged. ``surrogate="slayer"``
keeps slayer's own. Backward through the membrane is slayer's
(``_li_dynamics_bwd``): it treats the voltage as a pure leaky integrator (the reset carries no
gradient at all, not even the 1 - s factor).

Engine (``SNNLava.engine``, default ``"sparse"``, or ``$NMPRIVACY_LAVA_ENGINE``): on the CPU, for
binary input spikes that need no gradient (training, evaluation, queries), the forward and the
weight gradients run in ``nmprivacy.models.sparse_cuba``, which gathers the weights of the active
inputs instead of slayer's dense GEMM and runs slayer's integer dynamics and its backward in
compiled kernels: the same spikes and voltages bit for bit, the same gradients up to fp32
summation order. Anything else (``engine = "slayer"``, a GPU, graded inputs, input gradients
for attacks) runs slayer itself. The engine is not part of ``SNNLavaConfig``: it changes how,
not what, a model computes (like the thread count), so cached models keep their keys.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from nmprivacy.errors import NmprivacyError
from nmprivacy.lava_import import import_slayer
from nmprivacy.models.base import LIFLayer, ModelInfo, TargetModel
from nmprivacy.models.surrogates import spike

import_slayer()
from lava.lib.dl import slayer  # noqa: E402
from lava.lib.dl.slayer.neuron import cuba  # noqa: E402

STATE_SCALE = 1 << 12  # slayer CUBA s_scale: Loihi integer voltage per float unit (w_scale 64 * 64)
ENGINES = ("sparse", "slayer")  # SNNLava.engine (module docstring)
ENGINE_ENV = "NMPRIVACY_LAVA_ENGINE"


def default_engine() -> str:
    """The engine new ``SNNLava`` models use: ``$NMPRIVACY_LAVA_ENGINE`` if set, else ``"sparse"``."""
    value = os.environ.get(ENGINE_ENV, "").strip() or "sparse"
    if value not in ENGINES:
        raise NmprivacyError(f"{ENGINE_ENV}={value!r} is not an snn-lava engine: use one of {', '.join(ENGINES)}")
    return value


@dataclass(frozen=True)
class SNNLavaConfig:
    """Everything that rebuilds an ``snn-lava`` model (docs/method.md §2.3 defaults, Loihi CUBA)."""

    input_shape: tuple[int, ...]
    num_classes: int
    hidden: int = 3000
    threshold: float = 1.0  # truncated to a multiple of 1/64 (vThMant = int(threshold * 64))
    current_decay: float = 1.0
    voltage_decay: float = 0.3  # same leak as snn-norse (beta 0.7)
    surrogate: Literal["fast-sigmoid", "slayer"] = "fast-sigmoid"
    surrogate_slope: float = 40.0
    weight_scale: float = 1.0  # slayer init scaling of the synapse weights


class FastSigmoidCubaNeuron(cuba.Neuron):
    """slayer CUBA neuron whose spike backward is the fast sigmoid (forward unchanged)."""

    def __init__(self, *args, surrogate_slope: float = 40.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.surrogate_slope = float(surrogate_slope)

    def spike(self, voltage: torch.Tensor) -> torch.Tensor:
        """Spikes ``1[v > th]`` with the fast-sigmoid surrogate centred on ``th`` (= vThMant / 64).

        For Loihi's integer voltages (``v * 4096`` integral) ``v > th`` is exactly slayer's test
        ``v >= th + threshold_eps`` and the leaky integrator's internal reset test.
        """
        if self.persistent_state or self.graded_spike or self.drop is not None:
            raise NotImplementedError("FastSigmoidCubaNeuron supports only stateless binary spikes")
        return spike(voltage - self.threshold, "fast-sigmoid", self.surrogate_slope)


def cuba_block(kind: str, *args: object, config: SNNLavaConfig, **kwargs: object) -> torch.nn.Module:
    """One slayer CUBA block (``kind``: ``"Dense"`` or ``"Conv"``; quantised weights, delay_shift)
    with the configured surrogate; ``args``/``kwargs`` are the block's own (sizes, kernel, ...)."""
    params = {"threshold": config.threshold, "current_decay": config.current_decay, "voltage_decay": config.voltage_decay}
    block = getattr(slayer.block.cuba, kind)(params, *args, weight_scale=config.weight_scale, delay_shift=True, **kwargs)
    if config.surrogate == "fast-sigmoid":
        block.neuron = FastSigmoidCubaNeuron(**params, surrogate_slope=config.surrogate_slope)
        block.synapse.pre_hook_fx = block.neuron.quantize_8bit
    elif config.surrogate != "slayer":
        raise ValueError(f"unknown snn-lava surrogate {config.surrogate!r}: use 'fast-sigmoid' or 'slayer'")
    return block


def cuba_dense(in_neurons: int, out_neurons: int, config: SNNLavaConfig) -> torch.nn.Module:
    """One slayer CUBA Dense block with the configured surrogate."""
    return cuba_block("Dense", in_neurons, out_neurons, config=config)


def default_config(input_shape: tuple[int, ...], num_classes: int, preset: object, hidden: int | None = None) -> SNNLavaConfig:
    """The preset's ``snn-lava`` for a data set (hidden size unless ``hidden`` is given)."""
    return SNNLavaConfig(input_shape=tuple(input_shape), num_classes=num_classes, hidden=hidden if hidden is not None else preset.hidden)  # type: ignore[attr-defined]


class SNNLava(TargetModel):
    """Two CUBA Dense blocks (hidden, output); output read-out = output block's pre-reset voltage."""

    def __init__(self, config: SNNLavaConfig) -> None:
        super().__init__()
        self.config = config
        self.info = ModelInfo("snn-lava", "spikes", tuple(config.input_shape), config.num_classes, reset="hard")
        n_in = math.prod(config.input_shape)
        self.blocks = nn.ModuleList([cuba_dense(n_in, config.hidden, config), cuba_dense(config.hidden, config.num_classes, config)])
        self.engine = default_engine()

    @property
    def engine(self) -> str:
        """``"sparse"`` (``nmprivacy.models.sparse_cuba`` where it applies) or ``"slayer"`` (module docstring)."""
        return self._engine

    @engine.setter
    def engine(self, value: str) -> None:
        if value not in ENGINES:
            raise NmprivacyError(f"unknown snn-lava engine {value!r}: use one of {', '.join(ENGINES)}")
        self._engine = value

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden spikes ``[T, B, hidden]`` (after the block's one-step delay) and output voltage ``[T, B, classes]``.

        The sparse engine serves this only when nothing needs gradients (its hidden spikes carry none)."""
        if self._engine == "sparse" and not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())):
            from nmprivacy.models.sparse_cuba import run_stack

            result = run_stack(self.blocks, x, want_hidden=True)
            if result is not None:
                return result[1][0], result[0]
        return self._slayer_run(x)

    def _slayer_run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``run`` through slayer's own blocks."""
        t, b = x.shape[:2]
        xs = x.reshape(t, b, -1).permute(1, 2, 0).contiguous()  # [B, N, T]
        s1 = self.blocks[0](xs)  # [B, hidden, T], delayed by one step
        out = self.blocks[1]
        _, voltage = out.neuron.dynamics(out.synapse(s1))  # pre-reset, float units, [B, classes, T]
        return s1.permute(2, 0, 1), voltage.permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output voltage ``[T, B, classes]`` (float units) for input spikes ``[T, B, C, H, W]``."""
        if self._engine == "sparse":
            from nmprivacy.models.sparse_cuba import run_stack

            result = run_stack(self.blocks, x)
            if result is not None:
                return result[0]
        return self._slayer_run(x)[1]

    def integer_weights(self) -> list[torch.Tensor]:
        """Each block's weight as NetX stores it: ``[out, in]`` integers (float dtype) = quantised w * 64."""
        return [blk.synapse.pre_hook_fx(blk.synapse.weight, descale=True).reshape(blk.synapse.weight.shape[:2]).detach().clone() for blk in self.blocks]

    def lif_layers(self) -> list[LIFLayer] | None:
        """The network as Loihi fixed-point CUBA layers (integer weights, 12-bit decays, delay 1).

        ``surrogate_scale`` and ``membrane_scale`` are 4096: Loihi's integer voltage for 1.0 in
        slayer's float units (threshold ``vThMant << 6`` = 4096 for threshold 1.0).
        None for slayer's own surrogate (``LIFLayer`` cannot describe its exponential): attacks
        then differentiate through slayer itself.
        """
        if self.config.surrogate != "fast-sigmoid":
            return None
        layers = []
        for blk, w in zip(self.blocks, self.integer_weights()):
            n = blk.neuron
            layers.append(
                LIFLayer(
                    weight=w,
                    arithmetic="loihi",
                    threshold=float(n.v_th_mant << 6),
                    leak=1.0 - int(n.cx_voltage_decay) / STATE_SCALE,
                    i_decay=int(n.cx_current_decay),
                    v_decay=int(n.cx_voltage_decay),
                    delay=1,
                    surrogate_slope=self.config.surrogate_slope,
                    surrogate_scale=float(STATE_SCALE),
                    membrane_scale=float(STATE_SCALE),
                    reset_grad="none",  # slayer's leaky-integrator backward ignores the reset
                )
            )
        return layers
