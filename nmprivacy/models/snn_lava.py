"""``snn-lava``: the BrainLeaks SNN target built from Lava-DL slayer CUBA blocks (Loihi fixed point).

Topology as ``snn-norse`` (input -> hidden -> classes, dense, no bias; ``extra_hidden`` adds
further hidden layers, input -> hidden -> *extra_hidden -> classes, e.g. the reference models of
a deeper NetX file or NIR graph in ``nmprivacy mia``) from
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
(v in float units; docs/method.md §2.3), the forward is unchanged. The other surrogates of
``nmprivacy.models.surrogates`` (snnTorch's ``arctan``, ``sigmoid``, ``triangle``,
``spike-rate-escape``, ``straight-through``; parameters ``surrogate_params``, else snnTorch's
defaults) replace it the same way (``SurrogateCubaNeuron``); ``surrogate="slayer"`` keeps
slayer's own. The surrogate never changes the forward (spikes, voltages, the NetX file).
Backward through the membrane is slayer's
(``_li_dynamics_bwd``): it treats the voltage as a pure leaky integrator (the reset carries no
gradient at all, not even the 1 - s factor). Attacks: the fast attack engine
(``lif_layers()``) knows only the fast sigmoid, so a model trained with any other surrogate
answers ``lif_layers() -> None`` and attacks differentiate the model itself (autograd through
slayer), i.e. with the surrogate it was trained with.

Weight precision (``weight_bits``, docs: README "Hardware path"): 8 (default) is slayer's
``quantize_8bit`` (steps of 2/64 in [-4, 3.97]). Fewer bits, 2-7, use ``LoihiWeights``:
quantisation-aware training with a ``weight_bits``-bit signed mantissa and one power-of-two
exponent per layer, chosen from the layer's largest weight, as Loihi stores a synapse, on
slayer's grid (steps 2/64 times a power of two; NetX re-derives ``num_weight_bits`` and
``weight_exponent`` from the written integers, so the export stays lossless). Reset: Loihi's (and slayer's) CUBA neuron resets to 0; there is no
subtractive reset (``reset`` accepts only ``"hard"``; use ``snn-norse`` for ``"subtract"``).

Delays (``delay_layers``, e.g. ``[0, 1]``; default none): the hidden blocks named learn one
axonal delay per neuron, as Lava-DL's ``delay=True`` (its N-MNIST tutorial): slayer's
``axon.Delay`` (at most 62 steps, whole steps in the forward), exported by the block's own
``export_hdf5`` as the layer's ``delay``, which NetX applies to that layer's input synapses:
the same spikes (``network``). The reference models of a NetX file with delays get them
(``nmprivacy mia``). The sparse engine runs them (spikes moved per neuron, slayer's delay
gradient), and so does the fast attack engine (each neuron's input current moved by its delay);
DP-SGD refuses it (Opacus has no per-sample gradient of a delay).

Engine (``SNNLava.engine``, default ``"sparse"``, or ``$NMPRIVACY_LAVA_ENGINE``): on the CPU, for
binary input spikes that need no gradient (training, evaluation, queries), the forward and the
weight gradients run in ``nmprivacy.models.sparse_cuba``, which gathers the weights of the active
inputs instead of slayer's dense GEMM and runs slayer's integer dynamics and its backward in
compiled kernels: the same spikes and voltages bit for bit, the same gradients up to fp32
summation order. Anything else (``engine = "slayer"``, a GPU, graded inputs, input gradients
for attacks) runs slayer itself. Dropout in training (``dropout_masks``, set by
``nmprivacy.training.hidden_dropout``) runs on the sparse engine too, with the masks slayer's
blocks would get from the same generator. The engine is not part of ``SNNLavaConfig``: it changes how,
not what, a model computes (like the thread count), so cached models keep their keys.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import ModelInfo, TargetModel
from nmprivacy.models.cuba_blocks import block_delays, cuba_dense
from nmprivacy.models.surrogates import canonical, model_params
from nmprivacy.network.description import DenseLayer, LoihiNeuron, Network
from nmprivacy.network.loihi import WEIGHT_BITS

ENGINES = ("sparse", "slayer")  # SNNLava.engine (module docstring)
ENGINE_ENV = "NMPRIVACY_LAVA_ENGINE"


def default_engine() -> str:
    """The engine new ``SNNLava`` models use: ``$NMPRIVACY_LAVA_ENGINE`` if set, else ``"sparse"``."""
    value = os.environ.get(ENGINE_ENV, "").strip() or "sparse"
    if value not in ENGINES:
        raise NmprivacyError(f"{ENGINE_ENV}={value!r} is not an snn-lava engine: use one of {', '.join(ENGINES)}")
    return value


LavaSurrogate = Literal["fast-sigmoid", "arctan", "atan", "sigmoid", "triangle", "spike-rate-escape", "straight-through", "slayer"]


@dataclass(frozen=True)
class SNNLavaConfig:
    """Everything that rebuilds an ``snn-lava`` model (docs/method.md §2.3 defaults, Loihi CUBA)."""

    # fields added after models were cached: left out of the JSON form (and cache keys) at their defaults
    OMITTED_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("surrogate_params", "weight_bits", "reset", "extra_hidden", "delay_layers")

    input_shape: tuple[int, ...]
    num_classes: int
    hidden: int = 3000
    threshold: float = 1.0  # truncated to a multiple of 1/64 (vThMant = int(threshold * 64))
    current_decay: float = 1.0
    voltage_decay: float = 0.3  # same leak as snn-norse (beta 0.7)
    surrogate: LavaSurrogate = "fast-sigmoid"
    surrogate_slope: float = 40.0  # the fast sigmoid's k
    surrogate_params: tuple[float, ...] = ()  # the surrogate's parameters in snnTorch's order (empty: k above / snnTorch's defaults)
    weight_scale: float = 1.0  # slayer init scaling of the synapse weights
    weight_bits: int = 8  # synapse mantissa bits on Loihi (8: slayer's quantize_8bit; 2-7: LoihiWeights)
    reset: Literal["hard"] = "hard"  # Loihi's CUBA neuron resets to 0; nothing else is expressible
    extra_hidden: tuple[int, ...] = ()  # sizes of further hidden layers after ``hidden`` (empty: one hidden layer)
    delay_layers: tuple[int, ...] = ()  # hidden layers (0 = the first) whose neurons learn a synaptic delay each (Lava-DL's delay=True)

    def __post_init__(self) -> None:
        check_knobs(self)
        try:
            sizes = tuple(int(n) for n in self.extra_hidden)
        except (TypeError, ValueError):
            sizes = (0,)
        if any(n < 1 for n in sizes):
            raise NmprivacyError(f"snn-lava: extra_hidden is {self.extra_hidden!r}: give the sizes of the further hidden layers, e.g. [128, 64]")
        object.__setattr__(self, "extra_hidden", sizes)
        hidden_layers = 1 + len(sizes)
        try:
            delayed = tuple(sorted({int(i) for i in self.delay_layers}))
        except (TypeError, ValueError):
            delayed = (-1,)
        if any(i < 0 or i >= hidden_layers for i in delayed):
            raise NmprivacyError(f"snn-lava: delay_layers is {self.delay_layers!r}: give hidden layer indices 0..{hidden_layers - 1} "
                                 "(the read-out layer's voltage is the output and takes no delay)")
        object.__setattr__(self, "delay_layers", delayed)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Neurons per layer, input first: ``(N_in, hidden, *extra_hidden, classes)``."""
        return (math.prod(self.input_shape), self.hidden, *self.extra_hidden, self.num_classes)


