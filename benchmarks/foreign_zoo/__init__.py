"""The held-out "foreign" network set (issue 22): SNNs trained by recipes that are not nmprivacy's.

nmprivacy's attack defaults were chosen on networks nmprivacy trained itself (its loss, read-out,
Bernoulli encoding, T, neuron parameters). This zoo holds networks trained the way each
framework's own tutorials train them, written in each framework's own format, so that attack
rules can be chosen on one part (``split = "choose"``) and reported on the rest (``"report"``).

One module per framework recipe, each citing its tutorial:
- ``slayer_recipes``: Lava-DL (slayer) -> NetX HDF5 with the blocks' own ``export_hdf5``;
- ``snntorch_recipes``: snnTorch -> NIR with ``snntorch.export_nir.export_to_nir``;
- ``norse_recipes``: Norse -> NIR with ``norse.torch.utils.export_nir.to_nir``.

``python -m benchmarks.foreign_zoo --out runs/zoo [--only NAME ...] [--list]`` trains each member
(1 torch thread), writes ``runs/zoo/files/<name>.{net,nir}``, then measures it through nmprivacy:
``load_target``, the accuracy the audit sees (``nmprivacy.audit.load_foreign_target``: the data
set's Bernoulli rate code for images at the T the audit chooses, or the event frames), the same at
the member's own T, a spike-count read-out beside nmprivacy's membrane read-out, and
``nmprivacy validate --random 10 --steps T`` (Lava mismatches). Everything goes to
``runs/zoo/zoo.json`` (one entry per member, merged with earlier runs) and ``runs/zoo/zoo.md``.

The split is deterministic: members are grouped into families (dense/conv x image/events); in each
family they are ordered by the SHA-256 of their name and the first ``max(1, round(n / 3))`` go to
``choose``, the rest to ``report``. So both splits hold every family.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]

FASHION = {"limit_train": 8000, "limit_test": 2000}
# Event options: the Lava-DL N-MNIST tutorial reads both polarities, no denoising, binary bins
# (its NMNISTDataset with sampling_time=3, sample_length=300 -> 100 bins of 3 ms); snnTorch's
# tutorial 7 denoises (10 ms) and sums events per frame (tonic ToFrame; 3 ms windows here instead of 1 ms, for cost).
LAVA_EVENTS = {"polarity": "both", "frame_us": 3000, "steps": 100, "denoise_us": 0, "clamp": True}
TONIC_EVENTS = {"polarity": "both", "frame_us": 3000, "steps": 100, "denoise_us": 10000, "clamp": False}
FASHION_EVENTS = {"limit_train": 1000, "limit_test": 500}


@dataclass(frozen=True)
class Member:
    """One network of the zoo: how it is trained (``recipe``: a builder of a recipe module, with
    ``params``), on what, and how nmprivacy must read it (``dt`` of a NIR graph)."""

    name: str
    framework: str  # lava-dl | snntorch | norse
    recipe: str  # builder name in the framework's recipe module
    source: str  # the tutorial(s) the recipe follows
    dataset: str
    data_options: dict[str, Any]
    steps: int  # T the network was trained and is meant to run with
    arch: str  # dense | conv
    epochs: int
    params: dict[str, Any] = field(default_factory=dict)
    dt: float | None = None  # NIR: the time step nmprivacy reads the graph with

    @property
    def domain(self) -> str:
        return "events" if "saccade" in self.dataset or self.dataset in ("nmnist", "dvs-gesture") else "image"

    @property
    def family(self) -> str:
        return f"{self.arch}/{self.domain}"

    @property
    def suffix(self) -> str:
        return ".net" if self.framework == "lava-dl" else ".nir"


LAVA_NMNIST = "https://github.com/lava-nc/lava-dl/blob/main/tutorials/lava/lib/dl/slayer/nmnist/train.ipynb (and nmnist.py)"
LAVA_MNIST = ("https://r-gaurav.github.io/2024/04/13/Lava-Tutorial-MNIST-Training-on-GPU-and-Evaluation-on-Loihi2.html "
              "(https://github.com/R-Gaurav/mnist-on-loihi: net_utils/snns.py, net_utils/utils.py, train_eval_snn.py)")
LAVA_PILOTNET = "https://github.com/lava-nc/lava-dl/blob/main/tutorials/lava/lib/dl/netx/pilotnet_snn/run.ipynb (network layout)"
SNN_T5 = "https://snntorch.readthedocs.io/en/latest/tutorials/tutorial_5.html (+ spikegen.rate of tutorial_1)"
SNN_T6 = "https://snntorch.readthedocs.io/en/latest/tutorials/tutorial_6.html"
SNN_T7 = "https://snntorch.readthedocs.io/en/latest/tutorials/tutorial_7.html"
NORSE_MNIST = "https://github.com/norse/notebooks/blob/main/mnist_classifiers.ipynb (norse.ai notebooks: 'Training an MNIST classifier')"

MEMBERS: tuple[Member, ...] = (
    # ---------------------------------------------------------------- Lava-DL (slayer) -> NetX
    Member("lavadl-mnist-dense", "lava-dl", "gaurav_dense", LAVA_MNIST, "digits-28", {}, 32, "dense", 25,
           {"sizes": [784, 128, 64, 10]}),
    Member("lavadl-dense3-fmnist", "lava-dl", "nmnist_style_dense", f"{LAVA_NMNIST}; images as Bernoulli spikes", "fashion-mnist", FASHION, 32,
           "dense", 4, {"sizes": [784, 256, 128, 10], "delay": False, "loss": "SpikeRate"}),
    Member("lavadl-deep-dense", "lava-dl", "nmnist_style_dense", f"{LAVA_NMNIST} (its commented SpikeMax loss); images as Bernoulli spikes",
           "digits-28", {}, 32, "dense", 15, {"sizes": [784, 400, 200, 100, 10], "delay": False, "loss": "SpikeMax"}),
    Member("lavadl-conv-input", "lava-dl", "pilotnet_style_conv", f"{LAVA_PILOTNET}; neurons and loss of {LAVA_NMNIST}", "digits-28", {}, 16,
           "conv", 10, {}),
    Member("lavadl-nmnist-fmnist-saccade", "lava-dl", "nmnist_dense", LAVA_NMNIST, "fashion-mnist-saccade", {**LAVA_EVENTS, **FASHION_EVENTS},
           100, "dense", 40, {"sizes": [2312, 512, 512, 10]}),
    Member("lavadl-nmnist-digits-saccade", "lava-dl", "nmnist_dense", LAVA_NMNIST, "digits-28-saccade", dict(LAVA_EVENTS), 100, "dense", 40,
           {"sizes": [2312, 512, 512, 10]}),
    # ---------------------------------------------------------------- snnTorch -> NIR (dt 1e-4)
    Member("snntorch-t5-mlp", "snntorch", "t5_mlp", SNN_T5, "digits-28", {}, 25, "dense", 30, {"sizes": [784, 1000, 10]}, dt=1e-4),
    Member("snntorch-deep-fmnist", "snntorch", "t5_mlp", f"{SNN_T5}; loss SF.mse_count_loss of {SNN_T7}", "fashion-mnist", FASHION, 25,
           "dense", 5, {"sizes": [784, 512, 256, 128, 10], "loss": "mse_count"}, dt=1e-4),
    Member("snntorch-t6-conv", "snntorch", "t6_conv", SNN_T6, "digits-28", {}, 50, "conv", 8, {}, dt=1e-4),
    Member("snntorch-nmnist-conv-digits-saccade", "snntorch", "t7_conv", SNN_T7, "digits-28-saccade", dict(TONIC_EVENTS), 100, "conv", 6, {},
           dt=1e-4),
    Member("snntorch-nmnist-conv-fmnist-saccade", "snntorch", "t7_conv", SNN_T7, "fashion-mnist-saccade", {**TONIC_EVENTS, **FASHION_EVENTS},
           100, "conv", 6, {}, dt=1e-4),
    # ---------------------------------------------------------------- Norse -> NIR (dt 1e-3)
    Member("norse-mlp", "norse", "mnist_mlp", NORSE_MNIST, "digits-28", {}, 32, "dense", 40, {"sizes": [784, 100, 10]}, dt=1e-3),
    Member("norse-2h-fmnist", "norse", "mnist_mlp", NORSE_MNIST, "fashion-mnist", FASHION, 32, "dense", 8, {"sizes": [784, 256, 128, 10]},
           dt=1e-3),
)
NAMES = tuple(m.name for m in MEMBERS)

# A second choose set ("choose2"), added after bl-auto's first report on the "report" split: a rule
# revised after that report is chosen on these networks (and the first "choose" ones) only, then
# reported on the "report" split again. Outside ``splits_of`` so the original split stays as it was.
TUNING: tuple[Member, ...] = (
    Member("norse-1h-fmnist", "norse", "mnist_mlp", NORSE_MNIST, "fashion-mnist", FASHION, 32, "dense", 8, {"sizes": [784, 100, 10]}, dt=1e-3),
    Member("snntorch-t5-fmnist", "snntorch", "t5_mlp", SNN_T5, "fashion-mnist", FASHION, 25, "dense", 5, {"sizes": [784, 1000, 10]}, dt=1e-4),
    Member("lavadl-gaurav-fmnist", "lava-dl", "gaurav_dense", LAVA_MNIST, "fashion-mnist", FASHION, 32, "dense", 8, {"sizes": [784, 128, 64, 10]}),
    Member("lavadl-conv-fmnist", "lava-dl", "pilotnet_style_conv", f"{LAVA_PILOTNET}; neurons and loss of {LAVA_NMNIST}", "fashion-mnist", FASHION,
           16, "conv", 3, {}),
)
TUNING_NAMES = tuple(m.name for m in TUNING)
ALL_NAMES = NAMES + TUNING_NAMES

# What the frameworks' exact tutorial networks run into on the way to a file nmprivacy reads
# (each measured here with the installed snnTorch 1.0 / Norse 1.1.0 / nir; details in the recipe modules).
FINDINGS = [
    (
        "snnTorch export_to_nir has no MaxPool2d (tutorials 6 and 7 pool with it): '[WARNING] module not implemented: MaxPool2d', then "
        "AttributeError: 'NoneType' object has no attribute 'input_type' (nir_graph.infer_types); the zoo's conv members pool with AvgPool2d(2)."
    ),
    (
        "snnTorch export_to_nir with a scalar beta (as the tutorials write it): ValueError: Type inference error: type mismatch: 1.output: [[100]] "
        "-> 2.input: []; the zoo gives beta and threshold per neuron (same values)."
    ),
    (
        "snnTorch's default subtractive reset is not in the graph (its LIF node has v_reset = 0, no reset mode): nmprivacy and Loihi reset to zero "
        "and nothing in the file says otherwise; nmprivacy reports no note for these graphs."
    ),
    (
        "Norse to_nir returns no node for LIFRecurrentCell, LICell (the MNIST notebook's cells) and nn.Flatten, so the notebook's network cannot be "
        "written (nir.write fails on the None nodes); the zoo uses LIFBoxCell + LIBoxCell, which it exports."
    ),
    (
        "Norse to_nir writes tau = dt / tau_mem_inv: at its default dt = 1e-3 the graph holds tau = 1e-05 s and nmprivacy refuses it: "
        "\"NetworkError: node '1' (LIF): tau = 1e-05 s is shorter than the time step dt = 0.001 s: pass the producer's --dt (snnTorch exports with "
        "1e-4; Norse's to_nir needs dt=1.0 to write its taus correctly)\"; the zoo writes with to_nir(dt=1.0) and reads with --dt 1e-3."
    ),
    (
        "Norse LIFCell (current-based, Norse's default neuron) exports as NIR CubaLIF without w_in, but Norse adds each input spike to the current "
        "in full while NIR's CubaLIF (as nmprivacy reads it) adds dt/tau_syn of it: on the same random 784-100 layer Norse fired 8049 hidden "
        "spikes, nmprivacy's float model of the graph 693 (87.7 % of bins agree, most of them silent). A biased Linear before it is refused: "
        "\"a synaptic bias into a neuron with synaptic current is not a constant voltage bias on Loihi; export without bias\". The zoo's Norse "
        "members therefore use LIFBoxCell (no synaptic current)."
    ),
    (
        "nmprivacy's audit attacks and measures an image-set foreign file at the data set's preset T (25 for digits-28 / fashion-mnist): "
        "load_foreign_target -> choose_steps(None, target, dataset) ignores --set steps=..., and a NetX / NIR file written by slayer, snnTorch "
        "or Norse records no T. Members trained with T = 16, 32 or 50 are therefore audited at 25 (zoo.json: audit_steps)."
    ),
    (
        "nmprivacy reads the class from the per-step softmax of the output membrane averaged over time; every framework recipe here classifies "
        "by output spike count (slayer Rate.predict, snnTorch SF.accuracy_rate) or by the maximum LI voltage (Norse). zoo.json gives both "
        "read-outs (nmprivacy_test_accuracy vs nmprivacy_spike_count_accuracy)."
    ),
    (
        "Lava validation of NetX files with synaptic delays (the Lava-DL N-MNIST recipe, delay=True) runs nearly every sample alone (nmprivacy's "
        "check that no delayed spike crosses into the next sample): 10 random T=100 samples took 1,708 s on Lava here (lava_isolated_samples 9), "
        "so those members are validated on 3 random inputs."
    ),
]


def member(name: str) -> Member:
    for m in MEMBERS + TUNING:
        if m.name == name:
            return m
    raise KeyError(f"no zoo member {name!r}; members: {', '.join(ALL_NAMES)}")


def splits_of(members: tuple[Member, ...] = MEMBERS) -> dict[str, str]:
    """name -> "choose" | "report": per family, ordered by SHA-256 of the name, the first
    max(1, round(n / 3)) choose (deterministic, and every family is in both splits when it has 2+)."""
    out: dict[str, str] = {}
    families: dict[str, list[Member]] = {}
    for m in members:
        families.setdefault(m.family, []).append(m)
    for group in families.values():
        ordered = sorted(group, key=lambda m: hashlib.sha256(m.name.encode()).hexdigest())
        k = max(1, round(len(ordered) / 3))
        for i, m in enumerate(ordered):
            out[m.name] = "choose" if i < k else "report"
    return out


def all_splits() -> dict[str, str]:
    """Every member's split: ``splits_of`` for ``MEMBERS``, "choose2" for ``TUNING``."""
    return splits_of() | dict.fromkeys(TUNING_NAMES, "choose2")


