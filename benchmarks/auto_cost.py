"""``python -m benchmarks.auto_cost TARGET DATASET [T] [--set NAME=VALUE ...]``: seconds of one ``bl-auto`` run against one BL-v2 run.

Loads TARGET (checkpoint folder, NetX file or NIR graph), resolves the data set's preset at the
default budget and variant (with the ``--set`` settings, e.g. a smaller ``bl_auto.members``), and times ``attack.run`` (all classes, seed 0) of BL-v2 (the default
variant's 10 iterations) and of ``bl-auto`` alternately, twice each, in this one process; prints
the fastest of each and their ratio as JSON. Process start, model loading and data loading are
not timed.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    """Time BL-v2 and bl-auto on one target; print ``{"bl-v2": s, "bl-auto": s, "ratio": r}``."""
    args = list(sys.argv[1:] if argv is None else argv)
    sets = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--set"]
    args = [a for i, a in enumerate(args) if a != "--set" and (i == 0 or args[i - 1] != "--set")]
    if len(args) not in (2, 3):
        print("usage: python -m benchmarks.auto_cost TARGET DATASET [T] [--set NAME=VALUE ...]", file=sys.stderr)
        return 2
    from nmprivacy.commands.common import parse_pairs
    import nmprivacy as nmp
    from nmprivacy import presets
    from nmprivacy.attacks import attack_class
    from nmprivacy.data import load_dataset

    target, dataset = args[0], args[1]
    steps = int(args[2]) if len(args) > 2 else None
    model = nmp.load(target, steps=steps).model
    preset = presets.resolve(dataset, "default", "default", None, parse_pairs(sets, "--set"))
    classes = list(range(load_dataset(dataset).num_classes))
    times: dict[str, list[float]] = {}
    for name in ("bl-v2", "bl-auto", "bl-v2", "bl-auto"):
        attack = nmp.get_attack(name, getattr(preset, attack_class(name).info.settings), steps=steps)
        start = time.perf_counter()
        attack.run(model, classes, seed=0)
        times.setdefault(name, []).append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    print(json.dumps(best | {"ratio": best["bl-auto"] / best["bl-v2"]}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
