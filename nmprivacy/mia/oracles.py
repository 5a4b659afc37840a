"""What answers a membership attacker's queries (docs/method.md §9.6): the float model, its
bit-exact Loihi emulation (of its NetX export, or a NetX file's own) or Lava's fixed-point
simulator; and the Lava check, which runs a few records through all three and compares."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from nmprivacy.errors import NmprivacyError
from nmprivacy.membership.observables import (
    THREATS,
    Observations,
    attacker_view,
    encode_queries,
    engine_answer,
    logit_confidence,
    model_outputs,
    observe,
    readout_logprob,
)


def netx_file(model: Any, workdir: Path, foreign: Any = None) -> Path:
    """The NetX file a model runs on Loihi as: a target file's own, else an export into ``workdir``."""
    if foreign is not None and foreign.netx is not None:
        return Path(foreign.netx)
    from hw_export.netx_export import export_netx

    path = workdir / "model.net"
    export_netx(model, path)
    return path


def emulation_of(model: Any, workdir: Path, foreign: Any = None) -> Any:
    """The bit-exact Loihi emulation (``NetworkModel``) of the NetX file ``netx_file`` gives."""
    from nmprivacy.models.network_model import NetworkModel

    if isinstance(model, NetworkModel) and model.loihi:
        return model
    from hw_export.netx_emulation import load_netx

    return load_netx(netx_file(model, workdir, foreign), input_shape=tuple(model.info.input_shape))


def lava_answer(path: Path) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """An ``observe`` answer function running every batch of spike trains ``[T, B, ...]`` on
    Lava's fixed-point simulator in one run (``hw_export.run_lava``, output membrane recorded)."""
    from hw_export.lava_run import run_lava

    def answer(spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        run = run_lava(path, spikes.transpose(0, 1).to(torch.uint8), record_membrane=True)
        return readout_logprob(run.output_membrane.transpose(0, 1)), run.output.to(torch.int64).sum(dim=1)

    return answer


def observe_with(model: Any, oracle: str, x: torch.Tensor, domain: str, steps: int | None, queries: int, seed: int, workdir: Path,
                 foreign: Any = None, progress: bool = False) -> Observations:
    """``observe`` ``model`` through ``oracle``: ``float`` (its own forward), ``emulation`` (its
    bit-exact Loihi emulation) or ``lava`` (every query on Lava)."""
    if oracle == "float":
        return observe(model, x, domain, steps, queries, seed, progress=progress)
    emulation = emulation_of(model, workdir, foreign)
    if oracle == "emulation":
        return observe(emulation, x, domain, steps, queries, seed, progress=progress)
    return observe(emulation, x, domain, steps, queries, seed, answer=lava_answer(netx_file(model, workdir, foreign)), progress=progress)


def oracle_check(model: Any, float_model: Any, x: torch.Tensor, records: int, domain: str, steps: int | None, seed: int, threat: str,
                 workdir: Path, foreign: Any = None) -> dict[str, Any]:
    """Query 0 of the first ``records`` observed records through Lava, the emulation and the
    float model: per pair, records whose output spike counts differ, differing labels and the
    largest difference of the threat's signal ``phi`` (emulation vs Lava must show none)."""
    start = time.perf_counter()
    spikes = encode_queries(x[: min(int(x.shape[0]), 256)], domain, steps, seed, 0, 0)[:, :records]
    labels = torch.zeros(spikes.shape[1], dtype=torch.long)
    emulation = emulation_of(model, workdir, foreign)
    emulate = engine_answer(emulation) or (lambda batch: model_outputs(emulation, batch))  # the path observe() takes
    answers = {"lava": lava_answer(netx_file(model, workdir, foreign))(spikes), "emulation": emulate(spikes)}
    if float_model is not None:
        answers["float"] = model_outputs(float_model, spikes)

    def compare(a: str, b: str) -> dict[str, Any]:
        (lp_a, ct_a), (lp_b, ct_b) = answers[a], answers[b]
        obs_a = Observations(lp_a[:, None].float(), ct_a[:, None].to(torch.int16), lp_a.argmax(1))
        obs_b = Observations(lp_b[:, None].float(), ct_b[:, None].to(torch.int16), lp_b.argmax(1))
        phi = {t: np.abs(logit_confidence(attacker_view(obs_a, t), labels.numpy()) - logit_confidence(attacker_view(obs_b, t), labels.numpy())).max()
               for t in THREATS}
        return {"count_mismatch_records": int((ct_a != ct_b).any(dim=1).sum()), "spike_count_difference": int((ct_a - ct_b).abs().sum()),
                "label_mismatches": int((attacker_view(obs_a, "label").argmax(-1) != attacker_view(obs_b, "label").argmax(-1)).sum()),
                "phi_max_abs_diff": {t: float(v) for t, v in phi.items()}, "threat_phi_max_abs_diff": float(phi[threat])}

    out: dict[str, Any] = {"records": int(spikes.shape[1]), "query": 0, "lava_vs_emulation": compare("lava", "emulation")}
    if "float" in answers:
        out["float_vs_emulation"] = compare("float", "emulation")
    out["seconds"] = time.perf_counter() - start
    return out


def run_oracle_check(plan: Any, records: int, seed: int, checkpoint: str | None, workdir: Path) -> dict[str, Any]:
    """``oracle_check`` of ``records`` records on the plan's target file, or on the kind's model
    0 (loaded from its ``checkpoint``); ``{"error": ...}`` where Lava cannot run (the attacks'
    numbers stand without it, and the report says why it is missing)."""
    x = plan.pool_x[torch.as_tensor(plan.records)]
    if plan.foreign is not None:
        model, float_model = plan.foreign.model, plan.foreign.float_model
    else:
        from nmprivacy.models import checkpoint as checkpoints

        model = checkpoints.load(checkpoint, plan.kind).freeze()
        float_model = model
    try:
        return oracle_check(model, float_model, x, records, plan.splits.domain, plan.steps, seed, plan.threat, workdir, plan.foreign)
    except NmprivacyError as exc:
        tqdm.write(f"warning: the Lava check could not run ({exc})")
        return {"error": str(exc)}
