"""``nmprivacy doctor``: versions of the stack and one ok/FAIL line per capability, with the fix."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Callable

FIX_SETUP = "run 'make setup' (creates .venv with the pinned Lava/Norse stack)"


@dataclass(frozen=True)
class Check:
    """One doctor line: a name, whether the core stack depends on it, and the check itself."""

    name: str
    core: bool
    run: Callable[[], str]  # returns a detail string; raises on failure
    fix: str


def _check_lava() -> str:
    from nmprivacy.lava_import import import_lava

    import_lava()

    return "lava.magma, lava.lib.dl.slayer and lava.lib.dl.netx import"


def _check_netx() -> str:
    from hw_export.selfcheck import netx_selfcheck

    ok, detail = netx_selfcheck()
    if not ok:
        raise RuntimeError(detail)
    return detail


def _check_norse() -> str:
    import torch
    from norse.torch import LIFBoxCell, LIFBoxParameters

    torch.manual_seed(0)
    cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(300.0), method="super", alpha=torch.tensor(40.0)))
    x = (torch.rand(25, 4, 8) * 3).requires_grad_(True)
    state = None
    total = torch.zeros(())
    spikes = 0.0
    for t in range(x.shape[0]):
        z, state = cell(x[t], state)
        total = total + state.v.sum()
        spikes += float(z.sum())
    total.backward()
    if x.grad is None or not torch.isfinite(x.grad).all() or float(x.grad.abs().sum()) == 0.0:
        raise RuntimeError("LIF backward produced no finite input gradient")
    return f"LIFBoxCell forward+backward ok ({int(spikes)} spikes, |grad| {float(x.grad.abs().sum()):.3g})"


def _check_tonic() -> str:
    import tonic
    import tonic.transforms  # noqa: F401

    return f"tonic {tonic.__version__} transforms import"


def _check_datasets(root: str | None) -> Callable[[], str]:
    def run() -> str:
        from nmprivacy.data import dataset_status

        lines = []
        for name, found, where in dataset_status(root):
            lines.append(f"{name}: {'found at ' + where if found else 'missing (' + where + ')'}")
        return "\n      ".join(lines)

    return run


def checks(data_root: str | None = None) -> list[Check]:
    """The doctor's checks in the order they are printed."""
    return [
        Check("lava imports", True, _check_lava, FIX_SETUP),
        Check("NetX HDF5 on Loihi2SimCfg(fixed_pt)", True, _check_netx, FIX_SETUP + "; then 'pytest tests -k netx' for details"),
        Check("Norse LIF forward+backward", True, _check_norse, FIX_SETUP),
        Check("tonic", True, _check_tonic, FIX_SETUP),
        Check("data sets", False, _check_datasets(data_root), "see 'nmprivacy data info --dataset NAME' for where files are looked for"),
    ]


def run_doctor(data_root: str | None = None) -> int:
    """Print versions and every check; return 0 only if every core check passed."""
    from nmprivacy.runinfo import package_versions

    print("nmprivacy doctor")
    for name, version in package_versions().items():
        print(f"  {name:<10} {version}")
    failed_core = False
    for check in checks(data_root):
        start = time.perf_counter()
        try:
            detail = check.run()
            status = "ok"
        except Exception as exc:  # a failing check is reported, never raised
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} -> fix: {check.fix}"
            status = "FAIL"
            failed_core = failed_core or check.core
        print(f"{status:>4}  {check.name} ({time.perf_counter() - start:.1f} s): {detail}")
    print("core stack: " + ("ok" if not failed_core else "FAIL"))
    return 1 if failed_core else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``doctor`` to the CLI."""
    p = sub.add_parser("doctor", help="check the Lava / Norse / tonic stack and list the data sets found")
    p.add_argument("--data-root", default=None, help="extra folder to look for data sets in")
    p.set_defaults(func=lambda args: run_doctor(args.data_root))


