"""Attack core: autograd oracle, BrainLeaks-v1/v2 and MI-Face on tiny hand-made models."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from nmprivacy.attacks import ATTACKS, get_attack
from nmprivacy.encoding import bernoulli_spikes
from nmprivacy.attacks.blv2 import BLv2State, PopulationSampler, blv2_update_, class_generator, population_weights
from nmprivacy.attacks.oracle import AutogradOracle
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import ModelInfo, TargetModel
from nmprivacy.presets import BLv1Settings, BLv2Settings, MIFaceSettings

SHAPE = (1, 4, 4)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):  # type: ignore[override]
        ctx.save_for_backward(v)
        return (v > 1.0).float()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        return grad / (1 + 40 * (v - 1.0).abs()) ** 2


class ToySNN(TargetModel):
    """16 -> 12 LIF (hard reset) -> 3 leaky output membranes; input ``[T, B, 1, 4, 4]``."""

    def __init__(self, seed: int = 0, steps: int = 6) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc1 = nn.Linear(16, 12)
        self.fc2 = nn.Linear(12, 3)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.rand(12, 16, generator=g) * 0.8)
            self.fc1.bias.zero_()
            self.fc2.weight.copy_(torch.randn(3, 12, generator=g))
            self.fc2.bias.zero_()
        self.steps = steps
        self.info = ModelInfo("toy-snn", "spikes", SHAPE, 3, reset="hard")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros(x.shape[1], 12)
        u = torch.zeros(x.shape[1], 3)
        outs = []
        for t in range(x.shape[0]):
            v = 0.7 * v + self.fc1(x[t].flatten(1))
            z = _Spike.apply(v)
            v = v * (1 - z.detach())
            u = 0.7 * u + self.fc2(z)
            outs.append(u)
        return torch.stack(outs)


class ToyANN(TargetModel):
    """16 -> 3 linear image classifier; input ``[B, 1, 4, 4]``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(16, 3, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(3, 16, generator=g))
        self.info = ModelInfo("toy-ann", "image", SHAPE, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class CountingOracle(AutogradOracle):
    """Autograd oracle recording the batch size of every call."""

    def __init__(self, model: TargetModel) -> None:
        super().__init__(model)
        self.batches: list[int] = []

    def __call__(self, x, targets, loss="identity"):  # type: ignore[override]
        self.batches.append(int(targets.shape[0]))
        return super().__call__(x, targets, loss)


@pytest.mark.parametrize("loss", ["identity", "cross-entropy"])
def test_batched_gradient_equals_per_sample_loop(loss: str) -> None:
    model = ToySNN()
    oracle = AutogradOracle(model)
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((6, 5, *SHAPE), 0.4), generator=g)  # [T, B, ...]
    y = torch.tensor([0, 1, 2, 0, 1])
    batched = oracle(x, y, loss)
    assert batched.grad.abs().sum() > 0
    for b in range(5):
        single = oracle(x[:, b : b + 1], y[b : b + 1], loss)
        torch.testing.assert_close(batched.grad[:, b : b + 1], single.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batched.loss[b : b + 1], single.loss)
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


def test_identity_and_cross_entropy_losses_have_known_values() -> None:
    model = ToySNN()
    x = torch.bernoulli(torch.full((6, 2, *SHAPE), 0.5), generator=torch.Generator().manual_seed(0))
    y = torch.tensor([2, 1])
    out = AutogradOracle(model)(x, y, "identity")
    with torch.no_grad():
        mem = model(x)
        probs = torch.softmax(mem, -1).mean(0)
        ce = -torch.log_softmax(mem, -1)[:, torch.arange(2), y].mean(0)
    torch.testing.assert_close(out.loss, 1 - probs[torch.arange(2), y])
    torch.testing.assert_close(AutogradOracle(model)(x, y, "cross-entropy").loss, ce)


