"""``python -m benchmarks.lane_scaling TARGET DATASET [T] [--lanes 1,3] [--repeats 5]``: would running
``bl-auto``'s BL-v2 members as batched lanes of one engine call make the ensemble cheaper?

Times the attack oracle's ``population_gradient`` (what one BL-v2 iteration costs: forward,
backward and the weighted input gradient of every population sample) on random Bernoulli inputs
for the data set's classes times each lane count (1: one member's call; 3: the three fixed BL-v2
members in one call), fastest of ``--repeats`` in this one process, with the data set's preset
population and T. Prints JSON: seconds per lane count and each count's cost relative to
``lanes`` separate calls (1.0: batching saves nothing; below 1: it saves). Model and data loading
are not timed.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> int:
    """Time ``population_gradient`` for each lane count; print ``{"seconds": {...}, "relative": {...}}``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.lane_scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("target")
    p.add_argument("dataset")
    p.add_argument("steps", nargs="?", type=int, default=None)
    p.add_argument("--lanes", default="1,3")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--density", type=float, default=0.1, help="spike probability of the random inputs")
    args = p.parse_args(argv)

    import torch

    import nmprivacy as nmp
    from nmprivacy import presets
    from nmprivacy.attacks.common import default_oracle, model_steps
    from nmprivacy.data import load_dataset

    loaded = nmp.load(args.target, steps=args.steps)
    model = loaded.model
    steps = model_steps(model, args.steps)
    preset = presets.resolve(args.dataset, "default", "default", None, {})
    classes = load_dataset(args.dataset).num_classes
    population = preset.bl_v2.population
    oracle = default_oracle(model)
    gen = torch.Generator().manual_seed(0)
    seconds: dict[int, float] = {}
    for lanes in [int(v) for v in args.lanes.split(",")]:
        groups = classes * lanes
        x = (torch.rand(steps, groups * population, *model.info.input_shape, generator=gen) < args.density).float()
        targets = (torch.arange(groups) % classes).repeat_interleave(population)
        weights = lambda loss, g: torch.full((g.stop - g.start, population), 1.0 / population)  # noqa: E731
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            oracle.population_gradient(x, targets, groups, weights)
            best = min(best, time.perf_counter() - start)
        seconds[lanes] = best
    per_lane = seconds[min(seconds)] / min(seconds)  # the smallest count's seconds per lane
    relative = {k: v / (k * per_lane) for k, v in seconds.items()}
    print(json.dumps({"oracle": type(oracle).__name__, "steps": steps, "population": population, "classes": classes,
                      "seconds": seconds, "relative": relative, "torch_threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
