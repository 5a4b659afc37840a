"""NetX HDF5 files (Loihi networks), as lava-dl's own export writes them: values, sizes, types, layers, metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.fuzz.core import Format, Mutation, expect
from benchmarks.fuzz.formats.common import Rng, pick

NETX_SHAPE = {"dense": (16,), "conv": (2, 9, 11)}


def netx_seed(case: Path, variant: str) -> None:
    """A NetX file as lava-dl users write them: slayer blocks exported with their own export_hdf5
    (a dense snn-lava target, or a PilotNet-style input layer + strided convs + flatten + dense)."""
    import h5py

    from nmprivacy.lava_import import import_slayer

    case.mkdir(parents=True, exist_ok=True)
    import_slayer()
    from lava.lib.dl import slayer

    torch.manual_seed(0)
    cuba, params = slayer.block.cuba, {"threshold": 1.0, "current_decay": 0.5, "voltage_decay": 0.2}
    if variant == "conv":
        blocks = torch.nn.ModuleList([cuba.Input(params, weight=1.5, bias=0.0), cuba.Conv(params, 2, 4, 3, stride=2, padding=1, weight_scale=3),
                                      cuba.Flatten(), cuba.Dense(params, 4 * 5 * 6, 5, weight_scale=3)])
        x = torch.zeros(1, 2, 9, 11, 1)
    else:
        blocks = torch.nn.ModuleList([cuba.Dense(params, 16, 12, weight_scale=3), cuba.Dense(params, 12, 4, weight_scale=3)])
        x = torch.zeros(1, 16, 1)
    with torch.no_grad():
        for block in blocks:
            x = block(x)
    with h5py.File(case / "net.net", "w") as f:
        group = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(group.create_group(str(i)))


def netx_read(case: Path) -> Any:
    """The emulation of the file, run on a few steps of input (what an attack or validation does first)."""
    from hw_export.netx_emulation import load_netx

    model = load_netx(case / "net.net")
    x = torch.ones(3, 2, *model.info.input_shape)
    with torch.no_grad():
        return model, model(x)


def netx_check(result: Any, case: Path) -> None:
    model, out = result
    assert bool(torch.isfinite(out).all()) and out.shape[:2] == (3, 2) and out.shape[2] == model.info.num_classes


def _netx_dataset(f: Any, rng: Rng) -> tuple[str, Any]:
    import h5py

    names: list[str] = []
    f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
    name = pick(rng, sorted(names))
    return name, f[name]


def netx_mutation(rng: Rng, case: Path) -> Mutation:
    """NaN/inf weights, huge declared sizes, strings for numbers, wrong shapes, parameters out of
    Loihi's range, missing or extra layers, layer types NetX cannot build, neurons it does not
    have, broken metadata; and valid variants (large delays are clamped, graded spikes noted)."""
    import h5py

    path = case / "net.net"
    how = pick(rng, ["nan", "inf", "huge", "string", "transpose", "vth", "decay", "gap", "extra", "pool", "sdnn", "nokey", "meta",
                     "zeros", "delay-valid", "graded-valid", "bias-nan", "stride0", "groups", "shape", "negdelay", "anyvalue"])
    must_fail: bool | None = True
    with h5py.File(path, "r+") as f:
        layers = sorted(f["layer"].keys(), key=int)
        last = f"layer/{layers[-1]}"
        w = f[f"{last}/weight"]
        if how in ("nan", "inf"):
            data = w[()]
            data.reshape(-1)[int(rng.integers(data.size))] = np.nan if how == "nan" else np.inf
            w[...] = data
        elif how == "huge":
            del f[f"{last}/weight"]
            f.create_dataset(f"{last}/weight", shape=(1 << 20, 1 << 12), dtype="f4", chunks=(1024, 64), compression="gzip", fillvalue=2.0)
        elif how == "string":
            del f[f"{last}/neuron/vThMant"]
            f.create_dataset(f"{last}/neuron/vThMant", data="sixty-four")
        elif how == "transpose":
            data = w[()]
            del f[f"{last}/weight"]
            f.create_dataset(f"{last}/weight", data=data.T.copy() if data.ndim == 2 else data[:1])
        elif how == "vth":
            del f[f"{last}/neuron/vThMant"]
            f.create_dataset(f"{last}/neuron/vThMant", data=pick(rng, [-5, 1 << 20]))
        elif how == "decay":
            del f[f"{last}/neuron/iDecay"]
            f.create_dataset(f"{last}/neuron/iDecay", data=pick(rng, [-1, 5000]))
        elif how == "gap":
            f.move("layer/0", "layer/7")
        elif how == "extra":
            f.create_group("layer/x").create_dataset("type", (1,), "S10", [b"dense"])
        elif how == "pool":
            del f[f"{last}/type"]
            f.create_dataset(f"{last}/type", (1,), "S10", [pick(rng, [b"pool", b"convT", b"average", b"concat", b"unpool", b"dense_comp", b"wat"])])
        elif how == "sdnn":
            del f[f"{last}/neuron/type"]
            f.create_dataset(f"{last}/neuron/type", (1,), "S10", [pick(rng, [b"SDNN", b"RF", b"RF_IZ", b""])])
        elif how == "nokey":
            del f[pick(rng, [f"{last}/neuron/vDecay", f"{last}/weight", f"{last}/type"])]
        elif how == "meta":
            f.attrs["nmprivacy"] = pick(rng, ["{not json", json.dumps({"input_shape": [-1, 2]}), json.dumps([1, 2]), json.dumps({"input_shape": "x"})])
            must_fail = None  # metadata is advice: a broken one is ignored
        elif how == "zeros":
            w[...] = 0
        elif how == "delay-valid":
            out_f = w.shape[0]
            f.create_dataset(f"{last}/delay", data=np.full(out_f, int(rng.integers(0, 100))))
            must_fail = False  # delays above 62 are clamped, as NetX does (noted)
        elif how == "graded-valid":
            del f[f"{last}/neuron/gradedSpike"]
            f.create_dataset(f"{last}/neuron/gradedSpike", data=True)
            must_fail = False  # Lava's CUBA neuron sends binary spikes: read, and noted
        elif how == "bias-nan":
            f.create_dataset(f"{last}/bias", data=np.full(w.shape[0], np.nan))
        elif how in ("stride0", "groups") and "conv" in {f[f"layer/{k}/type"][0].decode() for k in layers}:
            conv = next(f"layer/{k}" for k in layers if f[f"layer/{k}/type"][0] == b"conv")
            key = "stride" if how == "stride0" else "groups"
            del f[f"{conv}/{key}"]
            f.create_dataset(f"{conv}/{key}", data=np.array([0, 0]) if how == "stride0" else 3)
        elif how == "shape":
            del f[f"{last}/shape"]
            f.create_dataset(f"{last}/shape", data=np.array([w.shape[0] + 1]))
        elif how == "negdelay":
            f.create_dataset(f"{last}/delay", data=-np.ones(w.shape[0]))
        else:  # any other dataset replaced by random numbers of its own shape: either outcome is fine
            name, ds = _netx_dataset(f, rng)
            if ds.dtype.kind in "biuf" and ds.size:
                ds[...] = rng.normal(0, 1e3, ds.shape).astype(ds.dtype) if ds.dtype.kind == "f" else rng.integers(-5, 5000, ds.shape)
            must_fail = None
    return Mutation(f"netx-{how}", must_fail)


FORMAT = Format(
    "netx",
    write_seed=netx_seed,
    targets=lambda case: [case / "net.net"],
    read=netx_read,
    variants=("dense", "conv"),
    check=netx_check,
    semantic=(netx_mutation,),
    generic=expect({"truncate": True, "magic": True}),
    cli=lambda case: ["validate", "--model", str(case / "net.net"), "--random", "2", "--steps", "4", "--out", str(case / "out"), "--no-progress"],
    warm=lambda workdir: (__import__("hw_export.netx_emulation"), __import__("hw_export.lava_env").lava_env.lava_modules()),
)
