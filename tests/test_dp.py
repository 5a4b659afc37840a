"""DP-SGD (``nmprivacy.dp``): Opacus's per-sample gradients of every trainable kind against a
per-sample loop, clipping/noise against hand-computed DP-SGD, the accounting against Opacus's
accountants, target-epsilon mode, Poisson batches and one-line errors. Tiny models, T = 5."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from pathlib import Path

import pytest
import torch

from nmprivacy.dp import (
    DPPlan,
    DPSettings,
    PoissonBatches,
    dp_wrap,
    epsilon_for,
    make_grad_sample_module,
    noise_multiplier_for,
    release,
    train_dp,
)
from nmprivacy.errors import NmprivacyError
from nmprivacy.models import build, default_config
from nmprivacy.models.base import membrane_cross_entropy

pytest.importorskip("opacus")

T, B = 5, 4
SHAPE = (1, 8, 8)
CLASSES = 3




def tiny(kind: str, seed: int = 0) -> torch.nn.Module:
    """A tiny model of ``kind`` on 1x8x8 inputs whose every layer gets gradient (so that the
    comparisons below are of non-zero numbers)."""
    torch.manual_seed(seed)
    cfg = default_config(kind, SHAPE, CLASSES, dataset="digits", budget="quick")
    if kind in ("snn-lava", "snn-norse", "ann"):
        cfg = dataclasses.replace(cfg, hidden=8)
    if kind == "snn-lava":
        cfg = dataclasses.replace(cfg, weight_scale=4.0)
    if kind == "snn-lava-conv":  # silent at slayer's init scale on 8x8 inputs: spike from the start
        cfg = dataclasses.replace(cfg, channels=(2, 3), kernels=(3, 3), dense_hidden=5, weight_scale=8.0, threshold=0.5)
    if kind == "evaluator-snn":  # the second convolution is silent at threshold 1
        cfg = dataclasses.replace(cfg, threshold=0.1)
    return build(kind, cfg)


def batch(model: torch.nn.Module, n: int = B, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random inputs in ``model``'s layout (spikes ``[T, n, ...]`` or images ``[n, ...]``) and labels."""
    g = torch.Generator().manual_seed(seed)
    if model.info.domain == "spikes":
        x = (torch.rand(T, n, *SHAPE, generator=g) < 0.5).float()
    else:
        x = torch.rand(n, *SHAPE, generator=g)
    return x, torch.randint(0, CLASSES, (n,), generator=g)


def loss_of(model: torch.nn.Module):
    return membrane_cross_entropy if model.info.domain == "spikes" else torch.nn.functional.cross_entropy


def sample(model: torch.nn.Module, x: torch.Tensor, i: int) -> torch.Tensor:
    return x[:, i : i + 1] if model.info.domain == "spikes" else x[i : i + 1]


def per_sample_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The oracle: each sample's gradient from its own forward/backward pass (batch of one)."""
    grads: dict[str, list[torch.Tensor]] = {n: [] for n, p in model.named_parameters() if p.requires_grad}
    for i in range(len(y)):
        model.zero_grad(set_to_none=True)
        loss_of(model)(model(sample(model, x, i)), y[i : i + 1]).backward()
        for n, p in model.named_parameters():
            if p.requires_grad:
                grads[n].append(p.grad.detach().clone())
    model.zero_grad(set_to_none=True)
    return {n: torch.stack(g) for n, g in grads.items()}


_FOLDING = __import__("nmprivacy.dp", fromlist=["_time_folding"])._time_folding  # before any test patches it
KINDS = ["snn-lava", "snn-lava-conv", "snn-norse", "ann", "evaluator", "evaluator-snn"]


