"""Membership inference, core library: metrics against scikit-learn, LiRA against the exact
likelihood ratio, the threat levels' signals, the protocol, and the attacks on a model that
memorises random labels, on scores that carry no membership, and against ART's black-box attack."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from nmprivacy.errors import NmprivacyError
from nmprivacy.membership import MEMBERSHIP_ATTACKS, AttackInput, attack_settings, get_membership_attack
from nmprivacy.membership.lira import LiRA, LiRAOffline, LiRASettings
from nmprivacy.membership.metrics import auc, balanced_accuracy, roc, summarize, tpr_at_fpr
from nmprivacy.membership.observables import Observations, attacker_view, logit_confidence, readout_logprob, true_class_probability
from nmprivacy.membership.protocol import leave_one_out, random_halves
from nmprivacy.membership.rmia import RMIA, RMIASettings
from nmprivacy.membership.shadow import ShadowAttack, ShadowSettings, probability_vectors


# --- metrics ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (2, False)])
def test_roc_metrics_agree_with_sklearn_and_a_threshold_sweep(seed, ties):
    rng = np.random.default_rng(seed)
    members = rng.random(3000) < 0.4
    scores = rng.normal(size=3000) + 0.8 * members
    if ties:
        scores = np.round(scores)  # few distinct values: large tied groups
    curve = roc(scores, members)
    assert auc(curve) == pytest.approx(roc_auc_score(members, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(members, scores)
    ours = set(zip(np.round(curve.fpr, 12), np.round(curve.tpr, 12)))
    assert set(zip(np.round(fpr, 12), np.round(tpr, 12))) <= ours  # the same curve, with every threshold kept
    # brute force: every threshold "score >= t" over the distinct scores (ties pass or fail together)
    pos, neg = members.sum(), (~members).sum()
    sweep = [((scores[~members] >= t).sum() / neg, (scores[members] >= t).sum() / pos) for t in np.unique(scores)] + [(0.0, 0.0)]
    for target in (0.001, 0.01, 0.1):
        assert tpr_at_fpr(curve, target) == pytest.approx(max(t for f, t in sweep if f <= target), abs=1e-12)
    assert balanced_accuracy(curve) == pytest.approx(max((t + 1 - f) / 2 for f, t in sweep), abs=1e-12)


def test_summary_has_bootstrap_intervals_around_the_point():
    rng = np.random.default_rng(3)
    members = rng.random(2000) < 0.5
    scores = rng.normal(size=2000) + members
    s = summarize(scores, members, bootstrap=100, seed=0)
    for key in ("auc", "balanced_acc"):
        lo, hi = s[f"{key}_ci"]
        assert lo <= s[key] <= hi and hi - lo < 0.1
    for key, value in s["tpr_at_fpr"].items():
        lo, hi = s["tpr_at_fpr_ci"][key]
        assert lo <= value + 1e-9 and value - 1e-9 <= hi
    assert set(s["tpr_at_fpr"]) == {"0.001", "0.01"} and s["pairs"] == 2000 and s["members"] + s["non_members"] == 2000
    assert summarize(scores, members, bootstrap=0)["auc_ci"] is None
    with pytest.raises(NmprivacyError, match="both members and non-members"):
        summarize(scores, np.ones(2000, dtype=bool))
    with pytest.raises(NmprivacyError, match="finite"):
        summarize(np.full(2000, np.nan), members)


# --- signals and threat levels ----------------------------------------------------------------------

def test_logit_confidence_is_stable_and_exact():
    p = np.array([0.3, 0.5, 0.2])
    logq = np.log(p)[None, None, :]  # [M=1, Q=1, C]
    assert logit_confidence(logq, np.array([0]))[0, 0] == pytest.approx(np.log(0.3 / 0.7))
    # a read-out 1e-40 away from 1: 1 - p underflows in float64, phi does not
    extreme = np.array([[[0.0, -92.1, -200.0]]])
    phi = logit_confidence(extreme, np.array([0]))
    assert np.isfinite(phi).all() and phi[0, 0] == pytest.approx(92.1, abs=1e-6)
    assert np.isfinite(logit_confidence(extreme, np.array([2]))).all()
    assert true_class_probability(np.log(p * 7)[None, None, :], np.array([1]))[0, 0] == pytest.approx(0.5)  # normalised


def test_readout_logprob_is_the_log_of_the_spike_readout():
    from nmprivacy.models.base import spike_readout

    u = torch.randn(25, 6, 10) * 30  # large membranes: softmax saturates
    assert torch.allclose(readout_logprob(u).exp(), spike_readout(u.double()), atol=1e-12)
    assert torch.isfinite(readout_logprob(u)).all()


def test_threat_views_use_only_what_the_threat_shows():
    counts = torch.tensor([[[3, 3, 0], [0, 0, 0]], [[5, 1, 0], [0, 2, 2]]], dtype=torch.int16)  # [M=2, Q=2, C=3]
    logp = torch.log_softmax(torch.randn(2, 2, 3), dim=-1)
    obs = Observations(logp, counts, torch.zeros(2, dtype=torch.long))
    v = attacker_view(obs, "counts", temperature=1.0)
    assert v.shape == (2, 2, 3) and v[0, 0, 0] == v[0, 0, 1]  # tied counts: equal probability, no tie broken
    assert np.allclose(v[0, 1], np.log(1 / 3))  # no spike at all: uniform
    assert np.allclose(attacker_view(obs, "counts", temperature=2.0)[1, 0], torch.log_softmax(torch.tensor([2.5, 0.5, 0.0], dtype=torch.float64), 0).numpy())
    assert np.array_equal(attacker_view(obs, "membrane"), logp.double().numpy())
    lab = np.exp(attacker_view(obs, "label", smoothing=0.5))  # [M, 1, C]
    # record 0: query 0 labels class 0 (tie to the lowest index), query 1 has no answer (1/3 each)
    assert lab.shape == (2, 1, 3) and np.allclose(lab[0, 0], (np.array([1 + 1 / 3, 1 / 3, 1 / 3]) + 0.5) / (2 + 1.5))
    assert np.allclose(lab[1, 0], (np.array([1, 1, 0]) + 0.5) / 3.5)
    no_spikes = Observations(logp, None, torch.zeros(2, dtype=torch.long))
    with pytest.raises(NmprivacyError, match="counts threat does not apply"):
        attacker_view(no_spikes, "counts")
    with pytest.raises(NmprivacyError, match="threat"):
        attacker_view(obs, "logits")


# --- LiRA against the exact likelihood ratio ------------------------------------------------------------

def gaussian_input(rng, m=400, r=64, q=1, gap=1.0, sd_in=0.8, sd_out=1.2):
    """Synthetic attack input whose signal phi is exactly Gaussian per record: two classes, the
    target's log-probabilities built so that phi = the drawn value."""
    mu_out = rng.normal(size=(m, 1))
    mu_in = mu_out + gap
    keep = rng.random((r, m)) < 0.5
    phi_r = np.where(keep[:, :, None], mu_in + sd_in * rng.normal(size=(r, m, q)), mu_out + sd_out * rng.normal(size=(r, m, q)))
    member = rng.random(m) < 0.5
    phi_t = np.where(member[:, None], mu_in + sd_in * rng.normal(size=(m, q)), mu_out + sd_out * rng.normal(size=(m, q)))

    def as_logq(phi):  # two classes, label 0: log p_0 - log p_1 = phi
        return np.stack([phi, np.zeros_like(phi)], axis=-1)

    data = AttackInput(target=as_logq(phi_t), labels=np.zeros(m, dtype=np.int64), references=as_logq(phi_r), reference_in=keep)
    return data, phi_t, phi_r, keep, member, (mu_in, mu_out, sd_in, sd_out)


