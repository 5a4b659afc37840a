"""``snn-norse``: the BrainLeaks SNN target (input -> hidden LIF -> classes LIF) on Norse neurons.

Input ``x``: spikes ``[T, B, C, H, W]``; output: the output layer's pre-reset membrane
``[T, B, classes]`` (docs/method.md §1 read-out through ``spike_readout``). Linear layers have no
bias (hardware-mappable); the input projection is one matmul over all ``T * B`` rows.

Knobs (``target_config.<field>``): ``threshold``, ``reset`` ("hard" / "subtract"), ``surrogate``
(``nmprivacy.models.surrogates``: the fast sigmoid with ``surrogate_slope``, or snnTorch's
``arctan``, ``sigmoid``, ``triangle``, ``spike-rate-escape``, ``straight-through`` with
``surrogate_params`` or snnTorch's defaults). The surrogate changes training gradients only.
The fast attack engine knows the fast sigmoid and the hard reset: with anything else
``lif_layers()`` is None and attacks differentiate the model itself (its own surrogate and
reset); ``network()`` describes it with either reset (the NetX export maps a subtracting layer
onto Loihi's reset to 0 and notes it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import ModelInfo, TargetModel
from nmprivacy.models.lif import LIFBox
from nmprivacy.models.surrogates import SurrogateName, canonical, model_params
from nmprivacy.network.description import DenseLayer, FloatNeuron, Network


@dataclass(frozen=True)
class SNNNorseConfig:
    """Everything that rebuilds an ``snn-norse`` model (docs/method.md §4 defaults)."""

    # fields added after models were cached: left out of the JSON form (and cache keys) at their defaults
    OMITTED_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("surrogate", "surrogate_params")

    input_shape: tuple[int, ...]
    num_classes: int
    hidden: int = 3000
    leak: float = 0.7  # beta per step: Norse dt * tau_mem_inv = 1 - leak = 0.3
    threshold: float = 1.0
    surrogate_slope: float = 40.0  # fast sigmoid 1 / (1 + k |v - th|)^2
    # Initial W is nn.Linear's default times this; None: 1 / (1 - leak), so that the effective
    # weights (1 - leak) W start like the reference's snnTorch layer (U = beta U + W I).
    init_gain: float | None = None
    # "hard": v <- 0 on a spike (Loihi, Lava-DL, the default); "subtract": v <- v - threshold (Norse's
    # reset_subtract, same step), the kind of reset of the paper's snnTorch targets (docs/method.md §2.4)
    reset: Literal["hard", "subtract"] = "hard"
    surrogate: SurrogateName = "fast-sigmoid"
    surrogate_params: tuple[float, ...] = ()  # in snnTorch's order (empty: surrogate_slope for the fast sigmoid, else snnTorch's defaults)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "surrogate_params", tuple(float(p) for p in self.surrogate_params))
            model_params(self.surrogate, self.surrogate_slope, self.surrogate_params)
        except (TypeError, ValueError) as exc:
            raise NmprivacyError(f"snn-norse: {exc}") from None
        if self.reset not in ("hard", "subtract"):
            raise NmprivacyError(f"snn-norse: reset {self.reset!r}: use 'hard' (to 0) or 'subtract' (v - threshold)")

    @property
    def surrogate_parameters(self) -> tuple[float, ...]:
        """The surrogate's parameters as the neurons use them."""
        return model_params(self.surrogate, self.surrogate_slope, self.surrogate_params)


class SNNNorse(TargetModel):
    """Fully connected two-layer LIF network (Norse box-LIF, hard or subtractive reset, the configured surrogate)."""

    def __init__(self, config: SNNNorseConfig) -> None:
        super().__init__()
        self.config = config
        self.info = ModelInfo("snn-norse", "spikes", tuple(config.input_shape), config.num_classes, reset=config.reset)
        n_in = math.prod(config.input_shape)
        self.fc1 = nn.Linear(n_in, config.hidden, bias=False)
        self.fc2 = nn.Linear(config.hidden, config.num_classes, bias=False)
        gain = config.init_gain if config.init_gain is not None else 1.0 / (1.0 - config.leak)
        with torch.no_grad():
            self.fc1.weight.mul_(gain)
            self.fc2.weight.mul_(gain)
        params = config.surrogate_parameters
        self.lif1 = LIFBox(config.leak, config.threshold, config.surrogate, params, config.reset)
        self.lif2 = LIFBox(config.leak, config.threshold, config.surrogate, params, config.reset)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden spikes ``[T, B, hidden]`` and output membrane ``[T, B, classes]`` for ``x`` ``[T, B, C, H, W]``."""
        t, b = x.shape[:2]
        cur1 = self.fc1(x.reshape(t * b, -1)).reshape(t, b, -1)  # one GEMM over all steps
        s1, _ = self.lif1(cur1)
        cur2 = self.fc2(s1.reshape(t * b, -1)).reshape(t, b, -1)
        _, v2 = self.lif2(cur2)
        return s1, v2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output membrane ``[T, B, classes]`` for input spikes ``[T, B, C, H, W]``."""
        return self.run(x)[1]

    layer_delay = 0  # Norse passes a layer's spikes on within the step; the description (and Lava) adds one per layer

    @property
    def surrogate_slope(self) -> float | None:  # type: ignore[override]
        """The fast sigmoid's k when the model trains with it (the attack engine's surrogate), else None."""
        return float(self.lif1.slope) if canonical(self.config.surrogate) == "fast-sigmoid" else None

    def network(self) -> Network:
        """The network as float LIF layers: effective weights ``input_gain * W`` as Norse applies
        them, the leak as ``beta``, the reset as configured (NetX export refuses a subtractive one:
        Loihi resets to 0). Norse passes spikes on within the step, the description one step
        per layer later (noted)."""
        layers = []
        shape = tuple(self.config.input_shape)
        for i, (fc, lif) in enumerate(((self.fc1, self.lif1), (self.fc2, self.lif2))):
            neuron = FloatNeuron(beta=float(lif.leak), threshold=float(lif.threshold), reset="zero" if self.config.reset == "hard" else "subtract")
            layers.append(DenseLayer(neuron=neuron, weight=(lif.input_gain * fc.weight).detach().double().numpy(), in_shape=shape if i == 0 else (fc.weight.shape[1],),
                                     name=f"snn-norse layer {i}"))
        return Network(input_shape=shape, layers=tuple(layers), meta={"kind": "snn-norse"}, name="snn-norse",
                       notes=("the source has no per-layer delay; Lava adds one step per layer (output lags by layers-1 steps)",))


def default_config(input_shape: tuple[int, ...], num_classes: int, preset: object, hidden: int | None = None) -> SNNNorseConfig:
    """The preset's ``snn-norse`` for a data set (hidden size unless ``hidden`` is given)."""
    return SNNNorseConfig(input_shape=tuple(input_shape), num_classes=num_classes, hidden=hidden if hidden is not None else preset.hidden)  # type: ignore[attr-defined]
