"""The published BrainLeaks figures (docs/method.md §7), the one place they live in code.

Values are fractions (the paper prints percent); ``None`` std means the paper gives none.
Keys are preset families (``nmprivacy.presets.family_of``) and attack registry names.
"""

from __future__ import annotations

# Validation accuracy of targets and evaluators (paper Tables 1, 2).
PAPER_ACCURACY: dict[str, dict[str, float]] = {
    "mnist": {"ann": 0.9796, "snn": 0.9662, "evaluator_ann": 0.9869, "evaluator_snn": 0.9843},
    "faces": {"ann": 0.9500, "snn": 0.9000, "evaluator_ann": 0.9500, "evaluator_snn": 0.9750},
    "nmnist": {"snn": 0.9688, "evaluator_snn": 0.9659},
    "dvs": {"snn": 0.7834, "evaluator_snn": 0.8792},
}

Metric = tuple[float, float | None]

# Attacks on SNNs (Table 3) and MI-Face on the ANN (Table 4).
PAPER_ATTACKS: dict[str, dict[str, dict[str, Metric]]] = {
    "faces": {
        "bl-v1": {"attack_acc": (0.3750, None), "top3_acc": (0.6250, None), "avg_conf": (0.3409, None), "daa": (0.90, None)},
        "bl-v2": {"attack_acc": (0.7127, 0.0225), "top3_acc": (0.8928, 0.0187), "avg_conf": (0.4204, None), "daa": (1.00, None)},
        "mi-face": {"attack_acc": (0.8750, None), "top3_acc": (0.9750, None), "avg_conf": (0.8551, None), "daa": (0.95, None)},
    },
    "mnist": {
        "bl-v1": {"attack_acc": (1.00, None), "top3_acc": (1.00, None), "avg_conf": (0.9311, None), "daa": (1.00, None)},
        "bl-v2": {"attack_acc": (1.00, None), "top3_acc": (1.00, None), "avg_conf": (0.9459, None), "daa": (1.00, None)},
        "mi-face": {"attack_acc": (0.50, None), "top3_acc": (0.90, None), "avg_conf": (0.4538, None), "daa": (0.80, None)},
    },
    "nmnist": {
        "bl-v1": {"attack_acc": (0.20, None), "top3_acc": (0.30, None), "avg_conf": (0.1629, None), "daa": (0.50, None)},
        "bl-v2": {"attack_acc": (0.4612, 0.0656), "top3_acc": (0.9112, 0.0543), "avg_conf": (0.50, None), "daa": (1.00, None)},
    },
    "dvs": {
        "bl-v1": {"attack_acc": (0.30, None), "top3_acc": (0.50, None), "avg_conf": (0.3119, None), "daa": (1.00, None)},
        "bl-v2": {"attack_acc": (0.5869, 0.0337), "top3_acc": (0.8141, 0.0359), "avg_conf": (0.5424, None), "daa": (1.00, None)},
    },
}


def paper_attack(family: str, attack: str) -> dict[str, Metric] | None:
    """The paper's metrics for ``attack`` on data of ``family``, or None where it has none."""
    return PAPER_ATTACKS.get(family, {}).get(attack)