def test_lira_equals_the_exact_gaussian_likelihood_ratio():
    rng = np.random.default_rng(0)
    data, phi_t, phi_r, keep, member, _ = gaussian_input(rng, r=40, q=2)
    scores = LiRA(LiRASettings(variance="per-example", floor=0.0)).score(data)
    for j in range(0, 400, 37):
        ins, outs = phi_r[keep[:, j], j], phi_r[~keep[:, j], j]  # [n, Q]
        expected = np.mean([norm.logpdf(phi_t[j, k], ins[:, k].mean(), ins[:, k].std(ddof=1))
                            - norm.logpdf(phi_t[j, k], outs[:, k].mean(), outs[:, k].std(ddof=1)) for k in range(2)])
        assert scores[j] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    offline = LiRAOffline(LiRASettings(variance="per-example", floor=0.0)).score(data)
    j = 5
    outs = phi_r[~keep[:, j], j]
    expected = np.mean([norm.logcdf(phi_t[j, k], outs[:, k].mean(), outs[:, k].std(ddof=1)) for k in range(2)])
    assert offline[j] == pytest.approx(expected, rel=1e-9)


def test_lira_decides_as_the_true_likelihood_ratio_with_many_references():
    rng = np.random.default_rng(1)
    data, phi_t, _, _, member, (mu_in, mu_out, sd_in, sd_out) = gaussian_input(rng, m=2000, r=400)
    scores = LiRA(LiRASettings(variance="per-example")).score(data)
    exact = norm.logpdf(phi_t[:, 0], mu_in[:, 0], sd_in) - norm.logpdf(phi_t[:, 0], mu_out[:, 0], sd_out)
    assert np.mean((scores > 0) == (exact > 0)) > 0.98  # the Neyman-Pearson decision at ratio 1
    assert np.corrcoef(scores, exact)[0, 1] > 0.98  # ~200 references a side: the fitted variances are ~5 % off
    assert roc_auc_score(member, scores) == pytest.approx(roc_auc_score(member, exact), abs=0.01)


