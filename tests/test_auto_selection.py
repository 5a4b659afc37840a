"""The selection-rule study (``benchmarks/auto_selection``) replays bl-auto's own rule exactly, and
its "best member" without the winner's curse behaves as it says."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from benchmarks.auto_selection import consensus, cross_fitted_best, rules
from nmprivacy.attacks.auto import select


def test_the_replayed_rule_is_bl_autos_select() -> None:
    gen = torch.Generator().manual_seed(3)
    for _ in range(50):
        m, k = 5, 12
        conf = torch.rand(m, k, generator=gen).round(decimals=2)  # rounded: exact ties happen
        dens = torch.rand(m, k, generator=gen) * 0.8
        members = {f"m{i}": SimpleNamespace(confidence=conf[i], density=dens[i]) for i in range(m)}
        feats = {"conf": conf, "density": dens, "robust": conf, "consensus": torch.zeros(m, k)}
        replay = rules(feats)["conf, tie 0.02, densest"]
        assert [f"m{int(i)}" for i in replay] == select(members, 0.02, None)


def test_cross_fitted_best_pays_for_choosing_among_noisy_rows() -> None:
    # rows of a 2x2 confidence matrix per member: member 0 always right, member 1 right on class 0 only
    right = [[1.0, 0.0], [0.0, 1.0]]
    half = [[1.0, 0.0], [1.0, 0.0]]
    steady = {"seeds": [{"rows": [[right, half]]} for _ in range(4)]}
    assert cross_fitted_best(steady, "attack_acc") == 1.0
    # two members that are each right on alternate seeds: hindsight best is 0.5 on average either way,
    # but the one chosen on seeds {0, 1} is measured on {2, 3} where it was wrong
    flip = {"seeds": [{"rows": [[right, half]]}, {"rows": [[right, half]]}, {"rows": [[half, right]]}, {"rows": [[half, right]]}]}
    assert cross_fitted_best(flip, "attack_acc") == 0.5


def test_consensus_is_highest_for_the_member_most_like_the_others() -> None:
    a = torch.zeros(1, 2, 4)
    a[0, :, :2] = 1.0
    b = a.clone()
    c = torch.zeros(1, 2, 4)
    c[0, :, 3] = 1.0
    cons = consensus({"a": a, "b": b, "c": c})
    assert torch.allclose(torch.stack([cons[n][0] for n in "abc"]), torch.tensor([0.5, 0.5, 0.0]))


def test_replay_scores_each_rule_on_the_stored_rows() -> None:
    from benchmarks.auto_selection import replay

    k = 3
    right = torch.eye(k).tolist()  # evaluator rows: class k recognised as k
    wrong = torch.roll(torch.eye(k), 1, dims=1).tolist()
    names = ["bl-v1:default", "bl-v2:default"]
    conf = [[0.5, 0.5, 0.5], [0.6, 0.9, 0.55]]  # BL-v2 more confident everywhere; by 0.4 only on class 1
    seed = {"members": names, "winners": ["bl-v2:default"] * k, "conf": conf, "density": [[0.1] * k, [0.1] * k], "robust": conf,
            "consensus": [[0.0] * k, [0.0] * k], "rows": [[right, wrong]], "correct": [[1.0] * k, [0.0] * k]}
    out = replay({"network": "n", "split": "s", "seeds": [seed]})["rules"]
    assert out["member bl-v1:default"]["attack_acc"] == 1.0 and out["member bl-v2:default"]["attack_acc"] == 0.0
    assert out["bl-auto as run"]["attack_acc"] == out["conf, tie 0.02, densest"]["attack_acc"] == 0.0
    assert abs(out["BL-v1 default unless beaten by 0.3"]["attack_acc"] - 2 / 3) < 1e-9  # class 1: BL-v2 beats it by 0.4
    assert out["oracle (evaluators; upper bound)"]["attack_acc"] == 1.0