@pytest.mark.parametrize("kind", KINDS)
def test_per_sample_gradients_equal_a_per_sample_loop(kind: str) -> None:
    model = tiny(kind)
    model.train()
    x, y = batch(model)
    ref = per_sample_loop(model, x, y)
    gsm = make_grad_sample_module(model)
    loss_of(model)(gsm(x), y).backward()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        want = ref[name]
        scale = float(want.abs().max())
        assert scale > 0, f"{kind} {name}: the oracle's gradient is zero, the comparison would prove nothing"
        # per sample, not a batch mean broadcast: the samples' gradients differ
        assert float((want - want.mean(0)).abs().max()) > 1e-3 * scale, f"{kind} {name}: samples have equal gradients"
        assert p.grad_sample.shape == (B, *p.shape), f"{kind} {name}: {tuple(p.grad_sample.shape)}"
        torch.testing.assert_close(p.grad_sample / scale, want / scale, atol=1e-5, rtol=0, msg=f"{kind} {name}")
    release(gsm)


@pytest.mark.parametrize("kind", KINDS)
def test_per_sample_gradients_are_stored_as_computed_and_equal_opacus_own_storage(kind: str, monkeypatch) -> None:
    """Each parameter's per-sample gradient is the very tensor its grad sampler computed (no zeroed
    second buffer and copy per step), and to the bit what Opacus's own ``create_or_accumulate_grad_sample``
    stores when the samplers hand it over (the path before; for a slayer block with no weight at
    the clamp, also without the unit mask's multiply)."""
    import nmprivacy.dp as dp_module

    model = tiny(kind)
    if kind == "snn-lava":  # the hooks' path: slayer's blocks (the sparse engine forms its own, tested below)
        model.engine = "slayer"
    model.train()
    x, y = batch(model)
    computed: dict[int, torch.Tensor] = {}

    def recording(sampler):
        def sample(layer, activations, backprops):
            out = sampler(layer, activations, backprops)
            computed.update({id(p): g for p, g in out.items()})
            return out
        return sample

    ours = {}
    with monkeypatch.context() as m:  # record what the samplers return, inside the storing wrapper
        m.setattr(dp_module, "_time_folding", lambda f, linear: recording(_FOLDING(f, linear)))
        m.setattr(dp_module, "_SLAYER_SAMPLER", dp_module._stored_in_place(recording(dp_module._slayer_synapse_grad_sample)))
        dp_module._gsm_class.cache_clear()
        gsm = make_grad_sample_module(model)
        loss_of(model)(gsm(x), y).backward()
        for name, p in model.named_parameters():
            if p.requires_grad:
                assert p.grad_sample is computed[id(p)], f"{kind} {name}: the per-sample gradient was copied"
                ours[name] = p.grad_sample.clone()
        release(gsm)
    with monkeypatch.context() as m:  # Opacus's storage: samplers return everything to it
        m.setattr(dp_module, "_stored_in_place", lambda f: f)
        m.setattr(dp_module, "_SLAYER_SAMPLER", dp_module._slayer_synapse_grad_sample)
        dp_module._gsm_class.cache_clear()
        gsm = make_grad_sample_module(model)
        loss_of(model)(gsm(x), y).backward()
        for name, p in model.named_parameters():
            if p.requires_grad:
                assert torch.equal(p.grad_sample, ours[name]), f"{kind} {name}"
        release(gsm)
    dp_module._gsm_class.cache_clear()


def test_slayer_surrogate_per_sample_gradients() -> None:
    """``snn-lava`` with slayer's own surrogate (its custom autograd Functions end to end)."""
    torch.manual_seed(0)
    cfg = default_config("snn-lava", SHAPE, CLASSES, dataset="digits", budget="quick")
    model = build("snn-lava", dataclasses.replace(cfg, hidden=8, weight_scale=4.0, surrogate="slayer"))
    model.train()
    x, y = batch(model)
    ref = per_sample_loop(model, x, y)
    gsm = make_grad_sample_module(model)
    membrane_cross_entropy(gsm(x), y).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = float(ref[name].abs().max())
            assert scale > 0
            torch.testing.assert_close(p.grad_sample / scale, ref[name] / scale, atol=1e-5, rtol=0)
    release(gsm)


