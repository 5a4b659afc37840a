"""``nmprivacy export``: write a trained spiking target as a Loihi-compatible NetX HDF5 file."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a trained SNN target to NetX HDF5 (Loihi / Lava)",
        description="Export an snn-lava checkpoint losslessly (slayer's own NetX export) or an snn-norse "
        "checkpoint mapped onto Loihi CUBA neurons (8-bit weights; quantisation error reported per layer). "
        "The file loads with lava.lib.dl.netx.hdf5.Network and runs on Lava.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder of an snn-lava or snn-norse target (nmprivacy train)")
    p.add_argument("--out", required=True, help="NetX file to write (e.g. target.net)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint, export it and print the per-layer report; writes ``<out>.json`` beside it."""
    from pathlib import Path

    from hw_export.netx_export import export_netx
    from nmprivacy.models.checkpoint import load, load_info
    from nmprivacy.runinfo import Stopwatch, atomic_write_json, run_metadata

    sw = Stopwatch()
    model = load(args.model)
    info = load_info(args.model)
    meta = {k: info[k] for k in ("dataset", "steps") if info.get(k) is not None}
    meta["checkpoint"] = str(args.model)
    with sw("export"):
        report = export_netx(model, args.out, meta=meta)
    record = {"report": report, **run_metadata(config={"model": str(args.model), "out": str(args.out)}, timings=sw.seconds)}
    atomic_write_json(Path(str(args.out) + ".json"), record)
    print(f"{report.kind} -> {report.path} ({report.mapping}, lossless: {report.lossless})")
    for layer in report.layers:
        print(
            f"  layer {layer.index}: {layer.in_features}->{layer.out_features}, iDecay {layer.i_decay}, vDecay {layer.v_decay}, "
            f"vThMant {layer.vth_mant}, weight max err {layer.weight_max_abs_error:.3g} (rel. RMS {layer.weight_rel_rms_error:.3g}), "
            f"threshold rel. err {layer.threshold_rel_error:.3g}"
        )
    for note in report.notes:
        print(f"  note: {note}")
    return 0
