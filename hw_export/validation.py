"""Does what we attack in torch behave like what Loihi runs? Export fidelity and attack validation.

``validate`` exports a target to NetX (or takes a NetX file), then
1. export fidelity: real test inputs of the model's data set (rate-encoded / event frames, via
   ``nmprivacy.encoding``) through the bit-exact emulation (the torch model an attack
   differentiates) and through Lava's fixed-point simulator: spike mismatches per layer, fraction
   of identical spike trains, output-class agreement, accuracy of both; for a source model that is
   not itself Loihi arithmetic (snn-norse) also source-vs-emulation agreement;
2. attack validation (with an inversion run): the reconstructions (and, for BrainLeaks-v2,
   Bernoulli draws of X_p) run on Lava: per class, how often Lava's read-out picks the attacked
   class and its confidence, against the emulation on the very same inputs;
3. the same on the emulation for every draw.
Results go to ``validation.json`` (stable keys ``export.total_mismatches``,
``export.class_agreement``, ``attack.lava_hit_rate``, ``attack.torch_hit_rate``,
``samples_on_lava``) and a readable ``validation.md``.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from hw_export.lava_run import run_lava
from hw_export.netx_emulation import NetxEmulation, load_netx
from hw_export.netx_export import export_netx
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel, spike_readout
from nmprivacy.runinfo import Stopwatch, atomic_write_json, atomic_write_text, run_metadata, to_jsonable

EMULATION_BATCH = 50
INVERSION_FILES = ("inversion.pt", "inversion-*.pt")


# ----------------------------------------------------------------------------- comparisons
def compare_layers(emulated: list[torch.Tensor], lava: tuple[torch.Tensor, ...]) -> list[dict[str, Any]]:
    """Per layer: spike mismatches and identical-train fraction between emulation spikes
    ``[T, B, N]`` and Lava spikes ``[B, T, N]`` of the same inputs."""
    out = []
    for i, (e, g) in enumerate(zip(emulated, lava)):
        e = e.transpose(0, 1).to(torch.uint8)
        diff = e != g
        trains = diff.any(dim=1)  # [B, N]: any step differs
        out.append(
            {
                "layer": i,
                "neurons": int(e.shape[-1]),
                "bins": int(e.numel()),
                "mismatches": int(diff.sum()),
                "identical_train_fraction": float(1.0 - trains.float().mean()),
                "emulation_spikes": int(e.sum()),
                "lava_spikes": int(g.sum()),
            }
        )
    return out


@torch.no_grad()
def emulate(model: TargetModel, x: torch.Tensor, batch: int = EMULATION_BATCH, desc: str = "emulation", progress: bool = True) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Layer spikes (NetxEmulation only, else empty) ``[T, B, N_l]`` and output membrane
    ``[T, B, C]`` of ``model`` on ``x`` ``[T, B, ...]``, in batches."""
    spikes: list[list[torch.Tensor]] = []
    membranes = []
    for start in tqdm(range(0, x.shape[1], batch), desc=desc, unit="batch", disable=not progress, leave=False):
        xb = x[:, start : start + batch]
        if isinstance(model, NetxEmulation):
            layers = model.layer_spikes(xb)
            spikes.append([s.to(torch.uint8) for s in layers])
        membranes.append(model(xb).detach().float())
    layers_out = [torch.cat(parts, dim=1) for parts in zip(*spikes)] if spikes else []
    return layers_out, torch.cat(membranes, dim=1)


def output_lag(source: TargetModel) -> int:
    """Steps by which Lava's output layer lags ``source`` (layers after the first without a one-step delay)."""
    if not hasattr(source, "lif_layers"):
        return 0
    return sum(1 for layer in source.lif_layers()[1:] if layer.delay == 0)


