"""The fuzzed formats, one module each (see ``benchmarks.fuzz``); registering one is one line here.

Seeds are written in the real formats: the data sets by the writers of ``tests/formats.py``,
checkpoints, inversion files and cache entries by nmprivacy's own writers, NetX files by
lava-dl's own export and NIR graphs by ``nir.write``. Each format's semantic mutations break its
files the ways a real file breaks or a hostile one is made: wrong magic, declared sizes beyond
the data, NaN/inf, wrong dtypes and shapes, values out of range, wrong JSON types, pickles with
code, forged tensor views, gzip bombs, folders for files.
"""

from __future__ import annotations

import importlib

from benchmarks.fuzz.core import Format, register


def _format(module: str) -> Format:
    """The ``FORMAT`` of ``benchmarks.fuzz.formats.<module>``."""
    return importlib.import_module(f"{__name__}.{module}").FORMAT


register(_format("idx"))  # the table lists the formats in this order
register(_format("pgm"))
register(_format("olivetti"))
register(_format("dvs_gesture"))
register(_format("nmnist"))
register(_format("event_cache"))
register(_format("checkpoint"))
register(_format("reconstructions"))
register(_format("netx"))
register(_format("nir_graph"))