_DATA: dict[tuple, Any] = {}


def load_splits(m: Member) -> Any:
    """The member's data set with its options (cached in-process)."""
    from nmprivacy.data import load_dataset

    key = (m.dataset, tuple(sorted(m.data_options.items())))
    if key not in _DATA:
        _DATA[key] = load_dataset(m.dataset, **m.data_options)
    return _DATA[key]


def builder(m: Member) -> Callable[..., dict]:
    from importlib import import_module

    module = {"lava-dl": "slayer_recipes", "snntorch": "snntorch_recipes", "norse": "norse_recipes"}[m.framework]
    return getattr(import_module(f"{__name__}.{module}"), m.recipe)


def build(m: Member, files: Path, splits: Any | None = None) -> tuple[Path, dict]:
    """Train member ``m`` by its recipe and write its file into ``files``; returns the path and the
    builder's record (framework test accuracy, architecture, train samples, notes)."""
    torch.manual_seed(0)
    files.mkdir(parents=True, exist_ok=True)
    splits = splits if splits is not None else load_splits(m)
    path = files / f"{m.name}{m.suffix}"
    record = builder(m)(m, splits, path)
    return path, record


def audit_args(m: Member, path: Path) -> str:
    """The ``nmprivacy audit`` options that reproduce this member's data and reading."""
    args = [f"--target {path}", f"--dataset {m.dataset}"]
    for key, value in m.data_options.items():
        if key in ("limit_train", "limit_test"):
            args.append(f"--{key.replace('_', '-')} {value}")
        else:
            args.append(f"--option {key}={str(value).lower() if isinstance(value, bool) else value}")
    if m.dt is not None:
        args.append(f"--dt {m.dt:g}")
    return " ".join(args)


