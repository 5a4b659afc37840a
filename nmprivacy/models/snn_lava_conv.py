"""``snn-lava-conv``: a convolutional Lava-DL CUBA target that Loihi runs as it is trained.

Topology: input -> CUBA conv (``channels[0]``, ``kernels[0]``, stride 2) -> CUBA conv
(``channels[1]``, ``kernels[1]``, stride 2) -> flatten -> [CUBA dense ``dense_hidden``] -> CUBA
dense classes (the convolutions hold the capacity: the presets' dense ``hidden`` size is not used). Strided convolutions replace pooling, which NetX cannot build, so slayer's own export
writes a file ``lava.lib.dl.netx.hdf5.Network`` runs (conv, flatten, dense; no pooling layer).
Neurons, quantisation, surrogate and read-out are those of ``snn-lava``
(``nmprivacy.models.snn_lava``): slayer's fixed-point CUBA, 8-bit weights (or ``weight_bits``),
fast-sigmoid backward (or ``surrogate``), the output block's pre-reset voltage as read-out, one
step of delay per block. Lava-dl's NetX builds conv synapses with 8-bit weights and no exponent
packing (only dense layers go through ``optimize_weight_bits``): a conv layer trained with fewer
bits runs on Lava exactly, its values a subset of the 8-bit ones.

Layouts: input spikes ``[T, B, C, H, W]`` are fed to slayer as ``[B, C, H, W, T]``; ``forward``
returns the output voltage ``[T, B, classes]`` (slayer's float units).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import ModelInfo, TargetModel
from nmprivacy.models.cuba_blocks import cuba_block
from nmprivacy.models.snn_lava import LavaSurrogate, check_knobs
from nmprivacy.network import conv_output_shape


@dataclass(frozen=True)
class SNNLavaConvConfig:
    """Everything that rebuilds an ``snn-lava-conv`` model (neurons, surrogate, weight precision
    and reset as ``SNNLavaConfig``)."""

    OMITTED_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("surrogate_params", "weight_bits", "reset")

    input_shape: tuple[int, ...]
    num_classes: int
    channels: tuple[int, int] = (8, 16)
    kernels: tuple[int, int] = (5, 3)
    dense_hidden: int = 0  # a dense hidden layer before the read-out (0: none)
    threshold: float = 1.0
    current_decay: float = 1.0
    voltage_decay: float = 0.3
    surrogate: LavaSurrogate = "fast-sigmoid"
    surrogate_slope: float = 40.0
    surrogate_params: tuple[float, ...] = ()
    # slayer's initial weights times this: at 1 the sparse event input (~2 % density) leaves both
    # convolutions silent and the read-out at 0, so training sits at chance for epochs; at 4 the
    # layers spike from the first step (docs/method.md §4)
    weight_scale: float = 4.0
    weight_bits: int = 8  # NetX builds conv synapses at 8 bits: fewer bits are a subset of its values (no exponent packing)
    reset: Literal["hard"] = "hard"

    def __post_init__(self) -> None:
        check_knobs(self)


def feature_shape(config: SNNLavaConvConfig) -> tuple[int, int, int]:
    """``(C, H, W)`` of the second convolution's output."""
    shape = tuple(config.input_shape)
    for channels, kernel in zip(config.channels, config.kernels):
        shape = conv_output_shape(shape, channels, (kernel, kernel), (2, 2), (kernel // 2, kernel // 2), (1, 1))
    return shape  # type: ignore[return-value]


class SNNLavaConv(TargetModel):
    """Two strided CUBA convolutions, flatten, optional dense hidden layer, dense read-out."""

    def __init__(self, config: SNNLavaConvConfig) -> None:
        super().__init__()
        if len(config.input_shape) != 3 or len(config.channels) != 2 or len(config.kernels) != 2:
            raise NmprivacyError(f"snn-lava-conv needs a (C, H, W) input and two conv layers, got {config.input_shape}")
        self.config = config
        self.info = ModelInfo("snn-lava-conv", "spikes", tuple(config.input_shape), config.num_classes, reset="hard")
        c0 = config.input_shape[0]
        blocks: list[nn.Module] = []
        for c_in, c_out, k in zip((c0, config.channels[0]), config.channels, config.kernels):
            blocks.append(cuba_block("Conv", c_in, c_out, k, config=config, stride=2, padding=k // 2))
        from lava.lib.dl import slayer

        blocks.append(slayer.block.cuba.Flatten())
        width = 1
        for s in feature_shape(config):
            width *= s
        if config.dense_hidden:
            blocks.append(cuba_block("Dense", width, config.dense_hidden, config=config))
            width = config.dense_hidden
        blocks.append(cuba_block("Dense", width, config.num_classes, config=config))
        self.blocks = nn.ModuleList(blocks)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First conv layer's spikes ``[T, B, C*H*W]`` (after its one-step delay) and the output
        voltage ``[T, B, classes]``."""
        t, b = x.shape[:2]
        z = x.reshape(t, b, *self.info.input_shape).permute(1, 2, 3, 4, 0).contiguous()  # [B, C, H, W, T]
        first = None
        for block in self.blocks[:-1]:
            z = block(z)
            if first is None:
                first = z.reshape(b, -1, t).permute(2, 0, 1)
        out = self.blocks[-1]
        _, voltage = out.neuron.dynamics(out.synapse(z))  # pre-reset, float units, [B, classes, T]
        return first, voltage.permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output voltage ``[T, B, classes]`` (float units) for input spikes ``[T, B, C, H, W]``."""
        return self.run(x)[1]


def default_config(input_shape: tuple[int, ...], num_classes: int, preset: object, hidden: int | None = None) -> SNNLavaConvConfig:
    """``snn-lava-conv`` for a data set (the dense ``hidden`` size of the presets does not apply)."""
    return SNNLavaConvConfig(input_shape=tuple(input_shape), num_classes=num_classes)
