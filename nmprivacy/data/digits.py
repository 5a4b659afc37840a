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


@register("digits", "image", "8x8 handwritten digits bundled with scikit-learn (1797 images)", locate_digits)
def load_digits(
    root: Path | None = None, limit_train: int | None = None, limit_test: int | None = None
) -> DatasetSplits:
    """The digits as ``[N, 1, 8, 8]`` in [0, 1], stratified 80/20 split with a fixed seed."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # [N, 1, 8, 8]
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(labels.size), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    idx_train.sort()
    idx_test.sort()

    def split(idx: np.ndarray) -> Split:
        return Split(torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]))

    return DatasetSplits(
        name="digits",
        domain="image",
        train=limit_split(split(idx_train), check_limit("limit_train", limit_train)),
        test=limit_split(split(idx_test), check_limit("limit_test", limit_test)),
        classes=tuple(str(d) for d in range(10)),
        input_shape=(1, 8, 8),
        source=SOURCE,
        info={"split": f"stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}, seed {SPLIT_SEED}"},
    )
