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

    A ``path`` that is a symbolic link (or a chain of them) is written through: its final
    target is replaced, atomically, and the link stays a link to it. (A hard link cannot be
    written through atomically: ``path`` gets a new file, the other names keep the old one.)
    An ``OSError`` on the way (a full disk, a read-only folder, a failed rename) is raised
    again, of the same type and errno, with a message naming ``path`` as given rather than the
    temporary file.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    folder = target.absolute().parent
    if make_parents:
        make_folder(target, who=who, given=path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except (FileNotFoundError, NotADirectoryError) as exc:
        if folder.is_dir():
            raise _naming(exc, path, who) from exc
        problem = (f"the folder {str(folder)!r} does not exist; create it first (os.makedirs)"
                   if isinstance(exc, FileNotFoundError) else
                   f"{str(folder)!r} is not a folder (part of that path is a file)")
        raise type(exc)(f"{who}: cannot write {os.fspath(path)!r}: {problem}") from exc
    except OSError as exc:
        raise _naming(exc, path, who) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(target))
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path, who) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: the same inode where both exist (hard links),
    else the same path once symbolic links, ``..`` and relative spellings are resolved."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:  # one of them does not exist (yet)
        pass
    return Path(a).resolve() == Path(b).resolve()


def make_folder(path: str | os.PathLike, *, who: str = "write",
                given: str | os.PathLike | None = None) -> Path:
    """Create the folder of ``path`` (and its parents) if missing; return it.

    When part of the way is a file, raise :class:`NotADirectoryError` naming ``given`` (default
    ``path``) and that file, instead of ``mkdir``'s ``[Errno 17] File exists``.
    """
    path = Path(path)
    folder = path.absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = next((p for p in (folder, *folder.parents)
                        if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(
            f"{who}: cannot write {os.fspath(given or path)!r}: {str(blocker)!r} is a file, "
            f"not a folder") from exc
    except OSError as exc:
        raise _naming(exc, Path(given or path), who) from exc
    return folder


def _naming(exc: OSError, path: Path, who: str) -> OSError:
    """``exc`` again (same type and errno), its message naming ``path`` instead of whatever
    file it named (the temporary one)."""
    why = exc.strerror or str(exc) or type(exc).__name__
    message = f"{who}: cannot write {os.fspath(path)!r}: {why}"
    try:
        return type(exc)(exc.errno, message) if exc.errno is not None else type(exc)(message)
    except TypeError:  # pragma: no cover - an OSError subclass with another signature
        return exc


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
