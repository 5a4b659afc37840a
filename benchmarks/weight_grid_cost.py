"""``python -m benchmarks.weight_grid_cost [PAIRS] [--off-first]``: what the weight-grid record
(``nmprivacy.models.weight_grid``) costs in training.

Times one plain ``snn-lava`` epoch (digits-28, 784-3000-10, T = 25, batch 100, 15 steps; the same
epoch as ``benchmarks.dp_cost``) with the record on and off (``WeightGrid.of`` returning None),
alternated PAIRS times (default 3) in this one process after a warm-up, the record first in each
pair unless ``--off-first``; and one ``grid_mantissas`` pass alone on 784-3000-10 and on AT&T's
10304-3000-40. Prints JSON: the epochs' seconds, their ratios and the pass's milliseconds.
"""

from __future__ import annotations

import json
import sys
import time
from unittest import mock


def main(argv: list[str] | None = None) -> int:
    """Time the epochs and the pass; print them as JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    off_first = "--off-first" in args
    numbers = [a for a in args if not a.startswith("--")]
    pairs = int(numbers[0]) if numbers else 3

    import torch

    from nmprivacy.lava_import import import_lava

    import_lava()
    torch.set_num_threads(1)
    from benchmarks.dp_cost import time_epoch
    from nmprivacy.data import load_dataset
    from nmprivacy.models import weight_grid
    from nmprivacy.models.snn_lava import SNNLava, SNNLavaConfig

    splits = load_dataset("digits-28")

    def epoch(record: bool) -> float:
        if record:
            return time_epoch("snn-lava", "plain", splits, 3000, 25, 0)
        with mock.patch.object(weight_grid.WeightGrid, "of", classmethod(lambda cls, model: None)):
            return time_epoch("snn-lava", "plain", splits, 3000, 25, 0)

    epoch(True)  # warm-up: compiles the engine's kernels
    rows: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(pairs):
        for record in ((False, True) if off_first else (True, False)):
            rows["on" if record else "off"].append(epoch(record))
    passes = {}
    for name, shape, classes in (("784-3000-10", (1, 28, 28), 10), ("10304-3000-40", (1, 112, 92), 40)):
        model = SNNLava(SNNLavaConfig(shape, classes, hidden=3000))
        weight_grid.grid_mantissas(model)
        start = time.perf_counter()
        for _ in range(20):
            weight_grid.grid_mantissas(model)
        passes[name] = (time.perf_counter() - start) / 20 * 1e3
    print(json.dumps({"epoch_s": rows, "ratio_on_off": [a / b for a, b in zip(rows["on"], rows["off"])],
                      "fastest_on_over_fastest_off": min(rows["on"]) / min(rows["off"]), "off_first": off_first,
                      "grid_mantissas_ms": passes}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