def measure(m: Member, path: Path, splits: Any) -> dict:
    """What nmprivacy makes of the file: loading, the audit's accuracy (its T and read-out), the
    accuracy at the member's own T, and a spike-count read-out beside the membrane read-out."""
    from nmprivacy.audit import load_foreign_target
    from nmprivacy.targets import load_target
    from nmprivacy.training import model_input

    out: dict[str, Any] = {}
    target = load_target(path, dt=m.dt)
    out["nmprivacy_network"] = target.model.network().describe() if target.model.network() is not None else None
    out["nmprivacy_notes"] = list(getattr(target.model.network(), "notes", ()) or ())
    trained, foreign, audit_steps = load_foreign_target(str(path), splits, m.dt)
    out["audit_steps"] = audit_steps
    out["nmprivacy_test_accuracy_audit"] = trained.record["val_acc"]
    if "float_val_acc" in trained.record:
        out["nmprivacy_float_test_accuracy_audit"] = trained.record["float_val_acc"]
    model = trained.model
    steps = m.steps
    gen = torch.Generator().manual_seed(0)
    correct_mem = correct_count = silent = 0
    with torch.no_grad():
        for b0 in range(0, len(splits.test), 200):
            x = model_input(model, splits.test.x[b0 : b0 + 200], steps, gen)
            y = splits.test.y[b0 : b0 + 200]
            spikes = model.layer_spikes(x)
            counts = spikes[-1].sum(0)
            correct_count += int((counts.argmax(-1) == y).sum())
            silent += int((counts.sum(-1) == 0).sum())
            correct_mem += int((model.predict(x) == y).sum())
    n = len(splits.test)
    out["nmprivacy_test_accuracy"] = correct_mem / n  # membrane read-out (the audit's), own T
    out["nmprivacy_silent_output_fraction"] = silent / n
    # spike-count read-out at the own T; None where the output never spikes (an LI read-out)
    out["nmprivacy_spike_count_accuracy"] = correct_count / n if silent < n else None
    if foreign is not None and foreign.report is not None:
        out["quantisation"] = [
            {k: r.get(k) for k in ("layer", "weight_max_error", "weight_rel_rms_error", "threshold_rel_error") if k in r}
            for r in (foreign.report.get("layers") or []) if isinstance(r, dict)
        ]
    return out


