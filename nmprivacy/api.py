"""The Python API: bring a model, attack it, export it, check it on Lava, score what leaked.

``import nmprivacy as nmp`` exposes these names (loaded on first use, so ``import nmprivacy``
stays light). Layouts: spiking inputs ``[T, B, *input_shape]``; reconstructions of an attack
``[C, T, *input_shape]`` (spikes) or ``[C, *input_shape]`` (images); Lava inputs ``[B, T, ...]``.
Membership inference is ``nmp.run_mia(nmp.MiaConfig(dataset=..., target=..., out=...))``, which
returns what it writes to ``mia.json`` (``nmprivacy.mia``; the ``nmprivacy mia`` command).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from nmprivacy.models.base import TargetModel
from nmprivacy.targets import Target, float_target, load_target


def load(model: str | os.PathLike[str] | torch.nn.Module, steps: int | None = None, input_shape: tuple[int, ...] | None = None,
         dt: float | None = None) -> Target:
    """The ``Target`` of ``model``: a checkpoint folder, a NetX file (``.net``), a NIR graph
    (``.nir``), a network description, or a Norse / snnTorch module (then ``input_shape`` of one
    sample is required). Float models (NIR, Norse, snnTorch) come as their Loihi version
    (``.model``, what the chip runs) with the float model beside it (``.float_model``)."""
    from nmprivacy.errors import NmprivacyError

    if isinstance(model, torch.nn.Module) and not isinstance(model, TargetModel):
        if input_shape is None:
            raise NmprivacyError(f"load_model({type(model).__name__}) needs input_shape: the shape of one sample, e.g. (1, 28, 28)")
        from nmprivacy.network.from_torch import network_from_module

        network = network_from_module(model, tuple(input_shape))
        target = float_target(network, type(model).__name__, network.meta["framework"])
        if steps is not None:
            target.meta["steps"] = int(steps)
        return target
    return load_target(model, steps=steps, input_shape=input_shape, dt=dt)


def load_model(model: str | os.PathLike[str] | torch.nn.Module, steps: int | None = None, input_shape: tuple[int, ...] | None = None,
               dt: float | None = None) -> TargetModel:
    """The model to attack (see ``load``): for a float source, its Loihi version. ``steps`` is T
    where the source does not say it (attacks read it as ``model.steps``)."""
    target = load(model, steps=steps, input_shape=input_shape, dt=dt)
    if target.steps is not None:
        target.model.steps = target.steps
    return target.model


def get_attack(name: str, settings: Any = None, **options: Any) -> Any:
    """The attack ``name`` (``bl-v1``, ``bl-v2``, ``mi-face``, ...) with ``settings`` (its settings
    dataclass; None: defaults); ``.run(model, classes, seed=0)`` returns an ``Inversion``."""
    from nmprivacy.attacks import get_attack as _get

    return _get(name, settings, **options)


def export_netx(model: Any, path: str | os.PathLike[str], meta: dict | None = None) -> Any:
    """Write ``model`` (any target, network or Target) as a Loihi NetX file; returns the report."""
    from hw_export.netx_export import export_netx as _export

    if isinstance(model, Target):
        model = model.float_model or model.model
    return _export(model, path, meta=meta)


def load_netx(path: str | os.PathLike[str], input_shape: tuple[int, ...] | None = None) -> TargetModel:
    """The bit-exact, differentiable emulation of a NetX file."""
    from hw_export.netx_emulation import load_netx as _load

    return _load(path, input_shape=input_shape)


def run_lava(path: str | os.PathLike[str], inputs: Any, record_membrane: bool = False) -> Any:
    """Run ``inputs`` ``[B, T, ...]`` through a NetX file on Lava's fixed-point simulator (one run)."""
    from hw_export.lava_run import run_lava as _run

    return _run(path, inputs, record_membrane=record_membrane)


def validate(model: Any, **options: Any) -> dict[str, Any]:
    """Certify ``model`` on Lava (``nmprivacy.validation.validate``: ``dataset=``, ``inputs=``,
    ``random=``, ``inversion=``, ``out=``, ...); returns the results dict."""
    from nmprivacy.validation import validate as _validate

    return _validate(model, **options)


def score(evaluator: TargetModel, reconstructions: torch.Tensor, classes: Sequence[int], seed: int = 0, steps: int | None = None) -> dict[str, float]:
    """Attack accuracy, top-3, average confidence and DAA (fractions) of one reconstruction per
    class, judged by ``evaluator`` (spike reconstructions are rate-decoded for an image evaluator)."""
    from nmprivacy.evaluation.scoring import score as _score

    return _score(evaluator, reconstructions, classes, seed, steps)


def train(kind: str, dataset: str, seed: int = 0, budget: str = "default", **data_options: Any) -> TargetModel:
    """A freshly trained model of ``kind`` (``snn-lava``, ``evaluator``, ...) on ``dataset`` with the
    preset's schedule (e.g. an evaluator to ``score`` reconstructions with)."""
    from nmprivacy.data import load_dataset
    from nmprivacy.models import default_config
    from nmprivacy.presets import preset_for
    from nmprivacy.training import settings_for, train_model

    splits = load_dataset(dataset, **data_options)
    preset = preset_for(dataset, budget)  # type: ignore[arg-type]
    config = default_config(kind, splits.input_shape, splits.num_classes, dataset, budget=budget)
    steps = preset.steps if splits.domain == "image" else None
    model, _ = train_model(kind, splits, config, settings_for(kind, preset), seed, steps=steps, progress=False)
    return model.freeze()