def test_slayer_quantiser_chain_rule() -> None:
    """Weights beyond the 8-bit range (clamped by slayer's pre-hook) get no gradient, per sample too."""
    model = tiny("snn-lava")
    with torch.no_grad():
        model.blocks[1].synapse.weight[0] = 5.0  # > 254/64: clamped to 3.97
    model.train()
    x, y = batch(model)
    ref = per_sample_loop(model, x, y)
    gsm = make_grad_sample_module(model)
    membrane_cross_entropy(gsm(x), y).backward()
    gs = model.blocks[1].synapse.weight.grad_sample
    assert float(gs[:, 1:].abs().max()) > 0 and float(gs[:, 0].abs().max()) == 0
    torch.testing.assert_close(gs, ref["blocks.1.synapse.weight"], atol=1e-5, rtol=1e-5)
    release(gsm)


def test_release_leaves_a_plain_model() -> None:
    model = tiny("snn-norse")
    keys = list(model.state_dict())
    x, y = batch(model)
    gsm = make_grad_sample_module(model)
    membrane_cross_entropy(gsm(x), y).backward()
    plain = release(gsm)
    assert plain is model and list(model.state_dict()) == keys
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())
    assert not any(hasattr(p, "grad_sample") for p in model.parameters())


@pytest.mark.parametrize("kind", ["snn-lava", "snn-norse"])
def test_no_noise_and_no_clipping_give_the_plain_gradient(kind: str) -> None:
    """noise_multiplier 0 and a huge clipping bound: DP-SGD's gradient is the ordinary one."""
    model = tiny(kind)
    plain = copy.deepcopy(model)
    x, y = batch(model)
    plain.train()
    loss_of(plain)(plain(x), y).backward()
    run = dp_wrap(model, torch.optim.SGD(model.parameters(), lr=0.1), n_train=2 * B, batch_size=B, epochs=1,
                  dp=DPSettings(noise_multiplier=0.0, max_grad_norm=1e9, poisson=False))
    model.train()
    run.optimizer.zero_grad(set_to_none=True)
    loss_of(model)(run.module(x), y).backward()
    run.optimizer.step()
    for (name, p), q in zip(model.named_parameters(), plain.parameters()):
        if p.requires_grad:
            assert float(q.grad.abs().max()) > 0
            torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5, msg=name)
            torch.testing.assert_close(p.detach(), (q - 0.1 * q.grad).detach(), atol=1e-6, rtol=1e-5, msg=name)
    assert run.record()["epsilon"] == math.inf and run.record()["steps"] == 1
    run.close()


def test_clipping_and_noise_are_dp_sgd() -> None:
    """The step's gradient is (sum of per-sample gradients clipped to C + N(0, (sigma C)^2)) / B."""
    model = tiny("snn-lava")
    x, y = batch(model)
    model.train()
    ref = per_sample_loop(model, x, y)
    params = [n for n, p in model.named_parameters() if p.requires_grad]
    norms = torch.cat([ref[n].reshape(B, -1) for n in params], 1).norm(dim=1)  # per-sample L2 over all parameters
    clip = float(norms.min()) / 2  # every sample is clipped
    sigma, seed = 0.7, 123
    run = dp_wrap(model, torch.optim.SGD(model.parameters(), lr=0.1), n_train=2 * B, batch_size=B, epochs=1,
                  dp=DPSettings(noise_multiplier=sigma, max_grad_norm=clip, poisson=False), noise_generator=torch.Generator().manual_seed(seed))
    run.optimizer.zero_grad(set_to_none=True)
    membrane_cross_entropy(run.module(x), y).backward()
    run.optimizer.step()
    noise_gen = torch.Generator().manual_seed(seed)
    factor = (clip / (norms + 1e-6)).clamp(max=1.0)
    for n in params:
        p = dict(model.named_parameters())[n]
        clipped = torch.einsum("b,b...->...", factor, ref[n])
        noise = torch.normal(0, sigma * clip, p.shape, generator=noise_gen)  # Opacus draws one tensor per parameter, in order
        torch.testing.assert_close(p.grad, (clipped + noise) / B, atol=1e-6, rtol=1e-5, msg=n)
    run.close()


