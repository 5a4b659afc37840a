"""The benchmarks: FLOP count, reference structure, result schemas (the stable JSON keys), plot and CLI wiring."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import argparse

from benchmarks import attack_cost as ac
from benchmarks.attack_cost.config import BenchOptions, CostConfig
from benchmarks.attack_cost.measure import measure
from benchmarks.attack_cost.ours import DensityProbe
from benchmarks.attack_cost.report import format_table
from benchmarks.attack_cost.roofline import measure_start_peak, snn_iteration_flops
from benchmarks.attack_cost.sweeps import plot_sweeps, run_sweeps
from benchmarks.attack_cost.timing import PeakRSS
from benchmarks.reference import ReferenceSNN, ReferenceBLv2State, blv2_class_iteration
from nmprivacy.commands import bench
from nmprivacy.errors import NmprivacyError
from nmprivacy.presets import BLv2Settings

TINY = CostConfig("tiny", (1, 4, 5), steps=4, population=2, classes=3, hidden=16)


def test_flop_count_is_forward_plus_input_gradient() -> None:
    # per sample (BL-v1, MI-Face): 25 steps x 10 rows through 784-3000-10, forward + input-gradient backward.
    assert snn_iteration_flops(25, 10, 784, 3000, 10) == 4 * 25 * 10 * (784 * 3000 + 3000 * 10)
    assert snn_iteration_flops(1, 10, 784, 3000, 10) == 4 * 10 * (784 * 3000 + 3000 * 10)
    # MNIST BL-v2: 70 rows forward and through W2, the weighting, then dL/dI1 @ W1 on 10 weighted sums only
    forward = 25 * 70 * (784 * 3000 + 3000 * 10)
    backward = 25 * 70 * 3000 * 10 + 25 * 70 * 3000 + 25 * 10 * 3000 * 784
    assert snn_iteration_flops(25, 70, 784, 3000, 10, groups=10) == 2 * (forward + backward)


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
    with PeakRSS() as mem:
        block = torch.ones(64 * 2**20 // 4)  # 64 MB, touched
        del block
    assert mem.peak_mb > 40


def test_measure_tiny_configuration_writes_stable_keys(tmp_path: Path) -> None:
    opts = BenchOptions(quick=True, iterations=1, reference_samples=1, sweeps=False, repeats=2)
    result = measure(opts, configs=(TINY,)).to_json()
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
    assert "bl-v2" in format_table(result)


def test_density_probe_combines_the_lanes_of_an_iteration() -> None:
    class Lane:
        def __init__(self, index: int) -> None:
            self.index = index

        def population_gradient(self, x: torch.Tensor, *args) -> int:
            return self.index

    class Lanes:
        lanes = 2

        def lane(self, index: int) -> Lane:
            return Lane(index)

    probe = DensityProbe(Lanes())
    assert probe.lanes == 2
    lanes = [probe.lane(0), probe.lane(1)]
    for ones in (1.0, 0.5):  # two iterations; lane 1 holds 3x the samples of lane 0
        assert lanes[0].population_gradient(torch.full((1, 1), ones)) == 0
        assert lanes[1].population_gradient(torch.zeros(1, 3)) == 1
    assert probe.densities == [0.25, 0.125]


def test_sweeps_and_plot(tmp_path: Path) -> None:
    peak = measure_start_peak().peak
    opts = BenchOptions(quick=True, iterations=1)
    sweeps = {param: [p.to_json(peak) for p in points] for param, points in run_sweeps(opts, TINY, {"population": [1, 2], "hidden": [8, 16]}).items()}
    assert [r["population"] for r in sweeps["population"]] == [1, 2]
    assert all(r["ours_s_per_iter"] > 0 for rows in sweeps.values() for r in rows)
    assert sweeps["hidden"][1]["gflop_per_iter"] > sweeps["hidden"][0]["gflop_per_iter"]
    png = plot_sweeps(run_sweeps(opts, TINY, {"population": [1, 2]}), peak, tmp_path / "sweep.png", TINY)
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
    with pytest.raises(NmprivacyError, match="--configs 'mnist,face': choose from mnist, nmnist, faces"):
        bench_cli(["bench", "attack-cost", "--configs", "mnist,face"])


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


# The stable keys of the attack-cost result file, in order (README "Benchmarks" quotes them).
TOP = ["benchmark", "quick", "machine", "versions", "load_average", "peak_gflops", "peak_gflops_at_end", "roofline_peak_gflops",
       "engine_workers", "flops_counted", "reference_implementation", "notes", "bl-v1", "bl-v2", "mi-face", "configs", "loihi", "sweeps", "run"]
ROW = ["reference_s_per_iter", "ours_s_per_iter", "ours_dense_s_per_iter", "batched_autograd_s_per_iter", "speedup_vs_reference",
       "speedup_vs_batched_autograd", "gflop_per_iter", "peak_rss_mb", "reference_timed", "roofline_s_per_iter", "roofline_fraction",
       "roofline_fraction_dense", "achieved_gflops"]
ROW_EXTRA = {"bl-v1": [], "bl-v2": ["settings", "spike_density_per_iteration", "density_sweep"], "mi-face": ["oracle"]}
REFERENCE_TIMED = {
    "bl-v1": ["classes", "seconds", "scale", "extrapolation", "implementation"],
    "bl-v2": ["classes", "samples_per_class", "seconds", "scale", "extrapolation", "implementation"],
    "mi-face": ["classes", "iterations_per_class", "seconds", "scale", "extrapolation"],
}
LOIHI = ["target", "ours_s_per_iter", "batched_autograd_s_per_iter", "speedup_vs_batched_autograd", "gflop_per_iter", "peak_rss_mb",
         "roofline_s_per_iter", "roofline_fraction", "achieved_gflops"]
SWEEP = ["ours_s_per_iter", "gflop_per_iter", "peak_rss_mb", "roofline_s_per_iter", "roofline_fraction", "achieved_gflops"]


def test_attack_cost_result_file_has_the_stable_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.attack_cost import measure as measure_module

    events = replace(TINY, name="tiny-events", ann=False, preset="nmnist")
    monkeypatch.setattr(measure_module, "measure", lambda opts, configs=None: measure(replace(opts, densities=(0.5,)), configs=(TINY, events)))
    path = tmp_path / "cost.json"
    assert ac.main(["--quick", "--json", str(path)]) == 0  # the command's own path: measure, plot, write
    result = json.loads(path.read_text())
    assert list(result) == TOP + ["figures"]
    assert Path(result["figures"][0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("bl-v1", "bl-v2", "mi-face"):
        assert list(result[name]) == ["config", "speedup_vs_reference", "roofline_fraction"] and result[name]["config"] == "tiny"
    assert {cfg: list(rows) for cfg, rows in result["configs"].items()} == {"tiny": ["bl-v1", "bl-v2", "mi-face"], "tiny-events": ["bl-v1", "bl-v2"]}
    for rows in result["configs"].values():
        for name, row in rows.items():
            assert list(row) == ROW + ROW_EXTRA[name] + ["config"], name
            assert list(row["peak_rss_mb"]) == ["reference", "ours", "batched_autograd"]
            assert list(row["reference_timed"]) == REFERENCE_TIMED[name]
            assert list(row["config"]) == ["name", "network", "steps", "population", "classes"]
    blv2 = result["configs"]["tiny"]["bl-v2"]
    assert list(blv2["settings"]) == ["init", "iterations", "variant"]
    assert [list(p) for p in blv2["density_sweep"]] == [["density", "ours_s_per_iter", "speedup_vs_reference", "input_path"]]
    assert result["configs"]["tiny-events"]["bl-v2"]["density_sweep"] == []  # the density sweep runs on the first configuration only
    assert list(result["loihi"]) == ["tiny"] and list(result["loihi"]["tiny"]["bl-v2"]) == LOIHI
    assert list(result["sweeps"]) == ["population", "steps", "hidden", "classes"]
    assert all(list(r) == [param] + SWEEP for param, rows in result["sweeps"].items() for r in rows)
    assert list(result["load_average"]) == ["start", "end"] and list(result["peak_gflops"])[-1] == "peak"
    assert list(result["run"]) == ["config", "seed", "versions", "machine", "timings_s", "created"]
    # roofline fields use the larger of the two peaks
    row = result["configs"]["tiny"]["bl-v1"]
    assert result["roofline_peak_gflops"] == max(result["peak_gflops"]["peak"], result["peak_gflops_at_end"]["peak"])
    assert row["roofline_s_per_iter"] == pytest.approx(row["gflop_per_iter"] / result["roofline_peak_gflops"])
    assert result["bl-v1"]["roofline_fraction"] == row["roofline_fraction"]


def test_lava_throughput_result_has_the_stable_schema() -> None:
    from benchmarks.lava_throughput import LavaThroughput, NetworkThroughput

    net = NetworkThroughput(samples=20, steps=25, batched_seconds=2.0, batched_run_seconds=0.5, rebuild_samples=2, rebuild_seconds=4.0,
                            emulation_seconds=0.1, mismatches=0, spikes_per_sample=[30.0, 2.0])
    result = LavaThroughput({"784-300-10": net}, meta={"seed": 0}).to_json()
    assert list(result) == ["784-300-10", "meta"]
    assert result["784-300-10"] == {
        "samples": 20, "steps": 25, "batched_samples_per_s": 10.0, "batched_run_samples_per_s": 40.0, "batched_seconds": 2.0,
        "rebuild_samples_per_s": 0.5, "rebuild_seconds_per_sample": 2.0, "emulation_samples_per_s": 200.0, "mismatches": 0,
        "spikes_per_sample": [30.0, 2.0],
    }
    assert "meta" not in LavaThroughput({"784-300-10": net}, meta={}).to_json(meta=False)


def test_lane_scaling_times_each_lane_count_on_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.lane_scaling import main
    from nmprivacy.models import build, checkpoint, default_config

    torch.manual_seed(0)
    folder = checkpoint.save(build("snn-lava", default_config("snn-lava", (1, 8, 8), 10, "digits", hidden=6)), tmp_path / "ck",
                             extra={"dataset": "digits", "steps": 4})
    assert main([str(folder), "digits", "4", "--lanes", "1,2", "--repeats", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["oracle"] == "FastLIFOracle" and out["steps"] == 4 and out["classes"] == 10
    assert list(out["seconds"]) == ["1", "2"] and all(v > 0 for v in out["seconds"].values())
    assert out["relative"]["1"] == 1.0 and out["relative"]["2"] == pytest.approx(out["seconds"]["2"] / (2 * out["seconds"]["1"]))
