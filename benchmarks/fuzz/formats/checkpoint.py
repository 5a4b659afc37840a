"""Checkpoint folders: config.json / run.json types and bounds, crafted weights.pt (recorded sha256), pickles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Evil, Rng, files_under, pick

KINDS = ("snn-norse", "snn-lava", "ann", "evaluator", "evaluator-snn")


def ckpt(case: Path) -> Path:
    return case / "ckpt"


def ckpt_seed(case: Path, kind: str) -> None:
    from nmprivacy.models import build, checkpoint, default_config

    torch.manual_seed(0)
    model = build(kind, default_config(kind, (1, 8, 8), 10, "digits", hidden=6))
    checkpoint.save(model, ckpt(case), extra={"dataset": "digits", "steps": 4, "val_acc": 0.5}, seed=0)
    (case / "kind.txt").write_text(kind)  # for the command line, whatever a mutation does to the checkpoint


def ckpt_read(case: Path) -> Any:
    from nmprivacy.models import checkpoint

    return checkpoint.load(ckpt(case)), checkpoint.load_info(ckpt(case))


def ckpt_check(result: Any, case: Path) -> None:
    """The loaded model answers finite class probabilities for an input in its layout."""
    from nmprivacy.attacks.layout import to_model_layout

    model, info = result
    shape = tuple(model.info.input_shape)
    x = torch.zeros(2, *shape) if model.info.domain == "image" else to_model_layout(torch.zeros(2, 4, *shape), "spikes")
    with torch.no_grad():
        probs = model.probabilities(x)
    assert bool(torch.isfinite(probs).all()), "non-finite outputs"


def json_edit(path: Path, edit: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def bad_value(rng: Rng, value: Any) -> Any:
    """A value of the wrong type or beyond every sane bound for a field holding ``value``."""
    if value is None:  # an optional number
        return pick(rng, ["x", [1], float("nan"), float("inf"), True, {}])
    if isinstance(value, bool):
        return pick(rng, ["true", 1, None, []])
    if isinstance(value, int):
        return pick(rng, [-1, 10**9, 10**30, 1.5, "3", None, True, [], {}, float("nan")])
    if isinstance(value, float):
        return pick(rng, [float("nan"), float("inf"), "0.5", None, [], True, {}])
    if isinstance(value, list):
        return pick(rng, [[], [0, 8, 8], [-1, 8, 8], "abc", [1.5, 8, 8], [10**6, 10**6, 10**6], [[1]], [1] * 20])
    if isinstance(value, str):
        return pick(rng, ["bogus", 5, None, "", ["fast-sigmoid"]])
    return pick(rng, [5, "x", [1]])


def ckpt_json(rng: Rng, case: Path) -> Mutation:
    """config.json / run.json with wrong types, bad bounds, unknown or missing fields, other kinds."""
    folder = ckpt(case)
    config = json.loads((folder / "config.json").read_text())
    fields = sorted(config["config"])
    how = pick(rng, ["field", "field", "field", "unknown", "missing", "kind", "kindbad", "format", "notobject", "configtype",
                     "nested", "steps", "dataset", "valacc", "runkind", "runnested", "digest", "nodigest"])
    must_fail: bool | None = True
    if how == "field":
        name = pick(rng, fields)
        config["config"][name] = bad_value(rng, config["config"][name])
    elif how == "unknown":
        config["config"]["bogus_field"] = 1
    elif how == "missing":
        config["config"].pop(pick(rng, fields))
        must_fail = None  # a field with a default may be left out
    elif how == "kind":
        other = pick(rng, [k for k in KINDS if k != config["kind"]])
        if {other, config["kind"]} == {"evaluator", "evaluator-snn"}:
            must_fail = None  # same config and weights layout: nothing in the files tells them apart
        config["kind"] = other
    elif how == "kindbad":
        config["kind"] = pick(rng, ["bogus", 5, None, ["ann"]])
    elif how == "format":
        config["format"] = pick(rng, [2, "1", 1.0, True, None, 0])
    elif how == "configtype":
        config["config"] = pick(rng, [[], "x", None, 5])
    if how == "notobject":
        (folder / "config.json").write_text(pick(rng, ["[1, 2]", '"x"', "5", "null"]))
    elif how == "nested":
        (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    elif how in ("steps", "dataset", "valacc", "runkind"):
        value = {"steps": pick(rng, [10**9, 0, -3, "25", 2.5, True, 10**30]), "dataset": pick(rng, [5, "", [], "x" * 500, {}]),
                 "valacc": pick(rng, ["x", float("nan"), 1.5, -1, [0.5]]), "runkind": pick(rng, [5, "", ["ann"], {}])}[how]
        json_edit(folder / "run.json", lambda r: {**r, {"valacc": "val_acc", "runkind": "kind"}.get(how, how): value})
    elif how == "runnested":
        (folder / "run.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    elif how == "digest":
        config["weights_sha256"] = pick(rng, ["0" * 64, 5, [], "abc"])
        (folder / "config.json").write_text(json.dumps(config))
    elif how == "nodigest":
        config.pop("weights_sha256")
        (folder / "config.json").write_text(json.dumps(config))
        must_fail = False
    else:
        (folder / "config.json").write_text(json.dumps(config))
    return Mutation(f"ckpt-json-{how}", must_fail)


def ckpt_weights(rng: Rng, case: Path) -> Mutation:
    """A crafted weights.pt whose sha256 is recorded (so only its contents can refuse it)."""
    from nmprivacy.models.checkpoint import file_sha256

    folder = ckpt(case)
    state = torch.load(folder / "weights.pt", weights_only=True)
    name = pick(rng, sorted(k for k, v in state.items() if v.is_floating_point()))
    how = pick(rng, ["nan", "inf", "float64", "int", "extra", "missing", "list", "tensor", "empty", "evil", "stride0", "shape", "bool"])
    expect = None
    if how in ("nan", "inf"):
        state[name] = state[name].clone()
        state[name].view(-1)[0] = float("nan") if how == "nan" else float("inf")
    elif how == "float64":
        state[name] = state[name].double()
    elif how == "int":
        state[name] = state[name].long()
    elif how == "bool":
        state[name] = state[name] > 0
    elif how == "extra":
        state["extra.weight"] = torch.zeros(2)
    elif how == "missing":
        state.pop(name)
    elif how == "shape":
        state[name] = torch.zeros(*(s + 1 for s in state[name].shape))
    elif how == "stride0":
        state[name] = torch.zeros(1).expand(10**5, 10**5)
    if how == "list":
        torch.save(list(state.values()), folder / "weights.pt")
    elif how == "tensor":
        torch.save(state[name], folder / "weights.pt")
    elif how == "empty":
        torch.save({}, folder / "weights.pt")
    elif how == "evil":
        torch.save({**state, name: Evil()}, folder / "weights.pt")
        expect = "refused"
    else:
        torch.save(state, folder / "weights.pt")
    json_edit(folder / "config.json", lambda c: {**c, "weights_sha256": file_sha256(folder / "weights.pt")})
    return Mutation(f"ckpt-weights-{how}", True, expect)


def ckpt_generic(name: str, target: Path, variant: str) -> bool | None:
    if target.name == "weights.pt":
        return True  # any change of its bytes differs from the recorded sha256
    return expect({"random": True})(name, target, variant)


def ckpt_cli(case: Path) -> list[str]:
    attack = "mi-face" if (case / "kind.txt").read_text() in ("ann", "evaluator") else "bl-v1"
    return ["attack", "--model", str(ckpt(case)), "--attack", attack, "--quick", "--iterations", "1", "--out", str(case / "out" / "inv.pt")]


FORMAT = Format(
    "checkpoint",
    write_seed=ckpt_seed,
    targets=lambda case: files_under(ckpt(case), "*"),
    read=ckpt_read,
    variants=KINDS,
    check=ckpt_check,
    semantic=(ckpt_json, ckpt_weights),
    generic=ckpt_generic,
    cli=ckpt_cli,
    warm=lambda workdir: __import__("nmprivacy.models.snn_lava"),
)
