"""Reading ``.npy`` files without trusting their header: numeric arrays only, size checked first.

``read_npy`` parses the header itself (magic, version 1.0/2.0, dtype, shape), refuses pickled
objects and structured dtypes, and compares the size the header announces with the file's real
size before reading a byte of data, so a forged shape can never allocate more than the file holds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from nmprivacy.data.files import FileSpec, corrupt, refused

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float
HEADER_LIMIT = 10_000  # numpy's own bound on header length


def read_npy(path: Path, spec: FileSpec, max_bytes: int = 1 << 32) -> np.ndarray:
    """The numeric array stored in ``.npy`` file ``path``; one-line ``corrupt`` error otherwise."""
    if not path.is_file():
        raise corrupt(path, "is a folder, not a .npy file" if path.is_dir() else "is missing", spec)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            try:
                version = npformat.read_magic(fh)
            except ValueError:
                raise corrupt(path, "not a .npy file (bad magic string)", spec) from None
            if version not in ((1, 0), (2, 0)):
                raise corrupt(path, f"unsupported .npy version {version[0]}.{version[1]}", spec)
            reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            try:
                shape, fortran, dtype = reader(fh, max_header_size=HEADER_LIMIT)
            except Exception as exc:  # numpy raises ValueError, SyntaxError, TypeError, ... for bad headers
                raise corrupt(path, f"unreadable .npy header ({type(exc).__name__})", spec) from None
            offset = fh.tell()
            if dtype.hasobject:
                raise refused(path, "it holds pickled Python objects (loading them could run code), not a numeric array", spec)
            if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in NUMERIC_KINDS:
                raise corrupt(path, f"dtype {dtype} is not a plain numeric type", spec)
            count = math.prod(int(d) for d in shape)
            nbytes = count * dtype.itemsize
            if nbytes > max_bytes:
                raise corrupt(path, f"header announces shape {tuple(shape)} = {nbytes} bytes, more than the {max_bytes} allowed", spec)
            if nbytes != size - offset:
                raise corrupt(path, f"header announces shape {tuple(shape)} of {dtype} = {nbytes} data bytes but the file holds {size - offset}", spec)
            data = np.fromfile(fh, dtype=dtype, count=count)
    except OSError as exc:
        raise corrupt(path, f"cannot be read ({exc.strerror or type(exc).__name__})", spec) from None
    if data.size != count:
        raise corrupt(path, f"truncated: {data.size} of {count} values", spec)
    return data.reshape(shape, order="F" if fortran else "C")
