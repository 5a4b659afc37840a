"""Membership inference (``nmprivacy mia``): train reference models on random halves of a
population on the Dask cluster, query every model at a threat level through an oracle (float
model, bit-exact Loihi emulation, or Lava), run the attacks of ``nmprivacy.membership`` and write
``mia.json``, ``mia.md``, ``roc.png`` and ``scores.npz`` (docs/method.md §9).

One module per concept:

- ``config``: ``MiaConfig`` (everything a run depends on), its defaults and one-line checks;
- ``plan``: ``make_plan`` resolves a config into a ``Plan``: the population, the target kind or
  file, the threat and oracle, and who trains on which records;
- ``references``: one cached, resumable Dask task per reference model (train, then record its
  answers to every record's queries);
- ``oracles``: what answers the queries (float model, emulation, Lava) and the Lava check;
- ``report``: ``mia.md``, ``roc.png`` and ``scores.npz``;
- ``run``: ``run_mia``, which scores the attacks and writes ``mia.json``;
- ``seeds``: ``run_mia_seeds``, one run per training seed and ``mia-seeds.json`` / ``.md``
  with their mean ± std (``--training-seeds``).

Population: the data set's training and test splits together (after ``limit_train`` /
``limit_test``). ``Z`` records of the test split (``population``; by default 10 % of the
population, at most 500 and at most half the test split, a quarter for a file target) are kept
out of every model's training: RMIA's population samples. The other records are audited: each of
the ``N`` models (``--references``) trains on its own random half of them
(``nmprivacy.membership.protocol.random_halves``).

- A target *kind* (``snn-lava``, ``snn-norse``, ``ann``, ...): the N models are all of that kind;
  each in turn is the target and the other N - 1 its references (LiRA's protocol); the pairs of
  all N targets are pooled.
- A target *file* (NetX, NIR graph, checkpoint folder) trained elsewhere: it is the one target,
  its members assumed to be the data set's training split; the N models are its references,
  trained with nmprivacy's recipe for the same layer sizes (``reference_recipe``; the report says so).

Each reference model is one task (train or reuse it through ``nmprivacy.trained.train_or_load``,
then record its answers to every record's queries), cached under the model cache
(``mia-<data set>-<kind>-r<i>-<key>.pt`` beside the checkpoint folders), so an interrupted run
resumes where it stopped. ``mia.json``'s stable keys: ``attacks.<name>.auc``,
``attacks.<name>.tpr_at_fpr["0.001"|"0.01"]``, ``attacks.<name>.balanced_acc``, each with a
``<key>_ci`` sibling ``[lo, hi]`` (``tpr_at_fpr_ci`` a dict of them); ``target.train_acc``,
``target.test_acc``, ``references``, ``threat``, ``oracle``; plus ``runinfo.run_metadata``.
``scores.npz`` holds, per attack, ``<name>.scores``, ``<name>.members``, ``<name>.target`` (the
pooled pairs). Python API: ``run_mia(MiaConfig(...))`` (also ``nmprivacy.run_mia``).
"""

from __future__ import annotations

from nmprivacy.mia.config import KINDS, ORACLES, MiaConfig, check_config
from nmprivacy.mia.oracles import observe_with, oracle_check
from nmprivacy.mia.plan import Plan, make_plan
from nmprivacy.mia.run import run_mia

__all__ = ["KINDS", "ORACLES", "MiaConfig", "Plan", "check_config", "make_plan", "observe_with", "oracle_check", "run_mia"]
