"""Spike-for-spike comparisons of the hardware path: the emulation against Lava, a source model
against its Loihi version, and attack reconstructions replayed on Lava.

Every function takes tensors and models and returns plain result dicts (stable keys, see
``nmprivacy.validation``): ``export_fidelity`` runs inputs ``[T, B, ...]`` through the bit-exact
emulation and through Lava (spike mismatches per layer, identical-train fractions, class
agreement, accuracy when labels are given) and, for a source model that is not itself Loihi
arithmetic, source against emulation; ``attack_validation`` replays inversions (reconstructions,
and Bernoulli draws of BL-v2's X_p) on both.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from hw_export.lava_run import run_lava
from nmprivacy.errors import NmprivacyError
from nmprivacy.models.base import TargetModel, spike_readout
from nmprivacy.models.network_model import NetworkModel
from nmprivacy.progress import bar

EMULATION_BATCH = 50


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
    """Layer spikes (NetworkModel only, else empty) ``[T, B, N_l]`` and output membrane
    ``[T, B, C]`` of ``model`` on ``x`` ``[T, B, ...]``, in batches."""
    spikes: list[list[torch.Tensor]] = []
    membranes = []
    for start in bar(range(0, x.shape[1], batch), desc=desc, unit="batch", quiet=not progress, leave=False):
        xb = x[:, start : start + batch]
        if isinstance(model, NetworkModel):
            layers = model.layer_spikes(xb)
            spikes.append([s.to(torch.uint8) for s in layers])
        membranes.append(model(xb).detach().float())
    layers_out = [torch.cat(parts, dim=1) for parts in zip(*spikes)] if spikes else []
    return layers_out, torch.cat(membranes, dim=1)


def output_lag(source: TargetModel) -> int:
    """Steps by which Lava's output layer lags ``source`` (layers after the first without a one-step delay)."""
    network = None if isinstance(source, NetworkModel) else source.network()
    return 0 if network is None else (len(network.layers) - 1) * (1 - source.layer_delay)


def _trains(a: torch.Tensor, b: torch.Tensor) -> dict[str, float | int]:
    """Agreement of two spike records ``[T, B, N]``: bins, whole trains, mismatching bins."""
    diff = a != b
    return {
        "bin_agreement": float(1.0 - diff.float().mean()),
        "identical_train_fraction": float(1.0 - diff.any(dim=0).float().mean()),
        "mismatches": int(diff.sum()),
    }


def layer_agreement(source: TargetModel, emu_layers: list[torch.Tensor], x: torch.Tensor) -> list[dict[str, Any]] | None:
    """Per layer, the source model's spikes against its Loihi emulation's on ``x`` ``[T, B, ...]``
    (None when the source does not expose its spikes). A source whose layers carry no one-step
    delay (``snn-norse``) is compared on its first layer only, where the two time axes agree."""
    with torch.no_grad():
        if isinstance(source, NetworkModel):
            layers = [s.to(torch.uint8) for s in source.layer_spikes(x)]
        elif hasattr(source, "run") and source.network() is not None:
            hidden = source.run(x)[0].to(torch.uint8)  # [T, B, H]
            if source.layer_delay == 1:  # the source returns spikes after its one-step delay
                hidden = torch.cat([hidden[1:], torch.zeros_like(hidden[:1])])
            layers = [hidden]
        else:
            return None
    out = []
    for i, (a, b) in enumerate(zip(layers, emu_layers)):
        if a.shape != b.shape:
            return out or None
        if isinstance(source, NetworkModel) or source.layer_delay == 0:
            out.append({"layer": i, **_trains(a, b)})
        else:  # drop the last step, which the source's delayed record does not hold
            out.append({"layer": i, **_trains(a[:-1], b[:-1])})
    return out


