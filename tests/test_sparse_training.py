"""The sparse snn-lava engine (``nmprivacy.models.sparse_cuba``) against slayer itself: forward
spikes and voltages bit for bit, weight gradients within fp32 summation order, the Loihi export
after training on either engine, device plumbing, and the ``train-cost`` benchmark's schema."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import h5py
import pytest
import torch

from nmprivacy.errors import NmprivacyError
from nmprivacy.models import sparse_cuba
from nmprivacy.models.base import membrane_cross_entropy
from nmprivacy.models.cuba_blocks import cuba_dense
from nmprivacy.models.snn_lava import ENGINE_ENV, SNNLava, SNNLavaConfig

SHAPE = (1, 6, 7)
CLASSES = 4


def binary(t: int, b: int, shape: tuple[int, ...], density: float, seed: int) -> torch.Tensor:
    """Random 0/1 spikes ``[T, B, *shape]`` with the given density."""
    return (torch.rand(t, b, *shape, generator=torch.Generator().manual_seed(seed)) < density).float()


def slayer_reference(blocks: list[torch.nn.Module], x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each hidden block's delayed spikes ``[T, B, H]`` and the read-out's pre-reset voltage
    ``[T, B, C]`` through slayer's own blocks (as ``SNNLava._slayer_run``)."""
    t, b = x.shape[:2]
    s = x.reshape(t, b, -1).permute(1, 2, 0).contiguous()
    hidden = []
    for blk in blocks[:-1]:
        s = blk(s)
        hidden.append(s.permute(2, 0, 1))
    _, voltage = blocks[-1].neuron.dynamics(blocks[-1].synapse(s))
    return hidden, voltage.permute(2, 0, 1)


