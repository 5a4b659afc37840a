"""The fuzzed formats: one ``register(Format(...))`` per reader (see ``benchmarks.fuzz``).

Seeds are written in the real formats: the data sets by the writers of ``tests/formats.py``,
checkpoints, inversion files and cache entries by nmprivacy's own writers. Each format's
semantic mutations break its files the ways a real file breaks or a hostile one is made:
wrong magic, declared sizes beyond the data, NaN/inf, wrong dtypes and shapes, values out of
range, wrong JSON types, pickles with code, forged tensor views, gzip bombs, folders for files.

This module is longer than ~350 lines because it holds one section per format, each only
meaningful beside the harness; a new format (NetX, NIR) is one more section and one
``register`` line.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import sys
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmarks.fuzz import Format, Mutation, expect, isolated, register

Rng = np.random.Generator


def writers() -> Any:
    """``tests/formats.py``, the writers of the real on-disk data-set formats."""
    if "formats" in sys.modules and hasattr(sys.modules["formats"], "write_idx_dataset"):
        return sys.modules["formats"]  # already imported by pytest
    path = Path(__file__).resolve().parents[1] / "tests" / "formats.py"
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


# --- IDX (MNIST layout) --------------------------------------------------------------------------

def idx_folder(case: Path) -> Path:
    return case / "data" / "mnist"


def idx_raw(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def idx_store(path: Path, raw: bytes) -> None:
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def idx_file(rng: Rng, case: Path, kind: str = "") -> Path:
    return pick(rng, [p for p in files_under(idx_folder(case), "*") if kind in p.name])


def idx_header(rng: Rng, case: Path) -> Mutation:
    """Rewrite the header: wrong dimension count, huge, wrapping or zero dimensions."""
    path = idx_file(rng, case)
    raw = bytearray(idx_raw(path))
    ndim = raw[3]
    how = pick(rng, ["ndim", "huge", "wrap", "zero"])
    if how == "ndim":
        raw[3] = pick(rng, [d for d in (0, 1, 2, 3, 4, 255) if d != ndim])
    else:
        i = int(rng.integers(ndim))
        value = {"huge": int(rng.integers(2**24, 2**32)), "wrap": 2**32 - 1, "zero": 0}[how]
        if how == "wrap":
            for j in range(ndim):
                raw[4 + 4 * j : 8 + 4 * j] = value.to_bytes(4, "big")
        raw[4 + 4 * i : 8 + 4 * i] = value.to_bytes(4, "big")
    idx_store(path, bytes(raw))
    return Mutation(f"idx-header-{how}", True)


def idx_labels(rng: Rng, case: Path) -> Mutation:
    """A valid IDX label file with a label outside 0..9, or fewer labels than images."""
    path = idx_file(rng, case, "labels")
    labels = np.frombuffer(idx_raw(path), dtype=np.uint8, offset=8).copy()
    how = pick(rng, ["range", "count"])
    if how == "range":
        labels[int(rng.integers(len(labels)))] = int(rng.integers(10, 256))
    else:
        labels = labels[: int(rng.integers(1, len(labels)))]
    idx_store(path, writers().idx_bytes(labels))
    return Mutation(f"idx-labels-{how}", True)


def idx_image_size(rng: Rng, case: Path) -> Mutation:
    """Test images of another size than the training images."""
    path = [p for p in files_under(idx_folder(case), "t10k-images*")][0]
    n = int.from_bytes(idx_raw(path)[4:8], "big")
    idx_store(path, writers().idx_bytes(np.zeros((n, 7, 7), dtype=np.uint8)))
    return Mutation("idx-image-size", True)


def gzip_bomb(header: bytes, gib: int = 3) -> bytes:
    """A gzip stream of ``header`` then ``gib`` GiB of zeros, built without inflating it (its
    deflate blocks are independent, so one compressed MiB is repeated)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    gz_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return gz_header + head + block * (gib << 10) + tail + b"\x00" * 8  # CRC/size never reached by a bounded reader


