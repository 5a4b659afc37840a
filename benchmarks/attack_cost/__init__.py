"""``attack-cost``: seconds per attack iteration, reference structure vs this project vs the machine.

For the paper's configurations (MNIST 784-3000-10, T=25, K=7; N-MNIST 1156-3000-10, T=100,
K=5; 10 classes) and each attack (BL-v1, BL-v2, MI-Face on the ANN for MNIST), measured side by
side in one process:

1. ``reference`` (``reference_timing``): the published notebooks' structure
   (``benchmarks.reference``, snnTorch ``snn.Leaky`` neurons as the notebooks use them): one
   class, one sample, one time step at a time, autograd with weight gradients. Timed on a subset
   (``reference_classes`` x ``reference_samples``) and extrapolated linearly to all classes x K
   (said in the JSON under ``reference_timed``).
2. ``ours`` (``ours``): the real attack classes (``nmprivacy.attacks``) with ``make_oracle``, i.e.
   what ``nmprivacy audit`` runs, seconds per iteration over all classes; also with the sparse
   input path disabled (``ours_dense``) and with the plain batched autograd oracle
   (``batched_autograd``).
3. ``roofline`` (``roofline``): FLOPs of one iteration / the peak of a large fp32 matmul measured
   in this run (at its start and end; the larger). Every time is the fastest of ``repeats`` runs.

Targets are randomly initialised (``snn-norse``, ``ann``). The attacks run with the audit's
settings for the configuration (``nmprivacy.presets``, paper budget): "ours" is seconds per
iteration over a whole attack (10 iterations from the preset's start, BL-v2's X_p at 0.5 for
MNIST). BL-v2's cost depends on the spike density of its samples (binary inputs take the gather or
subset-table paths of ``nmprivacy.attacks.currents``), which falls from 0.5 to ~0.05 over a run on
trained and random targets alike; the run's density trajectory is recorded, and a density sweep
(``sweeps``; ``lr = 0`` keeps X_p at its start) gives the cost at fixed densities, beside the
scaling sweeps over K, T, hidden width and classes. The reference structure's cost does not
depend on the density (batch-1 dense GEMVs). Peak memory is the resident-set growth over the
run's baseline, sampled every 2 ms (``timing``).

Modules: ``config`` (what is measured), ``timing``, ``reference_timing``, ``ours``, ``roofline``,
``sweeps``, ``measure`` (one run, explicit data in and out), ``report`` (the results as types:
``CostReport.to_json()`` is the result file, stable keys), ``cli``.

Usage: ``python -m benchmarks.attack_cost [--quick] [--json FILE]`` or
``nmprivacy bench attack-cost [--quick] [--threads N] [--json FILE]``.
"""

from benchmarks.attack_cost.cli import build_parser, main

__all__ = ["build_parser", "main"]
