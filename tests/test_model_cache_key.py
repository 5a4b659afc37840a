"""A cached model is reused only for the data it was trained on: two event encodings of one data set
with the same shapes and sizes (binary bins vs denoised counts) never share a model, while image
sets keep the keys they always had. Tiny models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from nmprivacy.cache import cache_key
from nmprivacy.data import load_dataset
from nmprivacy.data.base import Split
from nmprivacy.presets import resolve
from nmprivacy.trained import model_cache_key, model_config, train_or_load
from nmprivacy.training import settings_for

# two pipelines of the same shape: the Lava-DL tutorial's binary bins and snnTorch's denoised counts
LAVA = {"sensor_size": [34, 34, 2], "denoise_us": 0.0, "frame_us": 3000.0, "polarity": "both", "steps": 100, "downsample": 1, "clamp": True}
TONIC = {**LAVA, "denoise_us": 10000.0, "clamp": False}


def _small_digits():
    digits = load_dataset("digits")
    return replace(digits, train=Split(digits.train.x[:60], digits.train.y[:60]), test=Split(digits.test.x[:20], digits.test.y[:20]))


def test_content_options_enter_the_key_and_image_keys_stay() -> None:
    small = _small_digits()
    assert small.content_options == {}
    preset = resolve("digits", "quick", hidden=8)
    cfg, settings = model_config("ann", small, preset, "quick"), settings_for("ann", preset)
    image_key = model_cache_key("ann", small, cfg, settings, 0, None)
    # what every image-set model was cached under before event options entered the key
    assert image_key == cache_key(dataset=small.name, source=small.source, n=[60, 20], kind="ann", config=cfg, settings=settings, seed=0, steps=None)
    lava = replace(small, info={**small.info, "pipeline": LAVA, "saccade": {"seed": 0}})
    tonic = replace(small, info={**small.info, "pipeline": TONIC, "saccade": {"seed": 0}})
    other_saccade = replace(lava, info={**lava.info, "saccade": {"seed": 1}})
    keys = {model_cache_key("ann", d, cfg, settings, 0, None) for d in (small, lava, tonic, other_saccade)}
    assert len(keys) == 4
    same_lava = replace(small, info={"pipeline": dict(LAVA), "saccade": {"seed": 0}, "cache": "/elsewhere/file.pt"})
    assert model_cache_key("ann", same_lava, cfg, settings, 0, None) == model_cache_key("ann", lava, cfg, settings, 0, None)


def test_a_model_of_one_encoding_is_not_reused_for_another(tmp_path: Path) -> None:
    small = _small_digits()
    preset = resolve("digits", "quick", hidden=8, overrides={"ann_train.epochs": 1})
    lava = replace(small, info={**small.info, "pipeline": LAVA})
    tonic = replace(small, info={**small.info, "pipeline": TONIC})
    first = train_or_load("ann", lava, preset, 0, None, tmp_path, "quick")
    assert not first.record["cached"]
    assert json.loads((Path(first.record["checkpoint"]) / "run.json").read_text())["data_content"]["pipeline"]["clamp"] is True
    second = train_or_load("ann", tonic, preset, 0, None, tmp_path, "quick")
    assert not second.record["cached"] and second.record["checkpoint"] != first.record["checkpoint"]
    again = train_or_load("ann", lava, preset, 0, None, tmp_path, "quick")
    assert again.record["cached"] and again.record["checkpoint"] == first.record["checkpoint"]
