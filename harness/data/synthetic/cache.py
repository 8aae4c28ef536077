"""A cache of written synthetic worlds, keyed by their spec and the generator's version.

A world is written, under a lock, into a temporary sibling folder and renamed into place, its
marker file written last with every file's sha256; so a folder under its final name is always
complete, and two processes that race to build one world end up reading one copy. Before reuse
the files are checked against the marker (harness/integrity.py): a damaged world is set aside
and written again, never read. Holding the lock, a writer also clears what a stopped one left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

from harness.atomic import atomic_dir
from harness.checkpoint import exclusive
from harness.integrity import clear_temps, manifest, set_aside_damaged, unfinished

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
    """Return the folder of a complete, intact world for `spec`, writing it first if needed."""
    cache_dir = Path(cache_dir)
    final = world_dir(cache_dir, name, spec)
    what = f"synthetic world {name}"
    with exclusive(final.with_name(final.name + ".lock"), wait=True):
        clear_temps(cache_dir, final.name)
        for old in cache_dir.glob(f".tmp-{final.name}-*"):  # the temp name before harness.atomic
            shutil.rmtree(old, ignore_errors=True)
        if _intact(final, what):
            _say(progress, f"{what}: using {final}")
            return final
        with atomic_dir(final) as tmp:
            summary = writer(tmp, spec, progress=progress)
            marker = {
                "name": name,
                "world_version": WORLD_VERSION,
                "spec_type": type(spec).__qualname__,
                "spec": dataclasses.asdict(spec),
                "summary": summary,
                "files": manifest(tmp),
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
    _say(progress, f"{what}: wrote {final}")
    return final


def _intact(final: Path, what: str) -> bool:
    """Whether `final` holds exactly the files its marker records. One without a marker (or
    with one from before checksums were recorded) is unfinished: removed; one that differs is
    set aside."""
    if not final.exists():
        return False
    try:
        recorded = read_marker(final).get("files")  # AttributeError: not a JSON object
    except FileNotFoundError:
        recorded = None
    except (OSError, ValueError, AttributeError) as err:
        set_aside_damaged(final, what, f"its {MARKER} is unreadable ({err!r})")
        return False
    if not isinstance(recorded, dict):
        unfinished(final, what)
        return False
    present = manifest(final, leave_out=MARKER)
    for rel in sorted(recorded.keys() | present.keys()):
        if rel not in present:
            why = f"{rel} is missing"
        elif rel not in recorded:
            why = f"{rel} was not written with it"
        elif present[rel] != recorded[rel]:
            why = f"{rel}'s sha256 differs from the one recorded when it was written"
        else:
            continue
        set_aside_damaged(final, what, why)
        return False
    return True


def _say(progress: bool, message: str) -> None:
    log.info(message)
    if progress:
        print(message, file=sys.stderr)
