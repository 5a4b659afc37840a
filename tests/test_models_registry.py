"""Model registry, the image models and evaluators, and checkpoint folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nmprivacy.errors import CheckpointError, NmprivacyError
from nmprivacy.models import MODEL_KINDS, build, default_config
from nmprivacy.models.checkpoint import load, load_info, save
from nmprivacy.models.evaluator import evaluator_padding

SHAPE = (1, 8, 8)
KINDS = tuple(MODEL_KINDS)


def tiny(kind: str, shape: tuple[int, ...] = SHAPE, classes: int = 3):
    return build(kind, default_config(kind, shape, classes, "digits", hidden=12))


def sample_input(kind: str, batch: int = 2, steps: int = 6, shape: tuple[int, ...] = SHAPE) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    if MODEL_KINDS[kind].domain == "spikes":
        return (torch.rand(steps, batch, *shape, generator=g) < 0.5).float()
    return torch.rand(batch, *shape, generator=g)


@pytest.mark.parametrize("kind", KINDS)
def test_forward_layouts_and_probabilities(kind: str) -> None:
    torch.manual_seed(0)
    model = tiny(kind).freeze()
    assert model.info.kind == kind and model.info.num_classes == 3 and model.info.input_shape == SHAPE
    x = sample_input(kind)
    out = model(x)
    assert out.shape == ((6, 2, 3) if model.info.domain == "spikes" else (2, 3))
    probs = model.probabilities(x)
    assert probs.shape == (2, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    assert model.predict(x).shape == (2,)


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_round_trip_gives_identical_outputs(kind: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = tiny(kind).eval()
    with torch.no_grad():  # move weights away from their init so a fresh build cannot pass by luck
        for p in model.parameters():
            if p.dim() > 1:
                p.add_(0.05 * torch.randn_like(p))
    x = sample_input(kind)
    save(model, tmp_path / "ck", extra={"val_acc": 0.5}, seed=3)
    loaded = load(tmp_path / "ck", kind)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert torch.equal(loaded(x), model(x))
    info = load_info(tmp_path / "ck")
    assert info["val_acc"] == 0.5 and info["seed"] == 3 and info["kind"] == kind
    assert "torch" in info["versions"] and info["config"]["num_classes"] == 3


def test_wrong_kind_is_a_checkpoint_error(tmp_path: Path) -> None:
    save(tiny("ann"), tmp_path)
    with pytest.raises(CheckpointError, match="holds a 'ann' model but 'snn-norse' was requested"):
        load(tmp_path, "snn-norse")


def test_truncated_weights_are_a_checkpoint_error(tmp_path: Path) -> None:
    save(tiny("snn-norse"), tmp_path)
    weights = tmp_path / "weights.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as exc:
        load(tmp_path)
    assert "\n" not in str(exc.value)


def test_corrupt_config_and_missing_folder(tmp_path: Path) -> None:
    save(tiny("ann"), tmp_path / "a")
    (tmp_path / "a" / "config.json").write_text('{"format": 1, "kind": "ann", "conf')
    with pytest.raises(CheckpointError, match="corrupt"):
        load(tmp_path / "a")
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "nothing-here")
    save(tiny("ann"), tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "config.json").read_text())
    meta["config"]["hidden"] = 13  # weights no longer fit the config
    (tmp_path / "b" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match"):
        load(tmp_path / "b")


def test_weights_file_that_would_run_code_is_refused(tmp_path: Path) -> None:
    save(tiny("ann"), tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError):
        load(tmp_path)


def test_unknown_kind_is_one_line_error() -> None:
    with pytest.raises(NmprivacyError, match="unknown model kind 'cnn'"):
        default_config("cnn", SHAPE, 3)


def test_evaluator_padding_only_for_small_inputs() -> None:
    assert evaluator_padding((1, 28, 28)) == 0
    assert evaluator_padding((1, 16, 16)) == 0
    assert evaluator_padding((1, 15, 15)) == 2
    assert evaluator_padding((1, 8, 8)) == 2
    cfg = default_config("evaluator", (1, 28, 28), 10)
    model = build("evaluator", cfg)
    assert cfg.padding == 0 and model.stack.fc.in_features == 24 * 4 * 4  # 28-4=24 ->12 -> 8 -> 4
    assert build("evaluator", default_config("evaluator", SHAPE, 10)).stack.fc.in_features == 24 * 2 * 2


def test_evaluator_snn_neuron_follows_preset() -> None:
    mnist = default_config("evaluator-snn", (1, 28, 28), 10, "mnist")
    assert (mnist.surrogate, mnist.surrogate_slope, mnist.leak) == ("fast-sigmoid", 40.0, 0.7)
    events = default_config("evaluator-snn", (1, 34, 34), 10, "nmnist")
    assert (events.surrogate, events.surrogate_slope, events.leak) == ("atan", 1.5, 0.8)


def test_evaluator_snn_predicts_by_summed_membrane() -> None:
    torch.manual_seed(0)
    model = tiny("evaluator-snn").freeze()
    x = sample_input("evaluator-snn", batch=5, steps=8)
    assert torch.equal(model.predict(x), model(x).sum(0).argmax(-1))