def test_registry_and_errors() -> None:
    assert set(ATTACKS) == {"bl-v1", "bl-v2", "bl-v2-query", "bl-auto", "mi-face"}
    with pytest.raises(NmprivacyError, match="unknown attack"):
        get_attack("nope")
    with pytest.raises(NmprivacyError, match="mi-face"):
        get_attack("bl-v1").run(ToyANN(), [0])
    with pytest.raises(NmprivacyError, match="class"):
        get_attack("bl-v1").run(ToySNN(), [5])


@pytest.mark.parametrize("mask", ["threshold", "bernoulli"])
def test_blv1_keeps_spikes_binary_and_raises_confidence(mask: str) -> None:
    model = ToySNN()
    attack = get_attack("bl-v1", BLv1Settings(iterations=8, eta=0.5, mask=mask), oracle=AutogradOracle)
    inv = attack.run(model, [0, 1, 2], seed=3)
    x = inv.reconstructions
    assert x.shape == (3, 6, *SHAPE)
    assert bool(((x == 0) | (x == 1)).all()) and x.sum() > 0
    assert inv.confidence_curve.shape == (8, 3)
    with torch.no_grad():
        final = model.probabilities(x.transpose(0, 1))[torch.arange(3), torch.arange(3)]
    assert float(final.mean()) > float(inv.confidence_curve[0].mean()) + 0.05
    again = attack.run(model, [0, 1, 2], seed=3)
    assert torch.equal(again.reconstructions, x)


def test_blv1_step_follows_gradient_sign() -> None:
    from nmprivacy.attacks.blv1 import blv1_step

    x = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    g = torch.tensor([[1.0, -1.0, 0.1, -0.2]])  # |g| minmax -> [1, 1, 0, 0.111]
    out = blv1_step(x, g, BLv1Settings(eta=0.5), torch.Generator())
    assert out.tolist() == [[1.0, 0.0, 1.0, 0.0]]


def test_blv2_update_matches_hand_computed_step() -> None:
    s = BLv2Settings(population=2, lr=0.5, momentum=0.9, rho=0.1, eps=0.0, sparsity=0.0)
    def start() -> BLv2State:
        return BLv2State(xp=torch.tensor([[0.5, 0.2]]), r=torch.tensor([[0.4, 0.0]]), nu=torch.tensor([[1.0, 0.0]]))

    grads = torch.tensor([[[1.0, -2.0], [3.0, 0.0]]])  # [K=1, P=2, N=2]
    losses = torch.tensor([[0.0, torch.log(torch.tensor(3.0))]])  # e^-L = 1, 1/3 -> weights 3/4, 1/4
    w = population_weights(losses, "paper")
    torch.testing.assert_close(w, torch.tensor([[0.75, 0.25]]))
    g = torch.tensor([0.75 * 1 + 0.25 * 3, 0.75 * -2 + 0.25 * 0])  # [1.5, -1.5]
    new = blv2_update_(start(), (w[..., None] * grads).sum(dim=1), s)
    r = 0.1 * torch.tensor([0.4, 0.0]) + 0.9 * g**2
    nu = 0.9 * torch.tensor([1.0, 0.0]) + g
    xp = (torch.tensor([0.5, 0.2]) - 0.5 / r.sqrt() * nu).clamp_min(0)
    xp = xp / xp.max() if xp.max() > 1 else xp
    torch.testing.assert_close(new.r[0], r)
    torch.testing.assert_close(new.nu[0], nu)
    torch.testing.assert_close(new.xp[0], xp)
    assert float(new.xp.max()) <= 1.0 and float(new.xp.min()) >= 0.0
    # reference variant: L_i / sum L_j weights and the unbounded accumulator
    ref = BLv2Settings(population=2, lr=0.5, rho=0.1, eps=0.0, variant="reference", accumulator="unbounded")
    torch.testing.assert_close(population_weights(torch.tensor([[1.0, 3.0]]), "reference"), torch.tensor([[0.25, 0.75]]))
    gr = 0.25 * grads[0, 0] + 0.75 * grads[0, 1]
    new_ref = blv2_update_(start(), gr[None], ref)
    torch.testing.assert_close(new_ref.r[0], torch.tensor([0.4, 0.0]) * 1.1 + 0.9 * gr**2)


