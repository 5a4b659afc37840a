"""Membership inference, pipeline and command: the oracles (float, bit-exact emulation, Lava) give
the same scores, ``run_mia`` on kinds and on a NetX file, ``nmprivacy mia`` end to end with its
files, keys, resumption and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hw_export.netx_export import export_netx
from nmprivacy.errors import NmprivacyError
from nmprivacy.membership.observables import attacker_view, logit_confidence
from nmprivacy.mia import MiaConfig, observe_with, oracle_check, run_mia
from test_hw_export import CLASSES, SHAPE, T, small_snn_lava, small_snn_norse

STABLE_KEYS = ("auc", "auc_ci", "tpr_at_fpr", "tpr_at_fpr_ci", "balanced_acc", "balanced_acc_ci")


def records(n: int = 12, seed: int = 0) -> torch.Tensor:
    """``n`` random grey images ``[n, *SHAPE]`` in [0, 0.8] (rate-encoded per query)."""
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)) * 0.8


def test_emulation_and_lava_give_the_same_scores(tmp_path):
    model = small_snn_lava()
    x, labels = records(), torch.arange(12) % CLASSES
    emu = observe_with(model, "emulation", x, "image", T, queries=2, seed=3, workdir=tmp_path)
    lava = observe_with(model, "lava", x, "image", T, queries=2, seed=3, workdir=tmp_path)
    flt = observe_with(model, "float", x, "image", T, queries=2, seed=3, workdir=tmp_path)
    assert emu.counts.sum() > 0 and emu.logp.shape == (12, 2, CLASSES)
    assert torch.equal(emu.counts, lava.counts) and torch.equal(emu.pred, lava.pred)
    assert torch.allclose(emu.logp, lava.logp, atol=1e-6)
    assert torch.equal(flt.counts, emu.counts)  # snn-lava's slayer forward is Loihi's arithmetic
    for threat in ("counts", "label", "membrane"):
        phi_emu = logit_confidence(attacker_view(emu, threat), labels.numpy())
        phi_lava = logit_confidence(attacker_view(lava, threat), labels.numpy())
        assert np.allclose(phi_emu, phi_lava, atol=1e-5), threat


def test_the_engine_answers_as_the_network_model_runs(tmp_path):
    from hw_export.netx_emulation import load_netx
    from nmprivacy.membership.observables import encode_queries, engine_answer, model_outputs

    path = tmp_path / "m.net"
    export_netx(small_snn_lava(), path)
    emu = load_netx(path)
    spikes = encode_queries(records(40), "image", T, 0, 0, 0)
    fast = engine_answer(emu)
    assert fast is not None
    (lp_fast, ct_fast), (lp_run, ct_run) = fast(spikes), model_outputs(emu, spikes)
    assert torch.equal(ct_fast, ct_run) and ct_run.sum() > 0 and torch.allclose(lp_fast, lp_run, atol=1e-9)


def test_oracle_check_reports_no_lava_mismatch_and_the_float_gap_of_a_mapped_model(tmp_path):
    x = records(10, seed=1)
    check = oracle_check(small_snn_lava(), small_snn_lava(), x, 6, "image", T, 0, "counts", tmp_path)
    assert check["records"] == 6 and check["lava_vs_emulation"]["count_mismatch_records"] == 0
    assert check["lava_vs_emulation"]["threat_phi_max_abs_diff"] == 0 and check["float_vs_emulation"]["count_mismatch_records"] == 0
    norse = small_snn_norse()  # a float model mapped onto Loihi: Lava equals the mapping, not necessarily the float model
    check = oracle_check(norse, norse, x, 6, "image", T, 0, "membrane", tmp_path)
    assert check["lava_vs_emulation"]["count_mismatch_records"] == 0 and "float_vs_emulation" in check


def tiny(tmp_path, **kw) -> MiaConfig:
    """A seconds-long run on 170 digits records: 16 hidden neurons, the quick budget, in this process."""
    base = dict(dataset="digits", budget="quick", hidden=16, data_options={"limit_train": 120, "limit_test": 50}, workers=0,
                bootstrap=20, lava_check=0, cache=str(tmp_path / "cache"), out=str(tmp_path / "out"))
    return MiaConfig(**{**base, **kw})


def test_run_mia_on_an_ann_uses_its_logits_and_says_counts_do_not_apply(tmp_path):
    mia = run_mia(tiny(tmp_path, target="ann", attacks=("lira", "loss")))
    assert mia["threat"] == "membrane" and mia["oracle"] == "float" and mia["queries"] == 1
    assert any("counts n/a" in n for n in mia["notes"])
    assert 0 <= mia["target"]["train_acc"] <= 1 and mia["references"] == 4 and mia["references_per_target"] == 3
    with pytest.raises(NmprivacyError, match="counts threat does not apply to an ann"):
        run_mia(tiny(tmp_path, target="ann", threat="counts", out=str(tmp_path / "x")))
    with pytest.raises(NmprivacyError, match="emulation oracle does not apply"):
        run_mia(tiny(tmp_path, target="ann", oracle="emulation", out=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()  # a refused run leaves nothing behind


@pytest.fixture
def stand_in_digits(monkeypatch):
    """A 4-class data set of 4x4 images registered as "digits" (so the digits preset applies), for the 4x4 test networks."""
    from nmprivacy.data import dataset_names
    from nmprivacy.data.base import REGISTRY, DatasetEntry, DatasetSplits, Split

    def load(root=None, limit_train=None, limit_test=None):
        g = torch.Generator().manual_seed(0)
        x = torch.rand(160, *SHAPE, generator=g)
        y = torch.arange(160) % CLASSES
        return DatasetSplits("digits", "image", Split(x[:100], y[:100]), Split(x[100:], y[100:]), tuple("0123"), SHAPE, "test data")

    dataset_names()  # register the real loaders first, then replace one
    monkeypatch.setitem(REGISTRY, "digits", DatasetEntry("digits", load, "image", "4x4 stand-in"))


def test_run_mia_on_a_netx_file_trains_references_for_its_sizes(tmp_path, stand_in_digits):
    model = small_snn_lava()  # 16-24-4: reads a 4x4 data set
    net = tmp_path / "foreign.net"
    export_netx(model, net)
    mia = run_mia(tiny(tmp_path, target=str(net), references=2, attacks=("lira-offline", "rmia", "loss"), lava_check=4))
    assert mia["target"]["file"] == str(net) and mia["target"]["models"] == 1 and mia["reference_kind"] == "snn-lava"
    assert mia["population"]["protocol"] == "single target" and mia["population"]["z"] == 15  # a quarter of the 60 test records
    assert any("16-24-4" in n and "recipe" in n for n in mia["notes"])
    assert mia["oracle"] == "emulation" and mia["oracle_check"]["lava_vs_emulation"]["count_mismatch_records"] == 0
    for name in ("lira-offline", "rmia", "loss"):
        assert all(k in mia["attacks"][name] for k in STABLE_KEYS)
    # every counts run also scores its observations through the membrane: what a --threat membrane run of the same models measures
    membrane = run_mia(tiny(tmp_path, target=str(net), references=2, attacks=("lira-offline", "rmia", "loss"), lava_check=0, threat="membrane",
                            out=str(tmp_path / "membrane")))
    check = mia["membrane_check"]
    assert check["threat"] == "membrane" and check["silent_output"] == mia["target"]["silent_output"] and membrane["membrane_check"] is None
    for name in ("lira-offline", "rmia", "loss"):
        assert check["attacks"][name]["auc"] == pytest.approx(membrane["attacks"][name]["auc"], abs=1e-12)
        assert check["attacks"][name]["tpr_at_fpr"] == pytest.approx(membrane["attacks"][name]["tpr_at_fpr"])
    assert "through their membrane (white-box)" in (tmp_path / "out" / "mia.md").read_text()
    with pytest.raises(NmprivacyError, match="no float model"):
        run_mia(tiny(tmp_path, target=str(net), oracle="float", references=2, out=str(tmp_path / "y")))


def test_run_mia_on_a_deeper_file_trains_references_of_all_its_layers(tmp_path, stand_in_digits):
    """A 16-24-12-4 file with learned delays in its first hidden layer: the references have all its layers and learn delays there."""
    from nmprivacy.models import build, checkpoint
    from nmprivacy.models.snn_lava import SNNLavaConfig

    torch.manual_seed(0)
    model = build("snn-lava", SNNLavaConfig(input_shape=SHAPE, num_classes=CLASSES, hidden=24, extra_hidden=(12,), weight_scale=3.0, delay_layers=(0,)))
    model.blocks[0].delay.delay.data = torch.rand(24) * 3
    net = tmp_path / "deep.net"
    export_netx(model.freeze(), net)  # 16-24-12-4 with delays, as a foreign NetX file
    mia = run_mia(tiny(tmp_path, target=str(net), references=2, attacks=("loss",), overrides={"steps": 7}))
    assert mia["steps"] == 7  # --set steps=N reaches a file target's T (and its references'), as in the audit
    assert any("16-24-12-4" in n and "recipe" in n for n in mia["notes"])
    refs = mia["reference_models"]
    assert len(refs) == 2 and all(r["config"]["hidden"] == 24 and list(r["config"]["extra_hidden"]) == [12] for r in refs)
    assert all(list(r["config"]["delay_layers"]) == [0] for r in refs) and any("(layers 0), theirs are learned" in n for n in mia["notes"])
    trained = checkpoint.load(refs[0]["checkpoint"], "snn-lava")
    assert trained.network().sizes == (16, 24, 12, CLASSES) and trained.blocks[0].delay is not None and trained.blocks[1].delay is None
    with pytest.raises(NmprivacyError, match=r"DP-SGD cannot train .*delay_layers=\[\]"):  # before any training
        run_mia(tiny(tmp_path, target=str(net), references=2, attacks=("loss",), overrides={"snn_train.dp.epsilon": 8}, out=str(tmp_path / "dp")))
    assert 0.0 <= mia["attacks"]["loss"]["auc"] <= 1.0


def test_a_target_whose_output_never_spikes_is_named_not_scored_silently(tmp_path, stand_in_digits, capsys):
    """Counts of a read-out that never spikes are all ties: the run says so instead of reporting AUC 0.5 as 'no leakage'."""
    model = small_snn_lava()
    with torch.no_grad():
        model.blocks[-1].synapse.weight.copy_(-model.blocks[-1].synapse.weight.abs())  # inhibitory only: the output layer never reaches threshold
    net = tmp_path / "silent.net"
    export_netx(model, net)
    mia = run_mia(tiny(tmp_path, target=str(net), references=2, attacks=("loss",)))
    assert mia["attacks"]["loss"]["auc"] == pytest.approx(0.5)  # every score ties
    assert any("do not spike on 100 % of the queries" in n and "--threat membrane" in n for n in mia["notes"])
    assert "warning: the target's output neurons do not spike on 100 %" in capsys.readouterr().err
    from nmprivacy.report import membership_lines

    assert mia["target"]["silent_output"] == 1.0 and any(line.startswith("Caution: the target's output neurons") for line in membership_lines(mia))
    ok = run_mia(tiny(tmp_path, target=str(net), references=2, attacks=("loss",), threat="membrane", oracle="emulation", out=str(tmp_path / "m")))
    assert not any("do not spike" in n for n in ok["notes"]) and ok["target"]["silent_output"] is None
    # the silent counts run scored the same observations through the membrane too: what the membrane run measures
    check = mia["membrane_check"]
    assert check["threat"] == "membrane" and check["silent_output"] == 1.0 and ok["membrane_check"] is None
    assert check["attacks"]["loss"]["auc"] == pytest.approx(ok["attacks"]["loss"]["auc"], abs=1e-12) != pytest.approx(0.5)
    assert check["attacks"]["loss"]["tpr_at_fpr"] == pytest.approx(ok["attacks"]["loss"]["tpr_at_fpr"])
    assert "silent on 100 % of the queries, so the counts above may under-report" in (tmp_path / "out" / "mia.md").read_text()
    assert any(line.startswith("Through the membrane (white-box; scored because the counts are mostly silent)") for line in membership_lines(mia))


@pytest.mark.parametrize("extra, words", [({}, None), ({"delay": np.ones((5, 6), dtype=np.int64)}, "synaptic delays"),
                                           ({"weight_rec": np.zeros((5, 5), dtype=np.int64)}, "layer 1: recurrent")])
def test_reference_recipe_takes_dense_stacks_and_names_the_layer_it_cannot_train(extra, words):
    """A dense stack gets snn-lava references of all its sizes (a hidden layer's delays: learned ones, said in the note); recurrence is refused naming the layer."""
    from types import SimpleNamespace

    from nmprivacy.mia.plan import reference_recipe
    from nmprivacy.network import DenseLayer, LoihiNeuron, Network

    neuron = LoihiNeuron(i_decay=4096, v_decay=1229, vth_mant=64)
    layers = (DenseLayer(neuron=neuron, weight=np.ones((6, 4), dtype=np.int64), in_shape=(4,), name="l0"),
              DenseLayer(neuron=neuron, weight=np.ones((5, 6), dtype=np.int64), name="l1", **extra),
              DenseLayer(neuron=neuron, weight=np.ones((3, 5), dtype=np.int64), name="l2"))
    network = Network(input_shape=(4,), layers=layers, name="stack")
    target = SimpleNamespace(model=SimpleNamespace(network=lambda: network), meta={}, source="stack.net")
    if "weight_rec" in extra:
        with pytest.raises(NmprivacyError, match=words):
            reference_recipe(target)
        return
    recipe = reference_recipe(target)
    fields = {"extra_hidden": [5], **({"delay_layers": [1]} if "delay" in extra else {})}
    assert (recipe.kind, recipe.hidden, recipe.config) == ("snn-lava", 6, fields) and "4-6-5-3" in recipe.note
    assert ("synaptic delays (layers 1), theirs are learned" in recipe.note) == ("delay" in extra)


def run_cli(*args: str, env_cache: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "NMPRIVACY_CACHE": env_cache}
    return subprocess.run([sys.executable, "-m", "nmprivacy", "--threads", "1", *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_cli_end_to_end_on_digits_quick_writes_the_files_and_resumes(tmp_path):
    out, cache = tmp_path / "mia", str(tmp_path / "cache")
    args = ("mia", "--dataset", "digits", "--quick", "--hidden", "16", "--limit-train", "150", "--limit-test", "60", "--workers", "1",
            "--lava-check", "3", "--bootstrap", "20", "--set", "rmia.mode=offline", "--out", str(out))
    proc = run_cli(*args, env_cache=cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("mia.json", "mia.md", "roc.png", "scores.npz"):
        assert (out / name).is_file(), name
    mia = json.loads((out / "mia.json").read_text())
    assert set(mia["attacks"]) == {"lira", "lira-offline", "rmia", "loss", "shadow"}
    for r in mia["attacks"].values():
        assert all(k in r for k in STABLE_KEYS) and set(r["tpr_at_fpr"]) == {"0.001", "0.01"}
    assert mia["attacks"]["rmia"]["settings"]["mode"] == "offline"
    assert {"train_acc", "test_acc"} <= set(mia["target"]) and mia["references"] == 4 and mia["threat"] == "counts" and mia["oracle"] == "emulation"
    assert mia["oracle_check"]["lava_vs_emulation"]["count_mismatch_records"] == 0
    assert {"config", "seed", "versions", "machine", "timings_s", "created"} <= set(mia)
    assert mia["timings"]["reference_models_trained"] == 4 and mia["timings"]["train_s_mean"] > 0
    scores = np.load(out / "scores.npz")
    assert scores["lira.scores"].shape == scores["lira.members"].shape
    assert "| lira |" in (out / "mia.md").read_text()
    again = run_cli(*args[:-2], "--lava-check", "0", "--out", str(out), env_cache=cache)  # everything cached: no model trained again
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "mia.json").read_text())["timings"]["reference_models_observed"] == 0
    assert "4 cached, 0 to train" in again.stdout + again.stderr

    # over training seeds: seed 0 is the run above (its models cached), seed 1 trains its own; the summary pools them
    seeds_out = tmp_path / "mia-seeds"
    proc = run_cli(*args[:-2], "--lava-check", "0", "--training-seeds", "0,1", "--out", str(seeds_out), env_cache=cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((seeds_out / "mia-seeds.json").read_text())
    runs = [json.loads((seeds_out / f"s{s}" / "mia.json").read_text()) for s in (0, 1)]
    assert summary["seeds"] == [0, 1] and [r["seed"] for r in runs] == [0, 1] and summary["config"]["seed"] == [0, 1]
    assert runs[0]["attacks"]["lira"]["auc"] == mia["attacks"]["lira"]["auc"]  # the same seed gives the same run
    for name in ("lira", "rmia", "loss"):
        aucs = [r["attacks"][name]["auc"] for r in runs]
        got = summary["mean"]["attacks"][name]
        assert got["auc"] == pytest.approx(np.mean(aucs)) and got["auc_std"] == pytest.approx(np.std(aucs, ddof=1))
        assert got["tpr_at_fpr"]["0.01"] == pytest.approx(np.mean([r["attacks"][name]["tpr_at_fpr"]["0.01"] for r in runs]))
    assert summary["mean"]["target"]["train_acc"] == pytest.approx(np.mean([r["target"]["train_acc"] for r in runs]))
    md = (seeds_out / "mia-seeds.md").read_text()
    assert "mean ± std (n = 2)" in md and md.count("\n| ") == 4 and "mean ± std (n = 2)" in proc.stdout
    assert "ε (DP-SGD)" not in md and "Training defences" not in (seeds_out / "s0" / "mia.md").read_text()  # no DP, no defence lines


def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    proc = run_cli("mia", "--dataset", "digits", "--quick", "--target", "ann", "--threat", "counts", "--out", str(tmp_path / "o"),
                   env_cache=str(tmp_path / "c"), timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and err[0].startswith("error: ") and "counts threat does not apply" in err[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, match", [
    (("--attacks", "lira,nope"), "unknown membership attack nope"),
    (("--references", "2"), "at least 4 models"),
    (("--target", "missing.net"), "neither a kind"),
    (("--attacks", "rmia", "--set", "rmia.mode=sometimes"), "rmia.mode"),
    (("--attacks", "rmia", "--set", "lira.variance=global"), "does not include"),
    (("--set", "snn_train.epochs=0"), "snn_train.epochs"),
    (("--oracle", "emulation", "--target", "ann"), "emulation oracle does not apply"),
    (("--training-seeds", "0,x"), "give integers"),
    (("--training-seeds", "0,0"), "distinct seeds"),
    (("--seed", "3", "--training-seeds", "0,1"), "either --seed or --training-seeds"),
    (("--training-seeds", "0,1", "--references", "2"), "at least 4 models"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, monkeypatch, args, match):
    from nmprivacy.cli import main

    monkeypatch.setenv("NMPRIVACY_CACHE", str(tmp_path / "c"))
    assert main(["mia", "--dataset", "digits", "--quick", "--workers", "0", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and match in err[0], err
    assert not (tmp_path / "o").exists()
