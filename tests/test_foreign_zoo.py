"""The foreign-network zoo's builders (``benchmarks/foreign_zoo``) stay runnable: a tiny member of
each framework is trained by its recipe for one epoch on 40 digits, written in the framework's
own format, and read back by ``nmprivacy.targets.load_target``; the split covers every family."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmarks.foreign_zoo import MEMBERS, audit_args, build, measure, member, splits_of
from nmprivacy.targets import load_target


def tiny(name: str, sizes: list[int]):
    m = member(name)
    return replace(m, name=f"{name}-tiny", data_options={"limit_train": 40, "limit_test": 20}, epochs=1, params={**m.params, "sizes": sizes})


def test_split_is_deterministic_and_covers_every_family() -> None:
    split = splits_of()
    assert split == splits_of() and set(split) == {m.name for m in MEMBERS}
    families = {m.family for m in MEMBERS}
    assert families == {"dense/image", "conv/image", "dense/events", "conv/events"}
    for part in ("choose", "report"):
        assert {m.family for m in MEMBERS if split[m.name] == part} == families
    assert 0.25 <= sum(s == "choose" for s in split.values()) / len(split) <= 0.45


@pytest.mark.parametrize("name", ["lavadl-mnist-dense", "snntorch-t5-mlp", "norse-mlp"])
def test_tiny_member_builds_and_loads(tmp_path, name: str) -> None:
    m = tiny(name, [784, 16, 10])
    path, record = build(m, tmp_path)
    assert path.is_file() and path.suffix == (".net" if m.framework == "lava-dl" else ".nir")
    assert 0.0 <= record["framework_test_accuracy"] <= 1.0 and record["train_samples"] == 40
    target = load_target(path, dt=m.dt)
    assert target.model.info.num_classes == 10
    with torch.no_grad():
        out = target.model(torch.zeros(m.steps, 2, 784))
    assert out.shape == (m.steps, 2, 10)
    assert f"--target {path}" in audit_args(m, path)
    if m.framework == "snntorch":  # the measurement path once: accuracies as the audit and a spike count see them
        from benchmarks.foreign_zoo import load_splits

        got = measure(m, path, load_splits(m))
        assert got["audit_steps"] == 25 and 0.0 <= got["nmprivacy_test_accuracy"] <= 1.0
