"""minidl.atomic.atomic_write: the user's path is what errors name, links are written through."""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

from minidl.atomic import atomic_write, make_folder
from minidl.datasets import load_qa, write_qa

ROWS = [("S?", "a", 1), ("S?", "b", -1)]


def _write(data: bytes):
    return lambda fh: fh.write(data)


def test_write_through_a_symbolic_link_updates_its_target(tmp_path):
    target = write_qa(tmp_path / "real.csv", ROWS)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_qa(link, [("T?", "c", 1), ("T?", "d", -1)])
    assert link.is_symlink() and link.resolve() == target
    assert load_qa(target).questions == ["T?", "T?"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]


def test_link_to_a_link_in_another_folder_and_a_dangling_link(tmp_path):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "real.bin"
    (tmp_path / "mid").symlink_to(target)
    (tmp_path / "top").symlink_to(tmp_path / "mid")
    atomic_write(tmp_path / "top", _write(b"new"))  # the target did not exist yet
    assert target.read_bytes() == b"new"
    assert (tmp_path / "top").is_symlink() and (tmp_path / "mid").is_symlink()


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "afile" / "sub" / "x.csv"
    for call in (lambda: write_qa(path, ROWS),
                 lambda: atomic_write(path, _write(b"x"), make_parents=True, who="save"),
                 lambda: make_folder(path, who="save")):
        with pytest.raises(NotADirectoryError) as info:
            call()
        message = str(info.value)
        assert str(path) in message and str(tmp_path / "afile") in message
        assert "not a folder" in message and "File exists" not in message


def test_disk_full_names_the_users_file_and_leaves_it_intact(tmp_path):
    path = write_qa(tmp_path / "out.csv", ROWS)
    before = path.read_bytes()

    def full(fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as info:
        atomic_write(path, full, who="save")
    assert info.value.errno == errno.ENOSPC
    message = str(info.value)
    assert str(path) in message and "No space left" in message and ".tmp" not in message
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_read_only_folder_names_the_users_file(tmp_path, monkeypatch):
    def refuse(*, dir, prefix, suffix):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES),
                              os.path.join(dir, prefix + "abc123" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    path = tmp_path / "out.csv"
    with pytest.raises(PermissionError) as info:
        write_qa(path, ROWS)
    message = str(info.value)
    assert str(path) in message and "Permission denied" in message and ".tmp" not in message


def test_failed_rename_names_the_users_file(tmp_path, monkeypatch):
    def busy(src, dst):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), src, dst)

    monkeypatch.setattr(os, "replace", busy)
    path = tmp_path / "out.bin"
    with pytest.raises(OSError) as info:
        atomic_write(path, _write(b"x"))
    assert str(path) in str(info.value) and ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