def export_fidelity(
    emulation: NetworkModel, netx_path: Path, x: torch.Tensor, y: torch.Tensor | None, lava_samples: int | None,
    source: TargetModel | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Emulation vs Lava (and source vs emulation) on inputs ``x`` ``[T, B, ...]``; accuracies
    when labels ``y`` ``[B]`` are given."""
    emu_layers, emu_mem = emulate(emulation, x, progress=progress)
    emu_pred = spike_readout(emu_mem).argmax(-1)
    n_lava = x.shape[1] if lava_samples is None else min(lava_samples, x.shape[1])
    result: dict[str, Any] = {"samples": int(x.shape[1]), "steps": int(x.shape[0]), "lava_samples": n_lava, "labelled": y is not None}
    if y is not None:
        result["accuracy_emulation"] = float((emu_pred == y).float().mean())
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
                "membrane_max_abs_diff": float((run.output_membrane - emu_mem[:, :n_lava].transpose(0, 1)).abs().max()),
                "lava_seconds": run.seconds,
                "lava_samples_per_s": run.samples_per_s,
                "lava_isolated_samples": len(run.isolated),
            }
        )
        if y is not None:
            result["accuracy_torch"] = float((sub == y[:n_lava]).float().mean())
            result["accuracy_lava"] = float((lava_pred == y[:n_lava]).float().mean())
    if source is not None:
        _, src_mem = emulate(source, x, desc="source model", progress=progress)
        src_pred = spike_readout(src_mem).argmax(-1)
        lag = output_lag(source)  # Lava's extra steps per layer that the source does not have
        aligned = (src_mem[: src_mem.shape[0] - lag], emu_mem[lag:])
        agree: dict[str, Any] = {
            "kind": source.info.kind,
            "class_agreement": float((src_pred == emu_pred).float().mean()),
            "output_lag_steps": lag,
            "output_membrane_max_abs_diff": float((aligned[0] - aligned[1]).abs().max()),
            "output_membrane_mean_abs_diff": float((aligned[0] - aligned[1]).abs().mean()),
        }
        if y is not None:
            agree["accuracy_source"] = float((src_pred == y).float().mean())
        n_hidden = min(x.shape[1], EMULATION_BATCH * 2)
        per_layer = layer_agreement(source, [s[:, :n_hidden] for s in emu_layers], x[:, :n_hidden])
        if per_layer:
            first = per_layer[0]
            agree.update(
                layers=per_layer, hidden_samples=n_hidden, hidden_bin_agreement=first["bin_agreement"],
                hidden_identical_train_fraction=first["identical_train_fraction"], hidden_mismatches=first["mismatches"],
            )
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
    emulation: NetworkModel, netx_path: Path, inversions: list[tuple[Path, dict[str, torch.Tensor]]], samples: int,
    lava_samples: int | None, seed: int = 0, progress: bool = True,
) -> dict[str, Any]:
    """Reconstructions (and Bernoulli draws of X_p) of every spiking inversion (``(file, tensors)``
    as ``nmprivacy.attacks.io.load_inversion`` reads them) on the emulation (``samples`` draws per
    class) and on Lava (every draw when ``lava_samples`` is None, else ``lava_samples // K`` draws
    per class, at least 1). Top-level rates pool every spiking run; ``runs`` and ``per_class``
    break them down."""
    gen = torch.Generator().manual_seed(int(seed))
    per_class: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    pooled: dict[str, list[torch.Tensor]] = {"lava": [], "emu_lava": [], "emu": [], "t_lava": [], "t": []}
    mismatches = 0
    for path, data in inversions:
        rec = data["reconstructions"].float()
        if rec.dim() < 3 or not bool(((rec == 0) | (rec == 1)).all()):  # spiking: binary [K, T, *input_shape] (MI-Face's images are not)
            runs.append({"file": str(path), "skipped": f"reconstructions of shape {tuple(rec.shape)} are not spike trains [K, T, *input_shape]"})
            continue
        k = rec.shape[0]
        if math.prod(rec.shape[2:]) != emulation.network().input_size:
            runs.append({"file": str(path), "skipped": f"{math.prod(rec.shape[2:])} inputs per step, the network takes {emulation.network().input_size}"})
            continue
        layout = (k, rec.shape[1], *emulation.info.input_shape)  # e.g. a flat file's [K, T, N] attack on the data set's [C, H, W]
        rec = rec.reshape(layout)
        classes = data.get("classes", torch.arange(k)).reshape(-1).long()
        probs = data.get("probabilities")
        if probs is not None:
            p = probs.float().clamp(0, 1).reshape(layout)
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
        raise NmprivacyError("no spiking reconstructions that fit this network; pass a BrainLeaks run of the same target")
    cat = {key: torch.cat(parts) if parts else None for key, parts in pooled.items()}
    summary = _hit_summary(cat["lava"], cat["emu_lava"], cat["t_lava"], cat["emu"], cat["t"])
    return {**summary, "total_mismatches": mismatches, "runs": runs, "per_class": per_class}


