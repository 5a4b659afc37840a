"""A NetX HDF5 network as a differentiable torch model computing Loihi's arithmetic exactly.

``load_netx(path)`` reads any dense feed-forward NetX file (ours or another lava-dl user's) and
returns a ``NetxEmulation``: forward is bit-exact with Lava's ``fixed_pt`` CUBA simulation
(same integer weights, decays, strict threshold, reset to 0) and with slayer's CUBA blocks; the
backward pass uses the fast-sigmoid surrogate (slope 40 per unit of the source model's
membrane, as snn-lava and snn-norse use) so attacks can differentiate through it.

Time alignment (like slayer's ``delay_shift``, which is what Lava's one-step synapse delay
implements): layer 0 sees input step ``t``; layer ``l > 0`` sees layer ``l-1``'s spikes of step
``t - 1``. Layouts: input ``[T, B, *input_shape]`` or ``[T, B, N]`` with values in {0, 1};
``forward`` returns the output layer's pre-reset membrane ``[T, B, classes]`` in the source model's
units (Loihi voltage / (4096 * scale): slayer's voltage for lava-dl models, the float membrane
for Norse exports); ``layer_spikes`` returns each layer's spikes ``[T, B, N_l]`` at the step the
neuron fired (before the delay to the next layer).
"""

from __future__ import annotations

import os

import torch

from hw_export.loihi_cuba import ACT_SHIFT, UNITY, cuba_dynamics
from hw_export.netx_format import NetxNetwork, read_netx
from nmprivacy.errors import ExportError, NmprivacyError
from nmprivacy.models.base import LIFLayer, ModelInfo, TargetModel

SURROGATE_SLOPE = 40.0


class NetxEmulation(TargetModel):
    """Bit-exact, differentiable emulation of a dense CUBA NetX network (kind ``"netx"``)."""

    def __init__(self, network: NetxNetwork, surrogate_slope: float = SURROGATE_SLOPE) -> None:
        super().__init__()
        self.network = network
        self.surrogate_slope = float(surrogate_slope)
        self.info = ModelInfo(
            kind="netx",
            domain="spikes",
            input_shape=tuple(network.input_shape),
            num_classes=network.layers[-1].out_features,
            reset="hard",
        )
        for i, layer in enumerate(network.layers):
            if layer.weight_exp >= 0:
                w = layer.weight * (1 << layer.weight_exp)
            else:
                div = 1 << -layer.weight_exp
                if (layer.weight % div != 0).any():
                    raise ExportError(f"{network.path.name} layer {layer.index}: weight exponent {layer.weight_exp} is not exact")
                w = layer.weight // div
            self.register_buffer(f"weight{i}", torch.as_tensor(w, dtype=torch.float32))
            bias = None if layer.bias is None else torch.as_tensor(layer.bias, dtype=torch.float64)
            self.register_buffer(f"bias{i}", bias)
        # float32 sums of binary inputs are exact while every row's |weights| sum stays below 2^24
        self._fp32_exact = all(float(self.weight(i).abs().sum(1).max()) < 2**24 for i in range(len(network.layers)))

    def weight(self, i: int) -> torch.Tensor:
        """Integer synaptic weights ``[out, in]`` of layer ``i`` (weight exponent applied)."""
        return getattr(self, f"weight{i}")

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise NmprivacyError(f"expected input [T, B, *input_shape], got shape {tuple(x.shape)}")
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        if flat.shape[-1] != self.network.input_size:
            raise NmprivacyError(
                f"input has {flat.shape[-1]} values per step but {self.network.path.name} expects {self.network.input_size}"
            )
        return flat

    def run(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """All layers' spikes ``[T, B, N_l]`` (float64 0/1) and the last layer's pre-reset voltage
        ``[T, B, classes]`` in Loihi units, for input ``x`` ``[T, B, ...]``."""
        inp = self._flatten(x)
        spikes: list[torch.Tensor] = []
        volt = inp.new_zeros(0)
        for i, layer in enumerate(self.network.layers):
            if i > 0:
                prev = spikes[-1]
                inp = torch.cat([torch.zeros_like(prev[:1]), prev[:-1]], dim=0)
            w = self.weight(i)
            if self._fp32_exact:
                a_in = (inp.to(torch.float32) @ w.T).to(torch.float64)
            else:
                a_in = inp.to(torch.float64) @ w.to(torch.float64).T
            z, volt = cuba_dynamics(
                a_in, layer.i_decay, layer.v_decay, layer.vth_mant, getattr(self, f"bias{i}"),
                self.surrogate_slope, UNITY * layer.scale,
            )
            spikes.append(z)
        return spikes, volt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output-layer pre-reset membrane ``[T, B, classes]`` (float32, model units)."""
        _, volt = self.run(x)
        last = self.network.layers[-1]
        return (volt / (UNITY * last.scale)).to(torch.float32)

    def layer_spikes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's spikes ``[T, B, N_l]`` (float32 0/1) at the step each neuron fired."""
        spikes, _ = self.run(x)
        return [s.to(torch.float32) for s in spikes]

    def lif_layers(self) -> list[LIFLayer]:
        """The network as ``LIFLayer`` records with arithmetic ``"loihi"`` (for the fast attack engine)."""
        out = []
        for i, layer in enumerate(self.network.layers):
            if layer.bias is not None:
                raise ExportError(f"{self.network.path.name} layer {layer.index}: biases are not expressible as LIFLayer")
            threshold = float(layer.vth_mant * ACT_SHIFT)
            out.append(
                LIFLayer(
                    weight=self.weight(i),
                    arithmetic="loihi",
                    threshold=threshold,
                    leak=1.0 - layer.v_decay / UNITY,
                    i_decay=layer.i_decay,
                    v_decay=layer.v_decay,
                    delay=1,
                    surrogate_slope=self.surrogate_slope,
                    surrogate_scale=UNITY * layer.scale,
                    membrane_scale=UNITY * layer.scale,
                    reset_grad="none",
                )
            )
        return out


def load_netx(path: str | os.PathLike[str], surrogate_slope: float = SURROGATE_SLOPE) -> NetxEmulation:
    """Read a dense feed-forward NetX HDF5 file into a bit-exact differentiable ``NetxEmulation``."""
    return NetxEmulation(read_netx(path), surrogate_slope=surrogate_slope).freeze()
