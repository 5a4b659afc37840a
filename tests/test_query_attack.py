"""The query-only attack bl-v2-query: its estimator, counted oracles (emulation and Lava) and CLI."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
import torch

from hw_export.netx_emulation import load_netx
from hw_export.netx_export import export_netx
from nmprivacy.attacks import ATTACKS, get_attack
from nmprivacy.attacks.blv2_query import BernoulliEstimator, RateMap, shape_fitness, visible_confidence
from nmprivacy.attacks.blv2 import class_generator
from nmprivacy.attacks.query_oracle import EmulationOracle, QueryInversion, spike_labels
from nmprivacy.errors import NmprivacyError
from nmprivacy.presets import BLv2QuerySettings
from test_hw_export import CLASSES, SHAPE, T, small_snn_lava


@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    """A 16-24-4 snn-lava target exported to NetX (both layers spike on 40 % rate inputs)."""
    path = tmp_path_factory.mktemp("query") / "tiny.net"
    export_netx(small_snn_lava(), path, meta={"dataset": "digits", "steps": T})
    return path


def queries(batch: int, seed: int = 0, p: float = 0.4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, T, *SHAPE, generator=g) < p).float()


# --- the estimator -------------------------------------------------------------------------------

def exact_gradient(p: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """d E[L] / d p by enumerating every binary x (``table[x]`` = L(x), x in lexicographic order)."""
    pg = p.detach().clone().double().requires_grad_(True)
    flat = pg.reshape(-1)
    expectation = 0
    for i, bits in enumerate(itertools.product((0.0, 1.0), repeat=flat.numel())):
        x = torch.tensor(bits, dtype=torch.float64)
        expectation = expectation + table[i] * torch.prod(flat * x + (1 - flat) * (1 - x))
    expectation.backward()
    return pg.grad.float()


@pytest.mark.parametrize("shaping, antithetic", [("none", False), ("none", True), ("baseline", False), ("baseline", True)])
def test_bernoulli_score_estimator_is_unbiased(shaping, antithetic):
    # 6 Bernoulli variables (T = 2 steps x 3 inputs, one rate per step): E[L] is exact by enumeration
    steps, shape = 2, (1, 1, 3)
    rates = RateMap(steps, shape, bins=steps, grid=None)
    theta = torch.tensor([[[[0.2, 0.5, 0.7]]], [[[0.9, 0.35, 0.6]]]])  # [bins, C, H, W]
    table = torch.randn(2**6, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 2.0
    exact = exact_gradient(theta, table)
    pop = 200_000
    settings = BLv2QuerySettings(estimator="bernoulli", score="vanilla", shaping=shaping, antithetic=antithetic, population=pop)
    est = BernoulliEstimator(rates, settings, class_generator(0, 0))
    x = est.draw(theta)  # [P, T, 1, 1, 3]
    index = (x.reshape(pop, -1).long() * (2 ** torch.arange(5, -1, -1))).sum(dim=1)
    losses = table[index].float()
    g = est.gradient(shape_fitness(losses[None], shaping, est.groups)[0])
    assert g.shape == theta.shape
    assert torch.allclose(g, exact, atol=0.03), (g, exact)  # standard error ~0.01 at this population
    # the natural-gradient form is the same estimate times p (1 - p): a different, scaled direction
    nat = BernoulliEstimator(rates, replace(settings, score="natural"), class_generator(0, 0))
    x2 = nat.draw(theta)
    assert torch.equal(x2, x)
    g_nat = nat.gradient(shape_fitness(losses[None], shaping, nat.groups)[0])
    assert torch.allclose(g_nat, exact * theta * (1 - theta), atol=0.01)
    assert not torch.allclose(g_nat, exact, atol=0.03)


def test_antithetic_pairs_are_bernoulli_and_negatively_correlated():
    rates = RateMap(4, (1, 2, 2), bins=1, grid=None)
    theta = torch.full((1, 1, 2, 2), 0.3)
    est = BernoulliEstimator(rates, BLv2QuerySettings(estimator="bernoulli", population=20_000, antithetic=True), class_generator(1, 2))
    x = est.draw(theta)
    assert abs(float(x.mean()) - 0.3) < 0.01
    first, second = x[:10_000], x[10_000:]
    assert float((first * second).mean()) == 0.0  # p < 1/2: u < p and u > 1 - p never both hold


def test_rate_map_adjoint_and_time_sharing():
    rates = RateMap(6, (1, 8, 8), bins=2, grid=3)
    theta = torch.rand(2, 2, 1, 3, 3)
    g = torch.randn(2, 2, 1, 8, 8)
    lhs = (rates.spatial(theta) * g).sum()
    rhs = (theta * rates.spatial_adjoint(g)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-5)
    p = rates.probabilities(theta)  # [K, T, C, H, W]
    assert p.shape == (2, 6, 1, 8, 8) and torch.equal(p[:, 0], p[:, 2]) and torch.equal(p[:, 3], p[:, 5])
    assert not torch.equal(p[:, 0], p[:, 3])
    assert float(p.min()) >= float(theta.min()) - 1e-6 and float(p.max()) <= float(theta.max()) + 1e-6  # convex


def test_rank_shaping_is_centred_and_ties_share_ranks():
    f = shape_fitness(torch.tensor([[0.3, 0.1, 0.3, 0.9], [0.5, 0.5, 0.5, 0.5]]), "rank", 4)
    assert torch.allclose(f.sum(dim=1), torch.zeros(2))
    assert f[0, 1] == -0.5 and f[0, 3] == 0.5 and f[0, 0] == f[0, 2]
    assert torch.equal(f[1], torch.zeros(4))  # no information, no step


# --- oracles --------------------------------------------------------------------------------------

def test_query_counting_is_exact(tiny_net):
    emu = load_netx(tiny_net)
    oracle = EmulationOracle(emu, "counts", max_queries=20)
    for b in (1, 7, 5):
        answer = oracle(queries(b, seed=b))
        assert answer.counts.shape == (b, CLASSES) and len(answer) == b
    assert oracle.queries == 13 and oracle.batches == 3
    with pytest.raises(NmprivacyError, match="allows 20 queries"):
        oracle(queries(8))
    assert oracle.queries == 13  # a refused batch is not counted
    with pytest.raises(NmprivacyError, match="binary"):
        oracle(torch.full((2, T, *SHAPE), 0.5))
    with pytest.raises(NmprivacyError, match="inputs per step"):
        oracle(torch.zeros(2, T, 15))

    # the attack's own count: K classes x population x iterations, nothing else
    seen = []
    settings = BLv2QuerySettings(population=6, iterations=4, query_budget=None, grid=None, trace_points=(10, 50, 70))

    def factory(model, threat):
        seen.append(EmulationOracle(model, threat))
        return seen[-1]

    inv = get_attack("bl-v2-query", settings, oracle=factory, steps=T).run(emu, [0, 2, 3], seed=0)
    assert isinstance(inv, QueryInversion)
    assert inv.queries == seen[0].queries == 3 * 6 * 4 and inv.oracle == "emulation" and inv.threat == "counts"
    assert inv.trace.queries.tolist() == [18, 54, 72]  # first iteration past 10, past 50, and the end
    assert inv.trace.rates.shape == (3, 3, 1, *SHAPE) and inv.trace.probabilities(0).shape == (3, T, *SHAPE)
    assert inv.seen.shape == (3, 6, CLASSES)
    budget = get_attack("bl-v2-query", replace(settings, query_budget=100), steps=T)
    assert budget.iterations_for(3) == 5  # 100 // (3 x 6)
    with pytest.raises(NmprivacyError, match="does not cover one iteration"):
        get_attack("bl-v2-query", replace(settings, query_budget=10), steps=T).run(emu, [0, 2, 3])


def test_threat_levels_show_only_their_output(tiny_net):
    emu = load_netx(tiny_net)
    x = queries(9, seed=4)
    counts = EmulationOracle(emu, "counts")(x)
    label = EmulationOracle(emu, "label")(x)
    membrane = EmulationOracle(emu, "membrane")(x)
    assert counts.labels is None and counts.membrane is None and int(counts.counts.sum()) > 0
    assert label.counts is None and torch.equal(label.labels, spike_labels(counts.counts))
    assert membrane.counts is None and membrane.membrane.shape == (9, T, CLASSES)
    assert spike_labels(torch.tensor([[0, 0, 0], [2, 5, 5], [1, 0, 3]])).tolist() == [-1, 1, 2]
    v = visible_confidence(label, CLASSES)
    assert torch.equal(v.sum(dim=1), (label.labels >= 0).float())


def test_emulation_backends_agree(tiny_net):
    emu = load_netx(tiny_net)
    x = queries(10, seed=7)
    for threat in ("counts", "label", "membrane"):
        engine = EmulationOracle(emu, threat, backend="engine")(x)
        spikes = EmulationOracle(emu, threat, backend="layer-spikes")(x)
        for name in ("counts", "labels", "membrane"):
            a, b = getattr(engine, name), getattr(spikes, name)
            assert (a is None and b is None) or torch.equal(a, b), (threat, name)
    generic = EmulationOracle(emu, "membrane", backend="membrane-only")
    assert torch.equal(generic(x).membrane, EmulationOracle(emu, "membrane")(x).membrane)
    with pytest.raises(NmprivacyError, match="no spike counts"):
        EmulationOracle(emu, "counts", backend="membrane-only")
    labels = EmulationOracle(emu, "label", backend="membrane-only")(x).labels  # the model's own prediction
    assert torch.equal(labels, emu.predict(x.transpose(0, 1)))


def test_lava_oracle_equals_emulation_oracle(tiny_net):
    from hw_export.lava_oracle import LavaOracle

    emu = load_netx(tiny_net)
    x = queries(12, seed=11)
    for threat in ("counts", "membrane"):  # label is a function of the counts (tested above)
        lava = LavaOracle(tiny_net, threat)
        got, expected = lava(x), EmulationOracle(emu, threat)(x)
        assert lava.queries == 12 and lava.batches == 1
        for name in ("counts", "labels", "membrane"):
            a, b = getattr(got, name), getattr(expected, name)
            assert (a is None and b is None) or torch.equal(a, b), (threat, name)
    assert int(got.membrane.abs().sum()) > 0 and int(expected.membrane.abs().sum()) > 0
    counts = EmulationOracle(emu, "counts")(x).counts
    assert int(counts.sum()) > 0 and len(set(counts.argmax(dim=1).tolist())) > 1  # outputs differ between queries


# --- the attack -----------------------------------------------------------------------------------

@pytest.mark.parametrize("threat", ["counts", "membrane"])
def test_attack_raises_the_target_confidence(tiny_net, threat):
    emu = load_netx(tiny_net)
    settings = BLv2QuerySettings(population=16, iterations=25, query_budget=None, grid=None, threat=threat, lr=0.05)
    inv = get_attack("bl-v2-query", settings, steps=T).run(emu, list(range(CLASSES)), seed=0)
    first, last = inv.confidence_curve[0].mean(), inv.confidence_curve.max(dim=0).values.mean()
    assert last > first + 0.2, inv.confidence_curve.mean(dim=1)
    with torch.no_grad():  # the returned X_p, judged by the model's own read-out
        conf = emu.probabilities(torch.bernoulli(inv.probabilities.transpose(0, 1), generator=torch.Generator().manual_seed(0)))
    assert float(conf.diagonal().mean()) > 1.0 / CLASSES + 0.2
    assert inv.probabilities.shape == (CLASSES, T, *SHAPE) and inv.reconstructions.shape == inv.probabilities.shape


def test_registry_and_bad_settings(tiny_net):
    assert "bl-v2-query" in ATTACKS
    emu = load_netx(tiny_net)
    with pytest.raises(NmprivacyError, match="even population"):
        get_attack("bl-v2-query", BLv2QuerySettings(population=5, query_budget=None, iterations=1), steps=T).run(emu, [0])
    with pytest.raises(NmprivacyError, match="setting 'threat' is 'logits': choose one of 'counts', 'label', 'membrane'"):
        BLv2QuerySettings(threat="logits", query_budget=None, iterations=1)  # refused when built, before any query


def test_cli_attack_with_both_oracles(tiny_net, tmp_path, capsys):
    from nmprivacy.cli import main

    for oracle in ("emulation", "lava"):
        out = tmp_path / f"{oracle}.pt"
        assert main(["attack", "--attack", "bl-v2-query", "--model", str(tiny_net), "--oracle", oracle, "--queries", "160",
                     "--classes", "0,1", "--out", str(out)]) == 0
        summary = json.loads(out.with_suffix(".json").read_text())
        assert summary["queries"] == 160 and summary["oracle"] == oracle and summary["threat"] == "counts"
        assert summary["trace"]["queries"][-1] == 160
        saved = torch.load(out, weights_only=True)
        assert saved["trace_rates"].shape[1:3] == (2, 1) and saved["trace_queries"][-1] == 160
    assert "160 queries" in capsys.readouterr().out

    from nmprivacy.evaluation.leakage import leakage_curve, leakage_figure, load_trace

    trace = load_trace(out)  # the leakage-vs-queries curve, judged here by the target itself
    assert trace.queries.tolist() == summary["trace"]["queries"] and trace.probabilities(0).shape == (2, T, *SHAPE)
    curve = leakage_curve([load_netx(tiny_net)], trace, [0, 1], seed=0)
    assert [p["queries"] for p in curve] == trace.queries.tolist()
    assert all(0.0 <= p["attack_acc"] <= 1.0 and 0.0 <= p["daa"] <= 1.0 for p in curve)
    assert leakage_figure({"bl-v2-query": curve}, tmp_path / "leak.png", chance=0.5).stat().st_size > 0
    torch.save({"reconstructions": torch.zeros(2, T, *SHAPE)}, tmp_path / "plain.pt")
    assert load_trace(tmp_path / "plain.pt") is None  # other attacks' files have no trace
    assert main(["attack", "--attack", "bl-v2-query", "--model", str(tiny_net), "--queries", "3", "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--queries" in err[0] and not (tmp_path / "x.pt").exists()
    assert main(["attack", "--attack", "bl-v2-query", "--model", str(tiny_net), "--queries", "100", "--iterations", "2", "--out", str(tmp_path / "x.pt")]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_audit_selects_the_query_attack_on_loihi_targets():
    from nmprivacy.audit import AuditConfig, attack_plan
    from nmprivacy.presets import preset_for

    preset = preset_for("digits")
    names = lambda cfg: [n for n, _, _ in attack_plan(preset, "image", cfg)]  # noqa: E731
    assert names(AuditConfig()) == ["bl-v1", "bl-v2", "mi-face", "bl-v2-query", "bl-auto"]  # snn-lava runs bit-exactly on Loihi
    assert names(AuditConfig(target="model.net")) == ["bl-v1", "bl-v2", "mi-face", "bl-v2-query", "bl-auto"]
    assert "bl-v2-query" not in names(AuditConfig(target="snn-norse"))
    assert names(AuditConfig(target="snn-norse", attacks=("bl-v2-query", "bl-v2"), variant="default")) == ["bl-v2", "bl-v2-query"]
    with pytest.raises(NmprivacyError, match="--attacks bl-v3"):
        names(AuditConfig(attacks=("bl-v3",)))
