"""Networks nmprivacy did not train, end to end: trained with their own frameworks as their users
do, written in their own formats, then audited with ``nmprivacy audit --target FILE --hardware``.

``python -m benchmarks.foreign_networks --out runs/foreign [--only NAME ...]`` trains (on
digits-28: scikit-learn's digits in MNIST's 28x28 layout, rate-coded, T = 25; or on its saccade
events, 1x34x34, T = 100) and audits:
- ``slayer-conv``: a PilotNet-style lava-dl network (Input with neurons, two strided CUBA
  convolutions, Flatten, two Dense), exported with slayer's own ``export_hdf5``;
- ``slayer-rec``: a lava-dl recurrent network (``block.cuba.Recurrent`` + Dense);
- ``slayer-dense``: a dense 784-128-64-10 lava-dl network (a foreign dense NetX file);
- ``norse``: a Norse LIFBox MLP with a LI read-out, written with Norse's ``to_nir``;
- ``snntorch``: an snnTorch Leaky MLP, written with snnTorch's NIR extractor;
- ``sinabs-style``: Conv2d, IF, SumPool2d, Flatten, Affine, IF, trained in torch and written
  with nir's own nodes and ``nir.write``;
- ``snn-lava-conv``: nmprivacy's convolutional target on the saccade events;
- ``nmnist-conv``: an snnTorch convolutional network trained on the saccade events, written as
  NIR, then run float and on Lava on the 21 real N-MNIST recordings kept in ``tests/data``;
- ``roundtrip``: nmprivacy's own digits-28 ``snn-lava`` target written as NIR (for snnTorch's
  0.1 ms step), read back by snnTorch and Norse (their spikes compared with ours on test
  inputs), then audited as a foreign NIR graph.
Each audit's ``results.json`` is kept under ``--out/<name>/``; ``--out/summary.json`` and
``summary.md`` collect Lava mismatches, float-vs-Loihi agreement and the BL-v1 / BL-v2 rows.
One module on purpose (~420 lines): one short builder per framework (each trains and writes
its network as that framework's users do) beside the one loop that audits them all.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

DATASET, EVENTS = "digits-28", "digits-28-saccade"
CUBA = {"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.3}


def spikes(x: torch.Tensor, steps: int, gen: torch.Generator) -> torch.Tensor:
    """Images ``[B, C, H, W]`` rate-coded to ``[T, B, C, H, W]``, or event frames ``[B, T, ...]`` time-first."""
    from nmprivacy.encoding import to_spikes

    return to_spikes(x, "image" if x.dim() == 4 else "events", steps if x.dim() == 4 else None, gen)


def fit(forward: Callable[[torch.Tensor], torch.Tensor], params: list[torch.Tensor], splits: Any, steps: int, epochs: int,
        lr: float = 1e-3, batch: int = 50, reset: Callable[[], None] | None = None, seed: int = 0) -> float:
    """Train ``forward`` (spikes ``[T, B, ...]`` -> output membrane ``[T, B, C]``) with the per-step
    cross-entropy; returns the test accuracy of the read-out (softmax averaged over time)."""
    from nmprivacy.models.base import membrane_cross_entropy, spike_readout

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr)
    n = len(splits.train)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for b0 in range(0, n, batch):
            idx = order[b0 : b0 + batch]
            if reset:
                reset()
            loss = membrane_cross_entropy(forward(spikes(splits.train.x[idx], steps, gen)), splits.train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    correct = 0
    with torch.no_grad():
        for b0 in range(0, len(splits.test), 200):
            if reset:
                reset()
            out = forward(spikes(splits.test.x[b0 : b0 + 200], steps, gen))
            correct += int((spike_readout(out).argmax(-1) == splits.test.y[b0 : b0 + 200]).sum())
    return correct / len(splits.test)


# ----------------------------------------------------------------------------- lava-dl (slayer)
def slayer_file(name: str, splits: Any, out: Path) -> tuple[Path, dict]:
    import h5py

    from nmprivacy.lava_import import import_slayer

    import_slayer()
    from lava.lib.dl import slayer

    torch.manual_seed(0)
    cuba = slayer.block.cuba
    if name == "slayer-conv":
        blocks = nn.ModuleList([
            cuba.Input(CUBA, weight=1.0, bias=0.0), cuba.Conv(CUBA, 1, 8, 5, stride=2, padding=2, weight_scale=2),
            cuba.Conv(CUBA, 8, 16, 3, stride=2, padding=1, weight_scale=2), cuba.Flatten(),
            cuba.Dense(CUBA, 16 * 7 * 7, 64, weight_scale=2), cuba.Dense(CUBA, 64, 10, weight_scale=2),
        ])
    elif name == "slayer-rec":
        blocks = nn.ModuleList([cuba.Recurrent(CUBA, 784, 128, weight_scale=2), cuba.Dense(CUBA, 128, 10, weight_scale=2)])
    else:
        blocks = nn.ModuleList([cuba.Dense(CUBA, 784, 128, weight_scale=2), cuba.Dense(CUBA, 128, 64, weight_scale=2), cuba.Dense(CUBA, 64, 10, weight_scale=2)])
    conv = name == "slayer-conv"

    def forward(x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        z = x.permute(1, 2, 3, 4, 0) if conv else x.reshape(t, b, -1).permute(1, 2, 0)
        for block in blocks[:-1]:
            z = block(z)
        last = blocks[-1]
        return last.neuron.dynamics(last.synapse(z))[1].permute(2, 0, 1)  # pre-reset output voltage [T, B, C]

    def reset() -> None:  # slayer's recurrent block keeps its last spikes between calls
        for block in blocks:
            if hasattr(block, "spike_state"):
                block.spike_state = torch.zeros(1)

    acc = fit(forward, list(blocks.parameters()), splits, 25, epochs=12, reset=reset)
    path = out / f"{name}.net"
    with h5py.File(path, "w") as f:
        group = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(group.create_group(str(i)))
    return path, {"framework_test_accuracy": acc}


# ----------------------------------------------------------------------------- Norse, snnTorch, NIR by hand
def norse_file(splits: Any, out: Path) -> tuple[Path, dict]:
    import nir
    import norse.torch as norse
    from norse.torch.utils.export_nir import to_nir

    torch.manual_seed(0)
    lif = norse.LIFBoxParameters(tau_mem_inv=torch.full((128,), 100.0), v_th=torch.full((128,), 0.3), v_leak=torch.zeros(128), v_reset=torch.zeros(128))
    li = norse.LIBoxParameters(tau_mem_inv=torch.full((10,), 100.0), v_leak=torch.zeros(10))
    model = norse.SequentialState(nn.Linear(784, 128, bias=False), norse.LIFBoxCell(lif), nn.Linear(128, 10, bias=False), norse.LIBoxCell(li))

    def forward(x: torch.Tensor) -> torch.Tensor:
        state, outs = None, []
        for t in range(x.shape[0]):
            y, state = model(x[t].reshape(x.shape[1], -1), state)
            outs.append(y)
        return torch.stack(outs)

    acc = fit(forward, list(model.parameters()), splits, 25, epochs=15, lr=3e-3)
    graph = to_nir(model, torch.zeros(784), dt=1.0)  # Norse 1.1.0 writes tau = dt / tau_mem_inv
    path = out / "norse.nir"
    nir.write(str(path), _numpy_graph(graph))
    return path, {"framework_test_accuracy": acc, "dt": 1e-3}


def _numpy_graph(graph: Any) -> Any:
    """Norse leaves torch tensors in its nodes, which nir.write rejects: the same graph with numpy arrays."""
    for node in graph.nodes.values():
        for key, value in list(vars(node).items()):
            if isinstance(value, torch.Tensor):
                setattr(node, key, value.detach().cpu().numpy())
    return graph


def snntorch_net(conv: bool) -> nn.Module:
    """An snnTorch network with per-neuron parameters of the neurons' shapes (what snnTorch's
    NIR export needs to type its graph)."""
    import snntorch as snn
    from snntorch import surrogate

    torch.manual_seed(0)
    grad = surrogate.fast_sigmoid(slope=25)

    def leaky(shape: tuple[int, ...], output: bool = False) -> nn.Module:
        return snn.Leaky(beta=torch.full(shape, 0.8), threshold=torch.ones(shape), init_hidden=True, spike_grad=grad, reset_mechanism="zero", output=output)

    if conv:
        return nn.Sequential(
            nn.Conv2d(1, 8, 5, stride=2, padding=2), leaky((8, 17, 17)), nn.Conv2d(8, 16, 3, stride=2, padding=1), leaky((16, 9, 9)),
            nn.Flatten(), nn.Linear(16 * 9 * 9, 10), leaky((10,), output=True),
        )
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), leaky((128,)), nn.Linear(128, 10), leaky((10,), output=True))


def snntorch_file(name: str, splits: Any, out: Path, steps: int) -> tuple[Path, dict]:
    import nir
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    conv = name == "nmnist-conv"
    model = snntorch_net(conv)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([model(x[t])[1] for t in range(x.shape[0])])

    acc = fit(forward, list(model.parameters()), splits, steps, epochs=8 if conv else 15, lr=2e-3, reset=lambda: utils.reset(model))
    shape = tuple(splits.input_shape)
    graph = export_to_nir(model, torch.zeros(1, *shape), ignore_dims=[0])
    path = out / f"{name}.nir"
    nir.write(str(path), _numpy_graph(graph))
    return path, {"framework_test_accuracy": acc, "dt": 1e-4}


class IF(nn.Module):
    """Integrate-and-fire (``v <- v + I``, spike above 1, reset to 0) with a fast-sigmoid surrogate."""

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        from nmprivacy.models.surrogates import spike

        v, out = torch.zeros_like(current[0]), []
        for t in range(current.shape[0]):
            v = v + current[t]
            z = spike(v - 1.0, "fast-sigmoid", 10.0)
            out.append((z, v))
            v = v * (1.0 - z.detach())
        self.voltage = torch.stack([o[1] for o in out])
        return torch.stack([o[0] for o in out])


def sinabs_file(splits: Any, out: Path) -> tuple[Path, dict]:
    import nir

    torch.manual_seed(0)
    conv, linear, if1, if2 = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.Linear(8 * 14 * 14, 10, bias=False), IF(), IF()

    def forward(x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        s1 = if1(conv(x.reshape(t * b, 1, 28, 28)).reshape(t, b, 8, 28, 28))
        pooled = nn.functional.avg_pool2d(s1.reshape(t * b, 8, 28, 28), 2) * 4  # sum pooling
        if2(linear(pooled.reshape(t, b, -1)))
        return if2.voltage

    acc = fit(forward, [conv.weight, linear.weight], splits, 25, epochs=6, lr=2e-3)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1, 28, 28])),
        nir.Conv2d(input_shape=(28, 28), weight=conv.weight.detach().numpy(), stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(8)),
        nir.IF(r=np.ones((8, 28, 28)), v_threshold=np.ones((8, 28, 28))),
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        nir.Flatten(input_type={"input": np.array([8, 14, 14])}, start_dim=0),
        nir.Affine(weight=linear.weight.detach().numpy(), bias=np.zeros(10)),
        nir.IF(r=np.ones(10), v_threshold=np.ones(10)),
        nir.Output(output_type=np.array([10])),
    )
    path = out / "sinabs-style.nir"
    nir.write(str(path), graph)
    return path, {"framework_test_accuracy": acc}


# ----------------------------------------------------------------------------- measurements
def audit(target: str, dataset: str, out: Path, seeds: int, lava_samples: int | None, dt: float | None, extra: dict, variant: str,
          evaluators: int = 3) -> dict:
    from nmprivacy.audit import AuditConfig, run_audit

    results = run_audit(AuditConfig(dataset=dataset, target=target, out=str(out), seeds=seeds, hardware=True, lava_samples=lava_samples, dt=dt,
                                    variant=variant, evaluators=evaluators))
    hw = results["hardware"]
    row = {
        "target": target,
        "dataset": dataset,
        "network": results["models"]["target"].get("network"),
        "val_acc": results["models"]["target"]["val_acc"],
        "lava_mismatches_test": hw["export"].get("total_mismatches"),
        "lava_test_inputs": hw["export"].get("lava_samples"),
        "lava_mismatches_attacks": (hw.get("attack") or {}).get("total_mismatches"),
        "lava_attack_inputs": (hw.get("attack") or {}).get("samples_on_lava"),
        "attacks": {name: {k: a[k] for k in ("attack_acc", "top3_acc", "avg_conf", "daa", "target_confidence", "oracle") if k in a}
                    for name, a in results["attacks"].items()},
        **extra,
    }
    src = hw["export"].get("source_vs_emulation")
    if src:
        row["float_vs_loihi"] = {k: src.get(k) for k in ("class_agreement", "hidden_bin_agreement", "hidden_identical_train_fraction", "layers")}
        row["float_val_acc"] = results["models"]["target"].get("float_val_acc")
    return row


def nmnist_check(path: Path, dt: float) -> dict:
    """Float model vs Lava on the 21 real N-MNIST recordings (20 labelled) kept in tests/data."""
    from nmprivacy.data import load_dataset
    from nmprivacy.models.base import spike_readout
    from nmprivacy.targets import fit_to_data, load_target
    from nmprivacy.validation import validate

    sample = Path(__file__).resolve().parents[1] / "tests" / "data" / "nmnist-sample"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "NMNIST"
        root.mkdir()
        (root / "Train").symlink_to(sample / "Test")
        (root / "Test").symlink_to(sample / "Test")
        splits = load_dataset("nmnist", root=tmp)
    target = fit_to_data(load_target(path, dt=dt), splits.input_shape, splits.num_classes, splits.name)
    x = splits.test.x.transpose(0, 1).float()
    with torch.no_grad():
        float_pred = spike_readout(target.float_model(x)).argmax(-1)
    result = validate(target, splits, samples=len(splits.test), progress=False)
    e = result["export"]
    return {
        "recordings": len(splits.test),
        "accuracy_float": float((float_pred == splits.test.y).float().mean()),
        "accuracy_lava": e["accuracy_lava"],
        "accuracy_emulation": e["accuracy_torch"],
        "lava_mismatches": e["total_mismatches"],
        "float_vs_loihi_class_agreement": e["source_vs_emulation"]["class_agreement"],
    }


def roundtrip_file(splits: Any, out: Path) -> tuple[Path, dict]:
    """Our trained target as NIR, read back by snnTorch and Norse: how often their output spikes
    equal our model's (the graph's float model, one step earlier per layer than Loihi)."""
    import nir
    from norse.torch.utils.import_nir import from_nir
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    from hw_export.netx_export import model_network
    from nmprivacy.trained import train_or_load
    from nmprivacy.cache import cache_root
    from nmprivacy.models.network_model import NetworkModel
    from nmprivacy.network.nir_export import write_nir
    from nmprivacy.network.nir_import import read_nir
    from nmprivacy.presets import preset_for

    preset = preset_for(DATASET)
    trained = train_or_load("snn-lava", splits, preset, 0, 25, cache_root(None))
    path = out / "roundtrip.nir"
    write_nir(model_network(trained.model), path, dt=1e-4)
    gen = torch.Generator().manual_seed(0)
    x = spikes(splits.test.x[:200], 25, gen).reshape(25, 200, -1)
    ours = NetworkModel(read_nir(path, dt=1e-4), kind="float")
    with torch.no_grad():
        expected = ours.layer_spikes(x)
        snn_model = import_from_nir(nir.read(str(path)))
        utils.reset(snn_model)
        hidden, output = [], []
        for t in range(25):
            h = snn_model.lif(snn_model.linear(x[t]))
            hidden.append(h)
            output.append(snn_model.lif_1(snn_model.linear_1(h)))
        norse_model, state, norse_out = from_nir(nir.read(str(path)), dt=1e-4), None, []
        for t in range(25):
            y, state = norse_model(x[t], state)
            norse_out.append(y)
    snn_hidden, snn_out = torch.stack(hidden), torch.stack(output)
    return path, {
        "dt": 1e-4,
        "snntorch_hidden_bin_agreement": float((snn_hidden == expected[0]).float().mean()),
        "snntorch_output_bin_agreement": float((snn_out[:-1] == expected[1][1:]).float().mean()),
        "norse_output_shape": list(torch.stack(norse_out).shape),
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| network | target acc | Lava mismatches (test / attacks) | float vs Loihi agreement | BL-v1 acc / DAA | BL-v2 acc / DAA | oracle |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "attacks" not in r:
            continue
        a1, a2 = r["attacks"].get("bl-v1", {}), r["attacks"].get("bl-v2", {})
        agree = r.get("float_vs_loihi", {}).get("class_agreement")
        lines.append(
            f"| {r['name']} | {100 * r['val_acc']:.1f} | {r['lava_mismatches_test']} of {r['lava_test_inputs']} inputs / {r['lava_mismatches_attacks']} of "
            f"{r['lava_attack_inputs']} | {'–' if agree is None else f'{100 * agree:.1f} %'} | {100 * a1.get('attack_acc', math.nan):.0f} / "
            f"{100 * a1.get('daa', math.nan):.0f} | {100 * a2.get('attack_acc', math.nan):.0f} / {100 * a2.get('daa', math.nan):.0f} | {a2.get('oracle')} |"
        )
    for r in rows:
        if "nmnist" in r:
            n = r["nmnist"]
            lines.append(f"\n{r['name']} on {n['recordings']} real N-MNIST recordings: float {100 * n['accuracy_float']:.1f} %, Lava {100 * n['accuracy_lava']:.1f} % "
                         f"({n['lava_mismatches']} mismatches against the emulation, float-vs-Loihi class agreement {100 * n['float_vs_loihi_class_agreement']:.1f} %).")
    return "\n".join(lines) + "\n"


NAMES = ("slayer-dense", "slayer-conv", "slayer-rec", "norse", "snntorch", "sinabs-style", "snn-lava-conv", "nmnist-conv", "roundtrip")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/foreign")
    parser.add_argument("--only", nargs="*", choices=NAMES, default=list(NAMES))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--lava-samples", type=int, default=300, help="inputs on Lava per check (test inputs; attack draws in total)")
    parser.add_argument("--variant", default="default", choices=("default", "paper", "reference"), help="the audits' attack settings")
    parser.add_argument("--evaluators", type=int, default=3, help="evaluators per audit (spiking evaluators on the event set cost ~20 min each on 2 cores)")
    args = parser.parse_args(argv)
    from nmprivacy.data import load_dataset
    from nmprivacy.lava_import import import_lava
    from nmprivacy.runinfo import atomic_write_json, atomic_write_text, run_metadata

    import_lava()
    out = Path(args.out)
    (out / "files").mkdir(parents=True, exist_ok=True)
    images, events = load_dataset(DATASET), None
    summary_path = out / "summary.json"
    rows = json.loads(summary_path.read_text())["rows"] if summary_path.exists() else []
    for name in args.only:
        start = time.perf_counter()
        dataset, dt, extra = DATASET, None, {}
        if name.startswith("slayer"):
            target, extra = slayer_file(name, images, out / "files")
        elif name == "norse":
            target, extra = norse_file(images, out / "files")
        elif name == "snntorch":
            target, extra = snntorch_file(name, images, out / "files", 25)
        elif name == "sinabs-style":
            target, extra = sinabs_file(images, out / "files")
        elif name == "roundtrip":
            target, extra = roundtrip_file(images, out / "files")
        else:
            events = events or load_dataset(EVENTS)
            dataset = EVENTS
            if name == "snn-lava-conv":
                target = "snn-lava-conv"
            else:
                target, extra = snntorch_file(name, events, out / "files", 100)
        dt = extra.get("dt")
        row = {"name": name, "variant": args.variant, "evaluators": args.evaluators,
               **audit(str(target), dataset, out / name, args.seeds, args.lava_samples, dt, extra, args.variant, args.evaluators)}
        if name == "nmnist-conv":
            row["nmnist"] = nmnist_check(Path(target), dt)
        row["seconds"] = time.perf_counter() - start
        rows = [r for r in rows if r["name"] != name] + [row]
        atomic_write_json(summary_path, {"rows": rows, **run_metadata(config=vars(args))})
        atomic_write_text(out / "summary.md", markdown(rows))
        print(markdown([row]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
