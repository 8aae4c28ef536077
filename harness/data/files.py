"""Opening an input file so that nothing hangs: every file a reader or an evaluator opens must be
a regular file once symlinks are followed. A FIFO blocks an ordinary ``open`` until some writer
appears (forever, for a data root), a device can be endless; both are refused, as is a folder.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from harness.errors import DataError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# Opened without blocking: a FIFO opened for reading waits for a writer, unless O_NONBLOCK.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def kind_problem(mode: int) -> str | None:
    """Why a file of this ``st_mode`` cannot be read as data, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"is {kind}, not a regular file"


def os_problem(err: OSError | ValueError) -> str:
    """An ``os.stat``/``os.open`` failure in words."""
    if isinstance(err, ValueError):  # a NUL, or a lone surrogate the file system cannot encode
        return f"is not a usable file name ({err})"
    if err.errno == errno.ENOENT:
        return "not found"
    if err.errno == errno.ELOOP:
        return "is a symlink loop (too many levels of symbolic links)"
    return f"cannot be read: {err.strerror or err}"


def stat_problem(path: Path) -> str | None:
    """Why ``path`` is not a regular file (after symlinks), or None; a stat, no open."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as err:
        return os_problem(err)
    return kind_problem(mode)


def open_regular(path: str | Path, what: str = "file") -> BinaryIO:
    """``path`` opened for binary reading; a DataError naming it unless it is a regular file."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError) as err:
        problem = os_problem(err)
        raise DataError(path, f"{what} not found" if problem == "not found" else problem) from err
    try:
        problem = kind_problem(os.fstat(fd).st_mode)
        if problem is not None:
            raise DataError(path, problem)
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path) -> bytes:
    with open_regular(path) as f:
        try:
            return f.read()
        except OSError as err:  # EIO, or a folder on a system that let it be opened
            raise DataError(path, f"cannot read: {err.strerror or err}") from err
