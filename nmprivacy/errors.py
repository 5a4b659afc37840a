"""The one exception type for user-facing problems.

Raise ``NmprivacyError`` (or a subclass) with a single line that names the problem and the
fix; the CLI prints it as ``error: <message>`` and exits non-zero, with no traceback.
"""

from __future__ import annotations


class NmprivacyError(Exception):
    """A user-facing problem (bad input, missing files, wrong checkpoint): one-line message."""


class DatasetNotFoundError(NmprivacyError):
    """Data set files are missing or corrupt."""


class CheckpointError(NmprivacyError):
    """A checkpoint or model file cannot be loaded."""


class NetworkError(NmprivacyError):
    """A network (NetX file, NIR graph, description) cannot be read, converted, exported or run."""


ExportError = NetworkError  # the name the NetX path has always raised