def test_lira_global_variance_and_unscorable_records():
    rng = np.random.default_rng(2)
    data, *_ = gaussian_input(rng, m=50, r=3)
    auto = LiRA().score(data)  # 3 references: auto picks the global variance
    assert np.allclose(auto, LiRA(LiRASettings(variance="global")).score(data), equal_nan=True)
    scorable = data.reference_in.any(axis=0) & (~data.reference_in).any(axis=0)  # an IN and an OUT reference
    assert 0 < scorable.sum() < 50 and np.isnan(auto[~scorable]).all() and np.isfinite(auto[scorable]).all()
    # references that agree exactly (discrete counts) give a finite ratio, not inf
    same = AttackInput(target=data.target, labels=data.labels, references=np.repeat(data.references[:1], 6, axis=0),
                       reference_in=np.tile(np.array([[True], [False]] * 3), (1, 50)))
    assert np.isfinite(LiRA(LiRASettings(variance="per-example")).score(same)).all()


# --- the protocol -----------------------------------------------------------------------------------

def test_random_halves_are_halves_and_tell_nothing_about_the_target():
    keep = random_halves(16, 1001, seed=0)
    assert (keep.sum(axis=1) == 500).all()
    assert abs(keep.mean(axis=0).mean() - 0.5) < 0.01
    # how many other models hold a record carries no information about whether model 0 does:
    # the "count attack" scores at chance (an exactly balanced assignment would score AUC 1)
    counts = keep[1:].sum(axis=0)
    assert abs(roc_auc_score(keep[0], -counts) - 0.5) < 0.05


# --- attacks on real models -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def memorised():
    """8 small MLPs (nmprivacy's ``ann``), each trained to memorise random labels of its own random
    half of 160 random records; their log-probabilities ``[8, 160, 1, 10]`` and the membership."""
    from nmprivacy.membership.observables import observe
    from nmprivacy.models import build
    from nmprivacy.models.ann import ANNConfig

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(160, 1, 4, 5, generator=gen)
    y = torch.randint(0, 10, (160,), generator=gen)
    keep = random_halves(8, 160, seed=1)
    views = []
    for i in range(8):
        torch.manual_seed(i)
        model = build("ann", ANNConfig(input_shape=(1, 4, 5), num_classes=10, hidden=128))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        idx = torch.as_tensor(np.flatnonzero(keep[i]))
        for _ in range(300):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        obs = observe(model.eval(), x, "image", None, queries=1, seed=0)
        assert float((obs.pred[idx] == y[idx]).double().mean()) > 0.95  # memorised
        views.append(attacker_view(obs, "membrane"))
    return np.stack(views), keep, y.numpy()


@pytest.mark.parametrize("name", ["lira", "lira-offline", "loss", "rmia", "shadow"])
def test_a_model_that_memorises_random_labels_is_found(memorised, name):
    views, keep, y = memorised
    pop_views, pop_y = views[:, -20:], y[-20:]  # the last 20 records play the population z (held by some models: only a test)
    settings = ShadowSettings(classifier="lr") if name == "shadow" else None
    pooled = leave_one_out(get_membership_attack(name, settings), views[:, :-20], keep[:, :-20], y[:-20], pop_views, pop_y)
    assert roc_auc_score(pooled.members, pooled.scores) > 0.9


def test_scores_independent_of_membership_give_chance():
    rng = np.random.default_rng(7)
    n, m = 16, 3000
    keep = random_halves(n, m, seed=3)
    views = np.log(rng.dirichlet(np.ones(10), size=(n, m, 2)))  # [N, M, Q, C], no relation to keep
    labels = rng.integers(0, 10, m)
    pop = np.log(rng.dirichlet(np.ones(10), size=(n, 200, 2)))
    for name in ("lira", "rmia", "loss"):
        pooled = leave_one_out(get_membership_attack(name), views, keep, labels, pop, rng.integers(0, 10, 200))
        s = summarize(pooled.scores, pooled.members, bootstrap=0)
        assert abs(s["auc"] - 0.5) < 0.02, name
        assert s["tpr_at_fpr"]["0.01"] < 0.02, name  # ~ 1 % (the ROC of a random score follows the diagonal)


