"""DP-SGD settings (``DPSettings``), apart from the machinery of ``nmprivacy.dp`` so that the
presets can hold them without importing torch or Opacus (``nmprivacy.dp`` re-exports them).

A ``TrainSettings.dp`` group (``nmprivacy.presets``): ``--set snn_train.dp.epsilon=8`` creates it,
``--set snn_train.dp=null`` removes it. Fields check themselves (``nmprivacy.settings``): a bad
value is one line naming the (dotted) setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from nmprivacy.settings import SettingsError, check_settings, ranged

Accountant = Literal["rdp", "prv"]
ACCOUNTANTS: tuple[str, ...] = ("rdp", "prv")


@dataclass(frozen=True)
class DPSettings:
    """DP-SGD settings: give exactly one of ``noise_multiplier`` and ``epsilon``.

    ``noise_multiplier``: std of the Gaussian noise per step over ``max_grad_norm`` (0: no noise,
    no privacy: epsilon is infinite). ``epsilon``: target ε at ``delta`` after the whole schedule;
    the noise multiplier is then the smallest Opacus's ``get_noise_multiplier`` finds for the
    schedule's sample rate and steps. ``max_grad_norm``: per-sample clipping bound (L2 over all
    parameters). ``delta``: None means ``1 / n`` (n training samples). ``accountant``: ``"prv"``
    (Opacus's default: numerical privacy-loss distributions, tighter) or ``"rdp"`` (Rényi DP).
    ``poisson``: Poisson-sampled batches, which the DP-SGD guarantee assumes; False draws
    shuffled fixed-size batches and accounts them as if Poisson (Opacus's
    ``poisson_sampling=False``: no formal guarantee)."""

    noise_multiplier: float | None = ranged(None, low=0)
    max_grad_norm: float = ranged(1.0, low=0, open_low=True)
    epsilon: float | None = ranged(None, low=0, open_low=True)
    delta: float | None = ranged(None, low=0, high=1, open_low=True, open_high=True)
    accountant: Accountant = "prv"
    poisson: bool = True

    def __post_init__(self) -> None:
        check_settings(self)
        for name, what in (("noise_multiplier", "noise multiplier"), ("max_grad_norm", "clipping bound"), ("epsilon", "target epsilon")):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise SettingsError(name, f"is {value!r}: give a finite {what}")
        if self.noise_multiplier is None and self.epsilon is None:
            raise SettingsError("epsilon", "is not set and neither is noise_multiplier: DP-SGD needs exactly one of noise_multiplier and epsilon "
                                "(the noise per step, or the target epsilon)")
        if self.noise_multiplier is not None and self.epsilon is not None:
            raise SettingsError("epsilon", f"is set together with noise_multiplier ({self.noise_multiplier:g}): DP-SGD needs exactly one of "
                                "noise_multiplier and epsilon (the noise per step, or the target epsilon), not both")

    def delta_for(self, n_train: int) -> float:
        """δ for ``n_train`` training samples: the set one, else ``1 / n_train``."""
        return self.delta if self.delta is not None else 1.0 / n_train
