"""The preprocessing cache of event data sets: a damaged entry must be rebuilt, never trusted or an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmarks.fuzz.core import Format, Mutation, isolated
from benchmarks.fuzz.formats.common import Evil, Rng, data_info, pick, writers
from benchmarks.fuzz.formats.nmnist import nmnist_folder

CACHE_STEPS = 20


def cache_seed(case: Path, variant: str) -> None:
    """N-MNIST files, their cache entry (in ``cache/``) and the true frames (``truth.pt``)."""
    from nmprivacy.data import load_dataset

    writers().write_nmnist(nmnist_folder(case), {"Train": 1, "Test": 1})
    with isolated(case / "cache"):
        truth = load_dataset("nmnist", root=case / "data", steps=CACHE_STEPS, cache=False)
        load_dataset("nmnist", root=case / "data", steps=CACHE_STEPS)
    torch.save({"x_train": truth.train.x, "y_train": truth.train.y, "x_test": truth.test.x, "y_test": truth.test.y}, case / "truth.pt")


def cache_file(case: Path) -> Path:
    return sorted((case / "cache").glob("nmnist-*.pt"))[0]


def cache_read(case: Path) -> Any:
    from nmprivacy.data import load_dataset

    return load_dataset("nmnist", root=case / "data", steps=CACHE_STEPS)


def cache_check(result: Any, case: Path) -> None:
    """The frames equal the truth, and the entry left behind is a valid cache hit."""
    truth = torch.load(case / "truth.pt", weights_only=True)
    for split in ("train", "test"):
        got = getattr(result, split)
        assert torch.equal(got.x, truth[f"x_{split}"]) and torch.equal(got.y, truth[f"y_{split}"]), f"{split} differs from the true frames"
    entry = Path(result.info["cache"]) if result.info.get("cache") else None
    if entry is not None:
        from nmprivacy.data import events

        original = events.frames_for

        def boom(*a: object, **k: object) -> None:
            raise AssertionError("the rebuilt cache entry is not a hit")

        events.frames_for = boom
        try:
            again = cache_read(case)
        finally:
            events.frames_for = original
        assert torch.equal(again.train.x, truth["x_train"]), "the rebuilt entry holds other frames"


def cache_mutation(rng: Rng, case: Path) -> Mutation:
    """Entries that load but must not be trusted: wrong keys, dtypes, shapes, values, settings,
    types; a pickle with code; a forged stride-0 view; a stale digest; a folder for the file."""
    from nmprivacy.cache import DIGEST, content_digest

    path = cache_file(case)
    content = torch.load(path, weights_only=True)
    body = {k: v for k, v in content.items() if k != DIGEST}
    how = pick(rng, ["dropkey", "extrakey", "dtype", "shape", "values", "labels", "nan", "settings", "list", "tensor", "evil",
                     "stride0", "stale", "nodigest", "folder"])
    key = pick(rng, ["x_train", "x_test"])
    digest = True
    if how == "dropkey":
        body.pop(pick(rng, sorted(body)))
    elif how == "extrakey":
        body["extra"] = torch.zeros(3)
    elif how == "dtype":
        body[key] = body[key].to(pick(rng, [torch.float32, torch.int64, torch.bool]))
    elif how == "shape":
        body[key] = body[key][:-1] if rng.random() < 0.5 else body[key][:, :-1]
    elif how == "values":
        body[key] = body[key].clone()
        body[key].view(-1)[int(rng.integers(body[key].numel()))] = pick(rng, [2, 255])
    elif how == "labels":
        y = "y" + key[1:]
        body[y] = body[y].clone()
        body[y][0] = pick(rng, [10, -1, 99])
    elif how == "nan":
        body[key] = body[key].float()
        body[key].view(-1)[0] = float("nan")
    elif how == "settings":
        body["settings_json"] = body["settings_json"].replace("20", "21", 1)
    elif how == "stale":
        digest = False
        body[key] = body[key].clone()
        body[key].view(-1)[0] ^= 1  # a flipped voxel, still 0/1: only the digest tells
    if how == "list":
        torch.save([body[k] for k in sorted(body)], path)
    elif how == "tensor":
        torch.save(body[key], path)
    elif how == "evil":
        torch.save({**body, "x": Evil()}, path)
    elif how == "stride0":
        body[key] = torch.zeros(1, dtype=torch.uint8).expand(10**6, CACHE_STEPS, 1, 34, 34)
        torch.save({**body, DIGEST: "0" * 32}, path)
    elif how == "nodigest":
        torch.save(body, path)
    elif how == "folder":
        path.unlink()
        (path / "inner").mkdir(parents=True)
    else:
        torch.save({**body, DIGEST: content_digest(body) if digest else content[DIGEST]}, path)
    return Mutation(f"cache-{how}", False)


FORMAT = Format(
    "event-cache",
    write_seed=cache_seed,
    targets=lambda case: [cache_file(case)],
    read=cache_read,
    check=cache_check,
    semantic=(cache_mutation,),
    generic=lambda name, target, variant: False,  # whatever happened to the entry, the data must load right
    cli=data_info("nmnist", f"steps={CACHE_STEPS}"),
)
