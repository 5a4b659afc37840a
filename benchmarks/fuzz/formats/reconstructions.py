"""Reconstruction / inversion files scored by ``nmprivacy evaluate``: values, dtypes, shapes, classes, pickles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Evil, Rng, pick

RECON_SHAPE = (1, 8, 8)  # digits


def recon_seed(case: Path, variant: str) -> None:
    """A reconstruction file of 10 digits classes and an untrained evaluator to score it."""
    from nmprivacy.attacks.base import Inversion
    from nmprivacy.attacks.io import save_inversion
    from nmprivacy.models import build, checkpoint, default_config

    case.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    if variant == "inversion":
        spikes = (torch.rand(10, 4, *RECON_SHAPE, generator=g) < 0.3).float()
        save_inversion(case / "inv.pt", Inversion("bl-v1", list(range(10)), spikes, torch.zeros(2, 10), torch.zeros(2, 10), 2, 0.01, 0))
    elif variant == "bare":
        torch.save(torch.rand(10, *RECON_SHAPE, generator=g), case / "inv.pt")
    else:
        torch.save({"reconstructions": torch.rand(10, 4, *RECON_SHAPE, generator=g), "classes": torch.arange(10)}, case / "inv.pt")
    torch.manual_seed(0)
    checkpoint.save(build("evaluator", default_config("evaluator", RECON_SHAPE, 10, "digits")), case / "judge")


def recon_read(case: Path) -> Any:
    from nmprivacy.evaluation.scoring import load_scorable

    return load_scorable(str(case / "inv.pt"), RECON_SHAPE, 10)


def recon_check(result: Any, case: Path) -> None:
    recon, classes = result
    assert recon.dtype == torch.float32 and recon.shape[0] == 10 and bool(torch.isfinite(recon).all())
    assert sorted(classes) == list(range(10))


def recon_mutation(rng: Rng, case: Path) -> Mutation:
    """NaN/inf, huge values, wrong dtypes and shapes, bad classes, values out of range, forged
    views, non-tensor contents, pickles with code, and valid variants (bool, int, float64)."""
    path = case / "inv.pt"
    data = torch.load(path, weights_only=True)
    recon = data["reconstructions"] if isinstance(data, dict) else data
    classes = data.get("classes", torch.arange(10)) if isinstance(data, dict) else torch.arange(10)
    how = pick(rng, ["nan", "inf", "huge", "complex", "flat", "classesK", "classesdup", "classesneg", "classesfloat", "classes2d",
                     "classesbig", "range", "stride0", "nokey", "list", "str", "evil", "emptyT", "bool", "int", "float64"])
    must_fail: bool | None = True
    expect = None
    out: Any = None
    if how in ("nan", "inf", "huge", "range"):
        recon = recon.double().clone()
        value = {"nan": float("nan"), "inf": float("inf"), "huge": 1e300, "range": pick(rng, [2.0, -1.0])}[how]
        if how == "range" and recon.dim() == 1 + len(RECON_SHAPE):
            must_fail = None  # images are min-max scaled: any finite value is fine
        recon.view(-1)[int(rng.integers(recon.numel()))] = value
    elif how == "complex":
        recon = recon.to(torch.complex64)
    elif how == "flat":
        recon = recon.reshape(-1)
    elif how == "emptyT":
        recon = recon.reshape(10, -1)[:, :0]
    elif how == "classesK":
        classes = classes[:-1]
    elif how == "classesdup":
        classes = torch.zeros(10, dtype=torch.long)
    elif how == "classesneg":
        classes = classes - 1
    elif how == "classesfloat":
        classes = classes.float()
    elif how == "classes2d":
        classes = classes[None]
    elif how == "classesbig":
        classes = classes + 10
    elif how == "stride0":
        recon = torch.zeros(1).expand(10, 10**5, 10**5)
    elif how == "bool":
        recon, must_fail = recon > 0.5, False
    elif how == "int":
        recon, must_fail = (recon > 0.5).to(torch.uint8), False
    elif how == "float64":
        recon, must_fail = recon.double(), False
    if how == "nokey":
        out = {"recon": recon}
    elif how == "list":
        out = [recon]
    elif how == "str":
        out = {"reconstructions": "spikes"}
    elif how == "evil":
        out, expect = {"reconstructions": recon, "x": Evil()}, "refused"
    elif how.startswith("classes") or isinstance(data, dict):
        out = {"reconstructions": recon, "classes": classes}
    else:
        out = recon
    torch.save(out, path)
    return Mutation(f"recon-{how}", must_fail, expect)


FORMAT = Format(
    "reconstructions",
    write_seed=recon_seed,
    targets=lambda case: [case / "inv.pt"],
    read=recon_read,
    variants=("inversion", "bare", "probabilities"),
    check=recon_check,
    semantic=(recon_mutation,),
    generic=expect({"truncate": True, "magic": True, "random": True}),
    cli=lambda case: ["evaluate", "--reconstructions", str(case / "inv.pt"), "--dataset", "digits", "--evaluator", str(case / "judge"),
                      "--json", str(case / "out" / "metrics.json")],
)
