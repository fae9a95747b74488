"""Every file the studies, the runner and the report write, written atomically
(:func:`minidl.atomic.atomic_write`: a temporary file in the same folder, then a rename), so an
interruption, a full disk or a second run reading at the same time sees the old file or the
new one, never half of one; and ``timing.json``, the runner's record of each study's time, read
so that a damaged one is set aside with a note instead of stopping every later run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

from minidl.atomic import atomic_write

WHO = "experiments"


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``text`` (UTF-8) to ``path``, atomically, its folder created if missing."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data), who=WHO, make_parents=True)


def write_json(path: str | os.PathLike, value, **kwargs) -> Path:
    """``value`` as indented JSON (``kwargs`` go to ``json.dumps``), atomically."""
    return write_text(path, json.dumps(value, indent=2, **kwargs) + "\n")


def write_csv(frame, path: str | os.PathLike) -> Path:
    """A pandas DataFrame as CSV without its index, atomically."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return write_text(path, buf.getvalue())


def save_png(fig, path: str | os.PathLike, **kwargs) -> Path:
    """A matplotlib figure as PNG (``kwargs`` go to ``savefig``), atomically."""
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", **kwargs), who=WHO,
                        make_parents=True)


def copy_file(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """A copy of ``source`` at ``path``, atomically (its modification time kept)."""
    with open(source, "rb") as src:
        atomic_write(path, lambda fh: shutil.copyfileobj(src, fh), who=WHO, make_parents=True)
    shutil.copystat(source, path, follow_symlinks=True)
    return Path(path)


def read_json(path: str | os.PathLike) -> dict:
    """A results file holding a JSON object (a study's ``config.json``); one that is not (a
    run cut short, an edit) is a :class:`~experiments.flags.FlagError` naming it."""
    from experiments.flags import FlagError

    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FlagError(f"{path}: cannot be read as JSON ({why}); rerun its study") from None
    if not isinstance(value, dict):
        raise FlagError(f"{path}: expected a JSON object, got {type(value).__name__}; rerun "
                        f"its study")
    return value


def read_timing(path: str | os.PathLike, set_aside: bool = True,
                say=lambda line: print(line, file=sys.stderr)) -> dict:
    """The runner's ``timing.json`` at ``path`` (``{}`` when there is none). One that is not
    the runner's JSON object (truncated by a crash, edited by hand, unreadable) gives ``{}``
    and a line to ``say`` naming it; with ``set_aside`` (the runner, which writes a new one)
    it is first renamed to ``timing.json.bad`` beside it, which the line names too."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        timing = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(timing, dict) or not isinstance(timing.get("studies", {}), dict):
            raise ValueError(f"expected a JSON object with 'studies', got "
                             f"{type(timing).__name__}")
        return timing
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError among them
        bad = path.with_name(path.name + ".bad")
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = "ignored"
        if set_aside:
            try:
                os.replace(path, bad)
                where = f"set aside as {bad}; this run starts a new one"
            except OSError:
                where = "left as it is; this run starts a new one"
        say(f"note: {path} is not a timing record ({why}): {where}")
        return {}
