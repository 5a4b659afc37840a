"""scikit-learn's bundled 8x8 digits: the default data set that needs no files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nmprivacy.data.base import DatasetSplits, Split, register
from nmprivacy.data.subset import check_limit, limit_split

SOURCE = "bundled with scikit-learn (sklearn.datasets.load_digits)"
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def locate_digits(root: Path | None = None) -> str:
    """Where the digits come from (always available with scikit-learn)."""
    return SOURCE


def digits_splits(name: str, size: int, limit_train: int | None, limit_test: int | None) -> DatasetSplits:
    """The digits as ``[N, 1, size, size]`` in [0, 1], stratified 80/20 split with a fixed seed.

    ``size`` 8 is the original; larger sizes upscale the 8x8 digit bilinearly into a
    ``size - 8`` box centred with a 4-pixel border, as MNIST places its 20x20 digits in 28x28."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = torch.from_numpy((bunch.images / 16.0).astype(np.float32)[:, None])  # [N, 1, 8, 8]
    if size != 8:
        inner = torch.nn.functional.interpolate(images, size=(size - 8, size - 8), mode="bilinear", align_corners=False)
        images = torch.nn.functional.pad(inner.clamp(0.0, 1.0), (4, 4, 4, 4))
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    idx_train, idx_test = train_test_split(
        np.arange(labels.numel()), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels.numpy()
    )
    idx_train.sort()
    idx_test.sort()

    def split(idx: np.ndarray) -> Split:
        index = torch.from_numpy(idx)
        return Split(images[index].contiguous(), labels[index])

    return DatasetSplits(
        name=name,
        domain="image",
        train=limit_split(split(idx_train), check_limit("limit_train", limit_train)),
        test=limit_split(split(idx_test), check_limit("limit_test", limit_test)),
        classes=tuple(str(d) for d in range(10)),
        input_shape=(1, size, size),
        source=SOURCE,
        info={"split": f"stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}, seed {SPLIT_SEED}"}
        | ({"upscaled": f"8x8 -> {size - 8}x{size - 8} bilinear, 4-pixel border"} if size != 8 else {}),
    )


@register("digits", "image", "8x8 handwritten digits bundled with scikit-learn (1797 images)", locate_digits)
def load_digits(
    root: Path | None = None, limit_train: int | None = None, limit_test: int | None = None
) -> DatasetSplits:
    """The digits as ``[N, 1, 8, 8]`` in [0, 1], stratified 80/20 split with a fixed seed."""
    return digits_splits("digits", 8, limit_train, limit_test)


@register("digits-28", "image", "the same digits upscaled to MNIST's 28x28 layout (20x20 digit, 4-pixel border)", locate_digits)
def load_digits_28(
    root: Path | None = None, limit_train: int | None = None, limit_test: int | None = None
) -> DatasetSplits:
    """The digits upscaled to MNIST's layout ``[N, 1, 28, 28]`` in [0, 1] (same split as ``digits``)."""
    return digits_splits("digits-28", 28, limit_train, limit_test)
