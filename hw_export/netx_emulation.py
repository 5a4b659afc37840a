"""A NetX HDF5 file as a differentiable torch model computing Loihi's arithmetic exactly.

``load_netx(path)`` reads any CUBA NetX file (``hw_export.netx_format.read_netx``: input layers
with neurons, conv, flatten, dense, recurrent dense, synaptic delays) and returns its
``nmprivacy.models.network_model.NetworkModel`` (kind ``"netx"``): forward is bit-exact with
Lava's ``fixed_pt`` simulation of the file, backward uses the fast-sigmoid surrogate, so attacks
differentiate through exactly what the chip computes.
"""

from __future__ import annotations

import os

from hw_export.netx_format import read_netx
from nmprivacy.models.network_model import SURROGATE_SLOPE, NetworkModel

NetxEmulation = NetworkModel  # the emulation of a NetX file is the network model of its description


def load_netx(path: str | os.PathLike[str], surrogate_slope: float = SURROGATE_SLOPE, input_shape: tuple[int, ...] | None = None) -> NetworkModel:
    """The bit-exact, differentiable emulation of the NetX file ``path`` (frozen); ``input_shape``
    reads a flat input as e.g. a data set's ``(C, H, W)`` layout."""
    return NetworkModel(read_netx(path), kind="netx", surrogate_slope=surrogate_slope, input_shape=input_shape).freeze()