@pytest.mark.parametrize("ghost", [False, True])
def test_the_ann_clips_per_sample_with_or_without_ghost_clipping(ghost: bool) -> None:
    """Ghost clipping (per-sample norms from activations and backprops) gives the ann the same
    DP-SGD step as clipping materialised per-sample gradients: sum of clipped gradients plus
    N(0, (sigma C)^2), over B."""
    from nmprivacy.dp import ghost_clippable

    model = tiny("ann")
    assert ghost_clippable(model) and not ghost_clippable(tiny("snn-lava"))
    x, y = batch(model)
    model.train()
    ref = per_sample_loop(model, x, y)
    params = [n for n, p in model.named_parameters() if p.requires_grad]
    norms = torch.cat([ref[n].reshape(B, -1) for n in params], 1).norm(dim=1)
    clip = float(norms.median())  # some samples clipped, some not
    sigma, seed = 0.7, 123
    run = dp_wrap(model, torch.optim.SGD(model.parameters(), lr=0.1), n_train=2 * B, batch_size=B, epochs=1,
                  dp=DPSettings(noise_multiplier=sigma, max_grad_norm=clip, poisson=False), noise_generator=torch.Generator().manual_seed(seed),
                  ghost=ghost)
    run.optimizer.zero_grad(set_to_none=True)
    mean = run.backward(torch.nn.functional.cross_entropy(run.module(x), y, reduction="none"))
    assert mean.requires_grad is False
    run.optimizer.step()
    noise_gen = torch.Generator().manual_seed(seed)
    factor = (clip / (norms + 1e-6)).clamp(max=1.0)
    assert 0 < int((factor < 1).sum()) < B
    for n in params:
        p = dict(model.named_parameters())[n]
        clipped = torch.einsum("b,b...->...", factor, ref[n])
        noise = torch.normal(0, sigma * clip, p.shape, generator=noise_gen)
        torch.testing.assert_close(p.grad, (clipped + noise) / B, atol=1e-6, rtol=1e-4, msg=n)
    assert run.record()["clipping"] == ("ghost" if ghost else "per-sample")
    if ghost:  # a plain backward would leave the unclipped mean gradient: the step refuses it
        run.optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(run.module(x), y).backward()
        with pytest.raises(NmprivacyError, match="ghost clipping steps only after"):
            run.optimizer.step()
        run.empty_step()  # a noise-only step still works
    run.close()
    assert not any(hasattr(p, a) for p in model.parameters() for a in ("grad_sample", "_norm_sample", "summed_grad"))


def test_dp_run_epsilon_equals_opacus_accountant() -> None:
    from opacus.accountants import PRVAccountant, RDPAccountant

    model = tiny("snn-lava")
    x, y = batch(model, n=20)
    xs = x.transpose(0, 1)  # stored samples [N, T, ...]
    schedule = type("Schedule", (), {"epochs": 2, "batch_size": 5, "lr": 1e-3})()
    for accountant, cls in (("rdp", RDPAccountant), ("prv", PRVAccountant)):
        rec = train_dp(tiny("snn-lava"), xs, y, schedule, DPSettings(noise_multiplier=1.1, max_grad_norm=1.0, accountant=accountant), seed=3)
        assert rec["steps"] == 2 * 4 and rec["sample_rate"] == 0.25 and rec["delta"] == 1 / 20
        acc = cls()
        for _ in range(8):
            acc.step(noise_multiplier=1.1, sample_rate=0.25)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = acc.get_epsilon(delta=1 / 20)
        assert rec["epsilon"] == pytest.approx(want, rel=1e-9), accountant
        assert 0 < rec["epsilon"] < math.inf and rec["accountant"] == accountant and rec["noise_multiplier"] == 1.1
        assert len(rec["train_loss"]) == 2 and all(math.isfinite(v) for v in rec["train_loss"])


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_target_epsilon_mode_hits_epsilon(accountant: str) -> None:
    model = tiny("snn-norse")
    x, y = batch(model, n=30)
    schedule = type("Schedule", (), {"epochs": 3, "batch_size": 6, "lr": 1e-3})()
    rec = train_dp(model, x.transpose(0, 1), y, schedule, DPSettings(epsilon=2.0, accountant=accountant), seed=0)
    assert rec["steps"] == 15 and rec["target_epsilon"] == 2.0
    assert 2.0 - 0.02 <= rec["epsilon"] <= 2.0 + 1e-9, rec
    assert rec["epsilon"] == pytest.approx(epsilon_for(rec["noise_multiplier"], 0.2, 15, 1 / 30, accountant), rel=1e-9)
    if accountant == "rdp":  # a smaller budget needs more noise (PRV's search is slow: once is enough)
        plan = DPPlan(n_train=30, batch_size=6, epochs=3)
        assert noise_multiplier_for(DPSettings(epsilon=1.0, accountant=accountant), plan) > rec["noise_multiplier"]


