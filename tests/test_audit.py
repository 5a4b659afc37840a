"""End to end: a tiny audit on digits (CLI), then `attack` and `evaluate` on its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nmprivacy.cli import main
from nmprivacy.lava_import import import_lava

# cli.main imports Lava, which sets the multiprocessing start method; that fails once any tqdm
# bar (earlier tests) has fixed the context, so import it while this module is collected.
import_lava()

STABLE_METRICS = ("attack_acc", "top3_acc", "avg_conf", "daa")


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit")
    code = main([
        "audit", "--quick", "--hidden", "24", "--seeds", "2", "--evaluators", "2",
        "--out", str(out / "run"), "--cache", str(out / "cache"), "--redraws", "5",
    ])
    assert code == 0
    return out


def test_audit_writes_stable_results(audit_run: Path) -> None:
    run = audit_run / "run"
    results = json.loads((run / "results.json").read_text())
    assert results["dataset"] == "digits" and results["domain"] == "image" and results["seeds"] == [0, 1]
    assert {"config", "seed", "versions", "machine", "timings_s"} <= set(results)
    assert results["models"]["target"]["kind"] == "snn-lava" and results["models"]["target"]["reset"] == "hard"
    assert 0 <= results["models"]["target"]["val_acc"] <= 1 and len(results["models"]["evaluators"]) == 2
    assert set(results["attacks"]) == {"bl-v1", "bl-v2", "mi-face", "bl-v2-query", "bl-auto"}  # the query attack runs on Loihi targets
    worst = results["worst_case"]["attack_acc"]  # the headline: the most any attack on the target leaked
    rows = [a["attack_acc"] for n, a in results["attacks"].items() if n != "mi-face"]  # bl-auto's members count alone too
    rows += [p["attack_acc"] for p in results["attacks"]["bl-auto"]["parts"].values()]
    assert worst["attack"] != "mi-face" and worst["value"] == max(rows)
    query = results["attacks"]["bl-v2-query"]
    assert query["queries"] == 2000 and query["oracle"] == "emulation" and query["threat"] == "counts"  # the quick budget
    assert [p["queries"] for p in query["leakage_vs_queries"]] == [200, 400, 1000, 2000]
    assert (run / "leakage-vs-queries.png").stat().st_size > 1000
    for name, a in results["attacks"].items():
        for m in STABLE_METRICS:
            assert 0.0 <= a[m] <= 1.0, (name, m)
            assert f"{m}_std" in a and f"{m}_evaluator_std" in a
        assert a["iterations"] >= 1 and a["seconds_per_iteration"] > 0 and 0 <= a["target_confidence"] <= 1
        assert len(a["per_seed"]) == 2 and len(a["per_seed"][0]["evaluators"]) == 2
    assert results["attacks"]["bl-v2"]["redraws"] == 5 and "attack_acc_redraw_std" in results["attacks"]["bl-v2"]
    report = (run / "report.md").read_text()
    assert "| attack accuracy |" in report and "bl-v2 paper" in report and "100.00" in report  # the paper's MNIST BL-v2
    assert "## Worst case over the attacks on the target" in report
    for png in ("reconstructions.png", "ann-vs-snn.png", "confidence.png"):
        assert (run / png).stat().st_size > 1000
    inv = torch.load(run / "inversion-bl-v2.pt", weights_only=True)
    assert inv["reconstructions"].shape == (10, 25, 1, 8, 8) and inv["probabilities"].shape == (10, 25, 1, 8, 8)
    assert torch.load(run / "inversion-mi-face.pt", weights_only=True)["reconstructions"].shape == (10, 1, 8, 8)


def test_audit_reuses_cached_models(audit_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", "--quick", "--hidden", "24", "--evaluators", "2", "--out", str(audit_run / "again"), "--cache", str(audit_run / "cache")])
    assert code == 0
    assert "training" not in capsys.readouterr().out
    first = json.loads((audit_run / "run" / "results.json").read_text())["attacks"]["bl-v1"]["per_seed"][0]
    again = json.loads((audit_run / "again" / "results.json").read_text())["attacks"]["bl-v1"]["per_seed"][0]
    assert first == again  # same cached models, same seed: same numbers


def test_evaluate_scores_audit_inversion_and_notebook_layout(audit_run: Path, tmp_path: Path) -> None:
    cache = audit_run / "cache"
    evaluators = sorted(str(p) for p in cache.glob("digits-evaluator-*"))
    assert len(evaluators) == 2
    out = tmp_path / "scores.json"
    code = main(["evaluate", "--reconstructions", str(audit_run / "run" / "inversion-bl-v2.pt"), "--dataset", "digits",
                 "--evaluator", evaluators[0], "--evaluator", evaluators[1], "--json", str(out)])
    assert code == 0
    scores = json.loads(out.read_text())
    per_seed0 = json.loads((audit_run / "run" / "results.json").read_text())["attacks"]["bl-v2"]["per_seed"][0]["evaluators"]
    assert scores["per_evaluator"] == per_seed0  # same tensors, same evaluators, same seed
    # the published notebooks' layout: spikes [C, T, 1, N]
    spikes = torch.load(audit_run / "run" / "inversion-bl-v1.pt", weights_only=True)["reconstructions"].reshape(10, 25, 1, 64)
    torch.save(spikes, tmp_path / "notebook.pt")
    assert main(["evaluate", "--reconstructions", str(tmp_path / "notebook.pt"), "--dataset", "digits", "--evaluator", evaluators[0]]) == 0


def test_attack_command_on_cached_checkpoint(audit_run: Path, tmp_path: Path) -> None:
    target = next((audit_run / "cache").glob("digits-snn-lava-*"))
    out = tmp_path / "inv.pt"
    assert main(["attack", "--model", str(target), "--attack", "bl-v1", "--classes", "0,3", "--iterations", "2", "--out", str(out)]) == 0
    inv = torch.load(out, weights_only=True)
    assert inv["classes"].tolist() == [0, 3] and inv["reconstructions"].shape == (2, 25, 1, 8, 8)
    assert json.loads(out.with_suffix(".json").read_text())["iterations"] == 2


def test_user_mistakes_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--reconstructions", str(tmp_path / "missing.pt"), "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: reconstruction file") and "\n" not in err
    torch.save(torch.rand(3, 64), tmp_path / "three.pt")
    assert main(["evaluate", "--reconstructions", str(tmp_path / "three.pt"), "--dataset", "digits", "--evaluators", "1", "--cache", str(tmp_path)]) == 2
    assert "first axis 10" in capsys.readouterr().err
    assert main(["audit", "--target", "nope", "--out", str(tmp_path / "x"), "--cache", str(tmp_path)]) == 2
    assert "--target 'nope'" in capsys.readouterr().err


def test_corrupt_cached_checkpoint_is_retrained(audit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(audit_run / "cache", cache)
    broken = next(cache.glob("digits-ann-*"))
    (broken / "weights.pt").write_bytes(b"not a checkpoint")
    assert main(["audit", "--quick", "--hidden", "24", "--evaluators", "2", "--out", str(tmp_path / "run"), "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "unusable" in out and "training ann" in out and "training snn-lava" not in out
    assert torch.load(broken / "weights.pt", weights_only=True)  # rewritten
