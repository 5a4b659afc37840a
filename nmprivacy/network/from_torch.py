"""A researcher's own Norse or snnTorch module as a ``Network``, through the frameworks' NIR export.

The module is exported with its framework's own tracer (Norse: ``to_nir``; snnTorch: the
extractor behind ``export_to_nir``, without its type inference, which refuses scalar neuron
parameters) and read like any NIR graph (``nmprivacy.network.nir_import``) with the
framework's time step: Norse modules integrate with their cells' ``dt`` (Norse 1.1.0's
``to_nir`` writes ``tau = dt / tau_mem_inv``, so it is called with ``dt = 1`` to write the true
``1 / tau_mem_inv``); snnTorch's discrete neurons are written for a 0.1 ms step. snnTorch's
subtractive reset (its default) has no NIR form: it is reported, and the graph resets to 0.
"""

from __future__ import annotations

import math

import torch

from nmprivacy.errors import NmprivacyError
from nmprivacy.network.description import Network
from nmprivacy.network.nir_import import read_graph

SNNTORCH_DT = 1e-4  # the step snnTorch's NIR export writes its time constants for


def _framework(module: torch.nn.Module) -> str:
    names = {type(m).__module__.split(".")[0] for m in module.modules()}
    if "snntorch" in names:
        return "snntorch"
    if "norse" in names:
        return "norse"
    raise NmprivacyError(f"{type(module).__name__} holds neither Norse nor snnTorch neurons: export it to NIR yourself and pass the .nir file")


def network_from_module(module: torch.nn.Module, input_shape: tuple[int, ...], name: str | None = None) -> Network:
    """The float ``Network`` of a Norse or snnTorch ``module`` taking inputs of ``input_shape``
    (one sample, e.g. ``(1, 28, 28)``)."""
    if not input_shape or any(int(s) < 1 for s in input_shape):
        raise NmprivacyError(f"input_shape {input_shape} is not the shape of one sample (e.g. (1, 28, 28) or (784,))")
    name = name or type(module).__name__
    framework = _framework(module)
    notes: list[str] = []
    try:
        if framework == "norse":
            from norse.torch.utils.export_nir import to_nir

            dts = {float(getattr(m, "dt")) for m in module.modules() if hasattr(m, "dt") and isinstance(getattr(m, "dt"), (int, float))}
            dt = dts.pop() if len(dts) == 1 else 1e-3
            graph = to_nir(module, torch.zeros(*input_shape), dt=1.0)
        else:
            import nirtorch
            import snntorch as snn
            from snntorch.export_nir import _extract_snntorch_module

            dt = SNNTORCH_DT
            graph = nirtorch.extract_nir_graph(module, _extract_snntorch_module, torch.zeros(1, *input_shape), ignore_dims=[0],
                                               ignore_submodules_of=[snn.RLeaky, snn.RSynaptic])
            subtract = [type(m).__name__ for m in module.modules() if getattr(m, "reset_mechanism", "zero") == "subtract"]
            if subtract:
                notes.append(f"{name}: {len(subtract)} snnTorch neuron layer(s) subtract their threshold on a spike; NIR and Loihi reset to 0")
    except NmprivacyError:
        raise
    except Exception as exc:  # the frameworks' tracers fail in many ways on modules they cannot export
        raise NmprivacyError(f"{framework} could not export {name} to NIR ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    network = read_graph(graph, dt=dt, input_shape=tuple(input_shape) if math.prod(input_shape) else None, name=name)
    return Network(input_shape=network.input_shape, layers=network.layers, meta={**network.meta, "framework": framework},
                   notes=(*network.notes, *notes), name=name)
