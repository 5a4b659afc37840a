"""Shared test fixtures: where the shared real data live, and data-root isolation for data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # CI clones the repo with shared/ beside it


@pytest.fixture
def nmnist_sample() -> Path:
    """The real N-MNIST recordings shipped beside the repo (``Test/<digit>/<NNNNN>.bin``)."""
    folder = SHARED_DATA / "nmnist-sample"
    if not (folder / "Test").is_dir():
        pytest.fail(f"real N-MNIST sample missing: expected {folder}/Test (shared/ must sit beside the repo)")
    return folder


@pytest.fixture
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only ``tmp_path/data`` is searched for data sets and caches go to ``tmp_path/cache``."""
    from nmprivacy.data import files

    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setattr(files, "data_roots", lambda r=None: [Path(r)] if r is not None else [root])
    monkeypatch.setenv("NMPRIVACY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NMPRIVACY_DATA", raising=False)
    return root