def test_poisson_batches_vary_and_empty_batches_still_step() -> None:
    sizes = [len(b) for _ in range(20) for b in PoissonBatches(200, 0.1, 10, torch.Generator().manual_seed(0))]
    assert len(sizes) == 200 and len(set(sizes)) > 5 and abs(sum(sizes) / len(sizes) - 20) < 1.5
    again = [b.tolist() for b in PoissonBatches(50, 0.2, 3, torch.Generator().manual_seed(7))]
    assert again == [b.tolist() for b in PoissonBatches(50, 0.2, 3, torch.Generator().manual_seed(7))]
    model = tiny("ann")
    before = [p.detach().clone() for p in model.parameters()]
    run = dp_wrap(model, torch.optim.SGD(model.parameters(), lr=1.0), n_train=100, batch_size=1, epochs=1,
                  dp=DPSettings(noise_multiplier=1.0, delta=1e-5))
    run.empty_step()
    assert run.steps == 1 and 0 < run.record()["epsilon"] < math.inf
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))  # noise moved every parameter
    run.close()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({}, "exactly one of noise_multiplier and epsilon"),
        ({"noise_multiplier": 1.0, "epsilon": 2.0}, "exactly one"),
        ({"noise_multiplier": -1.0}, "noise_multiplier"),
        ({"noise_multiplier": math.nan}, "noise_multiplier"),
        ({"epsilon": 0.0}, "give a number above 0"),
        ({"epsilon": math.inf}, "finite target epsilon"),
        ({"noise_multiplier": 1.0, "max_grad_norm": 0.0}, "max_grad_norm"),
        ({"noise_multiplier": 1.0, "delta": 1.0}, "delta"),
        ({"noise_multiplier": 1.0, "delta": 0.0}, "delta"),
        ({"noise_multiplier": 1.0, "accountant": "gdp"}, "accountant"),
        ({"noise_multiplier": 1.0, "poisson": "yes"}, "poisson"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs: dict, words: str) -> None:
    with pytest.raises(NmprivacyError, match=words) as err:
        DPSettings(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_schedules_are_one_line_errors() -> None:
    model = tiny("ann")
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    cases = [
        (lambda: dp_wrap(model, optim, 0, 10, 1, DPSettings(noise_multiplier=1.0)), "n_train"),
        (lambda: dp_wrap(model, optim, 100, 10, 0, DPSettings(noise_multiplier=1.0)), "epochs"),
        (lambda: dp_wrap(model, torch.optim.SGD(list(model.parameters())[:1], lr=0.1), 100, 10, 1, DPSettings(noise_multiplier=1.0)), "trainable parameters"),
        (lambda: dp_wrap(model, optim, 100, 100, 50, DPSettings(epsilon=0.1, delta=1e-10, accountant="rdp")), "out of reach"),
    ]
    for call, words in cases:
        with pytest.raises(NmprivacyError, match=words) as err:
            call()
        assert "\n" not in str(err.value)
    assert not any(m._forward_hooks for m in model.modules())  # nothing was left hooked


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_dp_on_the_sparse_engine_equals_slayers_blocks_and_cleans_up(dropout: float) -> None:
    """snn-lava's sparse training engine bypasses the synapse modules (no hook fires): under DP-SGD
    its backward forms each block's per-sample gradients itself and hands them to the wrapper.
    They equal those of slayer's blocks through Opacus's hooks (to fp32 rounding), also for a
    weight at the 8-bit clamp and with dropout (the same masks on both paths); the wrapper leaves
    the model plain; a step without per-sample gradients, or a second backward before the step
    with Poisson batches, is a one-line error."""
    from nmprivacy.training import hidden_dropout

    grads = {}
    for engine in ("slayer", "sparse"):
        model = tiny("snn-lava")
        with torch.no_grad():
            model.blocks[1].synapse.weight[0, 0] = 5.0  # > 254/64: clamped, no gradient
        model.engine = engine
        model.train()
        x, y = batch(model)
        run = dp_wrap(model, torch.optim.SGD(model.parameters(), lr=0.1), 2 * B, B, 1, DPSettings(noise_multiplier=1.0, poisson=False))
        assert model.engine == engine
        handed = []
        if engine == "sparse":
            sink = model.per_sample_sink
            model.per_sample_sink = lambda p, g: (handed.append(p), sink(p, g))
        run.optimizer.zero_grad(set_to_none=True)
        with hidden_dropout(model, dropout, torch.Generator().manual_seed(5)) as fired:
            membrane_cross_entropy(run.module(x), y).backward()
        assert fired[0] == (1 if dropout else 0)
        assert len(handed) == (2 if engine == "sparse" else 0)  # the engine ran, not slayer's blocks behind it
        grads[engine] = {n: p.grad_sample.clone() for n, p in model.named_parameters() if p.requires_grad}
        run.optimizer.step()
        assert run.steps == 1
        assert run.record()["per_sample_gradients"] == ("engine" if engine == "sparse" else "hooks")
        run.optimizer.zero_grad(set_to_none=True)
        with pytest.raises(NmprivacyError, match="no per-sample gradient") as err:
            run.optimizer.step()
        assert "\n" not in str(err.value)
        run.close()
        assert model.engine == engine and model.per_sample_sink is None
    for name, want in grads["slayer"].items():
        scale = float(want.abs().max())
        assert scale > 0
        torch.testing.assert_close(grads["sparse"][name] / scale, want / scale, atol=1e-5, rtol=0, msg=name)
    assert float(grads["sparse"]["blocks.1.synapse.weight"][:, 0, 0].abs().max()) == 0.0

    model = tiny("snn-lava")
    model.engine = "sparse"
    model.train()
    x, y = batch(model)
    run = dp_wrap(model, torch.optim.SGD(model.parameters(), lr=0.1), 2 * B, B, 1, DPSettings(noise_multiplier=1.0))
    membrane_cross_entropy(run.module(x), y).backward()
    with pytest.raises(NmprivacyError, match="one optimiser step per backward") as err:
        membrane_cross_entropy(run.module(x), y).backward()
    assert "\n" not in str(err.value)
    run.close()


def test_unsupported_layer_is_a_one_line_error() -> None:
    class WithNorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)
            self.norm = torch.nn.BatchNorm1d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(self.lin(x))

    with pytest.raises(NmprivacyError, match="per-sample gradients") as err:
        make_grad_sample_module(WithNorm())
    assert "\n" not in str(err.value)


