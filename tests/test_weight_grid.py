"""Weight precisions that train the same model (``nmprivacy.models.weight_grid``): the record's
claim checked against real trainings at every precision, and the model cache reusing a
vouched-for precision instead of training it again (``trained.adopt_other_precision``). Tiny
``snn-lava`` models on 8x8 digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nmprivacy.data import load_dataset
from nmprivacy.data.base import DatasetSplits
from nmprivacy.lava_import import import_lava
from nmprivacy.models.weight_grid import same_training_bits
from nmprivacy.network.loihi import WEIGHT_BITS, mantissa_high
from nmprivacy.presets import resolve
from nmprivacy.trained import model_config, train_or_load
from nmprivacy.training import settings_for, train_model

import_lava()


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits")


def preset(bits: int, kind: str = "snn-lava"):  # noqa: ANN201
    small = {"hidden": 32} if kind == "snn-lava" else {"snn_train.max_train_samples": 300}
    return resolve("digits", "quick", overrides={**small, "target_config.weight_bits": bits})


def trained(bits: int, splits: DatasetSplits, kind: str = "snn-lava"):  # noqa: ANN201
    p = preset(bits, kind)
    return train_model(kind, splits, model_config(kind, splits, p), settings_for(kind, p), seed=0, steps=10, progress=False)


def test_loihi_weights_equal_slayers_8_bits_up_to_the_mantissa_and_not_past_it() -> None:
    from nmprivacy.models.cuba_blocks import LoihiWeights, cuba_dense
    from nmprivacy.models import default_config

    block = cuba_dense(6, 5, default_config("snn-lava", (6,), 5, dataset="digits", hidden=5))
    eight = block.synapse.pre_hook_fx
    unit = 2 / 64
    for bits in (2, 4, 6):
        for widest, same in ((mantissa_high(bits), True), (mantissa_high(bits) + 1, False)):
            w = (torch.rand(5, 6) * 2 - 1) * widest * unit
            w[0, 0] = widest * unit  # the layer's widest weight, exactly
            a, b = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
            qa, qb = eight(a), LoihiWeights(bits)(b)
            (qa * torch.arange(30.0).reshape(5, 6)).sum().backward()
            (qb * torch.arange(30.0).reshape(5, 6)).sum().backward()
            assert torch.equal(qa, qb) is same, (bits, widest)
            if same:
                assert torch.equal(a.grad, b.grad)


@pytest.mark.parametrize("kind", ["snn-lava", "snn-lava-conv"])
def test_a_training_is_the_same_at_exactly_the_precisions_its_record_vouches_for(kind: str, digits: DatasetSplits) -> None:
    model8, report8 = trained(8, digits, kind)
    assert report8.weight_grid is not None and len(report8.weight_grid) == (2 if kind == "snn-lava" else 3)  # every quantised layer
    vouched = same_training_bits(report8.weight_grid, 8)
    assert 8 in vouched and 2 not in vouched, f"widest {report8.weight_grid}: pick a model whose record splits the precisions"
    state8 = model8.state_dict()
    # every precision on the dense model; on the conv model the narrowest vouched-for one and the next narrower
    check = [b for b in WEIGHT_BITS if b != 8] if kind == "snn-lava" else [min(vouched), min(vouched) - 1]
    for bits in check:
        model, report = trained(bits, digits, kind)
        equal = all(torch.equal(state8[k], v) for k, v in model.state_dict().items())
        assert equal is (bits in vouched), f"{bits} bits: weights {'equal' if equal else 'differ'}, record {report8.weight_grid}"
        if equal:
            assert report.weight_grid == report8.weight_grid and report.val_accuracy == report8.val_accuracy


def test_the_cache_reuses_a_vouched_precision_in_either_direction_and_records_it(digits: DatasetSplits, tmp_path: Path) -> None:
    first = train_or_load("snn-lava", digits, preset(4), 0, 10, tmp_path / "a")
    assert "weights_from" not in first.record
    widest = max(json.loads((Path(first.record["checkpoint"]) / "run.json").read_text())["train_report"]["weight_grid"])
    assert widest <= mantissa_high(4)  # else 4 bits would not be the same training as 8 (the test's premise)
    for bits in (8, 5):  # wider precisions: the same training as the 4-bit one
        other = train_or_load("snn-lava", digits, preset(bits), 0, 10, tmp_path / "a")
        assert other.record["weights_from"]["weight_bits"] == 4 and other.record["config"].weight_bits == bits
        assert other.model.config.weight_bits == bits
        assert all(torch.equal(first.model.state_dict()[k], v) for k, v in other.model.state_dict().items())
        run = json.loads((Path(other.record["checkpoint"]) / "run.json").read_text())
        assert run["weights_from"]["checkpoint"] == first.record["checkpoint"] and run["config"].get("weight_bits", 8) == bits  # (8 is left out of records)
    again = train_or_load("snn-lava", digits, preset(8), 0, 10, tmp_path / "a")  # now a plain cache hit, still saying where from
    assert again.record["cached"] and again.record["weights_from"]["weight_bits"] == 4
    narrow = next(b for b in sorted(WEIGHT_BITS, reverse=True) if widest > mantissa_high(b))
    fresh = train_or_load("snn-lava", digits, preset(narrow), 0, 10, tmp_path / "a")  # not vouched for: trained
    assert "weights_from" not in fresh.record and not fresh.record["cached"]
    # a record without the widest weights (a model cached before they were recorded) vouches for nothing
    run_path = Path(first.record["checkpoint"]) / "run.json"
    run = json.loads(run_path.read_text())
    run["train_report"].pop("weight_grid")
    (tmp_path / "b").mkdir()
    import shutil

    shutil.copytree(first.record["checkpoint"], tmp_path / "b" / Path(first.record["checkpoint"]).name)
    (tmp_path / "b" / Path(first.record["checkpoint"]).name / "run.json").write_text(json.dumps(run))
    assert "weights_from" not in train_or_load("snn-lava", digits, preset(8), 0, 10, tmp_path / "b").record


def test_reports_say_which_models_were_adopted_rather_than_trained() -> None:
    from nmprivacy.defence_text import adopted_weights_text
    from nmprivacy.report import model_source_lines

    src = {"checkpoint": "/cache/digits-28-snn-lava-s0-abc", "weight_bits": 8, "widest_mantissa": 5, "why": "..."}
    assert adopted_weights_text("the target", [{"kind": "snn-lava"}]) is None
    one = adopted_weights_text("the target", [{"weights_from": src}])
    assert "/cache/digits-28-snn-lava-s0-abc" in one and "8-bit" in one and "from 4 bits up" in one  # 5 steps need 4 bits (at most 7)
    many = adopted_weights_text("models 0, 2", [{"weights_from": src}, {}, {"weights_from": {**src, "weight_bits": 6, "widest_mantissa": 1}}])
    assert "6/8-bit" in many and "from 4 bits up" in many and "weights_from" in many
    assert adopted_weights_text("m", [{"weights_from": {**src, "widest_mantissa": 0}}]).count("from 2 bits up") == 1  # Loihi's fewest
    lines = model_source_lines({"target": {"weights_from": src}, "evaluators": [{}]})
    assert len(lines) == 2 and lines[1].startswith("Target: not trained again")
    assert model_source_lines({"target": {}, "evaluators": [{}]}) == []
