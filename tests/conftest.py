"""Test fixtures: the real recordings kept in ``tests/data``, and data-root isolation for data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_DATA = Path(__file__).resolve().parent / "data"  # real files the tests need (see its README)


def pytest_configure(config: pytest.Config) -> None:
    """torch runs on one thread in every test (and in every pytest-xdist worker, one per core):
    steady timings on a shared machine, and a file run alone behaves as in the whole suite (with a
    thread per core beside busy cores, torch's spinning OpenMP threads made a CLI matrix cell >7x slower)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _test_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the user's cache folder: ``NMPRIVACY_CACHE`` points into pytest's temp
    space (tests that need their own cache set it again)."""
    monkeypatch.setenv("NMPRIVACY_CACHE", str(tmp_path_factory.getbasetemp() / "nmprivacy-cache"))


@pytest.fixture(autouse=True)
def _fixed_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI keeps the test's torch thread count (it would otherwise choose one from the
    machine's load, which varies between runs; ``test_resources.py`` tests that choice)."""
    import torch

    monkeypatch.setenv("NMPRIVACY_THREADS", str(torch.get_num_threads()))


@pytest.fixture
def nmnist_sample() -> Path:
    """The 21 real N-MNIST recordings kept in the repo (``Test/<digit>/<NNNNN>.bin``), checked
    against their ``SHA256SUMS``."""
    import hashlib

    folder = TEST_DATA / "nmnist-sample"
    sums = (folder / "SHA256SUMS").read_text().split("\n")
    for line in filter(None, sums):
        digest, name = line.split(maxsplit=1)
        got = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert got == digest, f"{folder / name} does not match its SHA256SUMS entry: restore it from git"
    return folder


@pytest.fixture
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only ``tmp_path/data`` is searched for data sets and caches go to ``tmp_path/cache``."""
    from nmprivacy.data import files

    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setattr(files, "data_roots", lambda r=None: [Path(r)] if r is not None else [root])
    monkeypatch.setattr(files, "package_folders", lambda spec: [])
    monkeypatch.setenv("NMPRIVACY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NMPRIVACY_DATA", raising=False)
    return root
