"""Every attack's output for fixed tiny models and seeds, pinned to the values in
``tests/data/attack-golden.pt``: X_p, reconstructions, curves, iteration counts and config.

The pinned runs cover each attack with the autograd oracle and with the engine on one, two and
three workers (BL-v1 and BL-v2 then split their classes into parts, one per lane), BL-v2's
plateau stop and both variants, and the Loihi fixed-point target. Rewrite the file only when a
change is *meant* to change what the attacks compute:
``.venv/bin/python tests/test_attack_golden.py --write``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import torch

GOLDEN = Path(__file__).resolve().parent / "data" / "attack-golden.pt"
SHAPE = (1, 5, 6)
CLASSES = [0, 1, 2, 3]


def _norse():
    from nmprivacy.models.snn_norse import SNNNorse, SNNNorseConfig

    torch.manual_seed(0)
    return SNNNorse(SNNNorseConfig(input_shape=SHAPE, num_classes=4, hidden=24, init_gain=6.0)).freeze()


def _lava():
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

    torch.manual_seed(0)
    return SNNLava(SNNLavaConfig(input_shape=SHAPE, num_classes=4, hidden=24, weight_scale=4, current_decay=0.25)).freeze()


def _ann():
    from nmprivacy.models.ann import ANN, ANNConfig

    torch.manual_seed(0)
    return ANN(ANNConfig(input_shape=SHAPE, num_classes=4, hidden=16)).freeze()


def _engine(workers: int) -> Callable:
    from nmprivacy.attacks.engine import FastLIFOracle

    return lambda model: FastLIFOracle(model, workers=workers)


def pinned_runs() -> dict[str, dict[str, Any]]:
    """Name -> the deterministic fields of one attack run (everything but its timing)."""
    from nmprivacy.attacks import get_attack
    from nmprivacy.attacks.oracle import AutogradOracle
    from nmprivacy.presets import BLv1Settings, BLv2Settings, MIFaceSettings

    norse, lava = _norse(), _lava()
    v1 = BLv1Settings(iterations=5, eta=0.3)
    v2 = BLv2Settings(population=3, iterations=6, init=0.3, lr=0.05, sparsity=0.5)
    v2_stop = BLv2Settings(population=3, iterations=8, init=0.3, lr=0.05, sparsity=0.5, plateau_patience=1, plateau_tol=0.05)
    v2_ref = BLv2Settings(population=3, iterations=5, lr=0.3, variant="reference", accumulator="unbounded", init=0.0, keep="last")
    v2_ce = BLv2Settings(population=2, iterations=4, lr=0.3, rho=0.3, variant="reference", loss="cross-entropy", init=0.1)
    cases: dict[str, tuple[str, Any, Callable, Any, int]] = {
        "bl-v1-autograd": ("bl-v1", v1, AutogradOracle, norse, 3),
        "bl-v1-bernoulli-w2": ("bl-v1", BLv1Settings(iterations=5, eta=0.3, mask="bernoulli"), _engine(2), norse, 3),
        "bl-v2-autograd": ("bl-v2", v2, AutogradOracle, norse, 5),
        "bl-v2-reference-w2": ("bl-v2", v2_ref, _engine(2), norse, 1),
        "bl-v2-cross-entropy-w3": ("bl-v2", v2_ce, _engine(3), norse, 2),
        "bl-v1-loihi-w2": ("bl-v1", v1, _engine(2), lava, 4),
        "bl-v2-loihi-w2": ("bl-v2", v2, _engine(2), lava, 4),
        "mi-face": ("mi-face", MIFaceSettings(lr=20.0, max_iterations=300, patience=5, cost_goal=0.775), AutogradOracle, _ann(), 0),
    }
    for w in (1, 2, 3):
        cases[f"bl-v1-w{w}"] = ("bl-v1", v1, _engine(w), norse, 3)
        cases[f"bl-v2-w{w}"] = ("bl-v2", v2, _engine(w), norse, 5)
        cases[f"bl-v2-plateau-w{w}"] = ("bl-v2", v2_stop, _engine(w), norse, 5)
    out = {}
    for name, (attack, settings, oracle, model, seed) in cases.items():
        options = {} if attack == "mi-face" else {"steps": 6}
        inv = get_attack(attack, settings, oracle=oracle, **options).run(model, CLASSES, seed=seed)
        out[name] = {
            "attack": inv.attack, "classes": inv.classes, "seed": inv.seed, "iterations": inv.iterations,
            "reconstructions": inv.reconstructions, "probabilities": inv.probabilities,
            "loss_curve": inv.loss_curve, "confidence_curve": inv.confidence_curve, "config": inv.config,
        }
    return out


def _binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def test_attacks_reproduce_their_pinned_output() -> None:
    golden = torch.load(GOLDEN)
    runs = pinned_runs()
    assert set(runs) == set(golden)
    for name, run in runs.items():
        want = golden[name]
        for key in ("attack", "classes", "seed", "iterations"):
            assert run[key] == want[key], f"{name}: {key}"
        if run["probabilities"] is None and not _binary(want["reconstructions"]):  # MI-Face's float images: other CPUs' kernels differ in the last bit
            torch.testing.assert_close(run["reconstructions"], want["reconstructions"], rtol=1e-5, atol=1e-6, msg=name)
        else:  # spike reconstructions are binary: equal on every machine
            assert torch.equal(run["reconstructions"], want["reconstructions"]), name
        assert (run["probabilities"] is None) == (want["probabilities"] is None), name
        for key in ("probabilities", "loss_curve", "confidence_curve"):
            if want[key] is not None:  # bit-identical on the machine that wrote the file; tolerance for other CPUs' kernels
                torch.testing.assert_close(run[key], want[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
        assert want["config"].items() <= run["config"].items(), f"{name}: config"  # runs may record more


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_attack_golden.py --write   (rewrites tests/data/attack-golden.pt)")
    torch.save(pinned_runs(), GOLDEN)
    print(f"wrote {GOLDEN}")