def test_blv2_first_iteration_matches_per_sample_hand_computation() -> None:
    model = ToySNN()
    s = BLv2Settings(population=3, iterations=1, lr=0.2, momentum=0.9, rho=0.1, eps=1e-10, sparsity=0.05, init=0.4, keep="last")
    inv = get_attack("bl-v2", s, oracle=AutogradOracle, steps=6).run(model, [2, 0], seed=11)
    samples = torch.stack([bernoulli_spikes(torch.full((3, 6, *SHAPE), 0.4), class_generator(11, c)) for c in (2, 0)])
    voxels = 6 * 16
    expected = []
    for k, cls in enumerate([2, 0]):
        losses, grads = [], []
        for i in range(3):
            x = samples[k, i].unsqueeze(1).clone().requires_grad_(True)  # [T, 1, ...]
            loss = 1 - model.probabilities(x)[0, cls] + s.sparsity * x.sum() / voxels
            (g,) = torch.autograd.grad(loss, x)
            losses.append(float(loss))
            grads.append(g[:, 0])
        w = torch.exp(-torch.tensor(losses))
        w = w / w.sum()
        g = sum(wi * gi for wi, gi in zip(w, grads))
        r = (1 - s.rho) * g * g
        new = (0.4 - s.lr / (r.sqrt() + s.eps) * g).clamp_min(0)
        expected.append(new / new.max() if new.max() > 1 else new)
    torch.testing.assert_close(inv.probabilities, torch.stack(expected), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "settings",
    [
        BLv2Settings(population=4, iterations=6, lr=1.0),
        BLv2Settings(population=4, iterations=6, lr=1.0, variant="reference", accumulator="unbounded", init=0.0),
        BLv2Settings(population=4, iterations=6, lr=0.3, rho=0.3, variant="reference", loss="cross-entropy", init=0.0),
    ],
    ids=["paper", "reference-mnist", "reference-events"],
)
def test_blv2_variants_run_batched_and_leak(settings: BLv2Settings) -> None:
    model = ToySNN()
    oracles: list[CountingOracle] = []

    def factory(m: TargetModel) -> CountingOracle:
        oracles.append(CountingOracle(m))
        return oracles[-1]

    inv = get_attack("bl-v2", settings, oracle=factory).run(model, [0, 1, 2], seed=5)
    assert oracles[0].batches == [3 * 4] * 6  # all classes x population in one call per iteration
    assert inv.probabilities is not None and inv.probabilities.shape == (3, 6, *SHAPE)
    assert float(inv.probabilities.min()) >= 0 and float(inv.probabilities.max()) <= 1
    assert bool(((inv.reconstructions == 0) | (inv.reconstructions == 1)).all())
    assert inv.iterations == 6 and inv.confidence_curve.shape == (6, 3)
    # leaks: the mean target confidence rises well above its start (the reference variants
    # return the last X_p, which may fall back after the peak)
    curve = inv.confidence_curve.mean(dim=1)
    assert float(curve.max()) > float(curve[0]) + 0.05


def test_blv2_plateau_stops_early() -> None:
    s = BLv2Settings(population=2, iterations=50, plateau_patience=2, plateau_tol=1.0)
    inv = get_attack("bl-v2", s, oracle=AutogradOracle).run(ToySNN(), [0, 1], seed=0)
    assert inv.iterations == 3  # first iteration improves on -1, then two without an improvement of 1.0


