"""``nmprivacy study``: a grid of audits over attack, target and evaluator settings, run as cells
on a Dask cluster, resumable, summarised as one table and figure.

``spec`` (the study spec and its cells), ``run`` (the cluster, the cells' run folders and resume),
``table`` (study.json, study.md, study.png).
"""

from nmprivacy.cluster import StudyRun
from nmprivacy.study.run import run_study
from nmprivacy.study.spec import Cell, Grid, StudySpec, build_spec, expand, load_spec

__all__ = ["Cell", "Grid", "StudyRun", "StudySpec", "build_spec", "expand", "load_spec", "run_study"]
