"""The one way the harness writes a file: a temp file in the same folder, fsync, rename.

A reader (or a run killed half-way) sees the old file or the new one, never a part. Files get
the mode a plain `open` would give them (0666 less the umask), not mkstemp's private 0600, so a
work directory shared by a team stays readable. Temp names start with `.` and end in `.tmp`, so
`stale_temps` can find what a killed process left behind. A file found damaged is set aside
(renamed), never deleted. A full disk (or quota) while writing is a `DiskFull` naming the file,
and leaves no temp file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import UserError

TEMP_SUFFIX = ".tmp"
FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(UserError, OSError):
    """No space left while writing `filename`: the user frees space and runs again. Still an
    OSError (errno ENOSPC or EDQUOT), so handlers of write errors keep catching it."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror} while writing it; free some space and run again"


@contextlib.contextmanager
def _naming_full_disk(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        if err.errno in FULL and not isinstance(err, DiskFull):
            raise DiskFull(err.errno, os.strerror(err.errno), str(path)) from err
        raise


def _umask_mode(full: int = 0o666) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return full & ~mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temp path beside `path` for any writer (torch.save, savefig, sentencepiece);
    on a clean exit the temp file is fsynced and renamed onto `path`, on an error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        with _naming_full_disk(path):
            yield tmp
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yields a temp folder beside `path` to fill; on a clean exit it is renamed onto `path`
    (which must not exist: the caller, holding a lock, set an old one aside), on an error
    removed. Its files' integrity is the caller's to record (a crash may lose unsynced data)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX))
    try:
        with _naming_full_disk(path):
            yield tmp
        os.chmod(tmp, _umask_mode(0o777))
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_json(path: Path, obj: Any) -> None:
    """JSON with NaN and infinity refused (`allow_nan=False`): they are not JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def stale_temps(folder: Path, name: str | None = None) -> list[Path]:
    """Temp files and folders a killed writer left in `folder` (not recursive); with `name`,
    only those of `folder / name` (mkstemp's random part holds no dot)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    own = re.compile(rf"\.{re.escape(name)}\.[^.]+{re.escape(TEMP_SUFFIX)}") if name else None
    return sorted(
        p
        for p in folder.iterdir()
        if p.name.startswith(".")
        and p.name.endswith(TEMP_SUFFIX)
        and (own is None or own.fullmatch(p.name))
    )


def clear_stale_temps(folder: Path, name: str | None = None) -> list[Path]:
    """Removes `stale_temps(folder, name)`. Call it only holding the lock every writer of them
    holds while writing: then none of them belongs to a live writer."""
    stale = stale_temps(folder, name)
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale


def set_aside(path: Path) -> Path | None:
    """Rename a damaged file or folder to `<name>.damaged-<n>` (the first free n): the work is
    done again and nothing a user may want to inspect is deleted. None when it is gone."""
    path = Path(path)
    n = 1
    while os.path.lexists(aside := path.with_name(f"{path.name}.damaged-{n}")):
        n += 1
    try:
        os.rename(path, aside)
    except FileNotFoundError:  # another process set it aside first
        return None
    return aside