def test_miface_stops_per_class_and_clamps() -> None:
    model = ToyANN()
    oracles: list[CountingOracle] = []

    def factory(m: TargetModel) -> CountingOracle:
        oracles.append(CountingOracle(m))
        return oracles[-1]

    s = MIFaceSettings(lr=0.5, max_iterations=300, patience=20, cost_goal=0.3)
    inv = get_attack("mi-face", s, oracle=factory).run(model, [0, 1, 2], seed=0)
    x = inv.reconstructions
    assert x.shape == (3, *SHAPE) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert inv.iterations == len(oracles[0].batches) <= 300
    assert oracles[0].batches[0] == 3 and min(oracles[0].batches) >= 1
    with torch.no_grad():
        cost = 1 - model.probabilities(x)[torch.arange(3), torch.arange(3)]
        start = 1 - model.probabilities(torch.zeros(3, *SHAPE))[torch.arange(3), torch.arange(3)]
    assert bool((cost < start).all()) and bool((cost <= 0.3).all())
    assert oracles[0].batches[-1] < 3  # some classes stopped before others
    torch.testing.assert_close(cost.min(), inv.loss_curve.min(dim=0).values.min())


def test_blv2_keep_best_returns_the_highest_scoring_xp_of_each_class() -> None:
    model = ToySNN()
    s = BLv2Settings(population=3, iterations=5, lr=1.0, init=0.4)
    last = get_attack("bl-v2", replace(s, keep="last"), oracle=AutogradOracle, steps=6).run(model, [2, 0], seed=3)
    best = get_attack("bl-v2", replace(s, keep="best"), oracle=AutogradOracle, steps=6).run(model, [2, 0], seed=3)
    # same trajectory (same seed, same draws); only the returned X_p differs
    torch.testing.assert_close(best.confidence_curve, last.confidence_curve)
    peak = best.confidence_curve.argmax(dim=0)  # iteration whose samples scored best, per class
    for k in range(2):
        if int(peak[k]) == 0:
            torch.testing.assert_close(best.probabilities[k], torch.full_like(best.probabilities[k], 0.4))
        else:
            # iteration i's samples were drawn from the X_p after i updates: rerun with i iterations, keep="last"
            upto = get_attack("bl-v2", replace(s, iterations=int(peak[k]), keep="last"), oracle=AutogradOracle, steps=6)
            torch.testing.assert_close(best.probabilities[k], upto.run(model, [2, 0], seed=3).probabilities[k])


def test_population_samples_depend_only_on_seed_and_class() -> None:
    xp = torch.rand(3, 6, *SHAPE)
    classes = torch.tensor([4, 1, 7])
    one = PopulationSampler(classes, 9, 5, xp.shape[1:], workers=1).draw(xp).clone()
    three = PopulationSampler(classes, 9, 5, xp.shape[1:], workers=3).draw(xp)
    assert torch.equal(one, three)  # the same draws whatever the number of threads
    alone = PopulationSampler(classes[1:2], 9, 5, xp.shape[1:], workers=2).draw(xp[1:2])
    assert torch.equal(alone[0], one[1])  # a class's draws do not depend on the other classes
    assert not torch.equal(PopulationSampler(classes, 10, 5, xp.shape[1:], workers=1).draw(xp), one)
    big = PopulationSampler(torch.tensor([0]), 0, 4000, (2,), workers=1).draw(torch.tensor([[0.1, 0.7]]))
    assert set(big.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(big.mean(dim=(0, 1)), torch.tensor([0.1, 0.7]), atol=0.03, rtol=0)


def test_worker_threads_end_with_their_attack() -> None:
    import gc
    import threading
    import time

    from nmprivacy.attacks.engine import FastLIFOracle
    from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig

    torch.manual_seed(0)
    model = SNNNorse(SNNNorseConfig(input_shape=SHAPE, num_classes=4, hidden=12)).freeze()
    before = threading.active_count()
    for seed in range(6):  # each run: a new sampler pool and a new engine pool (2 workers each)
        get_attack("bl-v2", BLv2Settings(population=2, iterations=1), oracle=lambda m: FastLIFOracle(m, workers=2), steps=3).run(model, [0, 1, 2], seed)
        gc.collect()
    time.sleep(0.2)
    assert threading.active_count() <= before + 4
