"""The attack-cost benchmark: FLOP count, reference structure, JSON keys, plot and CLI wiring."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from benchmarks import attack_cost as ac
from benchmarks.reference import ReferenceSNN, ReferenceBLv2State, blv2_class_iteration
import argparse
from nmprivacy.commands import bench
from nmprivacy.errors import NmprivacyError
from nmprivacy.presets import BLv2Settings

TINY = ac.CostConfig("tiny", (1, 4, 5), steps=4, population=2, classes=3, hidden=16)


def test_flop_count_is_forward_plus_input_gradient() -> None:
    # per sample (BL-v1, MI-Face): 25 steps x 10 rows through 784-3000-10, forward + input-gradient backward.
    assert ac.snn_iteration_flops(25, 10, 784, 3000, 10) == 4 * 25 * 10 * (784 * 3000 + 3000 * 10)
    assert ac.snn_iteration_flops(1, 10, 784, 3000, 10) == 4 * 10 * (784 * 3000 + 3000 * 10)
    # MNIST BL-v2: 70 rows forward and through W2, the weighting, then dL/dI1 @ W1 on 10 weighted sums only
    forward = 25 * 70 * (784 * 3000 + 3000 * 10)
    backward = 25 * 70 * 3000 * 10 + 25 * 70 * 3000 + 25 * 10 * 3000 * 784
    assert ac.snn_iteration_flops(25, 70, 784, 3000, 10, groups=10) == 2 * (forward + backward)


def test_reference_is_snntorch_leaky_with_delayed_subtractive_reset() -> None:
    import snntorch

    net = ReferenceSNN(torch.tensor([[1.5], [0.0]]), torch.eye(2), beta=0.5)
    assert isinstance(net.lif1, snntorch.Leaky) and net.lif1.reset_mechanism == "subtract"
    x = torch.tensor([[[1.0]], [[0.0]], [[0.0]]])  # [T=3, 1, N=1]: one input spike at t0
    mem = net(x)  # output membrane [T, 1, 2]; hidden: t0 U = 1.5 spikes; t1 U = 0.75 - 1; t2 U = -0.125
    assert mem.shape == (3, 1, 2)
    # output neuron 0 gets the hidden spike at t0 (U = 1, not above threshold 1): 1, then 0.5, 0.25
    assert torch.allclose(mem[:, 0, 0], torch.tensor([1.0, 0.5, 0.25]))
    x.requires_grad_(True)
    net(x)[:, 0, 0].sum().backward()
    assert x.grad is not None and net.fc1.weight.grad is not None  # surrogate path and weight gradients


def test_reference_structure_computes_weight_gradients_per_sample() -> None:
    torch.manual_seed(0)
    net = ReferenceSNN(torch.randn(16, 20), torch.randn(3, 16))
    shape = (4, 20)
    state = ReferenceBLv2State(xp=torch.full(shape, 0.3), r=torch.zeros(shape), nu=torch.zeros(shape))
    new = blv2_class_iteration(net, 1, state, BLv2Settings(population=2, lr=0.1))
    assert net.fc1.weight.grad is not None  # autograd through trainable parameters, as the notebooks
    assert new.xp.shape == shape and not torch.equal(new.xp, state.xp)
    assert float(new.xp.min()) >= 0 and float(new.xp.max()) <= 1


def test_peak_rss_sees_an_allocation() -> None:
    with ac.PeakRSS() as mem:
        block = torch.ones(64 * 2**20 // 4)  # 64 MB, touched
        del block
    assert mem.peak_mb > 40


def test_measure_tiny_configuration_writes_stable_keys(tmp_path: Path) -> None:
    opts = ac.BenchOptions(quick=True, iterations=1, reference_samples=1, sweeps=False, repeats=2)
    result = ac.measure(opts, configs=(TINY,))
    loihi = result["loihi"]["tiny"]["bl-v2"]
    assert loihi["ours_s_per_iter"] > 0 and loihi["batched_autograd_s_per_iter"] > 0 and loihi["roofline_fraction"] > 0
    for name in ("bl-v1", "bl-v2", "mi-face"):
        row = result[name]
        assert row["config"] == "tiny"
        assert math.isfinite(row["speedup_vs_reference"]) and row["speedup_vs_reference"] > 0
        assert 0 < row["roofline_fraction"] < 50
        full = result["configs"]["tiny"][name]
        assert full["ours_s_per_iter"] > 0 and full["reference_s_per_iter"] > 0
        assert full["reference_timed"]["scale"] >= 1
    assert result["configs"]["tiny"]["bl-v2"]["reference_timed"]["scale"] == TINY.classes * TINY.population
    assert result["configs"]["tiny"]["mi-face"]["oracle"] == "AutogradOracle"
    densities = result["configs"]["tiny"]["bl-v2"]["spike_density_per_iteration"]
    assert len(densities) == 1 and 0.3 < densities[0] < 0.7  # one iteration from X_p = 0.5
    assert result["machine"]["cpu_count"] and result["versions"]["torch"]
    path = tmp_path / "cost.json"
    from nmprivacy.runinfo import atomic_write_json

    atomic_write_json(path, result)
    assert json.loads(path.read_text())["bl-v2"]["speedup_vs_reference"] == pytest.approx(result["bl-v2"]["speedup_vs_reference"])
    assert "bl-v2" in ac.format_table(result)


def test_density_probe_combines_the_lanes_of_an_iteration() -> None:
    class Lanes:
        lanes = 2

        def population_gradient(self, x: torch.Tensor, *args, lane: int | None = None) -> int | None:
            return lane

    probe = ac.DensityProbe(Lanes())
    assert probe.lanes == 2
    for ones in (1.0, 0.5):  # two iterations; lane 1 holds 3x the samples of lane 0
        assert probe.population_gradient(torch.full((1, 1), ones), lane=0) == 0
        assert probe.population_gradient(torch.zeros(1, 3), lane=1) == 1
    assert probe.densities == [0.25, 0.125]


def test_sweeps_and_plot(tmp_path: Path) -> None:
    ac.measure_peak()
    opts = ac.BenchOptions(quick=True, iterations=1)
    sweeps = ac.run_sweeps(opts, TINY, {"population": [1, 2], "hidden": [8, 16]})
    assert [r["population"] for r in sweeps["population"]] == [1, 2]
    assert all(r["ours_s_per_iter"] > 0 for rows in sweeps.values() for r in rows)
    assert sweeps["hidden"][1]["gflop_per_iter"] > sweeps["hidden"][0]["gflop_per_iter"]
    png = ac.plot_sweeps(sweeps, tmp_path / "sweep.png", TINY)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def bench_cli(argv: list[str]) -> int:
    """``nmprivacy bench ...`` through the command's own parser (nmprivacy.cli.main also imports
    Lava first, which fails once tqdm has fixed the multiprocessing start method in this process)."""
    parser = argparse.ArgumentParser(prog="nmprivacy")
    bench.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_bench_cli_rejects_bad_options() -> None:
    with pytest.raises(NmprivacyError, match="--iterations 0 is invalid"):
        bench_cli(["bench", "attack-cost", "--iterations", "0"])


def test_unwritable_result_folder_fails_before_measuring(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NmprivacyError, match="cannot create the result folder"):
        ac.main(["--quick", "--json", str(blocker / "sub" / "cost.json")])


def test_missing_benchmark_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bench.BENCHMARKS, "lava-throughput", ("benchmarks.no_such_benchmark", "x"))
    with pytest.raises(NmprivacyError, match="benchmarks/no_such_benchmark.py is missing"):
        bench.load_benchmark("lava-throughput")


def test_bench_dispatches_to_the_benchmark_main(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_main(argv, prog="x"):
        seen["argv"], seen["prog"] = argv, prog
        return 0

    monkeypatch.setattr(ac, "main", fake_main)
    assert bench_cli(["bench", "attack-cost", "--quick", "--json", "out.json"]) == 0
    assert seen == {"argv": ["--quick", "--json", "out.json"], "prog": "nmprivacy bench attack-cost"}