def _hidden_agreement(source: TargetModel, emu_hidden: torch.Tensor, x: torch.Tensor) -> dict[str, float] | None:
    """First-layer spike agreement of a source model exposing ``run`` (hidden spikes) and ``lif_layers``."""
    if not hasattr(source, "run") or not hasattr(source, "lif_layers"):
        return None
    with torch.no_grad():
        hidden = source.run(x)[0].to(torch.uint8)  # [T, B, H]
    if source.lif_layers()[0].delay == 1:  # the source returns spikes after its one-step delay
        hidden, emu_hidden = hidden[1:], emu_hidden[:-1]
    if hidden.shape != emu_hidden.shape:
        return None
    diff = hidden != emu_hidden
    return {
        "hidden_bin_agreement": float(1.0 - diff.float().mean()),
        "hidden_identical_train_fraction": float(1.0 - diff.any(dim=0).float().mean()),
        "hidden_mismatches": int(diff.sum()),
    }


# ----------------------------------------------------------------------------- inputs
def resolve_target(
    model_or_path: TargetModel | str | os.PathLike[str], workdir: Path, known: dict[str, Any] | None = None
) -> tuple[TargetModel | None, NetxEmulation, Path, Any, dict[str, Any]]:
    """(source model or None, emulation, NetX file, export report or None, metadata with
    ``dataset``/``steps`` when known) for a model, a checkpoint folder or a NetX file; ``known``
    (data set, steps) is stored with a fresh export."""
    meta: dict[str, Any] = {k: v for k, v in (known or {}).items() if v is not None}
    source: TargetModel | None
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        if path.is_dir():
            from nmprivacy.models.checkpoint import load, load_info

            source = load(path)
            info = load_info(path)
            meta.update({k: info[k] for k in ("dataset", "steps") if info.get(k) is not None})
            meta["checkpoint"] = str(path)
        elif path.is_file():
            emulation = load_netx(path)
            stored = {k: v for k, v in emulation.network.meta.items() if k in ("dataset", "steps", "kind") and v is not None}
            return None, emulation, path, None, {**stored, **meta}
        else:
            raise NmprivacyError(f"--model {path} does not exist: pass a checkpoint folder (nmprivacy train) or a NetX file (nmprivacy export)")
    else:
        source = model_or_path
    if isinstance(source, NetxEmulation):
        return None, source, source.network.path, None, {**source.network.meta, **meta}
    netx_path = workdir / "model.net"
    report = export_netx(source, netx_path, meta=meta)
    return source, load_netx(netx_path), netx_path, report, meta


