"""``nmprivacy export``: a target as Loihi-compatible NetX HDF5, or as a NIR graph."""

from __future__ import annotations

import argparse

from nmprivacy.commands.common import add_dt, add_run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a target to NetX HDF5 (Loihi / Lava) or to NIR",
        description="Export a model to NetX: an snn-lava / snn-lava-conv checkpoint losslessly (slayer's own export), "
        "an snn-norse checkpoint or a NIR graph mapped onto Loihi CUBA neurons (8-bit weights; quantisation error "
        "reported per layer). The file loads with lava.lib.dl.netx.hdf5.Network and runs on Lava. With --format nir "
        "(or an --out ending in .nir), write the model as a NIR graph that Norse and snnTorch import.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder (nmprivacy train), NetX file (*.net) or NIR graph (*.nir)")
    p.add_argument("--out", required=True, help="file to write (e.g. target.net, or target.nir)")
    p.add_argument("--format", choices=("netx", "nir"), default=None, help="output format (default: from --out's suffix, else netx)")
    add_dt(p)
    add_run(p, settings=False)
    p.set_defaults(func=run)


def _print_report(report) -> None:
    print(f"{report.kind} -> {report.path} ({report.mapping}, lossless: {report.lossless})")
    for layer in report.layers:
        print(
            f"  layer {layer.index} ({layer.kind}): {layer.in_features}->{layer.out_features}, iDecay {layer.i_decay}, vDecay {layer.v_decay}, "
            f"vThMant {layer.vth_mant}, weight max err {layer.weight_max_abs_error:.3g} (rel. RMS {layer.weight_rel_rms_error:.3g}), "
            f"threshold rel. err {layer.threshold_rel_error:.3g}, reset {layer.reset}"
        )
    for note in report.notes:
        print(f"  note: {note}")


def run(args: argparse.Namespace) -> int:
    """Export the model and print the per-layer report; writes ``<out>.json`` beside it."""
    from pathlib import Path

    from hw_export.netx_export import export_netx, model_network
    from nmprivacy.network.timestep import DEFAULT_DT, checked_dt
    from nmprivacy.runinfo import Stopwatch, atomic_write_json, check_output, run_metadata
    from nmprivacy.targets import load_target

    out = check_output(args.out)
    fmt = args.format or ("nir" if out.suffix.lower() == ".nir" else "netx")
    if args.dt is not None:
        checked_dt(args.dt)
    sw = Stopwatch()
    target = load_target(args.model, dt=args.dt)
    meta = {k: v for k, v in target.meta.items() if k in ("dataset", "steps", "dt", "training")}  # training: its DP-SGD / defences, if any
    meta["source"] = str(args.model)
    source = target.float_model or target.model
    config = {"model": str(args.model), "out": str(out), "format": fmt, "dt": args.dt}
    with sw("export"):
        if fmt == "nir":
            from nmprivacy.network.nir_export import write_nir

            network = model_network(source)
            write_nir(network, out, dt=args.dt or DEFAULT_DT, training=target.meta.get("training"))
            record = {"network": network.describe(), "arithmetic": network.arithmetic, "dt": args.dt or DEFAULT_DT, "notes": list(network.notes)}
            print(f"{target.meta.get('kind', 'model')} -> {out} (NIR, {network.arithmetic} network, dt {args.dt or DEFAULT_DT:g} s): {network.describe()}")
        else:
            report = export_netx(source, out, meta=meta)
            record = {"report": report}
            _print_report(report)
    atomic_write_json(Path(str(out) + ".json"), {**record, **run_metadata(config=config, timings=sw.seconds)})
    return 0
