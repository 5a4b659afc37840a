"""A few-second end-to-end check of the hardware path for ``nmprivacy doctor``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SIZES = (16, 12, 4)  # input, hidden, output
SAMPLES, STEPS = 3, 8


def tiny_netx(path: str | Path, seed: int = 0) -> Path:
    """Write a small random dense CUBA NetX network (16-12-4, slayer-style even 8-bit weights)."""
    import h5py

    from hw_export.netx_writer import write_dense_layer

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        group = f.create_group("layer")
        for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            weight = rng.integers(-100, 110, size=(n_out, n_in)) * 2
            write_dense_layer(group, i, weight, i_decay=4096 if i == 0 else 1024, v_decay=1229, vth_mant=80)
    return Path(path)


def netx_selfcheck() -> tuple[bool, str]:
    """Build a tiny NetX network from HDF5, run it on ``Loihi2SimCfg(select_tag='fixed_pt')`` and
    check every spike against the bit-exact emulation; returns (ok, one-line detail)."""
    from hw_export.lava_run import run_lava
    from hw_export.netx_emulation import load_netx

    start = time.perf_counter()
    rng = np.random.default_rng(1)
    x = (rng.random((SAMPLES, STEPS, SIZES[0])) < 0.4).astype(np.uint8)  # [B, T, N]
    with tempfile.TemporaryDirectory(prefix="nmprivacy-selfcheck-") as tmp:
        path = tiny_netx(Path(tmp) / "tiny.net")
        emu = load_netx(path)
        with torch.no_grad():
            expected = emu.layer_spikes(torch.from_numpy(x).float().transpose(0, 1))
        got = run_lava(path, x)
    mismatches = [int((e.transpose(0, 1).to(torch.uint8) != g).sum()) for e, g in zip(expected, got.layers)]
    counts = [int(e.sum()) for e in expected]
    seconds = time.perf_counter() - start
    shape = "-".join(map(str, SIZES))
    detail = (
        f"NetX {shape} network, {SAMPLES} samples x {STEPS} steps on Loihi2SimCfg fixed_pt: "
        f"{sum(mismatches)} spike mismatches vs emulation over {sum(counts)} spikes ({seconds:.1f} s)"
    )
    if any(c == 0 for c in counts):
        return False, detail + "; a layer never spiked, the check is not meaningful"
    return sum(mismatches) == 0, detail