def _test_inputs(splits: Any, n: int, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from nmprivacy.encoding import to_spikes

    n = min(n, len(splits.test))
    if n < 1:
        raise NmprivacyError(f"data set '{splits.name}' has no test samples to validate on")
    gen = torch.Generator().manual_seed(int(seed))
    x = to_spikes(splits.test.x[:n], splits.domain, steps, gen)
    return x, splits.test.y[:n]


def inversion_files(path: str | os.PathLike[str]) -> list[Path]:
    """The inversion tensors of a run: the file itself, or ``inversion.pt`` / ``inversion-*.pt`` in a folder."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        found = [f for pattern in INVERSION_FILES for f in sorted(p.glob(pattern))]
        if found:
            return found
        raise NmprivacyError(f"no inversion.pt or inversion-*.pt in {p}: pass the folder of an attack or audit run (nmprivacy attack/audit)")
    raise NmprivacyError(f"--inversion {p} does not exist: pass the folder of an attack or audit run")


def _load_inversion(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, forbidden pickle: a bad file either way
        raise NmprivacyError(f"{path} is not a readable inversion file ({type(exc).__name__}); re-run the attack") from None
    if not isinstance(data, dict) or "reconstructions" not in data:
        raise NmprivacyError(f"{path} holds no 'reconstructions' tensor; re-run the attack with this nmprivacy version")
    return data


# ----------------------------------------------------------------------------- the two checks
def export_fidelity(
    emulation: NetxEmulation, netx_path: Path, x: torch.Tensor, y: torch.Tensor, lava_samples: int | None,
    source: TargetModel | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Emulation vs Lava (and source vs emulation) on spike inputs ``x`` ``[T, B, ...]`` with labels ``y``."""
    emu_layers, emu_mem = emulate(emulation, x, progress=progress)
    emu_pred = spike_readout(emu_mem).argmax(-1)
    n_lava = x.shape[1] if lava_samples is None else min(lava_samples, x.shape[1])
    result: dict[str, Any] = {
        "samples": int(x.shape[1]),
        "steps": int(x.shape[0]),
        "lava_samples": n_lava,
        "accuracy_emulation": float((emu_pred == y).float().mean()),
    }
    if n_lava > 0:
        run = run_lava(netx_path, x[:, :n_lava].transpose(0, 1), record_membrane=True)
        layers = compare_layers([s[:, :n_lava] for s in emu_layers], run.layers)
        lava_pred = spike_readout(run.output_membrane.transpose(0, 1)).argmax(-1)
        sub = emu_pred[:n_lava]
        result.update(
            {
                "total_mismatches": sum(layer["mismatches"] for layer in layers),
                "layers": layers,
                "class_agreement": float((lava_pred == sub).float().mean()),
                "accuracy_torch": float((sub == y[:n_lava]).float().mean()),
                "accuracy_lava": float((lava_pred == y[:n_lava]).float().mean()),
                "membrane_max_abs_diff": float((run.output_membrane - emu_mem[:, :n_lava].transpose(0, 1)).abs().max()),
                "lava_seconds": run.seconds,
                "lava_samples_per_s": run.samples_per_s,
            }
        )
    if source is not None:
        _, src_mem = emulate(source, x, desc="source model", progress=progress)
        src_pred = spike_readout(src_mem).argmax(-1)
        lag = output_lag(source)  # Lava's extra steps per layer that the source does not have
        aligned = (src_mem[: src_mem.shape[0] - lag], emu_mem[lag:])
        agree: dict[str, Any] = {
            "kind": source.info.kind,
            "class_agreement": float((src_pred == emu_pred).float().mean()),
            "accuracy_source": float((src_pred == y).float().mean()),
            "output_lag_steps": lag,
            "output_membrane_max_abs_diff": float((aligned[0] - aligned[1]).abs().max()),
            "output_membrane_mean_abs_diff": float((aligned[0] - aligned[1]).abs().mean()),
        }
        n_hidden = min(x.shape[1], EMULATION_BATCH * 2)
        hidden = _hidden_agreement(source, emu_layers[0][:, :n_hidden], x[:, :n_hidden])
        if hidden is not None:
            agree.update(hidden, hidden_samples=n_hidden)
        result["source_vs_emulation"] = agree
    return result


def _hit_summary(lava: torch.Tensor | None, torch_on_lava: torch.Tensor | None, t_lava: torch.Tensor | None,
                 emu: torch.Tensor, t_emu: torch.Tensor) -> dict[str, Any]:
    """Hit rates and mean target confidence of Lava (``lava`` ``[n, C]``) and of the emulation on
    the same inputs (``torch_on_lava``, targets ``t_lava``), and of the emulation on every input
    (``emu`` ``[N, C]``, targets ``t_emu``)."""
    out: dict[str, Any] = {
        "emulation_samples": int(t_emu.numel()),
        "emulation_hit_rate": float((emu.argmax(-1) == t_emu).float().mean()),
        "emulation_confidence": float(emu.gather(1, t_emu[:, None]).mean()),
        "samples_on_lava": 0 if t_lava is None else int(t_lava.numel()),
        "lava_hit_rate": None, "torch_hit_rate": None, "lava_confidence": None, "torch_confidence": None,
    }
    if lava is not None and torch_on_lava is not None and t_lava is not None and t_lava.numel():
        out.update(
            lava_hit_rate=float((lava.argmax(-1) == t_lava).float().mean()),
            torch_hit_rate=float((torch_on_lava.argmax(-1) == t_lava).float().mean()),
            lava_confidence=float(lava.gather(1, t_lava[:, None]).mean()),
            torch_confidence=float(torch_on_lava.gather(1, t_lava[:, None]).mean()),
        )
    return out


def attack_validation(
    emulation: NetxEmulation, netx_path: Path, inversion: str | os.PathLike[str], samples: int, lava_samples: int | None, seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Reconstructions (and Bernoulli draws of X_p) of every spiking inversion in ``inversion`` on
    the emulation (``samples`` draws per class) and on Lava (every draw when ``lava_samples`` is
    None, else ``lava_samples // K`` draws per class, at least 1). Top-level rates pool every spiking run; ``runs`` and ``per_class`` break them down."""
    gen = torch.Generator().manual_seed(int(seed))
    per_class: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    pooled: dict[str, list[torch.Tensor]] = {"lava": [], "emu_lava": [], "emu": [], "t_lava": [], "t": []}
    mismatches = 0
    for path in inversion_files(inversion):
        data = _load_inversion(path)
        rec = data["reconstructions"].float()
        if rec.dim() != 2 + len(emulation.info.input_shape):  # spiking: [K, T, *input_shape]
            runs.append({"file": str(path), "skipped": f"reconstructions of shape {tuple(rec.shape)} are not spike trains [K, T, *input_shape]"})
            continue
        k = rec.shape[0]
        if math.prod(rec.shape[2:]) != emulation.network.input_size:
            runs.append({"file": str(path), "skipped": f"{math.prod(rec.shape[2:])} inputs per step, the network takes {emulation.network.input_size}"})
            continue
        classes = data.get("classes", torch.arange(k)).reshape(-1).long()
        probs = data.get("probabilities")
        if probs is not None:
            p = probs.float().clamp(0, 1)
            draws = torch.bernoulli(p.unsqueeze(0).expand(samples, *p.shape), generator=gen)  # [D, K, T, ...]
        else:
            draws = rec.unsqueeze(0)  # one deterministic reconstruction per class
        d = draws.shape[0]
        d_lava = d if lava_samples is None else (max(1, min(d, lava_samples // k)) if lava_samples > 0 else 0)
        batch = draws.transpose(0, 1).reshape(k * d, *draws.shape[2:])  # class-major [K * D, T, ...]
        target = classes.repeat_interleave(d)
        emu_layers, emu_mem = emulate(emulation, batch.transpose(0, 1), desc=f"attack {path.stem}", progress=progress)
        emu_probs = spike_readout(emu_mem)
        lava_rows = torch.cat([torch.arange(c * d, c * d + d_lava) for c in range(k)]) if d_lava else torch.zeros(0, dtype=torch.long)
        lava_probs, run_mismatches = None, None
        if d_lava:
            run = run_lava(netx_path, batch[lava_rows], record_membrane=True)
            lava_probs = spike_readout(run.output_membrane.transpose(0, 1))
            run_mismatches = sum(l["mismatches"] for l in compare_layers([s[:, lava_rows] for s in emu_layers], run.layers))
            mismatches += run_mismatches
            pooled["lava"].append(lava_probs)
            pooled["emu_lava"].append(emu_probs[lava_rows])
            pooled["t_lava"].append(target[lava_rows])
        pooled["emu"].append(emu_probs)
        pooled["t"].append(target)
        for c in range(k):
            rows = torch.arange(c * d, c * d + d)
            on_lava = rows[:d_lava]
            sub = None if lava_probs is None else lava_probs[c * d_lava : (c + 1) * d_lava]
            per_class.append({"file": path.name, "class": int(classes[c]), "draws": d,
                              **_hit_summary(sub, emu_probs[on_lava], target[on_lava], emu_probs[rows], target[rows])})
        runs.append({"file": str(path), "classes": k, "draws_per_class": d, "lava_draws_per_class": d_lava, "bernoulli": probs is not None,
                     "spike_mismatches": run_mismatches,
                     **_hit_summary(lava_probs, emu_probs[lava_rows], target[lava_rows], emu_probs, target)})
    if not pooled["emu"]:
        raise NmprivacyError(f"no spiking reconstructions in {inversion} that fit this network; pass a BrainLeaks run of the same target")
    cat = {key: torch.cat(parts) if parts else None for key, parts in pooled.items()}
    summary = _hit_summary(cat["lava"], cat["emu_lava"], cat["t_lava"], cat["emu"], cat["t"])
    return {**summary, "total_mismatches": mismatches, "runs": runs, "per_class": per_class}


# ----------------------------------------------------------------------------- entry point
def validate(
    model_or_path: TargetModel | str | os.PathLike[str],
    splits: Any = None,
    inversion: str | os.PathLike[str] | None = None,
    samples: int = 100,
    lava_samples: int | None = None,
    steps: int | None = None,
    out: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Export fidelity (emulation vs Lava, source vs emulation) and, with ``inversion``, attack
    validation on Lava; returns the results dict and, with ``out``, writes ``validation.json``,
    ``validation.md`` and the NetX file there."""
    if samples < 1 or (lava_samples is not None and lava_samples < 0):
        raise NmprivacyError(f"--samples must be >= 1 and --lava-samples >= 0 (got {samples}, {lava_samples})")
    sw = Stopwatch()
    with tempfile.TemporaryDirectory(prefix="nmprivacy-validate-") as tmp:
        workdir = Path(out) if out is not None else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with sw("export"):
            known = {"dataset": splits.name if splits is not None else dataset, "steps": steps}
            source, emulation, netx_path, report, meta = resolve_target(model_or_path, workdir, known)
        if splits is None:
            name = dataset or meta.get("dataset")
            if not name:
                raise NmprivacyError(f"cannot tell which data set {netx_path.name} was trained on: pass --dataset NAME")
            from nmprivacy.data import load_dataset

            with sw("data"):
                splits = load_dataset(name, root=data_root)
        if steps is None:
            steps = meta.get("steps")
        if steps is None:
            from nmprivacy.presets import preset_for

            steps = preset_for(splits.name).steps
        n_in = math.prod(splits.input_shape)
        if n_in != emulation.network.input_size or splits.num_classes != emulation.info.num_classes:
            raise NmprivacyError(
                f"{netx_path.name} takes {emulation.network.input_size} inputs / {emulation.info.num_classes} classes but "
                f"'{splits.name}' has {n_in} / {splits.num_classes}: validate on the data set it was trained for"
            )
        x, y = _test_inputs(splits, samples, int(steps), seed)
        with sw("export_fidelity"):
            fidelity = export_fidelity(emulation, netx_path, x, y, lava_samples, source=source, progress=progress)
        attack = None
        if inversion is not None:
            with sw("attack_validation"):
                attack = attack_validation(emulation, netx_path, inversion, samples, lava_samples, seed, progress)
        result: dict[str, Any] = {
            "netx_file": str(netx_path) if out is not None else None,
            "network": {"sizes": list(emulation.network.sizes), "input_shape": list(emulation.info.input_shape), "source_kind": source.info.kind if source else meta.get("kind", "netx")},
            "dataset": splits.name,
            "export_report": to_jsonable(report) if report is not None else None,
            "export": fidelity,
            "attack": attack,
            "samples_on_lava": fidelity["lava_samples"] + (attack["samples_on_lava"] if attack else 0),
        }
        result.update(run_metadata(config={"samples": samples, "lava_samples": lava_samples, "steps": int(steps), "inversion": str(inversion) if inversion else None, "seed": seed}, seed=seed, timings=sw.seconds))
        if out is not None:
            atomic_write_json(workdir / "validation.json", result)
            atomic_write_text(workdir / "validation.md", validation_markdown(result))
    return result


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def validation_markdown(result: dict[str, Any]) -> str:
    """A human-readable summary of a ``validate`` result."""
    e = result["export"]
    lines = [
        f"# Hardware validation ({result['network']['source_kind']}, {result['dataset']})",
        "",
        f"Network {'-'.join(map(str, result['network']['sizes']))}; {e['samples']} test inputs of {e['steps']} steps on the emulation, "
        f"{e['lava_samples']} on Lava (Loihi2SimCfg fixed_pt); {result['samples_on_lava']} samples on Lava in total.",
        "",
        "## Export fidelity (emulation = the torch model attacked, vs Lava)",
        "",
    ]
    if e["lava_samples"]:
        lines += ["| layer | neurons | spikes (emulation / Lava) | mismatches | identical trains |", "|---|---|---|---|---|"]
        for layer in e["layers"]:
            lines.append(
                f"| {layer['layer']} | {layer['neurons']} | {layer['emulation_spikes']} / {layer['lava_spikes']} | {layer['mismatches']} of {layer['bins']} | {_pct(layer['identical_train_fraction'])} |"
            )
        lines += [
            "",
            f"Total spike mismatches: **{e['total_mismatches']}**; output-class agreement {_pct(e['class_agreement'])}; "
            f"accuracy torch {_pct(e['accuracy_torch'])} vs Lava {_pct(e['accuracy_lava'])} (on {e['lava_samples']} inputs); "
            f"largest output-membrane difference {e['membrane_max_abs_diff']:.3g}.",
        ]
    lines.append(f"Emulation accuracy on all {e['samples']} inputs: {_pct(e['accuracy_emulation'])}.")
    src = e.get("source_vs_emulation")
    if src:
        lines += [
            "",
            f"Source model ({src['kind']}) vs its Loihi emulation: class agreement {_pct(src['class_agreement'])}, "
            f"accuracy {_pct(src['accuracy_source'])} (source) vs {_pct(e['accuracy_emulation'])} (emulation)"
            + (f", hidden spike bins agreeing {_pct(src['hidden_bin_agreement'])}, identical hidden trains {_pct(src['hidden_identical_train_fraction'])}" if "hidden_bin_agreement" in src else "")
            + f", output membrane (aligned for a lag of {src['output_lag_steps']} steps) differing by {src['output_membrane_mean_abs_diff']:.3g} on average, {src['output_membrane_max_abs_diff']:.3g} at most.",
        ]
    rep = result.get("export_report")
    if rep:
        lines += ["", f"Export: {rep['mapping']}, lossless: {rep['lossless']}.", "", "| layer | iDecay | vDecay | vThMant | scale | weight max err | weight rel. RMS err | threshold rel. err |", "|---|---|---|---|---|---|---|---|"]
        for l in rep["layers"]:
            lines.append(f"| {l['index']} | {l['i_decay']} | {l['v_decay']} | {l['vth_mant']} | {l['scale']:.4g} | {l['weight_max_abs_error']:.3g} | {l['weight_rel_rms_error']:.3g} | {l['threshold_rel_error']:.3g} |")
        lines += [f"- {note}" for note in rep.get("notes", [])]
    a = result.get("attack")
    if a:
        lines += [
            "",
            "## Attack validation (reconstructions on Lava vs the emulation)",
            "",
            f"Pooled over every spiking run: Lava picks the attacked class in {_pct(a['lava_hit_rate'])} of {a['samples_on_lava']} inputs, "
            f"the emulation in {_pct(a['torch_hit_rate'])} of the same inputs; mean target confidence Lava {_pct(a['lava_confidence'])} vs torch "
            f"{_pct(a['torch_confidence'])}; spike mismatches {a['total_mismatches']}. Emulation over all {a['emulation_samples']} inputs: "
            f"{_pct(a['emulation_hit_rate'])}.",
            "",
        ]
        for r in a["runs"]:
            if "skipped" in r:
                lines.append(f"- {Path(r['file']).name}: skipped ({r['skipped']})")
            else:
                lines.append(
                    f"- {Path(r['file']).name}: Lava {_pct(r['lava_hit_rate'])} vs torch {_pct(r['torch_hit_rate'])} hits on {r['samples_on_lava']} inputs "
                    f"({r['lava_draws_per_class']} per class{', Bernoulli draws of X_p' if r['bernoulli'] else ''}); emulation {_pct(r['emulation_hit_rate'])} "
                    f"over {r['emulation_samples']} inputs; spike mismatches {r['spike_mismatches']}"
                )
        lines += [
            "",
            "| run | class | Lava hit | torch hit | Lava conf. | torch conf. | emulation hit (all draws) |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in a["per_class"]:
            lines.append(
                f"| {c['file']} | {c['class']} | {_pct(c.get('lava_hit_rate'))} | {_pct(c.get('torch_hit_rate'))} | {_pct(c.get('lava_confidence'))} | "
                f"{_pct(c.get('torch_confidence'))} | {_pct(c['emulation_hit_rate'])} ({c['draws']}) |"
            )
    return "\n".join(lines) + "\n"