def loss_of(voltage: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss (every time step's output voltage matters)."""
    return membrane_cross_entropy(voltage, labels)


def weight_grads(blocks: list[torch.nn.Module]) -> list[torch.Tensor]:
    out = [blk.synapse.weight.grad.clone() for blk in blocks]
    for blk in blocks:
        blk.synapse.weight.grad = None
    return out


def assert_same_as_slayer(blocks: list[torch.nn.Module], x: torch.Tensor, labels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Forward bit-exact and weight gradients within fp32 summation order (rtol 1e-5, atol 1e-6
    of the largest gradient: sums that cancel); returns slayer's hidden spikes and voltage."""
    hidden, voltage = slayer_reference(blocks, x)
    loss_of(voltage, labels).backward()
    expected = weight_grads(blocks)
    result = sparse_cuba.run_stack(blocks, x, want_hidden=True)
    assert result is not None, "the sparse engine must take binary CPU inputs"
    ours_voltage, ours_hidden = result
    assert torch.equal(ours_voltage, voltage), "output voltages differ from slayer's"
    assert len(ours_hidden) == len(hidden) and all(torch.equal(a, b) for a, b in zip(ours_hidden, hidden)), "hidden spikes differ"
    loss_of(ours_voltage, labels).backward()
    for i, (ours, ref) in enumerate(zip(weight_grads(blocks), expected)):
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()) + 1e-12, msg=lambda m, i=i: f"block {i}: {m}")
    return hidden, voltage


def resets_happened(hidden: torch.Tensor) -> bool:
    """Some neuron spiked at two steps in a row (only possible after its hard reset to 0 and a new crossing)."""
    return bool(((hidden[1:] > 0) & (hidden[:-1] > 0)).any())


def force_gather(monkeypatch: pytest.MonkeyPatch, int32: bool = False) -> None:
    """The gather and the sparse outer product at every density (else GEMMs above ``DENSE_*``),
    summing in int32 even where int16 is exact if ``int32``."""
    monkeypatch.setattr(sparse_cuba, "DENSE_FORWARD", 2.0)
    monkeypatch.setattr(sparse_cuba, "DENSE_BACKWARD", 2.0)
    if int32:
        monkeypatch.setattr(sparse_cuba, "NARROW_ROWS", 0)


@pytest.mark.parametrize("density", [0.0, 0.01, 0.2, 1.0])
@pytest.mark.parametrize("mode", ["auto", "gather", "gather-int32", "gemm"])
def test_forward_and_gradients_equal_slayer(density: float, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "gemm":  # every block's currents and weight gradient through GEMMs (the hidden block's spikes too)
        monkeypatch.setattr(sparse_cuba, "DENSE_FORWARD", -1.0)
        monkeypatch.setattr(sparse_cuba, "DENSE_BACKWARD", -1.0)
    elif mode != "auto":
        force_gather(monkeypatch, int32=mode == "gather-int32")
    torch.manual_seed(0)
    model = SNNLava(SNNLavaConfig(SHAPE, CLASSES, hidden=40, weight_scale=3.0))
    with torch.no_grad():  # weights at and beyond the 8-bit range: clamped, and no gradient past it (127.5 rounds to 128)
        edge = torch.tensor([5.0, -4.5, 3.99, -4.0, 127.5 / 32, 126.5 / 32, -128.5 / 32, 3.96875])
        model.blocks[0].synapse.weight.view(40, -1)[:8, 0] = edge
        model.blocks[1].synapse.weight.view(CLASSES, -1)[0, :8] = edge
    x = binary(12, 5, SHAPE, density, seed=1)
    labels = torch.randint(0, CLASSES, (5,), generator=torch.Generator().manual_seed(2))
    hidden, voltage = assert_same_as_slayer(list(model.blocks), x, labels)
    if density >= 0.2:
        assert hidden[0].sum() > 20 and resets_happened(hidden[0]), "the test input must make the hidden block spike and reset"
        assert voltage.abs().sum() > 0
    if density == 0.0:
        assert voltage.abs().sum() == 0


@pytest.mark.parametrize("surrogate,current_decay", [("slayer", 1.0), ("fast-sigmoid", 0.5), ("slayer", 0.25)])
def test_other_surrogate_and_synaptic_memory_equal_slayer(surrogate: str, current_decay: float) -> None:
    torch.manual_seed(3)
    model = SNNLava(SNNLavaConfig(SHAPE, CLASSES, hidden=40, weight_scale=3.0, surrogate=surrogate, current_decay=current_decay))
    x = binary(12, 4, SHAPE, 0.2, seed=4)
    hidden, _ = assert_same_as_slayer(list(model.blocks), x, torch.tensor([0, 1, 2, 3]))
    assert resets_happened(hidden[0])


def test_rows_beyond_int16_sum_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """600 active inputs per row at the largest 8-bit weight (600 x 127 > 2^15): the int32 sums."""
    force_gather(monkeypatch)
    cfg = SNNLavaConfig((1, 20, 30), CLASSES, hidden=8)
    torch.manual_seed(0)
    model = SNNLava(cfg)
    with torch.no_grad():
        model.blocks[0].synapse.weight.fill_(10.0)  # clamped to 254 / 64: 127 int8 units
        model.blocks[0].synapse.weight[::2] *= -1.0
    x = torch.ones(6, 2, 1, 20, 30)
    with torch.no_grad():
        _, expected = model._slayer_run(x)
        result = sparse_cuba.run_stack(model.blocks, x)
    assert result is not None and torch.equal(result[0], expected)
    assert float(expected.abs().max()) > 0


def test_three_blocks_wide_and_narrow_gradients_equal_slayer() -> None:
    """A wide hidden block (gradient passed down as a GEMM plane) under a narrow one (fused)."""
    cfg = SNNLavaConfig(SHAPE, CLASSES, hidden=40, weight_scale=3.0)
    wide = sparse_cuba.FUSE_WIDTH + 6
    torch.manual_seed(5)
    blocks = [cuba_dense(42, wide, cfg), cuba_dense(wide, 30, cfg), cuba_dense(30, CLASSES, cfg)]
    hidden, _ = assert_same_as_slayer(blocks, binary(14, 3, SHAPE, 0.3, seed=6), torch.tensor([1, 2, 3]))
    assert hidden[0].sum() > 0 and hidden[1].sum() > 0


def test_worker_count_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each column block is one worker's: 1 or 3 workers give identical voltages and gradients."""
    torch.manual_seed(0)
    model = SNNLava(SNNLavaConfig(SHAPE, CLASSES, hidden=300, weight_scale=3.0))  # several column blocks
    x = binary(10, 3, SHAPE, 0.1, seed=7)
    runs = []
    for n in (1, 3):
        monkeypatch.setattr(sparse_cuba, "workers", lambda n=n: n)
        out = model(x)
        out.square().sum().backward()
        runs.append((out.detach(), weight_grads(list(model.blocks))))
    assert torch.equal(runs[0][0], runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_engine_choice_and_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = SNNLava(SNNLavaConfig(SHAPE, CLASSES, hidden=20, weight_scale=3.0))
    assert model.engine == "sparse"
    x = binary(8, 2, SHAPE, 0.3, seed=8)
    with torch.no_grad():
        expected = model._slayer_run(x)[1]
    counts = x * 2.0  # graded input: not for the sparse engine, slayer runs it
    assert sparse_cuba.run_stack(model.blocks, counts) is None
    with torch.no_grad():
        torch.testing.assert_close(model(counts), model._slayer_run(counts)[1], rtol=0, atol=0)
    xg = x.clone().requires_grad_(True)  # input gradients (attacks): slayer
    assert sparse_cuba.run_stack(model.blocks, xg) is None
    model(xg).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    with torch.no_grad():
        assert torch.equal(model(x), expected)
    with pytest.raises(NmprivacyError, match="engine"):
        model.engine = "gpu"
    monkeypatch.setenv(ENGINE_ENV, "slayer")
    assert SNNLava(SNNLavaConfig(SHAPE, CLASSES, hidden=4)).engine == "slayer"
    monkeypatch.setenv(ENGINE_ENV, "fast")
    with pytest.raises(NmprivacyError, match=ENGINE_ENV):
        SNNLava(SNNLavaConfig(SHAPE, CLASSES, hidden=4))


def netx_weights(model: SNNLava) -> list[torch.Tensor]:
    """The integer weights slayer's own ``export_hdf5`` writes, read back from the file."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for i, blk in enumerate(model.blocks):
            blk.export_hdf5(f.create_group(f"layer/{i}"))
        return [torch.from_numpy(f[f"layer/{i}/weight"][()]).float() for i in range(len(model.blocks))]


def test_twenty_steps_on_either_engine_export_the_same_netx_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    from nmprivacy.data import load_dataset
    from nmprivacy.data.base import Split
    from nmprivacy.models import default_config
    from nmprivacy.presets import TrainSettings
    from nmprivacy.training import train_model

    digits = load_dataset("digits")
    splits = replace(digits, test=Split(digits.test.x[:50], digits.test.y[:50]))
    cfg = replace(default_config("snn-lava", digits.input_shape, digits.num_classes, "digits", hidden=32), weight_scale=3.0)
    settings = TrainSettings(epochs=1, batch_size=20, lr=1e-2, grad_clip=1.0, max_train_samples=400)  # 20 optimiser steps
    models = {}
    ran = []  # steps the sparse engine took (it must not have fallen back to slayer)
    run_stack = sparse_cuba.run_stack
    monkeypatch.setattr(sparse_cuba, "run_stack", lambda *a, **k: ran.append(r := run_stack(*a, **k)) or r)
    for engine in ("sparse", "slayer"):
        monkeypatch.setenv(ENGINE_ENV, engine)
        models[engine], report = train_model("snn-lava", splits, cfg, settings, seed=3, steps=10, progress=False, device="cpu")
        assert report.engine == engine and report.device == "cpu" and report.train_samples == 400
        if engine == "sparse":
            assert len(ran) >= 20 and all(r is not None for r in ran), "the sparse engine did not train the model"
    torch.manual_seed(3)
    initial = SNNLava(cfg)  # the same seed's initial weights: training must have moved them
    step = 2.0  # NetX integers are w * 64, multiples of 2 (slayer's 8-bit step 2/64)
    for ours, theirs, start in zip(netx_weights(models["sparse"]), netx_weights(models["slayer"]), initial.integer_weights()):
        assert ours.shape == theirs.shape
        assert float((ours - theirs).abs().max()) <= step, "the engines' exported weights differ by more than one quantisation step"
        assert float((ours != start).float().mean()) > 0.05, "training moved too few weights for the comparison to mean anything"


def test_device_errors_are_one_line() -> None:
    from nmprivacy.training import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(NmprivacyError, match="CUDA") as err:
            resolve_device("cuda")
        assert "\n" not in str(err.value)
    with pytest.raises(NmprivacyError, match="device"):
        resolve_device("tpu")


def test_train_cost_quick_json_schema(tmp_path: Path) -> None:
    from benchmarks import train_cost

    out = tmp_path / "train-cost.json"
    assert train_cost.main(["--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for name, steps in (("mnist", 25), ("nmnist", 100)):
        rec = result[name]
        assert rec["steps"] == steps and rec["batch"] == train_cost.QUICK["batch"]
        for key in ("ours_samples_per_s", "slayer_samples_per_s", "speedup", "roofline_fraction_ours", "budget_minutes"):
            assert isinstance(rec[key], float) and rec[key] > 0, key
        assert rec["speedup"] == pytest.approx(rec["ours_samples_per_s"] / rec["slayer_samples_per_s"])
        assert 0 < rec["input_density"] < 0.5 and set(rec["loads"]) == {"0"}
    assert 0.005 < result["nmnist"]["input_density"] < 0.05  # real N-MNIST events are sparse
    assert result["gemm_peak_gflops"]["peak"] > 0 and result["loads"] == [0]
    assert result["mnist"]["dropout"] == 0.0
    assert train_cost.main(["--quick", "--networks", "mnist", "--dropout", "0.3", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())["mnist"]
    assert rec["dropout"] == 0.3 and rec["ours_s_per_step"] > 0 and rec["slayer_s_per_step"] > 0


def test_train_cost_is_registered_and_rejects_bad_options(tmp_path: Path) -> None:
    from benchmarks import train_cost
    from nmprivacy.commands import bench

    assert bench.load_benchmark("train-cost") is train_cost
    for argv, message in ((["--networks", "cifar"], "--networks 'cifar'"), (["--loads", "one"], "--loads 'one'"), (["--repeats", "0"], "--repeats 0"),
                          (["--dropout", "1.5"], "--dropout 1.5")):
        with pytest.raises(NmprivacyError, match=message):
            train_cost.main([*argv, "--json", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_device_is_a_command_line_option(tmp_path) -> None:
    """--device on train and audit: cpu trains; a GPU that torch does not see is one line before any work."""
    import torch

    from nmprivacy.cli import main

    assert main(["train", "--dataset", "digits", "--model", "snn-lava", "--quick", "--hidden", "8", "--device", "cpu", "--out", str(tmp_path / "ck")]) == 0
    if not torch.cuda.is_available():
        for argv in (["train", "--dataset", "digits", "--model", "ann", "--out", str(tmp_path / "x")], ["audit", "--quick", "--out", str(tmp_path / "a")]):
            assert main([*argv, "--device", "cuda"]) == 2
            assert not (tmp_path / "x").exists() and not (tmp_path / "a").exists()


def dropout_model(stack: str) -> SNNLava:
    """A small snn-lava whose hidden spikes reach a narrow block (``narrow``), a wide block then a
    narrow one (``wide``), or pass through learned axonal delays (``delays``)."""
    torch.manual_seed(9)
    if stack == "narrow":
        cfg = SNNLavaConfig(SHAPE, CLASSES, hidden=40, weight_scale=3.0)
    elif stack == "wide":
        cfg = SNNLavaConfig(SHAPE, CLASSES, hidden=sparse_cuba.FUSE_WIDTH + 6, extra_hidden=(30,), weight_scale=3.0)
    else:
        cfg = SNNLavaConfig(SHAPE, CLASSES, hidden=12, extra_hidden=(8,), delay_layers=(0, 1), weight_scale=3.0)
    model = SNNLava(cfg)
    for blk in model.blocks:
        if getattr(blk, "delay", None) is not None:
            blk.delay.delay.data = torch.rand(blk.delay.delay.shape) * 4.0
    return model.train()


@pytest.mark.parametrize("p", [0.5, 0.3])
@pytest.mark.parametrize("stack", ["narrow", "wide", "delays"])
def test_dropout_on_the_sparse_engine_equals_slayers_hooks(stack: str, p: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training with dropout: the sparse engine draws the masks slayer's hooks draw (same generator,
    same order), and its voltages and weight (and delay) gradients are slayer's: bit for bit at
    p = 0.5 (the scaled currents are exact), within fp32 summation order of the scaled currents
    otherwise (a truncated current may differ by one unit of 1/4096)."""
    from nmprivacy.training import hidden_dropout

    model = dropout_model(stack)
    x, labels = binary(12, 5, SHAPE, 0.3, seed=10), torch.arange(5) % CLASSES
    params = [prm for prm in model.parameters() if prm.requires_grad]
    run_stack = sparse_cuba.run_stack
    runs = {}
    for engine in ("slayer", "sparse"):
        model.engine = engine
        ran = []
        monkeypatch.setattr(sparse_cuba, "run_stack", lambda *a, run_stack=run_stack, **k: ran.append(r := run_stack(*a, **k)) or r)
        with hidden_dropout(model, p, torch.Generator().manual_seed(11)) as fired:
            out = model(x)
            loss_of(out, labels).backward()
        assert fired[0] == len(model.blocks) - 1, f"{engine}: one mask per hidden block"
        assert (engine == "sparse") == (len(ran) == 1 and ran[0] is not None), f"{engine}: which engine ran"
        assert model.dropout_masks is None and not any(m._forward_hooks for m in model.modules())
        runs[engine] = (out.detach(), [prm.grad.clone() for prm in params])
        for prm in params:
            prm.grad = None
    (ref_out, ref_grads), (out, grads) = runs["slayer"], runs["sparse"]
    with torch.no_grad():
        model.engine = "slayer"
        assert not torch.equal(model(x), ref_out), "the masks must change the output for the comparison to mean anything"
    if p == 0.5:
        assert torch.equal(out, ref_out)
    else:
        torch.testing.assert_close(out, ref_out, rtol=0, atol=1.0 / 4096)
    tol = 1e-5 if p == 0.5 else 1e-4
    for i, (ours, ref) in enumerate(zip(grads, ref_grads)):
        assert float(ref.abs().sum()) > 0
        torch.testing.assert_close(ours, ref, rtol=tol, atol=tol * float(ref.abs().max()) + 1e-12, msg=lambda m, i=i: f"parameter {i}: {m}")