def idx_bomb(rng: Rng, case: Path) -> Mutation:
    """A gzip bomb in place of the training images (header announcing the seed's or MNIST's size)."""
    folder = idx_folder(case)
    raw_path = folder / "train-images-idx3-ubyte"
    gz_path = folder / "train-images-idx3-ubyte.gz"
    target = raw_path if raw_path.exists() else gz_path
    header = idx_raw(target)[:16]
    if rng.random() < 0.5:
        header = header[:4] + (60000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    raw_path.unlink(missing_ok=True)
    gz_path.write_bytes(gzip_bomb(header))
    return Mutation("idx-gzip-bomb", True)


def idx_gzip_trailing(rng: Rng, case: Path) -> Mutation:
    """A valid gzip stream followed by garbage, or the raw file turned into valid gzip."""
    path = idx_file(rng, case)
    raw = idx_raw(path)
    gz = path if path.suffix == ".gz" else path.with_name(path.name + ".gz")
    path.unlink()
    if rng.random() < 0.5:
        gz.write_bytes(gzip.compress(raw) + bytes(rng.integers(1, 256, size=64, dtype=np.uint8)))
        return Mutation("idx-gzip-trailing-garbage", True)
    gz.write_bytes(gzip.compress(raw))
    return Mutation("idx-gzip-valid", False)


def idx_seed(case: Path, variant: str) -> None:
    writers().write_idx_dataset(idx_folder(case), n_train=20, n_test=10, size=6, gz=variant == "gz")


register(Format(
    "idx",
    write_seed=idx_seed,
    targets=lambda case: files_under(idx_folder(case), "*"),
    read=load("mnist"),
    variants=("raw", "gz"),
    check=check_splits,
    semantic=(idx_header, idx_labels, idx_image_size, idx_bomb, idx_gzip_trailing),
    generic=expect({"truncate": True, "magic": True, "append": True, "random": True}),
    cli=data_info("mnist"),
))


# --- PGM (AT&T faces) ------------------------------------------------------------------------------

def pgm_folder(case: Path) -> Path:
    return case / "data" / "att_faces"


def pgm_write(path: Path, header: bytes, body: bytes) -> None:
    path.write_bytes(header + body)


def pgm_pixels(rng: Rng, case: Path) -> tuple[Path, np.ndarray]:
    path = pick(rng, files_under(pgm_folder(case), "*.pgm"))
    from nmprivacy.data.faces import read_pgm

    return path, np.rint(read_pgm(path) * 255).astype(np.int64)


def pgm_ascii_token(rng: Rng, case: Path) -> Mutation:
    """An ASCII (P2) image with one pixel that is not a whole number."""
    path, img = pgm_pixels(rng, case)
    words = [str(int(v)).encode() for v in img.ravel()]
    words[int(rng.integers(len(words)))] = pick(rng, [b"x", b"-3", b"1.5", b"+7", b"0x1f", b"\xff\xfe", b"1e3", b"12a", b"9" * 40])
    h, w = img.shape
    pgm_write(path, f"P2\n{w} {h}\n255\n".encode(), b" ".join(words) + b"\n")
    return Mutation("pgm-ascii-token", True)


def pgm_header(rng: Rng, case: Path) -> Mutation:
    """Header values that cannot be: maxval 0 or > 65535, huge or non-numeric sizes, other magic."""
    path, img = pgm_pixels(rng, case)
    h, w = img.shape
    body = img.astype(np.uint8).tobytes()
    how = pick(rng, ["maxval", "size", "magic", "digits"])
    if how == "maxval":
        header = f"P5\n{w} {h}\n{pick(rng, [0, 65536, 10**12, -255])}\n".encode()
    elif how == "size":
        header = f"P5\n{pick(rng, [w, 999999, 2**31])} {pick(rng, [999999, 2**31 - 1, 0, -h])}\n255\n".encode()
    elif how == "magic":
        header = f"{pick(rng, ['P6', 'P3', 'P1', 'P4', 'P5x', 'p5', 'P'])}\n{w} {h}\n255\n".encode()
    else:
        header = f"P5\n{'1' + '0' * 5000} {h}\n255\n".encode()
    pgm_write(path, header, body)
    return Mutation(f"pgm-header-{how}", True)


def pgm_above_maxval(rng: Rng, case: Path) -> Mutation:
    """Pixels larger than the header's maxval (the seed's pixels go up to 219)."""
    path, img = pgm_pixels(rng, case)
    h, w = img.shape
    binary = rng.random() < 0.5
    body = img.astype(np.uint8).tobytes() if binary else " ".join(map(str, img.ravel())).encode()
    pgm_write(path, f"{'P5' if binary else 'P2'}\n{w} {h}\n100\n".encode(), body)
    return Mutation("pgm-above-maxval", True)


def pgm_other_size(rng: Rng, case: Path) -> Mutation:
    """One valid image of another size than the others."""
    path, img = pgm_pixels(rng, case)
    writers().write_pgm(path, img[:, :-1].astype(np.uint8))
    return Mutation("pgm-other-size", True)


def pgm_valid(rng: Rng, case: Path) -> Mutation:
    """Valid variations: comments between header fields, CRLF, 16-bit pixels."""
    path, img = pgm_pixels(rng, case)
    h, w = img.shape
    if rng.random() < 0.5:
        pgm_write(path, f"P5 # c\n# more\n{w}\r\n# x\n{h} 255\n".encode(), img.astype(np.uint8).tobytes())
        return Mutation("pgm-valid-comments", False)
    writers().write_pgm(path, (img * 4).astype(np.uint16), maxval=1000)
    return Mutation("pgm-valid-16bit", False)


def pgm_generic(name: str, target: Path, variant: str) -> bool | None:
    if name == "truncate":
        return True if variant == "P5" else None  # a P2 file cut after its last digit is still whole
    return expect({"magic": True, "random": True})(name, target, variant)


register(Format(
    "pgm",
    write_seed=lambda case, variant: writers().write_att_faces(pgm_folder(case), subjects=2, h=12, w=10, binary=variant == "P5"),
    targets=lambda case: files_under(pgm_folder(case), "*.pgm"),
    read=load("att-faces"),
    variants=("P5", "P2"),
    check=check_splits,
    semantic=(pgm_ascii_token, pgm_header, pgm_above_maxval, pgm_other_size, pgm_valid),
    generic=pgm_generic,
    cli=data_info("att-faces"),
))


# --- .npy arrays (Olivetti, DVS Gesture) -----------------------------------------------------------

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


npy_generic = expect({"truncate": True, "magic": True, "append": True, "random": True})


def olivetti_folder(case: Path) -> Path:
    return case / "data" / "olivetti"


def olivetti_mutation(rng: Rng, case: Path) -> Mutation:
    """Crafted Olivetti arrays: NaN/inf, out of range, wrong dtypes and shapes, bad targets, huge headers."""
    folder = olivetti_folder(case)
    img_path, tgt_path = folder / "olivetti_faces.npy", folder / "olivetti_faces_target.npy"
    images, targets = np.load(img_path), np.load(tgt_path)
    how = pick(rng, ["nan", "inf", "range", "str", "complex", "bool", "object", "ndim2", "ndim4", "tfloat", "t2d", "tlen",
                     "nine", "huge", "zero", "uint8", "float64", "fortran", "bigendian"])
    must_fail: bool | None = True
    expect = None
    if how in ("nan", "inf", "range"):
        images = images.copy()
        images.flat[int(rng.integers(images.size))] = {"nan": np.nan, "inf": pick(rng, [np.inf, -np.inf]), "range": pick(rng, [1.5, -0.1, 1e30])}[how]
    elif how == "str":
        images = images.astype("U5")
    elif how == "complex":
        images = images.astype(np.complex64)
    elif how == "bool":
        images = images > 0.05
    elif how == "object":
        images, expect = np.array([Evil()] * len(targets), dtype=object), "refused"
    elif how == "ndim2":
        images = images.reshape(len(images), -1)
    elif how == "ndim4":
        images = images[:, None]
    elif how == "tfloat":
        targets = targets + 0.5
    elif how == "t2d":
        targets = targets[:, None]
    elif how == "tlen":
        targets = targets[:-1]
    elif how == "nine":
        targets = targets.copy()
        targets[0] = targets[-1]
    elif how == "zero":
        images, targets = images[:0], targets[:0]
    elif how == "uint8":
        images, must_fail = np.rint(images * 255).astype(np.uint8), False
    elif how == "float64":
        images, must_fail = images.astype(np.float64), False
    elif how == "fortran":
        images, must_fail = np.asfortranarray(images), False
    elif how == "bigendian":
        images, must_fail = images.astype(">f4"), False
    np.save(img_path, images, allow_pickle=how == "object")
    np.save(tgt_path, targets)
    if how == "huge":
        npy_huge_header(pick(rng, [img_path, tgt_path]), rng)
    return Mutation(f"olivetti-{how}", must_fail, expect)


register(Format(
    "olivetti",
    write_seed=lambda case, variant: writers().write_olivetti(olivetti_folder(case), subjects=2, size=8),
    targets=lambda case: files_under(olivetti_folder(case), "*.npy"),
    read=load("olivetti"),
    check=check_splits,
    semantic=(olivetti_mutation,),
    generic=npy_generic,
    cli=data_info("olivetti"),
))


def dvs_folder(case: Path) -> Path:
    return case / "data" / "DVSGesture"


def dvs_files(case: Path) -> list[Path]:
    """The gesture files the loader reads (``10.npy``, "Other gestures", is dropped unread)."""
    return [p for p in files_under(dvs_folder(case), "*.npy") if p.name != "10.npy"]


def dvs_mutation(rng: Rng, case: Path) -> Mutation:
    """Crafted gesture files: coordinates, polarities and times out of range, NaN, wrong dtypes and
    shapes, float16 times, huge headers, bad file names, a file for a split folder."""
    path = pick(rng, dvs_files(case))
    ev = np.load(path)
    how = pick(rng, ["x", "y", "p", "tneg", "thuge", "nan", "inf", "bool", "str", "complex", "object", "cols3", "cols5", "flat", "cube",
                     "f16big", "f16small", "float64", "int32", "unsorted", "empty", "huge", "name", "splitfile"])
    must_fail: bool | None = True
    expect = None
    i = int(rng.integers(len(ev)))
    if how in ("x", "y"):
        ev[i, 0 if how == "x" else 1] = pick(rng, [128, 129, -1, 70000, 2**40])
    elif how == "p":
        ev[i, 2] = pick(rng, [2, -1, 255])
    elif how == "tneg":
        ev[i, 3] = -int(rng.integers(1, 10**6))
    elif how == "thuge":
        ev[-1, 3] = pick(rng, [10**15, 2**62, 2**31 + 5])
    elif how in ("nan", "inf"):
        ev = ev.astype(np.float64)
        ev[i, int(rng.integers(4))] = np.nan if how == "nan" else np.inf
    elif how == "bool":
        ev = ev > 0
    elif how == "str":
        ev = ev.astype("U8")
    elif how == "complex":
        ev = ev.astype(np.complex128)
    elif how == "object":
        ev, expect = np.array([[Evil()] * 4] * 3, dtype=object), "refused"
    elif how == "cols3":
        ev = ev[:, :3]
    elif how == "cols5":
        ev = np.concatenate([ev, ev[:, :1]], axis=1)
    elif how == "flat":
        ev = ev.ravel()
    elif how == "cube":
        ev = ev[None]
    elif how == "f16big":
        ev = ev.astype(np.float16)
        ev[-1, 3] = np.float16(65504) * 2  # inf in float16
    elif how == "f16small":
        ev, must_fail = ev.astype(np.float16), None
    elif how == "float64":
        ev, must_fail = ev.astype(np.float64), False
    elif how == "int32":
        ev, must_fail = ev.astype(np.int32), False
    elif how == "unsorted":
        ev, must_fail = ev[rng.permutation(len(ev))], None
    elif how == "empty":
        ev, must_fail = ev[:0], None
    if how == "name":
        path.rename(path.with_name(pick(rng, ["11.npy", "x.npy", "-1.npy", "0011.npy", "1e3.npy"])))
    elif how == "splitfile":
        split = dvs_folder(case) / pick(rng, ["ibmGestureTrain", "ibmGestureTest"])
        shutil.rmtree(split)
        split.write_bytes(b"not a folder")
    else:
        np.save(path, ev, allow_pickle=how == "object")
        if how == "huge":
            npy_huge_header(path, rng)
    return Mutation(f"dvs-{how}", must_fail, expect)


register(Format(
    "dvs-gesture",
    write_seed=lambda case, variant: writers().write_dvs_gesture(
        dvs_folder(case), {"ibmGestureTrain": ["user01_led"], "ibmGestureTest": ["user02_led"]}, labels=range(11), n_events=150),
    targets=dvs_files,
    read=load("dvs-gesture", cache=False),
    check=check_splits,
    semantic=(dvs_mutation,),
    generic=expect({"truncate": True, "magic": True, "append": True, "random": True, "delete": None}),  # one gesture fewer is fine
    cli=data_info("dvs-gesture", "cache=false"),
))


# --- N-MNIST .bin recordings -----------------------------------------------------------------------

def nmnist_folder(case: Path) -> Path:
    return case / "data" / "NMNIST"


def nmnist_mutation(rng: Rng, case: Path) -> Mutation:
    """Events outside the 34x34 sensor, partial events, overflow markers, huge files, a file for a
    split folder, a split without recordings."""
    files = files_under(nmnist_folder(case), "*.bin")
    path = pick(rng, files)
    raw = bytearray(path.read_bytes())
    i = int(rng.integers(len(raw) // 5))
    how = pick(rng, ["x", "y", "partial", "overflow", "huge", "splitfile", "nosplit", "norecordings"])
    must_fail: bool | None = True
    if how == "x":
        raw[5 * i] = int(rng.integers(34, 256))
    elif how == "y":
        raw[5 * i + 1] = pick(rng, [int(rng.integers(34, 240)), int(rng.integers(241, 256))])
    elif how == "partial":
        raw += bytes(int(rng.integers(1, 5)))
    elif how == "overflow":
        raw[5 * i + 1], must_fail = 240, None  # a time-stamp overflow marker: valid
    if how in ("x", "y", "partial", "overflow"):
        path.write_bytes(bytes(raw))
    elif how == "huge":
        os.truncate(path, ((1 << 26) // 5 + 1) * 5)  # whole events beyond the size bound; sparse: costs no disk
    elif how == "splitfile":
        split = nmnist_folder(case) / pick(rng, ["Train", "Test"])
        shutil.rmtree(split)
        split.write_bytes(b"")
    elif how == "nosplit":
        shutil.rmtree(nmnist_folder(case) / pick(rng, ["Train", "Test"]))
    elif how == "norecordings":
        for f in files_under(nmnist_folder(case) / pick(rng, ["Train", "Test"]), "*.bin"):
            f.unlink()
    return Mutation(f"nmnist-{how}", must_fail)


register(Format(
    "nmnist",
    write_seed=lambda case, variant: writers().write_nmnist(nmnist_folder(case), {"Train": 1, "Test": 1}),
    targets=lambda case: files_under(nmnist_folder(case), "*.bin"),
    read=load("nmnist", cache=False),
    check=check_splits,
    semantic=(nmnist_mutation,),
    generic=expect({"delete": None}),  # one recording fewer is fine; a cut or appended file may still hold whole events
    cli=data_info("nmnist", "cache=false"),
))


# --- the preprocessing cache -----------------------------------------------------------------------

CACHE_STEPS = 20


def cache_seed(case: Path, variant: str) -> None:
    """N-MNIST files, their cache entry (in ``cache/``) and the true frames (``truth.pt``)."""
    from nmprivacy.data import load_dataset

    writers().write_nmnist(nmnist_folder(case), {"Train": 1, "Test": 1})
    with isolated(case / "cache"):
        truth = load_dataset("nmnist", root=case / "data", steps=CACHE_STEPS, cache=False)
        load_dataset("nmnist", root=case / "data", steps=CACHE_STEPS)
    torch.save({"x_train": truth.train.x, "y_train": truth.train.y, "x_test": truth.test.x, "y_test": truth.test.y}, case / "truth.pt")


def cache_file(case: Path) -> Path:
    return sorted((case / "cache").glob("nmnist-*.pt"))[0]


def cache_read(case: Path) -> Any:
    from nmprivacy.data import load_dataset

    return load_dataset("nmnist", root=case / "data", steps=CACHE_STEPS)


def cache_check(result: Any, case: Path) -> None:
    """The frames equal the truth, and the entry left behind is a valid cache hit."""
    truth = torch.load(case / "truth.pt", weights_only=True)
    for split in ("train", "test"):
        got = getattr(result, split)
        assert torch.equal(got.x, truth[f"x_{split}"]) and torch.equal(got.y, truth[f"y_{split}"]), f"{split} differs from the true frames"
    entry = Path(result.info["cache"]) if result.info.get("cache") else None
    if entry is not None:
        from nmprivacy.data import events

        original = events.frames_for

        def boom(*a: object, **k: object) -> None:
            raise AssertionError("the rebuilt cache entry is not a hit")

        events.frames_for = boom
        try:
            again = cache_read(case)
        finally:
            events.frames_for = original
        assert torch.equal(again.train.x, truth["x_train"]), "the rebuilt entry holds other frames"


def cache_mutation(rng: Rng, case: Path) -> Mutation:
    """Entries that load but must not be trusted: wrong keys, dtypes, shapes, values, settings,
    types; a pickle with code; a forged stride-0 view; a stale digest; a folder for the file."""
    from nmprivacy.cache import DIGEST, content_digest

    path = cache_file(case)
    content = torch.load(path, weights_only=True)
    body = {k: v for k, v in content.items() if k != DIGEST}
    how = pick(rng, ["dropkey", "extrakey", "dtype", "shape", "values", "labels", "nan", "settings", "list", "tensor", "evil",
                     "stride0", "stale", "nodigest", "folder"])
    key = pick(rng, ["x_train", "x_test"])
    digest = True
    if how == "dropkey":
        body.pop(pick(rng, sorted(body)))
    elif how == "extrakey":
        body["extra"] = torch.zeros(3)
    elif how == "dtype":
        body[key] = body[key].to(pick(rng, [torch.float32, torch.int64, torch.bool]))
    elif how == "shape":
        body[key] = body[key][:-1] if rng.random() < 0.5 else body[key][:, :-1]
    elif how == "values":
        body[key] = body[key].clone()
        body[key].view(-1)[int(rng.integers(body[key].numel()))] = pick(rng, [2, 255])
    elif how == "labels":
        y = "y" + key[1:]
        body[y] = body[y].clone()
        body[y][0] = pick(rng, [10, -1, 99])
    elif how == "nan":
        body[key] = body[key].float()
        body[key].view(-1)[0] = float("nan")
    elif how == "settings":
        body["settings_json"] = body["settings_json"].replace("20", "21", 1)
    elif how == "stale":
        digest = False
        body[key] = body[key].clone()
        body[key].view(-1)[0] ^= 1  # a flipped voxel, still 0/1: only the digest tells
    if how == "list":
        torch.save([body[k] for k in sorted(body)], path)
    elif how == "tensor":
        torch.save(body[key], path)
    elif how == "evil":
        torch.save({**body, "x": Evil()}, path)
    elif how == "stride0":
        body[key] = torch.zeros(1, dtype=torch.uint8).expand(10**6, CACHE_STEPS, 1, 34, 34)
        torch.save({**body, DIGEST: "0" * 32}, path)
    elif how == "nodigest":
        torch.save(body, path)
    elif how == "folder":
        path.unlink()
        (path / "inner").mkdir(parents=True)
    else:
        torch.save({**body, DIGEST: content_digest(body) if digest else content[DIGEST]}, path)
    return Mutation(f"cache-{how}", False)


register(Format(
    "event-cache",
    write_seed=cache_seed,
    targets=lambda case: [cache_file(case)],
    read=cache_read,
    check=cache_check,
    semantic=(cache_mutation,),
    generic=lambda name, target, variant: False,  # whatever happened to the entry, the data must load right
    cli=data_info("nmnist", f"steps={CACHE_STEPS}"),
))


# --- checkpoints -----------------------------------------------------------------------------------

KINDS = ("snn-norse", "snn-lava", "ann", "evaluator", "evaluator-snn")


def ckpt(case: Path) -> Path:
    return case / "ckpt"


def ckpt_seed(case: Path, kind: str) -> None:
    from nmprivacy.models import build, checkpoint, default_config

    torch.manual_seed(0)
    model = build(kind, default_config(kind, (1, 8, 8), 10, "digits", hidden=6))
    checkpoint.save(model, ckpt(case), extra={"dataset": "digits", "steps": 4, "val_acc": 0.5}, seed=0)
    (case / "kind.txt").write_text(kind)  # for the command line, whatever a mutation does to the checkpoint


def ckpt_read(case: Path) -> Any:
    from nmprivacy.models import checkpoint

    return checkpoint.load(ckpt(case)), checkpoint.load_info(ckpt(case))


def ckpt_check(result: Any, case: Path) -> None:
    """The loaded model answers finite class probabilities for an input in its layout."""
    from nmprivacy.attacks.layout import to_model_layout

    model, info = result
    shape = tuple(model.info.input_shape)
    x = torch.zeros(2, *shape) if model.info.domain == "image" else to_model_layout(torch.zeros(2, 4, *shape), "spikes")
    with torch.no_grad():
        probs = model.probabilities(x)
    assert bool(torch.isfinite(probs).all()), "non-finite outputs"


def json_edit(path: Path, edit: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def bad_value(rng: Rng, value: Any) -> Any:
    """A value of the wrong type or beyond every sane bound for a field holding ``value``."""
    if value is None:  # an optional number
        return pick(rng, ["x", [1], float("nan"), float("inf"), True, {}])
    if isinstance(value, bool):
        return pick(rng, ["true", 1, None, []])
    if isinstance(value, int):
        return pick(rng, [-1, 10**9, 10**30, 1.5, "3", None, True, [], {}, float("nan")])
    if isinstance(value, float):
        return pick(rng, [float("nan"), float("inf"), "0.5", None, [], True, {}])
    if isinstance(value, list):
        return pick(rng, [[], [0, 8, 8], [-1, 8, 8], "abc", [1.5, 8, 8], [10**6, 10**6, 10**6], [[1]], [1] * 20])
    if isinstance(value, str):
        return pick(rng, ["bogus", 5, None, "", ["fast-sigmoid"]])
    return pick(rng, [5, "x", [1]])


def ckpt_json(rng: Rng, case: Path) -> Mutation:
    """config.json / run.json with wrong types, bad bounds, unknown or missing fields, other kinds."""
    folder = ckpt(case)
    config = json.loads((folder / "config.json").read_text())
    fields = sorted(config["config"])
    how = pick(rng, ["field", "field", "field", "unknown", "missing", "kind", "kindbad", "format", "notobject", "configtype",
                     "nested", "steps", "dataset", "valacc", "runkind", "runnested", "digest", "nodigest"])
    must_fail: bool | None = True
    if how == "field":
        name = pick(rng, fields)
        config["config"][name] = bad_value(rng, config["config"][name])
    elif how == "unknown":
        config["config"]["bogus_field"] = 1
    elif how == "missing":
        config["config"].pop(pick(rng, fields))
        must_fail = None  # a field with a default may be left out
    elif how == "kind":
        other = pick(rng, [k for k in KINDS if k != config["kind"]])
        if {other, config["kind"]} == {"evaluator", "evaluator-snn"}:
            must_fail = None  # same config and weights layout: nothing in the files tells them apart
        config["kind"] = other
    elif how == "kindbad":
        config["kind"] = pick(rng, ["bogus", 5, None, ["ann"]])
    elif how == "format":
        config["format"] = pick(rng, [2, "1", 1.0, True, None, 0])
    elif how == "configtype":
        config["config"] = pick(rng, [[], "x", None, 5])
    if how == "notobject":
        (folder / "config.json").write_text(pick(rng, ["[1, 2]", '"x"', "5", "null"]))
    elif how == "nested":
        (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    elif how in ("steps", "dataset", "valacc", "runkind"):
        value = {"steps": pick(rng, [10**9, 0, -3, "25", 2.5, True, 10**30]), "dataset": pick(rng, [5, "", [], "x" * 500, {}]),
                 "valacc": pick(rng, ["x", float("nan"), 1.5, -1, [0.5]]), "runkind": pick(rng, [5, "", ["ann"], {}])}[how]
        json_edit(folder / "run.json", lambda r: {**r, {"valacc": "val_acc", "runkind": "kind"}.get(how, how): value})
    elif how == "runnested":
        (folder / "run.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    elif how == "digest":
        config["weights_sha256"] = pick(rng, ["0" * 64, 5, [], "abc"])
        (folder / "config.json").write_text(json.dumps(config))
    elif how == "nodigest":
        config.pop("weights_sha256")
        (folder / "config.json").write_text(json.dumps(config))
        must_fail = False
    else:
        (folder / "config.json").write_text(json.dumps(config))
    return Mutation(f"ckpt-json-{how}", must_fail)


def ckpt_weights(rng: Rng, case: Path) -> Mutation:
    """A crafted weights.pt whose sha256 is recorded (so only its contents can refuse it)."""
    from nmprivacy.models.checkpoint import file_sha256

    folder = ckpt(case)
    state = torch.load(folder / "weights.pt", weights_only=True)
    name = pick(rng, sorted(k for k, v in state.items() if v.is_floating_point()))
    how = pick(rng, ["nan", "inf", "float64", "int", "extra", "missing", "list", "tensor", "empty", "evil", "stride0", "shape", "bool"])
    expect = None
    if how in ("nan", "inf"):
        state[name] = state[name].clone()
        state[name].view(-1)[0] = float("nan") if how == "nan" else float("inf")
    elif how == "float64":
        state[name] = state[name].double()
    elif how == "int":
        state[name] = state[name].long()
    elif how == "bool":
        state[name] = state[name] > 0
    elif how == "extra":
        state["extra.weight"] = torch.zeros(2)
    elif how == "missing":
        state.pop(name)
    elif how == "shape":
        state[name] = torch.zeros(*(s + 1 for s in state[name].shape))
    elif how == "stride0":
        state[name] = torch.zeros(1).expand(10**5, 10**5)
    if how == "list":
        torch.save(list(state.values()), folder / "weights.pt")
    elif how == "tensor":
        torch.save(state[name], folder / "weights.pt")
    elif how == "empty":
        torch.save({}, folder / "weights.pt")
    elif how == "evil":
        torch.save({**state, name: Evil()}, folder / "weights.pt")
        expect = "refused"
    else:
        torch.save(state, folder / "weights.pt")
    json_edit(folder / "config.json", lambda c: {**c, "weights_sha256": file_sha256(folder / "weights.pt")})
    return Mutation(f"ckpt-weights-{how}", True, expect)


def ckpt_generic(name: str, target: Path, variant: str) -> bool | None:
    if target.name == "weights.pt":
        return True  # any change of its bytes differs from the recorded sha256
    return expect({"random": True})(name, target, variant)


def ckpt_cli(case: Path) -> list[str]:
    attack = "mi-face" if (case / "kind.txt").read_text() in ("ann", "evaluator") else "bl-v1"
    return ["attack", "--model", str(ckpt(case)), "--attack", attack, "--quick", "--iterations", "1", "--out", str(case / "out" / "inv.pt")]


register(Format(
    "checkpoint",
    write_seed=ckpt_seed,
    targets=lambda case: files_under(ckpt(case), "*"),
    read=ckpt_read,
    variants=KINDS,
    check=ckpt_check,
    semantic=(ckpt_json, ckpt_weights),
    generic=ckpt_generic,
    cli=ckpt_cli,
    warm=lambda workdir: __import__("nmprivacy.models.snn_lava"),
))


# --- reconstruction / inversion files --------------------------------------------------------------

RECON_SHAPE = (1, 8, 8)  # digits


def recon_seed(case: Path, variant: str) -> None:
    """A reconstruction file of 10 digits classes and an untrained evaluator to score it."""
    from nmprivacy.attacks.base import Inversion
    from nmprivacy.attacks.io import save_inversion
    from nmprivacy.models import build, checkpoint, default_config

    case.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    if variant == "inversion":
        spikes = (torch.rand(10, 4, *RECON_SHAPE, generator=g) < 0.3).float()
        save_inversion(case / "inv.pt", Inversion("bl-v1", list(range(10)), spikes, torch.zeros(2, 10), torch.zeros(2, 10), 2, 0.01, 0))
    elif variant == "bare":
        torch.save(torch.rand(10, *RECON_SHAPE, generator=g), case / "inv.pt")
    else:
        torch.save({"reconstructions": torch.rand(10, 4, *RECON_SHAPE, generator=g), "classes": torch.arange(10)}, case / "inv.pt")
    torch.manual_seed(0)
    checkpoint.save(build("evaluator", default_config("evaluator", RECON_SHAPE, 10, "digits")), case / "judge")


def recon_read(case: Path) -> Any:
    from nmprivacy.evaluation.scoring import load_scorable

    return load_scorable(str(case / "inv.pt"), RECON_SHAPE, 10)


def recon_check(result: Any, case: Path) -> None:
    recon, classes = result
    assert recon.dtype == torch.float32 and recon.shape[0] == 10 and bool(torch.isfinite(recon).all())
    assert sorted(classes) == list(range(10))


def recon_mutation(rng: Rng, case: Path) -> Mutation:
    """NaN/inf, huge values, wrong dtypes and shapes, bad classes, values out of range, forged
    views, non-tensor contents, pickles with code, and valid variants (bool, int, float64)."""
    path = case / "inv.pt"
    data = torch.load(path, weights_only=True)
    recon = data["reconstructions"] if isinstance(data, dict) else data
    classes = data.get("classes", torch.arange(10)) if isinstance(data, dict) else torch.arange(10)
    how = pick(rng, ["nan", "inf", "huge", "complex", "flat", "classesK", "classesdup", "classesneg", "classesfloat", "classes2d",
                     "classesbig", "range", "stride0", "nokey", "list", "str", "evil", "emptyT", "bool", "int", "float64"])
    must_fail: bool | None = True
    expect = None
    out: Any = None
    if how in ("nan", "inf", "huge", "range"):
        recon = recon.double().clone()
        value = {"nan": float("nan"), "inf": float("inf"), "huge": 1e300, "range": pick(rng, [2.0, -1.0])}[how]
        if how == "range" and recon.dim() == 1 + len(RECON_SHAPE):
            must_fail = None  # images are min-max scaled: any finite value is fine
        recon.view(-1)[int(rng.integers(recon.numel()))] = value
    elif how == "complex":
        recon = recon.to(torch.complex64)
    elif how == "flat":
        recon = recon.reshape(-1)
    elif how == "emptyT":
        recon = recon.reshape(10, -1)[:, :0]
    elif how == "classesK":
        classes = classes[:-1]
    elif how == "classesdup":
        classes = torch.zeros(10, dtype=torch.long)
    elif how == "classesneg":
        classes = classes - 1
    elif how == "classesfloat":
        classes = classes.float()
    elif how == "classes2d":
        classes = classes[None]
    elif how == "classesbig":
        classes = classes + 10
    elif how == "stride0":
        recon = torch.zeros(1).expand(10, 10**5, 10**5)
    elif how == "bool":
        recon, must_fail = recon > 0.5, False
    elif how == "int":
        recon, must_fail = (recon > 0.5).to(torch.uint8), False
    elif how == "float64":
        recon, must_fail = recon.double(), False
    if how == "nokey":
        out = {"recon": recon}
    elif how == "list":
        out = [recon]
    elif how == "str":
        out = {"reconstructions": "spikes"}
    elif how == "evil":
        out, expect = {"reconstructions": recon, "x": Evil()}, "refused"
    elif how.startswith("classes") or isinstance(data, dict):
        out = {"reconstructions": recon, "classes": classes}
    else:
        out = recon
    torch.save(out, path)
    return Mutation(f"recon-{how}", must_fail, expect)


register(Format(
    "reconstructions",
    write_seed=recon_seed,
    targets=lambda case: [case / "inv.pt"],
    read=recon_read,
    variants=("inversion", "bare", "probabilities"),
    check=recon_check,
    semantic=(recon_mutation,),
    generic=expect({"truncate": True, "magic": True, "random": True}),
    cli=lambda case: ["evaluate", "--reconstructions", str(case / "inv.pt"), "--dataset", "digits", "--evaluator", str(case / "judge"),
                      "--json", str(case / "out" / "metrics.json")],
))



# --- NetX HDF5 (Loihi networks) ------------------------------------------------------------------

NETX_SHAPE = {"dense": (16,), "conv": (2, 9, 11)}


def netx_seed(case: Path, variant: str) -> None:
    """A NetX file as lava-dl users write them: slayer blocks exported with their own export_hdf5
    (a dense snn-lava target, or a PilotNet-style input layer + strided convs + flatten + dense)."""
    import h5py

    from nmprivacy.lava_import import import_slayer

    case.mkdir(parents=True, exist_ok=True)
    import_slayer()
    from lava.lib.dl import slayer

    torch.manual_seed(0)
    cuba, params = slayer.block.cuba, {"threshold": 1.0, "current_decay": 0.5, "voltage_decay": 0.2}
    if variant == "conv":
        blocks = torch.nn.ModuleList([cuba.Input(params, weight=1.5, bias=0.0), cuba.Conv(params, 2, 4, 3, stride=2, padding=1, weight_scale=3),
                                      cuba.Flatten(), cuba.Dense(params, 4 * 5 * 6, 5, weight_scale=3)])
        x = torch.zeros(1, 2, 9, 11, 1)
    else:
        blocks = torch.nn.ModuleList([cuba.Dense(params, 16, 12, weight_scale=3), cuba.Dense(params, 12, 4, weight_scale=3)])
        x = torch.zeros(1, 16, 1)
    with torch.no_grad():
        for block in blocks:
            x = block(x)
    with h5py.File(case / "net.net", "w") as f:
        group = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(group.create_group(str(i)))


def netx_read(case: Path) -> Any:
    """The emulation of the file, run on a few steps of input (what an attack or validation does first)."""
    from hw_export.netx_emulation import load_netx

    model = load_netx(case / "net.net")
    x = torch.ones(3, 2, *model.info.input_shape)
    with torch.no_grad():
        return model, model(x)


def netx_check(result: Any, case: Path) -> None:
    model, out = result
    assert bool(torch.isfinite(out).all()) and out.shape[:2] == (3, 2) and out.shape[2] == model.info.num_classes


def _netx_dataset(f: Any, rng: Rng) -> tuple[str, Any]:
    import h5py

    names: list[str] = []
    f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
    name = pick(rng, sorted(names))
    return name, f[name]


def netx_mutation(rng: Rng, case: Path) -> Mutation:
    """NaN/inf weights, huge declared sizes, strings for numbers, wrong shapes, parameters out of
    Loihi's range, missing or extra layers, layer types NetX cannot build, neurons it does not
    have, broken metadata; and valid variants (large delays are clamped, graded spikes noted)."""
    import h5py

    path = case / "net.net"
    how = pick(rng, ["nan", "inf", "huge", "string", "transpose", "vth", "decay", "gap", "extra", "pool", "sdnn", "nokey", "meta",
                     "zeros", "delay-valid", "graded-valid", "bias-nan", "stride0", "groups", "shape", "negdelay", "anyvalue"])
    must_fail: bool | None = True
    with h5py.File(path, "r+") as f:
        layers = sorted(f["layer"].keys(), key=int)
        last = f"layer/{layers[-1]}"
        w = f[f"{last}/weight"]
        if how in ("nan", "inf"):
            data = w[()]
            data.reshape(-1)[int(rng.integers(data.size))] = np.nan if how == "nan" else np.inf
            w[...] = data
        elif how == "huge":
            del f[f"{last}/weight"]
            f.create_dataset(f"{last}/weight", shape=(1 << 20, 1 << 12), dtype="f4", chunks=(1024, 64), compression="gzip", fillvalue=2.0)
        elif how == "string":
            del f[f"{last}/neuron/vThMant"]
            f.create_dataset(f"{last}/neuron/vThMant", data="sixty-four")
        elif how == "transpose":
            data = w[()]
            del f[f"{last}/weight"]
            f.create_dataset(f"{last}/weight", data=data.T.copy() if data.ndim == 2 else data[:1])
        elif how == "vth":
            del f[f"{last}/neuron/vThMant"]
            f.create_dataset(f"{last}/neuron/vThMant", data=pick(rng, [-5, 1 << 20]))
        elif how == "decay":
            del f[f"{last}/neuron/iDecay"]
            f.create_dataset(f"{last}/neuron/iDecay", data=pick(rng, [-1, 5000]))
        elif how == "gap":
            f.move("layer/0", "layer/7")
        elif how == "extra":
            f.create_group("layer/x").create_dataset("type", (1,), "S10", [b"dense"])
        elif how == "pool":
            del f[f"{last}/type"]
            f.create_dataset(f"{last}/type", (1,), "S10", [pick(rng, [b"pool", b"convT", b"average", b"concat", b"unpool", b"dense_comp", b"wat"])])
        elif how == "sdnn":
            del f[f"{last}/neuron/type"]
            f.create_dataset(f"{last}/neuron/type", (1,), "S10", [pick(rng, [b"SDNN", b"RF", b"RF_IZ", b""])])
        elif how == "nokey":
            del f[pick(rng, [f"{last}/neuron/vDecay", f"{last}/weight", f"{last}/type"])]
        elif how == "meta":
            f.attrs["nmprivacy"] = pick(rng, ["{not json", json.dumps({"input_shape": [-1, 2]}), json.dumps([1, 2]), json.dumps({"input_shape": "x"})])
            must_fail = None  # metadata is advice: a broken one is ignored
        elif how == "zeros":
            w[...] = 0
        elif how == "delay-valid":
            out_f = w.shape[0]
            f.create_dataset(f"{last}/delay", data=np.full(out_f, int(rng.integers(0, 100))))
            must_fail = False  # delays above 62 are clamped, as NetX does (noted)
        elif how == "graded-valid":
            del f[f"{last}/neuron/gradedSpike"]
            f.create_dataset(f"{last}/neuron/gradedSpike", data=True)
            must_fail = False  # Lava's CUBA neuron sends binary spikes: read, and noted
        elif how == "bias-nan":
            f.create_dataset(f"{last}/bias", data=np.full(w.shape[0], np.nan))
        elif how in ("stride0", "groups") and "conv" in {f[f"layer/{k}/type"][0].decode() for k in layers}:
            conv = next(f"layer/{k}" for k in layers if f[f"layer/{k}/type"][0] == b"conv")
            key = "stride" if how == "stride0" else "groups"
            del f[f"{conv}/{key}"]
            f.create_dataset(f"{conv}/{key}", data=np.array([0, 0]) if how == "stride0" else 3)
        elif how == "shape":
            del f[f"{last}/shape"]
            f.create_dataset(f"{last}/shape", data=np.array([w.shape[0] + 1]))
        elif how == "negdelay":
            f.create_dataset(f"{last}/delay", data=-np.ones(w.shape[0]))
        else:  # any other dataset replaced by random numbers of its own shape: either outcome is fine
            name, ds = _netx_dataset(f, rng)
            if ds.dtype.kind in "biuf" and ds.size:
                ds[...] = rng.normal(0, 1e3, ds.shape).astype(ds.dtype) if ds.dtype.kind == "f" else rng.integers(-5, 5000, ds.shape)
            must_fail = None
    return Mutation(f"netx-{how}", must_fail)


register(Format(
    "netx",
    write_seed=netx_seed,
    targets=lambda case: [case / "net.net"],
    read=netx_read,
    variants=("dense", "conv"),
    check=netx_check,
    semantic=(netx_mutation,),
    generic=expect({"truncate": True, "magic": True}),
    cli=lambda case: ["validate", "--model", str(case / "net.net"), "--random", "2", "--steps", "4", "--out", str(case / "out"), "--no-progress"],
    warm=lambda workdir: (__import__("hw_export.netx_emulation"), __import__("hw_export.lava_env").lava_env.lava_modules()),
))


# --- NIR graphs --------------------------------------------------------------------------------

def nir_seed(case: Path, variant: str) -> None:
    """A NIR file written with nir.write: a LIF MLP with a LI read-out, or a Sinabs-style CNN."""
    import nir

    case.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if variant == "cnn":
        nodes = [
            nir.Input(input_type=np.array([2, 8, 8])),
            nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.1, 0.5, (3, 2, 3, 3)), stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3)),
            nir.IF(r=np.ones((3, 8, 8)), v_threshold=np.ones((3, 8, 8))),
            nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0),
            nir.Affine(weight=rng.normal(0.05, 0.3, (5, 48)), bias=np.zeros(5)),
            nir.IF(r=np.ones(5), v_threshold=np.ones(5)),
            nir.Output(output_type=np.array([5])),
        ]
    else:
        nodes = [
            nir.Input(input_type=np.array([16])),
            nir.Affine(weight=rng.normal(0.1, 0.5, (12, 16)), bias=np.zeros(12)),
            nir.LIF(tau=np.full(12, 0.01), r=np.full(12, 10.0), v_leak=np.zeros(12), v_threshold=np.ones(12), v_reset=np.zeros(12)),
            nir.Linear(weight=rng.normal(0.0, 0.5, (4, 12))),
            nir.LI(tau=np.full(4, 0.01), r=np.full(4, 10.0), v_leak=np.zeros(4)),
            nir.Output(output_type=np.array([4])),
        ]
    nir.write(str(case / "g.nir"), nir.NIRGraph.from_list(*nodes))


def nir_read(case: Path) -> Any:
    """The float and the Loihi model of the graph, run on a few steps of input."""
    from nmprivacy.targets import load_target

    target = load_target(case / "g.nir")
    x = torch.ones(3, 2, *target.model.info.input_shape)
    with torch.no_grad():
        return target, target.float_model(x), target.model(x)


def nir_check(result: Any, case: Path) -> None:
    target, out_float, out_loihi = result
    assert bool(torch.isfinite(out_float).all()) and bool(torch.isfinite(out_loihi).all())
    assert out_float.shape == out_loihi.shape == (3, 2, target.model.info.num_classes)


def nir_mutation(rng: Rng, case: Path) -> Mutation:
    """Parameters NaN, negative, shorter than dt or per-neuron where Loihi has one per layer;
    v_reset away from 0; branches, cycles, missing or unknown nodes; wrong shapes; and valid
    variants (a shorter graph, another tau)."""
    import nir

    path = case / "g.nir"
    graph = nir.read(str(path), type_check=False)
    neurons = [k for k, n in graph.nodes.items() if type(n).__name__ in ("LIF", "LI", "IF")]
    node_key = pick(rng, neurons)
    node = graph.nodes[node_key]
    how = pick(rng, ["nan", "negtau", "shorttau", "perneuron", "vreset", "branch", "cycle", "orphan", "unknown", "weightshape",
                     "tau-valid", "subgraph", "noinput", "inputshape"])
    must_fail: bool | None = True
    field = "tau" if hasattr(node, "tau") else "r"
    if how == "nan":
        value = np.array(getattr(node, field), dtype=np.float64)
        value.reshape(-1)[0] = np.nan
        setattr(node, field, value)
    elif how == "negtau" and hasattr(node, "tau"):
        node.tau = -np.abs(node.tau)
    elif how == "shorttau" and hasattr(node, "tau"):
        node.tau = np.full_like(node.tau, 1e-6)
    elif how == "perneuron":
        key = "v_threshold" if hasattr(node, "v_threshold") else ("tau" if hasattr(node, "tau") else "r")
        values = np.array(getattr(node, key), dtype=np.float64)
        if key == "r":
            must_fail = False  # per-neuron r folds into the weights
        setattr(node, key, values * (1.0 + np.arange(values.size).reshape(values.shape)))
    elif how == "vreset" and hasattr(node, "v_reset"):
        node.v_reset = np.full_like(node.v_reset, 0.5)
    elif how == "branch":
        graph.edges.append(("input", node_key))
    elif how == "cycle":
        graph.edges.append((node_key, "input"))
    elif how == "orphan":
        graph.nodes["lonely"] = nir.Linear(weight=np.ones((2, 2)))
    elif how == "unknown":
        graph.nodes[node_key] = nir.Delay(delay=np.ones(3))
    elif how == "weightshape":
        key = next(k for k, n in graph.nodes.items() if type(n).__name__ in ("Affine", "Linear"))
        graph.nodes[key].weight = np.ones((3, 7))
    elif how == "tau-valid" and hasattr(node, "tau"):
        node.tau = np.full_like(node.tau, 0.02)
        must_fail = False
    elif how == "subgraph":
        graph.nodes[node_key] = nir.NIRGraph.from_list(nir.Input(input_type=np.array([2])), nir.Output(output_type=np.array([2])))
    elif how == "noinput":
        graph.nodes.pop("input", None)
    elif how == "inputshape":
        graph.nodes["input"] = nir.Input(input_type=np.array(pick(rng, [[0], [-3, 4], [2, 2, 2, 2, 2]])))
    else:
        must_fail = None
    nir.write(str(path), graph)
    return Mutation(f"nir-{how}", must_fail)


register(Format(
    "nir",
    write_seed=nir_seed,
    targets=lambda case: [case / "g.nir"],
    read=nir_read,
    variants=("mlp", "cnn"),
    check=nir_check,
    semantic=(nir_mutation,),
    generic=expect({"truncate": True, "magic": True}),
    cli=lambda case: ["export", "--model", str(case / "g.nir"), "--out", str(case / "out" / "g.net")],
    warm=lambda workdir: __import__("nmprivacy.targets"),
))
