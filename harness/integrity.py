"""Cached artefacts (worlds, tokenizer, pre-trained and fine-tuned teachers, teacher outputs)
are checked before reuse, so a damaged cache cannot change a result.

Each is written atomically, then its sha256 and size go into a JSON record written atomically
after it: an artefact without a record is one whose writer stopped in between (or one written
before records were kept), unfinished as a temp file is: it is removed and built again. Before
reuse an artefact's bytes are hashed and compared with its record; one that does not match is
set aside (`<name>.damaged-<n>`, kept for inspection) with a one-line warning, and the caller
builds it again. sha256 runs at ~1 GiB/s on one core (SHA-NI): the default COCO teacher-output
cache (2.2 GiB) costs ~2 s. A file is hashed once per process while its inode, size and mtime
stay (a study reads one world up to three times). docs/faults.md says what a user sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from harness.atomic import clear_stale_temps, set_aside, write_json

_digests: dict[str, tuple[tuple[int, ...], str]] = {}


def sha256_file(path: Path | str) -> str:
    path = os.path.abspath(path)  # strings, not pathlib: a world holds thousands of files
    st = os.stat(path)
    stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    known = _digests.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    _digests[path] = (stamp, digest)
    return digest


def file_record(path: Path) -> dict:
    """What identifies `path`'s bytes: their sha256 and size."""
    return {"sha256": sha256_file(path), "bytes": Path(path).stat().st_size}


def manifest(folder: Path, leave_out: str = "") -> dict[str, str]:
    """The sha256 of every file under `folder` (but `leave_out`), by relative path."""
    files = {}
    for top, _, names in os.walk(folder):
        for name in names:
            full = os.path.join(top, name)
            files[os.path.relpath(full, folder).replace(os.sep, "/")] = full
    return {rel: sha256_file(files[rel]) for rel in sorted(files) if rel != leave_out}


def record(path: Path, record_file: Path, meta: dict | None = None) -> dict:
    """Writes `record_file`: `meta` with `path`'s sha256 and size. Call once `path` is in place."""
    meta = {**(meta or {}), **file_record(path)}
    write_json(record_file, meta)
    return meta


def _mismatch(path: Path, record_file: Path) -> tuple[str | None, dict]:
    """Why `path` does not match `record_file` (None: it does), and the record read."""
    try:
        meta = json.loads(Path(record_file).read_bytes().decode("utf-8"))
        want = {"sha256": meta["sha256"], "bytes": meta.get("bytes")}
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its record {Path(record_file).name} is unreadable ({err!r})", {}
    if not Path(path).is_file():
        return f"{Path(path).name} is missing", meta
    size = Path(path).stat().st_size  # before hashing: a truncated file costs no read
    if want["bytes"] is not None and size != want["bytes"]:
        return f"{size} bytes where {want['bytes']} were written", meta
    if sha256_file(path) != want["sha256"]:
        return "its sha256 differs from the one recorded when it was written", meta
    return None, meta


def verified(path: Path, record_file: Path, what: str, whole: Path | None = None) -> dict | None:
    """`record_file`'s content when `path` exists and matches it; else None, the artefact
    (`path`, or the folder `whole` holding it and its record) set aside or, when it has no
    record, removed. Call it holding the lock the artefact's writers hold."""
    whole = Path(whole or path)
    if not whole.exists():
        return None
    if not Path(record_file).exists():
        unfinished(whole, what)
        return None
    why, meta = _mismatch(path, record_file)
    if why is None:
        return meta
    set_aside_damaged(whole, what, why)
    return None


def unfinished(path: Path, what: str) -> None:
    print(
        f"{what} {path}: no checksum recorded (its writer stopped first, or predates them);"
        " building it again"
    )
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def set_aside_damaged(path: Path, what: str, why: str) -> None:
    if (aside := set_aside(path)) is not None:
        print(f"{what} {path}: damaged ({why}); kept as {aside.name}, building it again")


def clear_temps(folder: Path, *names: str) -> None:
    """Removes the temp files a stopped writer left in `folder` (of `names`' writers, or all);
    call it holding the lock those writers hold, so that none of them is live."""
    for name in names or (None,):
        for p in clear_stale_temps(folder, name):
            print(f"removed {p}, left by a writer that was stopped")
