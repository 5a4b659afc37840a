"""Spike functions with surrogate gradients: Heaviside forward, smooth derivative backward.

Norse 1.1.0's ``method="super"`` threshold ignores its ``alpha`` (its backward is
``1 / (1 + |x|)^2`` whatever alpha is), and Norse has no arctan surrogate; the method needs both
with their slopes (docs/method.md §2 and §4), so they are defined here once and used by every spiking
model (Norse targets, the spiking evaluator and the Lava-DL targets). The family is snnTorch's
(``snntorch.surrogate``, the set Moshruba et al. 2025 compare for privacy), with its formulas and
default parameters, ``x = v - threshold``:

- ``fast-sigmoid`` (``fast_sigmoid(slope=k)``, SuperSpike): ``dS/dx = 1 / (1 + k |x|)^2``, k = 25
  (this project's targets use k = 40, their ``surrogate_slope``);
- ``arctan`` (alias ``atan``; ``atan(alpha=a)``): ``dS/dx = (a / 2) / (1 + (pi a x / 2)^2)``, a = 2;
- ``sigmoid`` (``sigmoid(slope=k)``): ``dS/dx = k sigma(k x) (1 - sigma(k x))``, k = 25;
- ``triangle`` (``triangular(threshold=g)``): ``dS/dx = g`` for ``x < 0`` and ``-g`` for ``x >= 0``,
  g = 1 (snnTorch's definition as written: the derivative of a tent centred on the threshold,
  constant in magnitude and negative above it, with no bounded support);
- ``spike-rate-escape`` (``spike_rate_escape(beta=b, slope=k)``, escape noise of a Boltzmann rate):
  ``dS/dx = k exp(-b |x - 1|)``, b = 1, k = 25 (as snnTorch writes it: the peak is one unit
  above the threshold);
- ``straight-through`` (``straight_through_estimator()``): ``dS/dx = 1``.

Forward is ``S = 1[x > 0]`` (Norse and Loihi spike when ``v > th``) whatever the surrogate: the
choice changes gradients only. Parameters are given as a tuple in snnTorch's argument order
(``surrogate_params``: ``(k,)``, ``(a,)``, ``(k,)``, ``(g,)``, ``(b, k)``, ``()``); a bare number
is the first one (the ``slope`` of ``spike``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

SurrogateName = Literal["fast-sigmoid", "atan", "arctan", "sigmoid", "triangle", "spike-rate-escape", "straight-through"]
SURROGATES: tuple[str, ...] = ("fast-sigmoid", "arctan", "sigmoid", "triangle", "spike-rate-escape", "straight-through")
ALIASES = {"atan": "arctan"}
DEFAULT_PARAMS: dict[str, tuple[float, ...]] = {  # snnTorch's defaults
    "fast-sigmoid": (25.0,),
    "arctan": (2.0,),
    "sigmoid": (25.0,),
    "triangle": (1.0,),
    "spike-rate-escape": (1.0, 25.0),
    "straight-through": (),
}
KERNEL_CODES = {name: i for i, name in enumerate(SURROGATES)}  # nmprivacy.models.sparse_cuba's surrogate codes

Params = float | Sequence[float]


def canonical(name: str) -> str:
    """The surrogate's canonical name (``atan`` -> ``arctan``); ``ValueError`` for an unknown one."""
    name = ALIASES.get(name, name)
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}: choose one of {', '.join(SURROGATES)} (or atan)")
    return name


def resolve_params(name: str, params: Params | None = None) -> tuple[float, ...]:
    """The full parameter tuple of surrogate ``name``: ``params`` (a tuple, or a number for the
    first parameter), the rest from snnTorch's defaults; ``ValueError`` for too many."""
    name = canonical(name)
    default = DEFAULT_PARAMS[name]
    if params is None:
        given: tuple[float, ...] = ()
    elif isinstance(params, (int, float)):
        given = (float(params),)
    else:
        given = tuple(float(p) for p in params)
    if len(given) > len(default):
        raise ValueError(f"surrogate {name!r} takes {len(default)} parameter(s) {default} (snnTorch's order), got {given}")
    return given + default[len(given):]


def model_params(name: str, slope: float, params: Sequence[float] = ()) -> tuple[float, ...]:
    """A target's surrogate parameters from its config: ``params`` if given, else ``(slope,)`` for
    the fast sigmoid (the project's k = 40) and snnTorch's defaults for the others."""
    name = canonical(name)
    if params:
        return resolve_params(name, tuple(params))
    return resolve_params(name, (slope,) if name == "fast-sigmoid" else None)


def surrogate_derivative(x: torch.Tensor, name: str, slope: Params = 40.0) -> torch.Tensor:
    """The surrogate derivative dS/dx of spike function ``name`` at ``x = v - threshold``
    (``slope``: its parameters, module docstring)."""
    name = canonical(name)
    p = resolve_params(name, slope)
    if name == "fast-sigmoid":
        return 1.0 / (1.0 + p[0] * x.abs()) ** 2
    if name == "arctan":
        return (p[0] / 2.0) / (1.0 + (math.pi * p[0] * x / 2.0) ** 2)
    if name == "sigmoid":
        s = torch.sigmoid(p[0] * x)
        return p[0] * s * (1.0 - s)
    if name == "triangle":
        return torch.where(x < 0, torch.full_like(x, p[0]), torch.full_like(x, -p[0]))
    if name == "spike-rate-escape":
        return p[1] * torch.exp(-p[0] * (x - 1.0).abs())
    return torch.ones_like(x)  # straight-through


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside ``1[x > 0]`` whose backward is ``surrogate_derivative(x)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, params: tuple[float, ...]) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.name = name
        ctx.params = params
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * surrogate_derivative(x, ctx.name, ctx.params), None, None


def spike(x: torch.Tensor, name: str = "fast-sigmoid", slope: Params = 40.0) -> torch.Tensor:
    """Spikes ``1[x > 0]`` (same shape as ``x = v - threshold``) with a surrogate gradient
    (``slope``: the surrogate's first parameter, or all of them as a tuple)."""
    name = canonical(name)
    return _SurrogateSpike.apply(x, name, resolve_params(name, slope))
