"""Does what we attack in torch behave like what Loihi runs? The validation pipeline.

``validate`` takes a target (checkpoint, NetX file, NIR graph, model), exports it to NetX when
it is not one already, and certifies it on Lava's fixed-point simulator with inputs of one of
three kinds: the test split of its data set (rate-encoded images or event frames, with labels),
a tensor file ``[B, T, *input_shape]`` (``inputs``), or seeded random inputs (``random``:
Bernoulli spikes, or integers for a network whose input feeds neurons directly). Then:
1. export fidelity (``hw_export.fidelity.export_fidelity``): spike mismatches per layer between
   the bit-exact emulation (the torch model an attack differentiates) and Lava, identical
   trains, class agreement, accuracies when labelled; a float source (snn-norse, a NIR graph)
   also against its Loihi version;
2. with ``inversion``: every attack reconstruction (and Bernoulli draws of X_p) on Lava.
Results: ``validation.json`` (stable keys ``export.total_mismatches``, ``export.class_agreement``,
``attack.lava_hit_rate``, ``attack.torch_hit_rate``, ``samples_on_lava``), ``validation.md`` and,
for an exported source, ``model.net``; written only at the end, each file atomically, so a failed
validation leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel
from nmprivacy.results import ValidationResult
from nmprivacy.runinfo import Stopwatch, atomic_path, atomic_write_json, atomic_write_text, check_output, run_metadata, to_jsonable
from nmprivacy.targets import Target, choose_steps, fit_to_data, load_target
from nmprivacy.text import percent

RANDOM_DENSITY = 0.3  # spike probability of --random inputs
GRADED_MAX = 255  # --random graded inputs: integers 0..255 (8-bit pixel levels)
DEFAULT_STEPS = 25  # T of --random inputs when neither --steps nor the file says it
MAX_INPUT_VALUES = 1 << 28


def _pct(v: Any) -> str:
    return percent(v, missing="n/a", suffix=" %")


def _test_inputs(splits: Any, n: int, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from nmprivacy.encoding import to_spikes

    n = min(n, len(splits.test))
    if n < 1:
        raise NmprivacyError(f"data set '{splits.name}' has no test samples to validate on")
    gen = torch.Generator().manual_seed(int(seed))
    return to_spikes(splits.test.x[:n], splits.domain, steps, gen), splits.test.y[:n]


def file_inputs(path: str | os.PathLike[str], input_shape: tuple[int, ...]) -> torch.Tensor:
    """Inputs ``[T, B, *input_shape]`` from a ``.npy`` file holding ``[B, T, *input_shape]``
    (or ``[B, T, N]``) binary spikes or integer graded values."""
    p = Path(path)
    if not p.is_file():
        raise NmprivacyError(f"--inputs {p} is not a file: pass a .npy file holding [B, T, *input_shape] spikes (numpy.save)")
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="r")
    except Exception as exc:  # not .npy, pickled objects, truncated
        raise NmprivacyError(f"--inputs {p} is not a readable .npy array ({type(exc).__name__}); save inputs with numpy.save (no pickles)") from None
    n = math.prod(input_shape)
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf" or arr.ndim < 3 or arr.size > MAX_INPUT_VALUES:
        raise NmprivacyError(f"--inputs {p} holds {getattr(arr, 'dtype', type(arr))} {getattr(arr, 'shape', '')}: expected numbers [B, T, *input_shape]")
    if math.prod(arr.shape[2:]) != n or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise NmprivacyError(f"--inputs {p} has shape {arr.shape} but the network takes [B, T, {', '.join(map(str, input_shape))}]")
    x = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(x).all() or (x != np.round(x)).any():
        raise NmprivacyError(f"--inputs {p} holds non-integer or non-finite values: Lava takes binary spikes or integer graded values")
    return torch.from_numpy(x.astype(np.float32)).reshape(arr.shape[0], arr.shape[1], *input_shape).transpose(0, 1).contiguous()


def random_inputs(n: int, steps: int, input_shape: tuple[int, ...], graded: bool, seed: int, graded_max: int = GRADED_MAX) -> torch.Tensor:
    """``n`` seeded random inputs ``[T, n, *input_shape]``: Bernoulli spikes (p = 0.3), or
    integers uniform in 0..``graded_max`` for ``graded`` networks."""
    if n < 1 or steps < 1:
        raise NmprivacyError(f"--random and --steps must be >= 1 (got {n}, {steps})")
    gen = torch.Generator().manual_seed(int(seed))
    shape = (steps, n, *input_shape)
    if graded:
        return torch.randint(0, int(graded_max) + 1, shape, generator=gen).float()
    return (torch.rand(shape, generator=gen) < RANDOM_DENSITY).float()


def _export(target: Target, workdir: Path) -> tuple[Path, Any]:
    """The NetX file of ``target``: its own, or an export into ``workdir`` (with the report)."""
    if target.netx is not None:
        return target.netx, target.report
    from hw_export.netx_export import export_netx

    path = workdir / "model.net"
    source = target.model if target.float_model is None else target.float_model
    meta = {k: v for k, v in target.meta.items() if k in ("dataset", "steps", "dt")}
    return path, export_netx(source, path, meta={**meta, "checkpoint": target.source})


def validate(
    model_or_path: TargetModel | Target | str | os.PathLike[str],
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
    inputs: str | os.PathLike[str] | None = None,
    random: int | None = None,
    graded_max: int = GRADED_MAX,
    recorded_out: str | os.PathLike[str] | None = None,
    dt: float | None = None,
    data_options: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export fidelity and, with ``inversion``, attack validation on Lava (module docstring);
    returns the results dict and, with ``out``, writes it there (``recorded_out``: the folder
    the results will end up in, when ``out`` is a temporary one that is moved there later;
    ``dt``: the time step in seconds of a NIR graph, default 1e-3; ``data_options``: loader
    options of ``dataset``; ``overrides``: dotted preset settings, e.g. ``{"steps": 50}``)."""
    from hw_export.fidelity import attack_validation, export_fidelity
    from hw_export.netx_emulation import load_netx
    from nmprivacy.attacks.io import inversion_files, load_inversion

    if samples < 1 or (lava_samples is not None and lava_samples < 0):
        raise NmprivacyError(f"--samples must be >= 1 and --lava-samples >= 0 (got {samples}, {lava_samples})")
    if sum(v is not None for v in (inputs, random)) + (splits is not None or dataset is not None) > 1:
        raise NmprivacyError("give one source of inputs: --dataset, --inputs FILE.npy or --random N")
    out_dir = check_output(out, folder=True) if out is not None else None
    sw = Stopwatch()
    target = model_or_path if isinstance(model_or_path, Target) else load_target(model_or_path, dt=dt)
    inversions = [(p, load_inversion(p)) for p in inversion_files(inversion)] if inversion is not None else []
    y = None
    if inputs is None and random is None:
        if splits is None:
            name = dataset or target.dataset
            if not name:
                raise NmprivacyError(f"cannot tell which data set {target.source} was trained on: pass --dataset NAME, --inputs FILE.npy or --random N")
            from nmprivacy.data import load_dataset

            with sw("data"):
                splits = load_dataset(name, root=data_root, **(data_options or {}))
        target = fit_to_data(target, splits.input_shape, splits.num_classes, splits.name)
        t = choose_steps(steps, target, splits.name, overrides)
        x, y = _test_inputs(splits, samples, t, seed)
        data_name = splits.name
    elif inputs is not None:
        x = file_inputs(inputs, tuple(target.model.info.input_shape))
        data_name = f"inputs {Path(inputs).name}"
    else:
        t = steps or target.steps or DEFAULT_STEPS
        graded = bool(getattr(target.model.network(), "has_input_neurons", False))
        x = random_inputs(int(random), t, tuple(target.model.info.input_shape), graded, seed, graded_max)
        data_name = f"random {'graded' if graded else 'spikes'}"
    with tempfile.TemporaryDirectory(prefix="nmprivacy-validate-") as tmp:
        with sw("export"):
            netx_path, report = _export(target, Path(tmp))
            emulation = load_netx(netx_path, input_shape=tuple(target.model.info.input_shape))
        source = None if target.netx is not None else (target.float_model or target.model)
        if source is not None and source.info.kind == "netx":
            source = None
        with sw("export_fidelity"):
            fidelity = export_fidelity(emulation, netx_path, x, y, lava_samples, source=source, progress=progress)
        attack = None
        if inversions:
            with sw("attack_validation"):
                attack = attack_validation(emulation, netx_path, inversions, samples, lava_samples, seed, progress)
        config = {"samples": samples, "lava_samples": lava_samples, "steps": int(x.shape[0]), "inversion": str(inversion) if inversion else None,
                  "inputs": str(inputs) if inputs else None, "random": random, "seed": seed, "model": target.source}
        result = ValidationResult(
            netx_file=str((Path(recorded_out or out_dir) / "model.net") if target.netx is None else netx_path) if out_dir is not None else None,
            network={
                "sizes": list(emulation.network().sizes), "input_shape": list(emulation.info.input_shape),
                "layers": emulation.network().describe(), "notes": list(emulation.network().notes),
                "source_kind": source.info.kind if source is not None else target.meta.get("kind", "netx"),
            },
            dataset=data_name,
            inputs={"kind": "dataset" if y is not None else ("file" if inputs is not None else "random"), "samples": int(x.shape[1]), "steps": int(x.shape[0])},
            export_report=to_jsonable(report) if report is not None else None,
            export=fidelity,
            attack=attack,
            record=run_metadata(config=config, seed=seed, timings=sw.seconds),
        ).to_json()
        if recorded_out is not None and out_dir is not None:  # paths as they will be once the folder is moved
            result = json.loads(json.dumps(result).replace(json.dumps(str(out_dir))[1:-1], json.dumps(str(recorded_out))[1:-1]))
        if out_dir is not None:
            if target.netx is None:
                with atomic_path(out_dir / "model.net") as dst:
                    shutil.copyfile(netx_path, dst)
            atomic_write_json(out_dir / "validation.json", result)
            atomic_write_text(out_dir / "validation.md", validation_markdown(result))
    return result