def test_rmia_offline_uses_the_papers_approximation_and_works_with_one_reference():
    # one OUT reference: Pr(x) = ((1 + a) p_out + 1 - a) / 2
    p_t, p_ref, p_zt, p_zr = 0.9, 0.6, np.array([0.5, 0.8, 0.95]), np.array([0.5, 0.5, 0.5])

    def logq(p):
        p = np.asarray(p, dtype=float)
        return np.log(np.stack([p, 1 - p], axis=-1))[..., None, :]

    data = AttackInput(target=logq([p_t]), labels=np.zeros(1, dtype=np.int64), references=logq([[p_ref]]), reference_in=np.array([[False]]),
                       population_target=logq(p_zt), population_references=logq([p_zr]), population_labels=np.zeros(3, dtype=np.int64))
    a = 0.3
    ratio_x = p_t / (((1 + a) * p_ref + 1 - a) / 2)
    ratio_z = p_zt / (((1 + a) * p_zr + 1 - a) / 2)
    for gamma in (1.0, 1.2):
        expected = np.mean(ratio_x / ratio_z >= gamma)
        got = RMIA(RMIASettings(mode="offline", a=a, gamma=gamma)).score(data)[0]
        assert got == pytest.approx(expected)
    online = RMIA(RMIASettings(mode="online")).score(replace_in(data, True))[0]
    assert online == pytest.approx(np.mean((p_t / p_ref) / (p_zt / 0.5) >= 1))
    assert np.isnan(RMIA(RMIASettings(mode="offline")).score(replace_in(data, True))[0])  # no OUT reference: unscored


def replace_in(data: AttackInput, value: bool) -> AttackInput:
    from dataclasses import replace

    return replace(data, reference_in=np.full_like(data.reference_in, value))


def test_shadow_matches_arts_black_box_attack(memorised):
    art = pytest.importorskip("art", reason="IBM ART (adversarial-robustness-toolbox, the [test] extra) is not installed")
    del art
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier
    from sklearn.ensemble import RandomForestClassifier

    views, keep, y = memorised
    target, refs, ref_in = views[0], views[1:], keep[1:]
    ref_probs = probability_vectors(refs)  # [R, M, C]
    target_probs = probability_vectors(target)
    rows = ref_probs.reshape(-1, 10)
    labels = np.tile(y, refs.shape[0])
    member = ref_in.reshape(-1)
    estimator = BlackBoxClassifier(lambda x: x, input_shape=(10,), nb_classes=10)
    for kind, make in (("lr", None), ("rf", lambda: RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1))):
        ours = ShadowAttack(ShadowSettings(classifier=kind, per_class=False, max_rows=None), estimator=make() if make else None)
        mine = ours.score(AttackInput(target=target, labels=y, references=refs, reference_in=ref_in))
        attack = MembershipInferenceBlackBox(estimator, attack_model_type=kind)
        if make:
            attack.attack_model = make()  # ART's default forest, seeded like ours
        attack.fit(y=labels[member], test_y=labels[~member], pred=rows[member], test_pred=rows[~member])
        theirs = attack.infer(None, y, pred=target_probs, probabilities=True).reshape(-1)
        auc_ours, auc_art = roc_auc_score(keep[0], mine), roc_auc_score(keep[0], theirs)
        # a linear model on (probabilities, one-hot label) cannot pair the true class with its probability: weak, but the same as ART's
        assert auc_ours > (0.9 if kind == "rf" else 0.55) and abs(auc_ours - auc_art) < 0.03, (kind, auc_ours, auc_art)


# --- registry -------------------------------------------------------------------------------------

def test_registry_and_settings_errors_are_one_line():
    assert set(MEMBERSHIP_ATTACKS) == {"lira", "lira-offline", "rmia", "loss", "shadow"}
    assert attack_settings("rmia", {"mode": "offline", "a": 1}).a == 1.0
    for name, values, match in (("rmia", {"mode": "both"}, "choose one of"), ("lira", {"nope": 1}, "no setting 'nope'"),
                                ("shadow", {"per_class": "yes"}, "shadow.per_class"), ("nope", {}, "unknown membership attack")):
        with pytest.raises(NmprivacyError, match=match) as exc:
            attack_settings(name, values)
        assert "\n" not in str(exc.value)
    with pytest.raises(NmprivacyError, match="unknown shadow classifier"):
        ShadowAttack(ShadowSettings(classifier="svm"))  # type: ignore[arg-type]
