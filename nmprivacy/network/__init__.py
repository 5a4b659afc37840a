"""The network description every format and engine shares (see ``description``).

Readers (NetX in ``hw_export.netx_format``, NIR in ``nmprivacy.network.nir_import``) produce a
``Network``; the bit-exact emulation, the Lava runner, the NetX and NIR writers and the fast
attack engine consume one. ``loihi`` holds Loihi's fixed-point constants, once.
"""

from nmprivacy.network.description import (
    ConvLayer,
    DenseLayer,
    FloatNeuron,
    InputLayer,
    Layer,
    LoihiNeuron,
    Network,
    Neuron,
    conv_output_shape,
)

__all__ = [
    "ConvLayer",
    "DenseLayer",
    "FloatNeuron",
    "InputLayer",
    "Layer",
    "LoihiNeuron",
    "Network",
    "Neuron",
    "conv_output_shape",
]