def validation_markdown(result: dict[str, Any]) -> str:
    """A human-readable summary of a ``validate`` result."""
    e = result["export"]
    lines = [
        f"# Hardware validation ({result['network']['source_kind']}, {result['dataset']})",
        "",
        f"Network {'-'.join(map(str, result['network']['sizes']))} ({result['network'].get('layers', '')}); {e['samples']} inputs of {e['steps']} steps on the emulation, "
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
            + (f"accuracy torch {_pct(e['accuracy_torch'])} vs Lava {_pct(e['accuracy_lava'])} (on {e['lava_samples']} inputs); " if e.get("labelled") else "")
            + f"largest output-membrane difference {e['membrane_max_abs_diff']:.3g}.",
        ]
    if e.get("labelled"):
        lines.append(f"Emulation accuracy on all {e['samples']} inputs: {_pct(e['accuracy_emulation'])}.")
    lines += [f"- note: {note}" for note in result["network"].get("notes", [])]
    src = e.get("source_vs_emulation")
    if src:
        lines += [
            "",
            f"Source model ({src['kind']}) vs its Loihi emulation: class agreement {_pct(src['class_agreement'])}"
            + (f", accuracy {_pct(src['accuracy_source'])} (source) vs {_pct(e['accuracy_emulation'])} (emulation)" if e.get("labelled") else "")
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
