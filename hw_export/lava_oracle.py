"""The query oracle that runs on the simulated chip: every batch of queries is ONE Lava run.

``LavaOracle(path, threat)`` answers a batch of binary queries ``[B, T, *input_shape]`` with
``run_lava`` (``Loihi2SimCfg(select_tag='fixed_pt')``, neurons reset between queries) and shows
only what the threat level allows (``nmprivacy.attacks.query_oracle``): output spike counts,
the top-1 label, or the output membrane (recorded by Lava's probes only at that level).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from nmprivacy.attacks.query_oracle import CountedOracle
from nmprivacy.errors import NmprivacyError


class LavaOracle(CountedOracle):
    """Counted oracle on Lava's fixed-point CPU simulator of the NetX file ``path`` (``name`` ``"lava"``)."""

    name = "lava"

    def __init__(self, path: str | os.PathLike[str], threat: str = "counts", max_queries: int | None = None) -> None:
        from hw_export.netx_emulation import load_netx

        self.path = Path(path)
        if not self.path.is_file():
            raise NmprivacyError(f"NetX file {self.path} not found: export the target with `nmprivacy export --model CKPT --out FILE.net`")
        info = load_netx(self.path).info
        super().__init__(math.prod(info.input_shape), info.num_classes, threat, max_queries)
        self.input_shape = tuple(info.input_shape)
        self.seconds = 0.0  # wall clock of the run_lava calls (build, run, read-back), summed over batches
        self.run_seconds = 0.0  # of that, the simulator's run

    def _outputs(self, x: torch.Tensor, membrane: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        from hw_export.lava_run import run_lava

        run = run_lava(self.path, x.to(torch.uint8), record_membrane=membrane)
        self.seconds += run.seconds
        self.run_seconds += run.run_seconds
        return run.output, run.output_membrane

