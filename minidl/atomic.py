"""Atomic file writes: readers (and a crash) see the old file or the new one, never half.

Used by checkpoints (:func:`minidl.save`), the embedding cache and the QA data writers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object], *,
                 who: str = "write", make_parents: bool = False) -> Path:
    """Write ``path`` through ``write(file)``, atomically.

    ``write`` fills a hidden temporary file in the same folder (``.<name>.<random>.tmp``),
    which is flushed and fsynced, given the mode ``open`` would give the file (or the old
    file's mode), renamed over ``path`` with ``os.replace``, after which the folder is fsynced
    so the rename itself survives a crash. On an error the temporary file is removed; a killed
    process leaves it behind, hidden, and ``path`` intact. A missing folder is created with
    ``make_parents=True``; otherwise it is an error that names ``path`` and the folder (not the
    temporary file), prefixed with ``who``.
    """
    path = Path(path)
    folder = path.absolute().parent
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except (FileNotFoundError, NotADirectoryError) as exc:
        if folder.is_dir():
            raise
        problem = (f"the folder {str(folder)!r} does not exist; create it first (os.makedirs)"
                   if isinstance(exc, FileNotFoundError) else
                   f"{str(folder)!r} is not a folder (part of that path is a file)")
        raise type(exc)(f"{who}: cannot write {os.fspath(path)!r}: {problem}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return path


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