def check_knobs(config: Any) -> None:
    """One-line ``NmprivacyError`` for a surrogate, weight precision or reset an ``snn-lava``
    (or ``snn-lava-conv``) config cannot have."""
    kind = "snn-lava-conv" if type(config).__name__.startswith("SNNLavaConv") else "snn-lava"
    try:  # values from --set / study factors may come as lists or whole floats
        object.__setattr__(config, "surrogate_params", tuple(float(p) for p in config.surrogate_params))
        bits = config.weight_bits
        if isinstance(bits, float) and bits.is_integer():
            object.__setattr__(config, "weight_bits", int(bits))
    except (TypeError, ValueError):
        raise NmprivacyError(f"{kind}: surrogate_params must be numbers, got {config.surrogate_params!r}") from None
    surrogate = config.surrogate
    if surrogate != "slayer":
        try:
            model_params(surrogate, config.surrogate_slope, config.surrogate_params)
        except ValueError as exc:
            raise NmprivacyError(f"{kind}: {exc} (or 'slayer')") from None
    elif config.surrogate_params:
        raise NmprivacyError(f"{kind}: surrogate 'slayer' takes no surrogate_params (slayer's own tau_grad / scale_grad apply)")
    bits = config.weight_bits
    if not isinstance(bits, int) or bits not in WEIGHT_BITS:
        raise NmprivacyError(f"{kind}: weight_bits is {bits!r}: Loihi's synapse holds a signed mantissa of 2 to 8 bits")
    if getattr(config, "reset", "hard") != "hard":
        raise NmprivacyError(f"{kind}: reset {config.reset!r} is not possible: Loihi's CUBA neuron (and slayer's, which "
                             "trains it) resets the voltage to 0 on a spike; snn-norse has reset='subtract'")