def test_dp_cost_benchmark_times_plain_and_dp_epochs(tmp_path):
    """``nmprivacy bench dp-cost`` on tiny models: every mode timed, ratios from the same run."""
    import json

    from benchmarks import dp_cost
    from nmprivacy.commands import bench

    assert bench.load_benchmark("dp-cost") is dp_cost
    out = tmp_path / "dp-cost.json"
    assert dp_cost.main(["--kinds", "snn-lava,ann", "--hidden", "8", "--steps", "5", "--repeats", "1", "--threads", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["results"]
    assert set(result) == {"snn-lava", "ann"} and "plain-slayer_s" in result["snn-lava"] and "plain-slayer_s" not in result["ann"]
    lava = result["snn-lava"]
    assert lava["dp-slayer_s"] > 0 and lava["dp_slayer_over_dp"] == lava["dp-slayer_s"] / lava["dp_s"] and "dp-slayer_s" not in result["ann"]
    for row in result.values():
        assert row["plain_s"] > 0 and row["dp_s"] > 0 and row["dp_over_plain"] == row["dp_s"] / row["plain_s"]


def test_the_audit_report_names_each_models_training_defences():
    """``report.defence_lines``: ε at δ with the mechanism's parameters, and the free defences; nothing without defences."""
    from nmprivacy.report import defence_lines

    dp = {"epsilon": 7.99, "delta": 7e-4, "delta_rule": "1/N", "noise_multiplier": 0.659, "max_grad_norm": 1.0, "steps": 90,
          "sample_rate": 0.0696, "accountant": "prv", "poisson": True}
    free = {"weight_decay": 0.01, "dropout": 0.3, "dropout_on": "hidden neurons", "early_stopping": {"patience": 2, "epochs_run": 5,
            "epoch_budget": 20, "best_epoch": 3, "restored_best": True}}
    text = "\n".join(defence_lines({"target": {"dp": dp}, "ann": {"dp": None, "defences": free}}))
    assert "target SNN: DP-SGD, ε = 7.99 at δ = 0.0007 (1/N; noise multiplier 0.659, clipping 1, 90 steps" in text
    assert "ANN baseline: weight decay 0.01 (AdamW), dropout 0.3 on hidden neurons, early stopping (patience 2: 5 of 20 epochs run, best epoch 3 restored)" in text
    assert defence_lines({"target": {"dp": None}, "ann": {}}) == []


def test_the_membership_report_names_the_models_training_defences():
    """``mia.md`` says how its models were trained: one line per distinct defence setting with the
    models it applies to, the references' only (and said so) on a foreign file, nothing without defences."""
    from nmprivacy.mia.report import training_defence_lines

    dp = {"epsilon": 0.99, "delta": 7.4e-4, "delta_rule": "1/N", "noise_multiplier": 3.63, "max_grad_norm": 1.0, "steps": 308,
          "sample_rate": 0.0741, "accountant": "prv", "poisson": True}
    stop = {"patience": 2, "epochs_run": 5, "epoch_budget": 20, "best_epoch": 3, "restored_best": False}
    refs = [{"index": i, "dp": dp} for i in range(3)]
    own = {"target": {"file": None}, "reference_models": refs}
    lines = training_defence_lines(own)
    assert lines[0] == "Training defences:" and len([x for x in lines if x.startswith("- ")]) == 1
    assert "- every model (targets and references): DP-SGD, ε = 0.99 at δ = 0.00074 (1/N; noise multiplier 3.63, clipping 1, 308 steps" in lines[2]
    refs[1] = {"index": 1, "dp": dp, "defences": {"early_stopping": stop}}
    text = "\n".join(training_defence_lines(own))
    assert "- every model (targets and references): DP-SGD" in text and "- model 1: early stopping (patience 2: 5 of 20 epochs run" in text
    foreign = "\n".join(training_defence_lines({"target": {"file": "net.net"}, "reference_models": [{"index": 0, "dp": dp}]}))
    assert "- every reference model: DP-SGD" in foreign and "the target file's own training is not known" in foreign
    assert training_defence_lines({"target": {"file": None}, "reference_models": [{"index": 0, "dp": None}]}) == []
    # a file that declares DP-SGD (an nmprivacy export): said as declared, and references trained without it get the fix
    declared = training_defence_lines({"target": {"file": "net.net", "training": {"dp": dp}}, "reference_models": [{"index": 0, "dp": None}]})
    assert declared[2].startswith("- the target net.net: DP-SGD, ε = 0.99") and declared[2].endswith("(declared by its file or checkpoint, not verified)")
    assert declared[3].startswith("- the references trained without DP-SGD although the file declares it: --set snn_train.dp.epsilon=0.99 ")
    assert not any("references trained without" in x for x in training_defence_lines(
        {"target": {"file": "net.net", "training": {"dp": dp}}, "reference_models": [{"index": 0, "dp": dp}]}))


def test_the_seed_summary_of_membership_shows_the_privacy_spent():
    """``mia-seeds.md`` has an ε column (the largest ε of each seed's DP models, pooled over seeds) when DP-SGD was on."""
    from nmprivacy.mia.seeds import seeds_markdown, summarize_seeds

    def run(seed: int, eps: list[float]) -> dict:
        attack = {"auc": 0.5 + seed / 100, "tpr_at_fpr": {"0.001": 0.0, "0.01": 0.01}}
        return {"seed": seed, "target": {"train_acc": 0.6, "test_acc": 0.55, "silent_output": 0.1}, "attacks": {"lira": attack},
                "reference_models": [{"index": i, "dp": {"epsilon": e}} for i, e in enumerate(eps)]}

    summary = summarize_seeds([run(0, [0.98, 0.99]), run(1, [0.97, 0.97])])
    assert [r["target"]["epsilon"] for r in summary["per_seed"]] == [0.99, 0.97]
    md = seeds_markdown(summary)
    assert "| ε (DP-SGD) |" in md and "| 0 | 60.0 / 55.0 | 0.99 |" in md and "| 0.98 |" in md.splitlines()[-3]


def test_training_settings_on_a_loaded_target_are_refused_in_one_line(tmp_path, capsys) -> None:
    """An audit or study of a file (not trained here) with ``snn_train`` settings refuses before any
    work instead of reporting an undefended model as if it were defended; membership attacks (whose
    references train with them), a null level and a target kind are accepted."""
    from nmprivacy.audit import AuditConfig, check_training_settings
    from nmprivacy.cli import main

    def config(target: str, attacks: tuple[str, ...], **overrides) -> AuditConfig:
        return AuditConfig(dataset="digits", target=target, out=str(tmp_path / "a"), attacks=attacks, overrides=overrides)

    with pytest.raises(NmprivacyError, match=r"^setting snn_train\.dp\.epsilon: the target net\.net is loaded, not trained") as err:
        check_training_settings(config("net.net", ("bl-v1",), **{"snn_train.dp.epsilon": 8}))
    assert "\n" not in str(err.value)
    with pytest.raises(NmprivacyError, match="snn_train.weight_decay"):
        check_training_settings(config("ckpt", ("bl-v2",), **{"snn_train.weight_decay": 0.01, "bl_v2.lr": 0.1}))
    check_training_settings(config("net.net", ("bl-v1", "lira"), **{"snn_train.dp.epsilon": 8}))  # the references train with it
    check_training_settings(config("net.net", ("bl-v1",), **{"snn_train.dp": None}))  # the baseline level: nothing to apply
    check_training_settings(config("snn-lava", ("bl-v1",), **{"snn_train.dp.epsilon": 8}))
    check_training_settings(config("net.net", ("bl-v1",), **{"bl_v2.lr": 0.1}))
    # the study checks its cells before any runs: one line, no folder
    net = tmp_path / "net.net"
    net.write_bytes(b"")
    spec = Path(__file__).resolve().parents[1] / "studies" / "defences-dp.yaml"
    code = main(["study", str(spec), "--target", str(net), "--dataset", "digits", "--quick", "--grid", "snn dp-sgd",
                 "--attacks", "bl-v1", "--out", str(tmp_path / "st"), "--cache", str(tmp_path / "c")])
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err_lines) == 1 and "snn_train.dp: the target" in err_lines[0] and not (tmp_path / "st").exists()
    code = main(["attack", "--model", str(net), "--dataset", "digits", "--attack", "bl-v1", "--set", "snn_train.dp.epsilon=8", "--out", str(tmp_path / "x.pt")])
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err_lines) == 1 and err_lines[0].startswith("error: setting snn_train.dp.epsilon: the target") and not (tmp_path / "x.pt").exists()
