"""DP-SGD training (Abadi et al. 2016) for every trainable model kind, on Opacus's machinery.

Per-sample gradients come from Opacus's ``GradSampleModule`` hooks (activations captured in the
forward pass, per-sample weight gradients formed from them and the backpropagated output
gradients): the layer-local computation needs no ``torch.func`` transform, so the custom autograd
Functions of the spiking neurons (slayer's CUBA dynamics, the fast-sigmoid spike) backpropagate
as usual. Two additions make the spiking kinds work; both live in a ``GradSampleModule``
subclass, Opacus's global registry is left alone:

- slayer synapses (``synapse.Dense``/``synapse.Conv``, ``nn.Conv3d`` subclasses whose forward
  quantises the weight through ``pre_hook_fx``) get a grad sampler that forms the per-sample
  gradient of the quantised weight as a 3-D convolution's and takes it back through the
  pre-hook (slayer's straight-through rounding and clamp to the 8-bit range: a diagonal
  Jacobian, applied as one mask; any other pre-hook by per-sample vector-Jacobian products);
- layers that see the time axis folded into the batch (``snn-norse``'s and ``evaluator-snn``'s
  ``nn.Linear``/``nn.Conv2d`` take ``[T, B, ...]`` reshaped to ``[T * B, ...]``, time-major) get
  their per-sample gradients summed over the T steps of each sample. The batch size B is read
  from the model's input (``[T, B, ...]`` for spiking models: batch dimension 1; ``[B, ...]``
  for image models) by a forward pre-hook, so per-sample means per batch element, never per
  time step.

``snn-lava``'s ``"sparse"`` training engine computes weight gradients in its own kernels, out of
the hooks' sight: while wrapped, the model runs slayer's blocks (``engine = "slayer"``), and
``release`` gives the engine back. A step whose parameters got no per-sample gradient is a
one-line error, never a silent non-private step.

Clipping, noise and accounting are Opacus's: ``DPOptimizer`` (per-sample clipping to
``max_grad_norm``, Gaussian noise of std ``noise_multiplier * max_grad_norm``, mean over the
expected batch size) and its ``RDPAccountant``/``PRVAccountant``. Batches are Poisson samples
(each training sample joins each batch independently with probability ``sample_rate =
batch_size / n``; ``ceil(n / batch_size)`` steps per epoch, as the plain loop), drawn with
Opacus's ``UniformWithReplacementSampler`` from the caller's generator. ε is reported at δ
(default ``1 / n``). Sampling and noise use torch's PRNG, not a cryptographic one (Opacus's
``secure_mode`` needs torchcsprng): fine for audits and studies, not for a deployment.

Use: ``dp_wrap(model, optimizer, n, batch_size, epochs, DPSettings(...))`` returns a
``DPTraining`` whose ``optimizer`` replaces the plain one and whose ``batches`` replace the
``randperm`` slices; ``record()`` gives the privacy spent. ``train_dp`` is a whole DP loop.
Opacus is imported on first use; ``DPSettings`` lives in ``nmprivacy.dp_settings`` (no torch), re-exported here.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nmprivacy.dp_settings import ACCOUNTANTS, Accountant, DPSettings  # noqa: F401 (re-exported: the settings live apart, torch-free)
from nmprivacy.errors import NmprivacyError

if TYPE_CHECKING:  # pragma: no cover
    from opacus.accountants import IAccountant
    from opacus.optimizers import DPOptimizer

EPSILON_TOLERANCE = 0.01  # target-epsilon mode: the noise multiplier's epsilon is within this below the target
MAX_NOISE = 1e6  # Opacus's search limit for the noise multiplier
SLAYER_ENGINE = "slayer"  # the snn-lava engine that runs slayer's modules (nmprivacy.models.snn_lava)
SPARSE_ENGINE = "sparse"  # the snn-lava engine of nmprivacy.models.sparse_cuba


@dataclass(frozen=True)
class DPPlan:
    """The sampling schedule DP-SGD is accounted for: ``sample_rate = min(1, batch_size / n)``,
    ``steps_per_epoch = ceil(n / batch_size)`` (the plain loop's optimiser steps per epoch)."""

    n_train: int
    batch_size: int
    epochs: int

    def __post_init__(self) -> None:
        for name in ("n_train", "batch_size", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise NmprivacyError(f"DP-SGD {name} is {value!r}: give an integer >= 1")

    @property
    def sample_rate(self) -> float:
        """Probability that a training sample joins a batch."""
        return min(1.0, self.batch_size / self.n_train)

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch."""
        return -(-self.n_train // self.batch_size)

    @property
    def steps(self) -> int:
        """Optimiser steps of the whole schedule."""
        return self.epochs * self.steps_per_epoch

    @property
    def expected_batch_size(self) -> float:
        """Mean batch size ``sample_rate * n`` (DP-SGD divides the noisy gradient sum by it)."""
        return self.sample_rate * self.n_train


def epsilon_for(noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: Accountant = "prv") -> float:
    """ε of ``steps`` DP-SGD steps at ``noise_multiplier`` and ``sample_rate`` (Opacus's
    accountant ``accountant`` at ``delta``); 0 for no step, infinite without noise."""
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism=accountant)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return _accountant_epsilon(acc, delta)


def _accountant_epsilon(acc: IAccountant, delta: float) -> float:
    """The accountant's ε at ``delta`` (RDP: Opacus's default orders; its warning that the best
    order is the largest one only says the bound could be tighter, so it is silenced)."""
    if not acc.history:
        return 0.0
    if any(sigma == 0 for sigma, _, _ in acc.history):
        return math.inf
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        # PRV's numerical estimate can dip a hair below 0 for a budget near 0 (e.g. one step)
        return max(0.0, float(acc.get_epsilon(delta=delta)))


def noise_multiplier_for(dp: DPSettings, plan: DPPlan) -> float:
    """The noise multiplier of ``dp`` for ``plan``: the set one, or (target-ε mode) the smallest
    that keeps ε at ``dp.delta_for(n)`` within ``EPSILON_TOLERANCE`` below the target after
    ``plan.steps`` steps (Opacus's ``get_noise_multiplier``)."""
    if dp.noise_multiplier is not None:
        return float(dp.noise_multiplier)
    from opacus.accountants.utils import get_noise_multiplier

    delta = dp.delta_for(plan.n_train)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            return float(get_noise_multiplier(target_epsilon=dp.epsilon, target_delta=delta, sample_rate=plan.sample_rate, steps=plan.steps,
                                              accountant=dp.accountant, epsilon_tolerance=EPSILON_TOLERANCE))
    except ValueError as exc:  # Opacus: "The privacy budget is too low."
        raise NmprivacyError(
            f"target epsilon {dp.epsilon} at delta {delta:.3g} is out of reach in {plan.steps} steps at sample rate {plan.sample_rate:.4g} "
            f"(noise multiplier would exceed {MAX_NOISE:g}; {exc}): raise epsilon or delta, or train fewer steps or with smaller batches"
        ) from None


class PoissonBatches:
    """One epoch of Poisson batches: ``steps`` index tensors, each holding every index in
    ``range(n)`` independently with probability ``sample_rate`` (Opacus's
    ``UniformWithReplacementSampler`` on ``generator``). A batch may be empty."""

    def __init__(self, n: int, sample_rate: float, steps: int, generator: torch.Generator | None = None) -> None:
        from opacus.utils.uniform_sampler import UniformWithReplacementSampler

        self.sampler = UniformWithReplacementSampler(num_samples=n, sample_rate=sample_rate, generator=generator, steps=steps)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for idx in self.sampler:
            yield torch.as_tensor(idx, dtype=torch.long)


class ShuffledBatches:
    """One epoch of shuffled fixed-size batches (``torch.randperm`` slices, as the plain loop);
    the non-Poisson option (``DPSettings.poisson=False``)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None = None) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n, generator=self.generator)
        for b0 in range(0, self.n, self.batch_size):
            yield order[b0 : b0 + self.batch_size]


# --- per-sample gradients -------------------------------------------------------------------


def _per_sample(batch: int, tensor: torch.Tensor) -> torch.Tensor | None:
    """``tensor`` ``[k * batch, ...]`` (time-major fold of ``[k, batch, ...]``) as ``[batch, k, ...]``;
    None when its leading dimension is already ``batch``."""
    rows = tensor.shape[0]
    if rows == batch:
        return None
    if batch < 1 or rows % batch:
        raise NmprivacyError(f"DP-SGD: a layer saw {rows} rows for a batch of {batch} samples: per-sample gradients need each layer's rows to be the batch or the batch times the time steps")
    return tensor.reshape(rows // batch, batch, *tensor.shape[1:]).transpose(0, 1)


def _time_folding(sampler: Callable, linear: bool) -> Callable:
    """Opacus grad sampler ``sampler`` extended to layers whose input is ``[T * B, ...]``: per-sample
    gradients summed over each sample's T rows (``linear``: in one einsum, by moving T next to
    the features; else per row, then summed)."""

    @functools.wraps(sampler)
    def sample(layer: nn.Module, activations: list[torch.Tensor], backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        batch = int(getattr(layer, "max_batch_len", activations[0].shape[0]))
        folded = _per_sample(batch, activations[0])
        if folded is None:
            return sampler(layer, activations, backprops)
        if linear:  # Opacus's Linear sampler sums over the middle dimensions: [B, T, in] x [B, T, out]
            return sampler(layer, [folded], _per_sample(batch, backprops))
        steps = activations[0].shape[0] // batch
        return {p: g.reshape(steps, batch, *g.shape[1:]).sum(0) for p, g in sampler(layer, activations, backprops).items()}

    return sample


def _slayer_synapse_grad_sample(layer: nn.Conv3d, activations: list[torch.Tensor], backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Per-sample gradients of a slayer synapse (``synapse.Dense``: input ``[B, N, T]`` viewed as
    ``[B, N, 1, 1, T]``; ``synapse.Conv``: ``[B, C, H, W, T]``): the 3-D convolution's per-sample
    gradient of the weight it used (``pre_hook_fx(weight)``), taken back through the pre-hook
    (``_through_pre_hook``)."""
    from opacus.utils.tensor_utils import unfold3d

    if getattr(layer, "weight_norm_enabled", False):
        raise NmprivacyError("DP-SGD does not support weight-normalised slayer synapses: build the blocks with weight_norm=False")
    x = activations[0]
    n = x.shape[0]
    if x.dim() == 3:
        x = x.reshape(n, -1, 1, 1, x.shape[-1])
    ret: dict[nn.Parameter, torch.Tensor] = {}
    if n == 0:
        if layer.weight.requires_grad:
            ret[layer.weight] = torch.zeros((0, *layer.weight.shape), dtype=layer.weight.dtype)
        return ret
    pointwise = tuple(layer.kernel_size) == (1, 1, 1) and tuple(layer.stride) == (1, 1, 1) and tuple(layer.padding) == (0, 0, 0)
    if layer.groups != 1:
        raise NmprivacyError(f"DP-SGD does not support grouped slayer synapses (groups={layer.groups}): use groups=1")
    if pointwise:  # a dense synapse: [B, in, L] and [B, out, L] over the L = H * W * T positions
        cols = x.reshape(n, x.shape[1], -1)
    else:
        cols = unfold3d(x, kernel_size=layer.kernel_size, padding=layer.padding, stride=layer.stride, dilation=layer.dilation)
    grads = backprops.reshape(n, layer.out_channels, -1)
    if layer.weight.requires_grad:
        g_used = torch.einsum("nol,npl->nop", grads, cols).reshape(n, *layer.weight.shape)
        pre_hook = getattr(layer, "_pre_hook_fx", None)
        ret[layer.weight] = g_used if pre_hook is None else _through_pre_hook(pre_hook, layer.weight, g_used)
    if layer.bias is not None and layer.bias.requires_grad:
        ret[layer.bias] = grads.sum(dim=2)
    return ret


def _through_pre_hook(pre_hook: Callable[[torch.Tensor], torch.Tensor], weight: torch.Tensor, g_used: torch.Tensor) -> torch.Tensor:
    """Per-sample gradients ``g_used`` ``[B, *w]`` of the weight a synapse used, ``pre_hook(weight)``,
    taken back to ``weight``: ``J^T g`` per sample.

    slayer's quantiser (straight-through rounding, clamp to the 8-bit range) is elementwise, so
    ``J`` is diagonal and one vector-Jacobian product with ones gives it; a second one with a
    random probe confirms the diagonal (it would not match for a pre-hook that mixes entries),
    else the products are batched over the samples (``is_grads_batched``: exact for any pre-hook,
    but a loop over the samples for ops without a batching rule, ~10x slower on slayer's clamp)."""
    with torch.enable_grad():
        w = weight.detach().requires_grad_(True)
        used = pre_hook(w)
        if used.shape == w.shape:
            probe = torch.rand(w.shape, generator=torch.Generator().manual_seed(0), dtype=w.dtype) + 0.5  # not the global RNG
            diag, probed = torch.autograd.grad(used, w, grad_outputs=torch.stack([torch.ones_like(w), probe]), is_grads_batched=True, retain_graph=True)[0]
            if torch.allclose(probed, diag * probe, rtol=1e-6, atol=0.0):
                return g_used if bool((diag == 1).all()) else g_used.mul_(diag)  # no weight at the clamp: J = I
        (back,) = torch.autograd.grad(used, w, grad_outputs=g_used, is_grads_batched=True)
    return back


def _stored_in_place(sampler: Callable) -> Callable:
    """Opacus grad sampler ``sampler`` that hands each parameter's per-sample gradient ``[B, ...]`` to
    Opacus as it is (``param._current_grad_sample``, where Opacus's ``create_or_accumulate_grad_sample``
    would allocate zeros of that size and copy it in: a second full-size buffer per step, ~14 % of a
    DP ``snn-lava`` step on Fashion-MNIST); a gradient that must be added to one already held for the
    batch (a layer called twice) or that is shorter than the batch goes to Opacus as before. The
    values are Opacus's to the bit; every sampler here returns freshly computed tensors."""

    @functools.wraps(sampler)
    def sample(layer: nn.Module, activations: list[torch.Tensor], backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        grads = sampler(layer, activations, backprops)
        layer._nmp_hooked = True  # (DPTraining.record: per-sample gradients from the hooks)
        batch = getattr(layer, "max_batch_len", None)
        for param in [p for p, g in grads.items() if p.requires_grad and g.shape[0] == batch and not hasattr(p, "_current_grad_sample")]:
            param._current_grad_sample = grads.pop(param)
        return grads

    return sample


_SLAYER_SAMPLER = _stored_in_place(_slayer_synapse_grad_sample)


@functools.cache
def _gsm_class() -> type:
    """``GradSampleModule`` with this module's grad samplers (built on first use: imports Opacus)."""
    from opacus import GradSampleModule
    from opacus.grad_sample.linear import compute_linear_grad_sample

    samplers = {t: _stored_in_place(_time_folding(f, linear=f is compute_linear_grad_sample)) for t, f in GradSampleModule.GRAD_SAMPLERS.items()}
    return type("SpikingGradSampleModule", (GradSampleModule,), {"GRAD_SAMPLERS": samplers, "__doc__": "Opacus GradSampleModule for nmprivacy's spiking and image models (``nmprivacy.dp``)."})


@functools.cache
def _dp_optimizer_class() -> type:
    """Opacus's ``DPOptimizer`` whose step fails with a one-line error when a trainable parameter got
    no per-sample gradient (its layer ran outside its module, where no hook sees it)."""
    from opacus.optimizers import DPOptimizer

    def pre_step(self: Any, closure: Callable[[], float] | None = None) -> bool | None:
        missing = sum(getattr(p, "grad_sample", None) is None for p in self.params)
        if missing:
            raise NmprivacyError(
                f"DP-SGD found no per-sample gradient for {missing} parameter(s) after backward: call the wrapped model between "
                "optimizer.zero_grad() and loss.backward(), and compute every weight's gradient through its module (no custom training kernels)"
            )
        return DPOptimizer.pre_step(self, closure)

    return type("CheckedDPOptimizer", (DPOptimizer,), {"pre_step": pre_step, "__doc__": _dp_optimizer_class.__doc__})


def _ghost_optimizer_class() -> type:
    """Opacus's ``DPOptimizerFastGradientClipping`` whose step fails with a one-line error unless
    ``DPTraining.backward`` ran since the last step (a plain ``loss.backward()`` leaves the
    unclipped mean gradient, which must never be noised and stepped as if it were DP-SGD's)."""
    from opacus.optimizers import DPOptimizerFastGradientClipping

    def pre_step(self: Any, closure: Callable[[], float] | None = None) -> bool | None:
        if not getattr(self, "_nmp_clipped", False):
            raise NmprivacyError("DP-SGD with ghost clipping steps only after DPTraining.backward(per-sample losses): "
                                 "a plain loss.backward() does not clip per sample")
        self._nmp_clipped = False
        return DPOptimizerFastGradientClipping.pre_step(self, closure)

    return type("CheckedGhostDPOptimizer", (DPOptimizerFastGradientClipping,), {"pre_step": pre_step, "__doc__": _ghost_optimizer_class.__doc__})


def ghost_clippable(model: nn.Module) -> bool:
    """Whether DP-SGD can clip ``model``'s per-sample gradients without materialising them
    (Opacus's ghost clipping: each layer's per-sample gradient norm from its activations and
    backprops): an image model (batch first) whose every trainable layer has an Opacus norm
    sampler, e.g. the ``ann`` (``nn.Linear`` only). Spiking models fold time into their layers'
    inputs and keep per-sample gradients."""
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    if _batch_dim(model) != 0:
        return False
    trainable = trainable_layers(model)
    return bool(trainable) and all(type(m) in GradSampleModuleFastGradientClipping.NORM_SAMPLERS for m in trainable)


def trainable_layers(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that own a trainable parameter (where per-sample gradients or norms are taken)."""
    return [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]


def _register_slayer_samplers(model: nn.Module, gsm_cls: type) -> None:
    """Add the slayer synapse sampler for the slayer synapse classes ``model`` uses."""
    for module in model.modules():
        cls = type(module)
        if cls.__module__.startswith("lava.lib.dl.slayer.synapse") and isinstance(module, nn.Conv3d):
            gsm_cls.GRAD_SAMPLERS.setdefault(cls, _SLAYER_SAMPLER)


def _batch_dim(model: nn.Module) -> int:
    """Batch dimension of ``model``'s input: 1 for spiking models (``[T, B, ...]``), else 0."""
    info = getattr(model, "info", None)
    return 1 if getattr(info, "domain", None) == "spikes" else 0


HOOK_WARNING = "Using a non-full backward hook when the forward contains multiple autograd Nodes"


def make_grad_sample_module(model: nn.Module, batch_dim: int | None = None) -> nn.Module:
    """``model`` wrapped in Opacus's ``GradSampleModule`` (hooks mode, loss reduction "mean") with
    the spiking-model grad samplers; after ``loss.backward()`` every trainable parameter holds
    ``grad_sample`` ``[B, *shape]``, the gradient of each sample's own loss (the batch loss is the
    mean of the per-sample losses). ``batch_dim``: where B is in ``model``'s input (None: 1 for
    spiking models, 0 otherwise). Unwrap with ``release``."""
    # Opacus hooks layers with (non-full) module backward hooks; for a layer whose forward is several
    # autograd nodes (slayer: quantise, conv3d, reshape) torch warns that grad_input may be wrong.
    # Opacus reads only grad_output, which is right (tests/test_dp.py checks against a per-sample loop).
    warnings.filterwarnings("ignore", message=HOOK_WARNING)
    gsm_cls = _gsm_class()
    _register_slayer_samplers(model, gsm_cls)
    bdim = _batch_dim(model) if batch_dim is None else int(batch_dim)
    trainable = trainable_layers(model)
    unknown = [type(m).__name__ for m in trainable if type(m) not in gsm_cls.GRAD_SAMPLERS]
    if "Delay" in unknown:
        raise NmprivacyError("DP-SGD has no per-sample gradient for learned synaptic delays (slayer's axon.Delay): "
                             "train without them (--set target_config.delay_layers=[])")
    if unknown:
        raise NmprivacyError(f"DP-SGD has no per-sample gradients for layers {sorted(set(unknown))}: use a model kind built from nn.Linear, nn.Conv* or slayer blocks")
    try:
        gsm = gsm_cls(model, batch_first=True, loss_reduction="mean", strict=True)
    except NotImplementedError as exc:
        raise NmprivacyError(f"DP-SGD cannot compute per-sample gradients for this model ({str(exc).splitlines()[0]}): remove trainable layers with buffers such as BatchNorm") from None

    def set_batch(_module: nn.Module, args: tuple) -> None:
        if not args or not torch.is_tensor(args[0]) or args[0].dim() <= bdim:
            raise NmprivacyError(f"DP-SGD model input must be a tensor with the batch in dimension {bdim}")
        for m in trainable:  # Opacus sizes the per-sample buffers and the mean scaling by it
            m.max_batch_len = int(args[0].shape[bdim])

    gsm._nmp_batch_hook = model.register_forward_pre_hook(set_batch)
    gsm._nmp_trainable = trainable
    # snn-lava's "sparse" training engine computes weight gradients in its own kernels, out of
    # the hooks' sight: it hands them per sample to the model's ``per_sample_sink`` instead
    # (``sparse_cuba.per_sample_gradient``; where it cannot run a batch exactly, slayer's blocks
    # run it and the hooks see them). A model with another engine runs slayer's blocks while
    # wrapped (restored by release).
    gsm._nmp_engine = getattr(model, "engine", None)
    if gsm._nmp_engine == SPARSE_ENGINE and hasattr(model, "per_sample_sink"):
        model.per_sample_sink = functools.partial(_store_per_sample, gsm)
    elif gsm._nmp_engine not in (None, SLAYER_ENGINE):
        model.engine = SLAYER_ENGINE
    return gsm


def _sources(gsm: nn.Module) -> str:
    """Where ``gsm``'s per-sample gradients came from so far: ``"engine"`` (the model's own, e.g.
    snn-lava's sparse engine), ``"hooks"`` (Opacus's), ``"engine+hooks"``, or ``"none"``."""
    engine = getattr(gsm, "_nmp_engine_grads", 0) > 0
    hooks = any(getattr(m, "_nmp_hooked", False) for m in gsm._nmp_trainable)
    return "+".join(name for name, used in (("engine", engine), ("hooks", hooks)) if used) or "none"


def _store_per_sample(gsm: nn.Module, param: torch.Tensor, grad_sample: torch.Tensor) -> None:
    """Give ``param`` the per-sample gradients ``[B, *shape]`` a model computed itself (the sparse
    engine), as Opacus's hooks would: ``grad_sample``, or with gradient accumulation allowed
    (non-Poisson batches) one more entry of its list."""
    grad_sample = grad_sample.reshape(grad_sample.shape[0], *param.shape)
    gsm._nmp_engine_grads = getattr(gsm, "_nmp_engine_grads", 0) + 1
    held = getattr(param, "grad_sample", None)
    if held is None:
        param.grad_sample = grad_sample
    elif gsm.grad_accumulation_allowed:
        param.grad_sample = [*(held if isinstance(held, list) else [held]), grad_sample]
    else:
        raise NmprivacyError("DP-SGD with Poisson batches takes one optimiser step per backward: call optimizer.step() (or zero_grad()) "
                             "before the next backward")


def make_ghost_module(model: nn.Module, max_grad_norm: float) -> nn.Module:
    """``model`` (``ghost_clippable``) wrapped in Opacus's ``GradSampleModuleFastGradientClipping``
    with ghost clipping at ``max_grad_norm``; unwrap with ``release``."""
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    warnings.filterwarnings("ignore", message=HOOK_WARNING)  # as make_grad_sample_module
    gsm = GradSampleModuleFastGradientClipping(model, batch_first=True, loss_reduction="mean", strict=True, max_grad_norm=max_grad_norm,
                                               use_ghost_clipping=True)
    gsm._nmp_batch_hook = None
    gsm._nmp_trainable = trainable_layers(model)
    gsm._nmp_engine = None
    return gsm


def release(gsm: nn.Module) -> nn.Module:
    """The model inside ``gsm`` with every hook and per-sample attribute removed (plain again)."""
    if gsm._nmp_batch_hook is not None:
        gsm._nmp_batch_hook.remove()
    for m in gsm._nmp_trainable:
        for attr in ("max_batch_len", "activations", "_nmp_hooked"):
            if hasattr(m, attr):
                delattr(m, attr)
    for p in gsm.parameters():  # Opacus deletes grad_sample from every parameter, frozen ones too
        if not hasattr(p, "grad_sample"):
            p.grad_sample = None
    if getattr(gsm._module, "per_sample_sink", None) is not None:
        gsm._module.per_sample_sink = None
    model = gsm.to_standard_module()  # removes Opacus's hooks and grad_sample
    if gsm._nmp_engine not in (None, SLAYER_ENGINE):
        model.engine = gsm._nmp_engine
    for p in model.parameters():
        for attr in ("summed_grad", "_norm_sample", "_forward_counter"):  # left by DPOptimizer / ghost clipping
            if hasattr(p, attr):
                delattr(p, attr)
    return model


# --- DP-SGD training ------------------------------------------------------------------------


@dataclass
class DPTraining:
    """A model being trained with DP-SGD (from ``dp_wrap``).

    ``module``: the model with per-sample gradient hooks (call it, or the model itself: the
    hooks are on the model's layers); ``optimizer``: Opacus's ``DPOptimizer`` around the caller's
    optimiser (``zero_grad``/``step`` on it: clip, noise, mean, step, account); ``batches``: one
    epoch of index tensors (Poisson, may be empty: call ``empty_step`` then); ``accountant``:
    Opacus's accountant of the steps taken."""

    model: nn.Module
    module: nn.Module
    optimizer: DPOptimizer
    batches: PoissonBatches | ShuffledBatches
    accountant: IAccountant
    settings: DPSettings
    plan: DPPlan
    noise_multiplier: float
    delta: float
    ghost: bool = False  # ghost clipping (per-sample gradient norms without per-sample gradients): use ``backward``

    def backward(self, losses: torch.Tensor) -> torch.Tensor:
        """Backpropagate the per-sample losses ``[B]`` of a batch so that the next ``optimizer.step()``
        is DP-SGD's (with ghost clipping: Opacus's two backward passes, the second on the losses
        weighted by each sample's clipping factor; else the mean's backward and per-sample
        gradients); returns the mean loss, detached."""
        if self.ghost:
            from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

            DPTensorFastGradientClipping(self.module, self.optimizer, losses, "mean").backward()
            self.optimizer._nmp_clipped = True
        else:
            losses.mean().backward()
        return losses.detach().mean()

    def empty_step(self) -> None:
        """The DP-SGD step of an empty Poisson batch: noise only (and accounted)."""
        self.optimizer.zero_grad(set_to_none=True)
        for p in self.optimizer.params:
            if self.ghost:
                p.grad = torch.zeros_like(p)
            else:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
        if self.ghost:
            self.optimizer._nmp_clipped = True
        self.optimizer.step()

    @property
    def steps(self) -> int:
        """DP-SGD steps taken (and accounted) so far."""
        return sum(int(n) for _, _, n in self.accountant.history)

    def epsilon(self) -> float:
        """ε spent so far at ``delta``."""
        return _accountant_epsilon(self.accountant, self.delta)

    def record(self) -> dict[str, Any]:
        """The privacy spent: ``epsilon`` (at ``delta``), ``delta``, ``noise_multiplier``,
        ``max_grad_norm``, ``sample_rate``, ``steps`` (taken), ``accountant``, ``poisson`` and
        ``target_epsilon`` (None unless target-ε mode). ``epsilon`` is ``math.inf`` without noise."""
        return {
            "epsilon": self.epsilon(),
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": float(self.settings.max_grad_norm),
            "sample_rate": self.plan.sample_rate,
            "steps": self.steps,
            "accountant": self.settings.accountant,
            "poisson": self.settings.poisson,
            "target_epsilon": self.settings.epsilon,
            "clipping": "ghost" if self.ghost else "per-sample",
            # where the per-sample gradients came from: the model's own engine (snn-lava's sparse
            # engine), Opacus's hooks, or both (batches the engine could not run exactly)
            "per_sample_gradients": None if self.ghost else _sources(self.module),
        }

    def close(self) -> nn.Module:
        """The plain model (hooks and per-sample buffers removed); the optimiser is done with."""
        self.optimizer.zero_grad(set_to_none=True)
        return release(self.module)


def dp_wrap(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    n_train: int,
    batch_size: int,
    epochs: int,
    dp: DPSettings,
    generator: torch.Generator | None = None,
    noise_generator: torch.Generator | None = None,
    batch_dim: int | None = None,
    ghost: bool = False,
) -> DPTraining:
    """Make ``model``/``optimizer`` train with DP-SGD for ``epochs`` epochs of ``n_train`` samples
    at (expected) batch size ``batch_size``. ``optimizer`` must hold exactly ``model``'s trainable
    parameters; the loss must be a mean over the batch's samples (as ``membrane_cross_entropy``
    and ``cross_entropy``). ``generator`` draws the batches, ``noise_generator`` the noise (None:
    torch's global RNG). In target-ε mode the noise multiplier is fixed here for
    ``epochs * ceil(n_train / batch_size)`` steps. ``ghost``: clip with Opacus's ghost clipping
    (``ghost_clippable`` models only; the loop must then call ``DPTraining.backward`` with the
    per-sample losses instead of ``loss.backward()``, or the step refuses)."""
    from opacus.accountants import create_accountant

    if not isinstance(dp, DPSettings):
        raise NmprivacyError(f"DP-SGD needs DPSettings, got {type(dp).__name__}")
    plan = DPPlan(n_train=n_train, batch_size=batch_size, epochs=epochs)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    given = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    if {id(p) for p in given} != trainable or len(given) != len(trainable):
        raise NmprivacyError("DP-SGD optimiser must hold exactly the model's trainable parameters: build it from model.parameters()")
    noise = noise_multiplier_for(dp, plan)
    if ghost and not ghost_clippable(model):
        raise NmprivacyError("ghost clipping needs an image model whose trainable layers all have Opacus norm samplers (e.g. nn.Linear)")
    module = make_ghost_module(model, float(dp.max_grad_norm)) if ghost else make_grad_sample_module(model, batch_dim)
    module.forbid_grad_accumulation() if dp.poisson else module.allow_grad_accumulation()
    optimizer_cls = _ghost_optimizer_class() if ghost else _dp_optimizer_class()
    dp_optim = optimizer_cls(optimizer, noise_multiplier=noise, max_grad_norm=float(dp.max_grad_norm),
                             expected_batch_size=plan.expected_batch_size, loss_reduction="mean", generator=noise_generator)
    accountant = create_accountant(mechanism=dp.accountant)
    dp_optim.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=plan.sample_rate))
    batches: PoissonBatches | ShuffledBatches
    if dp.poisson:
        batches = PoissonBatches(n_train, plan.sample_rate, plan.steps_per_epoch, generator)
    else:
        batches = ShuffledBatches(n_train, batch_size, generator)
    return DPTraining(model=model, module=module, optimizer=dp_optim, batches=batches, accountant=accountant, settings=dp, plan=plan,
                      noise_multiplier=noise, delta=dp.delta_for(n_train), ghost=ghost)


def default_loss(model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss of ``model`` (mean over the batch): ``membrane_cross_entropy`` for
    spiking models, cross-entropy of the logits otherwise."""
    from nmprivacy.models.base import membrane_cross_entropy

    if _batch_dim(model) == 1:
        return membrane_cross_entropy
    return nn.functional.cross_entropy


def train_dp(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    schedule: Any,
    dp: DPSettings,
    make_input: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``model`` in place with DP-SGD (Adam at ``schedule.lr``) on ``x``/``y`` for
    ``schedule.epochs`` epochs at ``schedule.batch_size`` (any object with those fields, e.g.
    ``TrainSettings``); returns ``DPTraining.record()`` plus ``train_loss`` (mean per epoch).

    ``make_input(x[idx], generator)`` turns stored samples into the model's input (default: as
    stored for image models, ``[B, T, ...]`` moved to ``[T, B, ...]`` for spiking ones);
    ``loss_fn(output, labels)`` defaults to ``default_loss(model)``. ``seed`` seeds batches,
    input encoding and noise."""
    if len(x) != len(y) or len(x) == 0:
        raise NmprivacyError(f"DP-SGD needs as many labels as samples and at least one sample, got {len(x)} samples and {len(y)} labels")
    if make_input is None:
        spiking = _batch_dim(model) == 1
        make_input = (lambda xb, _g: xb.transpose(0, 1).to(torch.float32)) if spiking else (lambda xb, _g: xb.to(torch.float32))
    loss_fn = loss_fn or default_loss(model)
    data_gen = torch.Generator().manual_seed(int(seed))
    noise_gen = torch.Generator().manual_seed(int(seed) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(schedule.lr))
    run = dp_wrap(model, optimizer, len(x), int(schedule.batch_size), int(schedule.epochs), dp, generator=data_gen, noise_generator=noise_gen)
    losses: list[float] = []
    try:
        model.train()
        for _ in range(run.plan.epochs):
            total, seen = 0.0, 0
            for idx in run.batches:
                if idx.numel() == 0:
                    run.empty_step()
                    continue
                out = run.module(make_input(x[idx], data_gen))
                loss = loss_fn(out, y[idx])
                run.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                run.optimizer.step()
                total += float(loss) * idx.numel()
                seen += idx.numel()
            losses.append(total / seen if seen else math.nan)
        return {**run.record(), "train_loss": losses}
    finally:
        run.close()
        model.eval()
