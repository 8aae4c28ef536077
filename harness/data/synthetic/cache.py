"""A cache of written synthetic worlds, keyed by their spec and the generator's version.

A world is written into a temporary sibling folder and renamed into place, with a marker file
written last; so a folder under its final name is always complete, and two processes that race
to build the same world both end up reading one finished copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Protocol

# Bump when any synthetic writer or the scene renderer changes its output: old caches then miss.
WORLD_VERSION = "3"
MARKER = "WORLD_COMPLETE.json"

log = logging.getLogger(__name__)


class WorldWriter(Protocol):
    def __call__(self, root: Path, spec: Any, *, progress: bool) -> dict[str, Any]: ...


def spec_hash(spec: Any) -> str:
    """Short hash of the spec's type, fields and WORLD_VERSION: the cache key."""
    payload = {
        "type": type(spec).__qualname__,
        "spec": dataclasses.asdict(spec),
        "world_version": WORLD_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def world_dir(cache_dir: Path, name: str, spec: Any) -> Path:
    return Path(cache_dir) / f"{name}-{spec_hash(spec)}"


def is_complete(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def read_marker(path: Path) -> dict[str, Any]:
    """The spec and the writer's summary, as recorded when the world was finished."""
    return json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))


def ensure_world(
    cache_dir: Path, name: str, spec: Any, writer: WorldWriter, *, progress: bool = True
) -> Path:
    """Return the folder of a complete world for `spec`, writing it first if needed."""
    cache_dir = Path(cache_dir)
    final = world_dir(cache_dir, name, spec)
    if is_complete(final):
        _say(progress, f"synthetic world {name}: using {final}")
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=cache_dir))
    try:
        summary = writer(tmp, spec, progress=progress)
        marker = {
            "name": name,
            "world_version": WORLD_VERSION,
            "spec_type": type(spec).__qualname__,
            "spec": dataclasses.asdict(spec),
            "summary": summary,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; a shared cache should stay readable
        _move_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already unless we lost a race or failed
    _say(progress, f"synthetic world {name}: wrote {final}")
    return final


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`; a complete `final` from a faster process wins, an incomplete
    one (a crash, or a hand-deleted marker) is moved aside and removed."""
    for _ in range(3):
        try:
            os.rename(tmp, final)
            return
        except OSError:
            if is_complete(final):
                return
            if final.exists():
                trash = final.with_name(f".trash-{final.name}-{uuid.uuid4().hex[:8]}")
                try:
                    os.rename(final, trash)
                except FileNotFoundError:
                    continue  # another process cleared it first
                shutil.rmtree(trash, ignore_errors=True)
    raise OSError(f"could not move the synthetic world {tmp} into place at {final}")


def _say(progress: bool, message: str) -> None:
    log.info(message)
    if progress:
        print(message, file=sys.stderr)