def warm_up_engine() -> None:
    """Compile (or load from Numba's disk cache) every kernel of the sparse engine
    (``nmprivacy.models.sparse_cuba``) once, so that the first training step does not pay for it."""
    from nmprivacy.models.sparse_cuba import run_stack

    x = torch.zeros(3, 2, 1, 2, 2)
    x[0, 0, 0, 0, 0] = x[1, 1, 0, 1, 1] = 1.0
    for surrogate in ("fast-sigmoid", "slayer", "arctan"):  # the specialised loops and the generic one
        model = SNNLava(SNNLavaConfig(input_shape=(1, 2, 2), num_classes=2, hidden=3, surrogate=surrogate))
        for density in (0.0, 1.0):  # gathered and GEMM currents
            result = run_stack(model.blocks, x if density == 0.0 else torch.ones_like(x))
            if result is not None:
                result[0].sum().backward()


def default_config(input_shape: tuple[int, ...], num_classes: int, preset: object, hidden: int | None = None) -> SNNLavaConfig:
    """The preset's ``snn-lava`` for a data set (hidden size unless ``hidden`` is given)."""
    return SNNLavaConfig(input_shape=tuple(input_shape), num_classes=num_classes, hidden=hidden if hidden is not None else preset.hidden)  # type: ignore[attr-defined]


class SNNLava(TargetModel):
    """CUBA Dense blocks (hidden, any ``extra_hidden``, output); output read-out = output block's pre-reset voltage."""

    def __init__(self, config: SNNLavaConfig) -> None:
        super().__init__()
        self.config = config
        self.info = ModelInfo("snn-lava", "spikes", tuple(config.input_shape), config.num_classes, reset="hard")
        sizes = config.layer_sizes
        self.blocks = nn.ModuleList([cuba_dense(n_in, n_out, config, delay=i in config.delay_layers)
                                     for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))])
        self.engine = default_engine()
        self.per_sample_sink: Callable[[torch.Tensor, torch.Tensor], None] | None = None  # DP-SGD on the sparse engine (nmprivacy.dp)
        self.dropout_masks: Callable[[tuple[int, ...]], torch.Tensor] | None = None  # dropout on the sparse engine (nmprivacy.training)

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
        """The first hidden layer's spikes ``[T, B, hidden]`` (after the block's one-step delay) and output voltage ``[T, B, classes]``.

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
        s = s1
        for blk in self.blocks[1:-1]:  # extra hidden layers, each one more step of delay
            s = blk(s)
        out = self.blocks[-1]
        _, voltage = out.neuron.dynamics(out.synapse(s))  # pre-reset, float units, [B, classes, T]
        return s1.permute(2, 0, 1), voltage.permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output voltage ``[T, B, classes]`` (float units) for input spikes ``[T, B, C, H, W]``."""
        if self._engine == "sparse":
            from nmprivacy.models.sparse_cuba import run_stack

            training = self.training
            result = run_stack(self.blocks, x, per_sample=self.per_sample_sink if training else None, dropout=self.dropout_masks if training else None)
            if result is not None:
                return result[0]
        return self._slayer_run(x)[1]

    def integer_weights(self) -> list[torch.Tensor]:
        """Each block's weight as NetX stores it: ``[out, in]`` integers (float dtype) = quantised w * 64."""
        return [blk.synapse.pre_hook_fx(blk.synapse.weight, descale=True).reshape(blk.synapse.weight.shape[:2]).detach().clone() for blk in self.blocks]

    @property
    def surrogate_slope(self) -> float | None:  # type: ignore[override]
        """The fast sigmoid's k when the model trains with it (the attack engine's surrogate), else None."""
        if self.config.surrogate == "slayer" or canonical(self.config.surrogate) != "fast-sigmoid":
            return None
        return float(getattr(self.blocks[0].neuron, "surrogate_slope", self.config.surrogate_slope))

    def network(self) -> Network:
        """The network as Loihi runs it: dense CUBA layers of integer weights (quantised w * 64),
        12-bit decays and threshold mantissas, exactly what slayer's NetX export holds (tested).
        A hidden block's learned delays, which slayer applies to its neurons' output spikes, are
        its layer's synaptic delays per target neuron, as NetX reads the exported ``delay``: for
        neurons without bias that start at rest, delaying a neuron's input by d steps or its
        output by d steps gives the same spikes (tested against slayer and Lava)."""
        layers = []
        shape = tuple(self.config.input_shape)
        for i, (blk, w) in enumerate(zip(self.blocks, self.integer_weights())):
            n = blk.neuron
            neuron = LoihiNeuron(i_decay=int(n.cx_current_decay), v_decay=int(n.cx_voltage_decay), vth_mant=int(n.v_th_mant))
            steps = block_delays(blk)
            delay = None if steps is None else steps.numpy()[:, None].repeat(w.shape[1], axis=1)
            layers.append(DenseLayer(neuron=neuron, weight=w.round().to(torch.int64).numpy(), in_shape=shape if i == 0 else (w.shape[1],),
                                     delay=delay, name=f"snn-lava layer {i}"))
        return Network(input_shape=shape, layers=tuple(layers), meta={"kind": "snn-lava"}, name="snn-lava")
