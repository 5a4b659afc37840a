"""Every subcommand on every kind of target and data family: "one line, never a traceback" is
checked for the combinations, not per feature.

Targets: an nmprivacy checkpoint (trained here), a dense NetX file with a flat input (another
lava-dl user's), a convolutional NetX file with an input layer (slayer's own export), a NIR chain
and a recurrent NIR graph (the NIR paper's Braille shape). Data: images (``digits``) and events
(the real N-MNIST recordings in ``tests/data``, two input channels, T = 20). Each combination
runs ``attack`` (every registered attack; the query attack's trace is then scored too),
``evaluate``, ``validate`` (with the attack's reconstructions on Lava), ``export`` (NetX and NIR),
``audit --hardware`` and ``mia`` (membership inference with references trained for the target's
layer sizes; each counts run carries the membrane cross-check, which says when the counts are mostly silent). A command either succeeds or, where the combination cannot work
(``REFUSED``), exits 2 with one line saying why; any exception fails the test with its traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import pytest

import networks
from nmprivacy.cli import main
from nmprivacy.lava_import import import_lava

import_lava()  # before any tqdm bar fixes the multiprocessing start method

TARGETS = ("checkpoint", "dense-netx", "conv-netx", "nir", "recurrent-nir")
# (target, family, command) -> the one line a refusal must match; every other combination must succeed
REFUSED: dict[tuple[str, str, str], str] = {
    **{(t, f, "attack mi-face"): r"^error: mi-face needs a model with image inputs" for t in TARGETS for f in ("image", "event")},
    **{(t, f, "evaluate mi-face"): r"^error: .*(not found|does not exist)" for t in TARGETS for f in ("image", "event")},
    # membership inference trains references of the target's architecture: dense stacks only
    **{(t, f, "mia"): r"^error: .* is not a stack of dense layers .*membership inference needs reference models"
       for t in ("conv-netx", "recurrent-nir") for f in ("image", "event")},
}


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The two data families: their CLI data flags, input shape and T."""
    from conftest import TEST_DATA

    root = tmp_path_factory.mktemp("data")
    (root / "NMNIST").mkdir()
    for split in ("Train", "Test"):  # the sample has test recordings only
        (root / "NMNIST" / split).symlink_to(TEST_DATA / "nmnist-sample" / "Test")
    return {
        "image": {"data": ["--dataset", "digits"], "shape": (1, 8, 8), "steps": 25},
        "event": {"data": ["--dataset", "nmnist", "--data-root", str(root), "--option", "steps=20", "--option", "polarity=both"],
                  "shape": (2, 34, 34), "steps": 20},
    }


def build_target(kind: str, family: dict, folder: Path, run: Callable[..., None]) -> Path:
    """The target file or checkpoint folder of ``kind`` for a family's input shape."""
    inputs = family["shape"][0] * family["shape"][1] * family["shape"][2]
    if kind == "checkpoint":
        out = folder / "ckpt"
        run("train", "train", *family["data"], "--model", "snn-lava", "--quick", "--hidden", "16", "--steps", str(family["steps"]), "--out", str(out))
        return out
    if kind == "dense-netx":
        return networks.dense_netx(folder / "dense.net", inputs)
    if kind == "conv-netx":
        return networks.conv_netx(folder / "conv.net", family["shape"])
    if kind == "nir":
        return networks.nir_chain(folder / "chain.nir", inputs)
    return networks.recurrent_nir(folder / "rec.nir", inputs)