def validate_lava(m: Member, path: Path, out: Path, n: int | None = None) -> dict:
    """``nmprivacy validate --model FILE --random n --steps T`` in a subprocess: Lava vs emulation.
    n = 10, but 3 for networks with synaptic delays: Lava runs each of their samples alone
    (nmprivacy's check that no delayed spike crosses into the next sample), ~3 min a sample here."""
    n = n if n is not None else (3 if m.params.get("delay") or m.recipe == "nmnist_dense" else 10)
    folder = out / "validate" / m.name
    cmd = [sys.executable, "-m", "nmprivacy", "validate", "--threads", "1", "--model", str(path), "--random", str(n), "--steps", str(m.steps),
           "--out", str(folder), "--no-progress"]
    if m.dt is not None:
        cmd += ["--dt", f"{m.dt:g}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=3600, check=False)
    result: dict[str, Any] = {"command": " ".join(["nmprivacy"] + cmd[3:]), "exit_code": proc.returncode}
    report = folder / "validation.json"
    if proc.returncode == 0 and report.is_file():
        v = json.loads(report.read_text())
        e = v.get("export", {})
        result.update(total_mismatches=e.get("total_mismatches"), class_agreement=e.get("class_agreement"), samples_on_lava=v.get("samples_on_lava"))
    else:
        result["error"] = (proc.stderr.strip().splitlines() or [""])[-1]
    return result


def run_member(m: Member, out: Path, validate: bool = True) -> dict:
    """Build, measure and validate one member; any failure is recorded as its exact last line."""
    split = all_splits().get(m.name, "test")
    entry: dict[str, Any] = {
        "name": m.name, "framework": m.framework, "recipe_source": m.source, "dataset": m.dataset, "data_options": m.data_options,
        "steps": m.steps, "arch": m.arch, "domain": m.domain, "family": m.family, "split": split, "epochs": m.epochs, "params": m.params,
        "dt": m.dt,
    }
    splits = load_splits(m)
    start = time.perf_counter()
    try:
        path, record = build(m, out / "files", splits)
    except Exception as exc:  # noqa: BLE001  (a recipe that cannot be trained or written: recorded, then the next member)
        entry.update(error=f"build: {type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=4))
        return entry
    entry["seconds_to_train"] = round(time.perf_counter() - start, 1)
    entry.update(record)
    entry["file"] = str(path)
    entry["audit_args"] = audit_args(m, path)
    try:
        entry.update(measure(m, path, splits))
    except Exception as exc:  # noqa: BLE001  (nmprivacy cannot read or run the file: the finding is the exact line)
        entry["nmprivacy_error"] = f"{type(exc).__name__}: {exc}"
        entry["traceback"] = traceback.format_exc(limit=6)
    if validate and "nmprivacy_error" not in entry:
        entry["lava_validation"] = validate_lava(m, path, out)
    entry["seconds_total"] = round(time.perf_counter() - start, 1)
    return entry


def remeasure_member(m: Member, out: Path, entry: dict, validate: bool = True) -> dict:
    """Measure and validate an already built member's file again (its training record kept)."""
    keep = {k: v for k, v in entry.items() if not k.startswith(("nmprivacy_", "audit_steps", "lava_validation", "traceback", "quantisation"))}
    path = Path(keep["file"])
    try:
        keep.update(measure(m, path, load_splits(m)))
    except Exception as exc:  # noqa: BLE001  (as in run_member)
        keep["nmprivacy_error"] = f"{type(exc).__name__}: {exc}"
        keep["traceback"] = traceback.format_exc(limit=6)
    if validate and "nmprivacy_error" not in keep:
        keep["lava_validation"] = validate_lava(m, path, out)
    return keep


def pct(x: Any) -> str:
    return "–" if not isinstance(x, (int, float)) else f"{100 * x:.1f}"


def markdown(entries: list[dict]) -> str:
    lines = [
        "| member | framework | data set | T (audit T) | architecture | own acc | nmprivacy acc (own T / audit T) | spike-count acc | Lava mismatches | split | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        v = e.get("lava_validation") or {}
        lava = v.get("total_mismatches", v.get("error", "–"))
        lines.append(
            f"| {e['name']} | {e['framework']} | {e['dataset']} | {e['steps']} ({e.get('audit_steps', '–')}) | {e.get('architecture', e['arch'])} | "
            f"{pct(e.get('framework_test_accuracy'))} | {pct(e.get('nmprivacy_test_accuracy'))} / {pct(e.get('nmprivacy_test_accuracy_audit'))} | "
            f"{pct(e.get('nmprivacy_spike_count_accuracy'))} | {lava} | {e['split']} | {e.get('seconds_to_train', '–')} |"
        )
    errors = [e for e in entries if "error" in e or "nmprivacy_error" in e]
    for e in errors:
        lines.append(f"\n{e['name']}: {e.get('error') or e.get('nmprivacy_error')}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.foreign_zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/zoo")
    parser.add_argument("--only", nargs="*", choices=ALL_NAMES, default=None)
    parser.add_argument("--list", action="store_true", help="list the members and their splits, train nothing")
    parser.add_argument("--no-validate", action="store_true", help="skip the Lava check (nmprivacy validate --random 10)")
    parser.add_argument("--remeasure", action="store_true", help="do not train: measure and validate the members' existing files again")
    args = parser.parse_args(argv)
    split = all_splits()
    if args.list:
        for m in MEMBERS + TUNING:
            print(f"{m.name:38s} {m.framework:8s} {m.family:13s} {m.dataset:22s} T={m.steps:<4d} {split[m.name]}")
        return 0
    torch.set_num_threads(1)
    from nmprivacy.lava_import import import_lava
    from nmprivacy.runinfo import atomic_write_json, atomic_write_text, run_metadata

    import_lava()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    zoo_path = out / "zoo.json"
    members = json.loads(zoo_path.read_text())["members"] if zoo_path.exists() else {}

    def write() -> None:
        ordered = {n: members[n] for n in ALL_NAMES if n in members}
        for e in ordered.values():  # entries measured before the LI read-out rule
            if e.get("nmprivacy_silent_output_fraction") == 1.0:
                e["nmprivacy_spike_count_accuracy"] = None
        atomic_write_json(zoo_path, {"members": ordered, "splits": split, "findings": FINDINGS, **run_metadata(config=vars(args))})
        atomic_write_text(out / "zoo.md", markdown(list(ordered.values())))

    for name in ALL_NAMES if args.only is None else args.only:  # --only with no names: rewrite zoo.json / zoo.md only
        m = member(name)
        if args.remeasure and name in members and "file" in members[name]:
            print(f"[zoo] {name}: measuring {members[name]['file']} again", flush=True)
            members[name] = remeasure_member(m, out, members[name], validate=not args.no_validate)
        else:
            print(f"[zoo] {name}: training ({m.framework}, {m.dataset}, T={m.steps}, {m.epochs} epochs)", flush=True)
            members[name] = run_member(m, out, validate=not args.no_validate)
        write()
        print(markdown([members[name]]), flush=True)
    write()
    return 0


__all__ = ["ALL_NAMES", "all_splits", "MEMBERS", "NAMES", "TUNING", "TUNING_NAMES", "Member", "audit_args", "build", "load_splits", "main", "measure", "member", "remeasure_member", "run_member", "splits_of"]
