"""Helpers the format modules share: seeded picks, the test suite's writers of the real formats,
the data-set readers and checks, and hostile-file builders (a pickle with code, a gzip bomb, a
forged ``.npy`` header)."""

from __future__ import annotations

import importlib.util
import os
import sys
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

Rng = np.random.Generator


def writers() -> Any:
    """``tests/formats.py``, the writers of the real on-disk data-set formats."""
    if "formats" in sys.modules and hasattr(sys.modules["formats"], "write_idx_dataset"):
        return sys.modules["formats"]  # already imported by pytest
    path = Path(__file__).resolve().parents[3] / "tests" / "formats.py"  # benchmarks/fuzz/formats/common.py
    if not path.is_file():
        from nmprivacy.errors import NmprivacyError

        raise NmprivacyError(f"the fuzz seeds are written by {path}, which is missing: run the fuzzer from a checkout of the repository")
    spec = importlib.util.spec_from_file_location("nmprivacy_test_formats", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    sys.modules["nmprivacy_test_formats"] = module
    return module


def pick(rng: Rng, options: list[Any]) -> Any:
    """One of ``options``, seeded."""
    return options[int(rng.integers(len(options)))]


def files_under(folder: Path, pattern: str) -> list[Path]:
    """Files under ``folder`` matching ``pattern``, sorted (a stable choice for a seeded pick)."""
    return sorted(p for p in folder.rglob(pattern) if p.is_file())


class Evil:
    """Unpickling this runs code (``os.getpid``): every reader must refuse it."""

    def __reduce__(self) -> tuple:
        return (os.getpid, ())


def check_splits(result: Any, case: Path) -> None:
    """A loaded data set obeys ``nmprivacy.data.base``'s layouts: shapes, dtypes, ranges."""
    for split in (result.train, result.test):
        x, y = split.x, split.y
        assert len(split) >= 1, "an empty split"
        assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) < result.num_classes, "labels out of range"
        if result.domain == "image":
            assert x.dtype == torch.float32 and x.dim() == 4 and tuple(x.shape[1:]) == tuple(result.input_shape), f"images {tuple(x.shape)} {x.dtype}"
            assert bool(torch.isfinite(x).all()) and float(x.min()) >= 0 and float(x.max()) <= 1, "pixels outside [0, 1]"
        else:
            assert x.dtype == torch.uint8 and x.dim() == 5 and tuple(x.shape[2:]) == tuple(result.input_shape), f"frames {tuple(x.shape)} {x.dtype}"
            assert int(x.max()) <= 1, "frames not binary"


def load(name: str, **options: Any) -> Callable[[Path], Any]:
    """The reader of data set ``name`` on a case's ``data`` folder."""
    def read(case: Path) -> Any:
        from nmprivacy.data import load_dataset

        return load_dataset(name, root=case / "data", **options)

    return read


def data_info(name: str, *options: str) -> Callable[[Path], list[str]]:
    """``nmprivacy data info`` on a case, writing its JSON into ``out/``."""
    def argv(case: Path) -> list[str]:
        extra = [a for o in options for a in ("--option", o)]
        return ["data", "info", "--dataset", name, "--data-root", str(case / "data"), *extra, "--json", str(case / "out" / "info.json")]

    return argv


def gzip_bomb(header: bytes, gib: int = 3) -> bytes:
    """A gzip stream of ``header`` then ``gib`` GiB of zeros, built without inflating it (its
    deflate blocks are independent, so one compressed MiB is repeated)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    gz_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return gz_header + head + block * (gib << 10) + tail + b"\x00" * 8  # CRC/size never reached by a bounded reader


def npy_huge_header(path: Path, rng: Rng) -> None:
    """Rewrite a .npy header to announce a huge shape (same header length, data unchanged)."""
    data = path.read_bytes()
    hlen = int.from_bytes(data[8:10], "little")
    header = data[10 : 10 + hlen].decode("latin1")
    start, end = header.index("'shape': (") + len("'shape': ("), header.index(")")
    dims = pick(rng, ["400000000, 64, 64", "2147483647, 4", "99999999999999, 99999999", "10000, 10000, 10000"])
    new = header[:start] + dims + header[end:]
    new = new.rstrip(" \n")
    new = new + " " * max(0, hlen - 1 - len(new)) + "\n"
    assert len(new) == hlen, "the forged shape does not fit the header"
    path.write_bytes(data[:10] + new.encode("latin1") + data[10 + hlen :])