@pytest.mark.parametrize("family_name", ["image", "event"])
@pytest.mark.parametrize("kind", TARGETS)
def test_every_subcommand_on_every_target(kind: str, family_name: str, families: dict, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    family = families[family_name]
    cache = str(tmp_path_factory.getbasetemp() / f"matrix-cache-{family_name}")  # evaluators trained once per family
    outcomes: dict[str, str] = {}

    def run(name: str, *argv: str) -> bool:
        """Run one command; True if it succeeded. A refusal must be one line and expected."""
        capsys.readouterr()
        code = main([*argv, "--cache", cache, "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        expected = REFUSED.get((kind, family_name, name))
        if code == 0 and expected is None:
            outcomes[name] = "ok"
            return True
        assert expected is not None, f"{kind} x {family_name}: '{name}' exited {code}: {err}"
        assert code == 2 and len([e for e in err if e.startswith("error:")]) == 1 and re.search(expected, err[-1]), (
            f"{kind} x {family_name}: '{name}' should refuse with one line matching {expected!r}, got exit {code}: {err}")
        outcomes[name] = "refused"
        return False

    target = str(build_target(kind, family, tmp_path, run))
    dt = ["--dt", "1e-4"] if kind == "recurrent-nir" else []
    data, steps = family["data"], ["--steps", str(family["steps"])]
    from nmprivacy.attacks import registry

    for attack in registry():
        out = tmp_path / f"{attack}.pt"
        length = ["--queries", "400"] if attack == "bl-v2-query" else ["--iterations", "1"]
        if run(f"attack {attack}", "attack", "--attack", attack, "--model", target, *dt, *data, *steps, *length, "--out", str(out)):
            if attack == "bl-v2-query":
                assert json.loads(out.with_suffix(".json").read_text())["queries"] == 400
        run(f"evaluate {attack}", "evaluate", "--reconstructions", str(out), *data, "--quick", "--evaluators", "1", "--json", str(tmp_path / f"{attack}.json.eval"))
    run("validate", "validate", "--model", target, *dt, *data, "--samples", "2", "--lava-samples", "2", "--inversion", str(tmp_path / "bl-v2.pt"),
        "--out", str(tmp_path / "validation"))
    run("export netx", "export", "--model", target, *dt, "--out", str(tmp_path / "out.net"))
    run("export nir", "export", "--model", target, *dt, "--out", str(tmp_path / "out.nir"))
    # a recurrent network runs on Lava one sample at a time (its spikes could cross samples in a batch):
    # its audit checks the emulation only, and validate above ran it on Lava
    lava = "0" if kind == "recurrent-nir" else "2"
    run("audit", "audit", "--target", target, *dt, *data, "--quick", "--evaluators", "1", "--attacks", "bl-v1,bl-v2,bl-v2-query",
        "--hardware", "--lava-samples", lava, "--out", str(tmp_path / "audit"))
    results = json.loads((tmp_path / "audit" / "results.json").read_text())
    assert set(results["attacks"]) == {"bl-v1", "bl-v2", "bl-v2-query", "bl-auto"}  # the default variant, auto, brings the ensemble
    assert {results["attacks"][a].get("run_by") for a in ("bl-v1", "bl-v2")} == {"bl-auto/bl-v1:default", "bl-auto/bl-v2:default"}
    if lava != "0":
        assert results["hardware"]["export"]["total_mismatches"] == 0 and results["hardware"]["attack"]["total_mismatches"] == 0
    assert results["attacks"]["bl-v2-query"]["leakage_vs_queries"], "the query attack's trace is scored in the audit"
    assert outcomes["validate"] == "ok" and outcomes["attack bl-v2-query"] == "ok" and outcomes["evaluate bl-v2-query"] == "ok"
    if run("mia", "mia", "--target", target, *dt, *data, "--quick", "--references", "4", "--workers", "0", "--attacks", "lira,rmia,loss",
           "--out", str(tmp_path / "mia")):
        mia = json.loads((tmp_path / "mia" / "mia.json").read_text())
        assert set(mia["attacks"]) == {"lira", "rmia", "loss"} and mia["threat"] == "counts"
        check = mia["membrane_check"]  # the same observations through the membrane, beside the counts
        assert check["threat"] == "membrane" and set(check["attacks"]) == {"lira", "rmia", "loss"}
        assert all(0.0 <= a["auc"] <= 1.0 for a in check["attacks"].values()), check
        md = (tmp_path / "mia" / "mia.md").read_text()
        silent = mia["target"]["silent_output"]
        assert ("may under-report" in md) == (silent is not None and silent >= 0.5) and "through their membrane (white-box)" in md
