"""The shadow-model attack of Shokri et al. 2017 ("Membership Inference Attacks against Machine
Learning Models"); docs/method.md §9.3.

The reference models are the shadow models: each one's output vector for every record, labelled
IN or OUT of that shadow's training half, trains a binary attack classifier (scikit-learn), which
then reads the target's output vectors. Features: the class-probability vector the threat level
shows (``attacker_view``, normalised, mean over queries); with ``per_class`` (Shokri's form) one
classifier per true class on the vector alone, else one classifier on the vector and the one-hot
true class (the features of ART's ``MembershipInferenceBlackBox``). Features are standardised
(``StandardScaler``, as ART does) before the classifier. Score: the classifier's probability of
IN. A class whose training rows are all IN or all OUT scores its records with that rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nmprivacy.errors import NmprivacyError
from nmprivacy.membership.base import AttackInput, MembershipAttack

CLASSIFIERS = ("gb", "rf", "lr", "mlp")


@dataclass(frozen=True)
class ShadowSettings:
    """The attack classifier: ``gb`` (``HistGradientBoostingClassifier``), ``rf`` (random
    forest), ``lr`` (logistic regression) or ``mlp`` (Shokri's small neural network); one per
    class or one for all; at most ``max_rows`` training rows (a seeded random subset)."""

    classifier: Literal["gb", "rf", "lr", "mlp"] = "gb"
    per_class: bool = True
    seed: int = 0
    max_rows: int | None = 200_000


def make_classifier(name: str, seed: int) -> Any:
    """A fresh scikit-learn classifier of the named kind."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if name == "gb":
        return HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    if name == "rf":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    if name == "lr":
        return LogisticRegression(max_iter=1000)
    if name == "mlp":
        return MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=seed)
    raise NmprivacyError(f"unknown shadow classifier '{name}': choose one of {', '.join(CLASSIFIERS)}")


def probability_vectors(logq: np.ndarray) -> np.ndarray:
    """Normalised class probabilities, mean over queries: ``[..., M, Q, C]`` -> ``[..., M, C]``."""
    from scipy.special import softmax

    return softmax(logq, axis=-1).mean(axis=-2)


def features(probs: np.ndarray, labels: np.ndarray, num_classes: int, with_label: bool) -> np.ndarray:
    """Attack features ``[M, C]`` (or ``[M, 2C]`` with the one-hot label appended)."""
    if not with_label:
        return probs.astype(np.float64)
    onehot = np.eye(num_classes)[np.asarray(labels, dtype=np.int64)]
    return np.concatenate([probs, onehot], axis=1)


class ShadowAttack(MembershipAttack):
    """Shokri et al.'s shadow-model attack (module docstring); ``estimator`` (a scikit-learn
    classifier) replaces the named one, e.g. to compare with another implementation."""

    name = "shadow"

    def __init__(self, settings: ShadowSettings | None = None, estimator: Any = None) -> None:
        self.settings = settings or ShadowSettings()
        self.estimator = estimator
        if estimator is None:
            make_classifier(self.settings.classifier, self.settings.seed)  # a bad name fails here, not after the references

    def _fit_predict(self, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        from sklearn.base import clone
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if y_train.all() or not y_train.any():
            return np.full(x_test.shape[0], float(y_train.mean()) if y_train.size else 0.5)
        base = clone(self.estimator) if self.estimator is not None else make_classifier(self.settings.classifier, self.settings.seed)
        model = make_pipeline(StandardScaler(), base).fit(x_train, y_train)
        return model.predict_proba(x_test)[:, list(model.classes_).index(True)]

    def score(self, data: AttackInput) -> np.ndarray:
        self.check(data)
        r, m = data.reference_in.shape
        c = data.target.shape[-1]
        ref_probs = probability_vectors(data.references).reshape(r * m, c)
        ref_labels = np.tile(data.labels, r)
        ref_in = data.reference_in.reshape(-1)
        keep = np.arange(r * m)
        if self.settings.max_rows is not None and keep.size > self.settings.max_rows:
            keep = np.sort(np.random.default_rng(self.settings.seed).choice(keep, self.settings.max_rows, replace=False))
        target_probs = probability_vectors(data.target)
        if not self.settings.per_class:
            x_train = features(ref_probs[keep], ref_labels[keep], c, with_label=True)
            return self._fit_predict(x_train, ref_in[keep], features(target_probs, data.labels, c, with_label=True))
        out = np.full(m, np.nan)
        for cls in np.unique(data.labels):
            rows = keep[ref_labels[keep] == cls]
            mine = data.labels == cls
            out[mine] = self._fit_predict(ref_probs[rows], ref_in[rows], target_probs[mine])
        return out
