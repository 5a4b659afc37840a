"""Who trains on what, and how scores are pooled: LiRA's evaluation protocol (docs/method.md §9.4).

``random_halves(N, M, seed)``: ``[N, M]`` bool, model i trains on record j where True: each
model on its own uniformly random half (``M // 2`` records), drawn independently of the other
models, so every record is IN for about half of them. Independence matters: which references
hold a record then tells nothing about whether the target does. (An exactly balanced assignment,
each record IN for exactly ``N / 2`` models as in Carlini et al.'s code, leaks it: a member of
the target is IN for one reference fewer, which a classifier on the references' IN rate, such
as the shadow attack's, picks up: AUC 0.41 measured on untrained models.) The price: a record
may have no IN (or no OUT) reference, about ``2^-(N-1)`` of them each; attacks leave those
unscored (NaN), which is independent of the target's membership.

``leave_one_out``: each model in turn is the target and the others are its references; the
(record, member?) pairs of all targets are pooled into one ROC. ``single_target``: a model
nmprivacy did not train (a NetX file, a NIR graph) is the one target, all trained models its
references, with the membership the caller knows (the file's training split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmprivacy.membership.base import AttackInput, MembershipAttack


def random_halves(models: int, records: int, seed: int) -> np.ndarray:
    """``[models, records]`` bool: each model IN on its own random half (``records // 2``
    records), independently of the other models."""
    rng = np.random.default_rng(seed)
    keep = np.zeros((models, records), dtype=bool)
    for i in range(models):
        keep[i, rng.permutation(records)[: records // 2]] = True
    return keep


@dataclass(frozen=True)
class Pooled:
    """Scores of one attack pooled over targets: ``scores``, ``members`` and ``target`` (index of
    the target model) ``[P]`` for the scored pairs, and ``unscored`` pairs the attack left NaN."""

    scores: np.ndarray
    members: np.ndarray
    target: np.ndarray
    unscored: int


def attack_input(target: np.ndarray, references: np.ndarray, reference_in: np.ndarray, labels: np.ndarray,
                 population_target: np.ndarray, population_references: np.ndarray, population_labels: np.ndarray) -> AttackInput:
    """An ``AttackInput`` from arrays (see ``nmprivacy.membership.base``)."""
    return AttackInput(target=target, labels=labels, references=references, reference_in=reference_in,
                       population_target=population_target, population_references=population_references, population_labels=population_labels)


def leave_one_out(attack: MembershipAttack, views: np.ndarray, keep: np.ndarray, labels: np.ndarray,
                  population_views: np.ndarray, population_labels: np.ndarray) -> Pooled:
    """Pooled scores of ``attack`` with each of the ``N`` models as the target in turn.

    ``views`` ``[N, M, Q, C]`` (every model's attacker view of the audited records), ``keep``
    ``[N, M]``, ``labels`` ``[M]``, ``population_views`` ``[N, Z, Q, C]``, ``population_labels`` ``[Z]``."""
    n = views.shape[0]
    scores, members, targets = [], [], []
    for t in range(n):
        refs = [i for i in range(n) if i != t]
        data = attack_input(views[t], views[refs], keep[refs], labels, population_views[t], population_views[refs], population_labels)
        scores.append(attack.score(data))
        members.append(keep[t])
        targets.append(np.full(keep.shape[1], t))
    return _pooled(np.concatenate(scores), np.concatenate(members), np.concatenate(targets))


def single_target(attack: MembershipAttack, target: np.ndarray, members: np.ndarray, references: np.ndarray, keep: np.ndarray,
                  labels: np.ndarray, population_target: np.ndarray, population_references: np.ndarray,
                  population_labels: np.ndarray) -> Pooled:
    """Scores of ``attack`` on one target ``[M, Q, C]`` whose membership ``members`` ``[M]`` is
    known, with ``references`` ``[R, M, Q, C]`` trained on ``keep`` ``[R, M]``."""
    data = attack_input(target, references, keep, labels, population_target, population_references, population_labels)
    return _pooled(attack.score(data), np.asarray(members, dtype=bool), np.zeros(len(members), dtype=np.int64))


def _pooled(scores: np.ndarray, members: np.ndarray, targets: np.ndarray) -> Pooled:
    ok = np.isfinite(scores)
    return Pooled(scores[ok], members[ok], targets[ok], int((~ok).sum()))
