"""What the JSON readers (VQA, COCO) share: a parse that hashes the very bytes it read, a fast
field check for records read by the million, and the slow path that names what is wrong."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.errors import DataError

TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer"}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Parsed JSON holds millions of acyclic objects; the cycle collector would rescan them over
    and over while they are built (about half the read time of a full split)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_json(path: Path) -> tuple[Any, str]:
    """Parse ``path``, hashing the very bytes parsed."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot read: {err.strerror or err}") from err
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataError(
            path, f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from err
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text: {err}") from err
    return doc, hashlib.sha256(raw).hexdigest()


def kind_ok(value: Any, kind: type) -> bool:
    if kind is int:  # JSON true/false parse as bool, a subclass of int; ids must be numbers
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return isinstance(value, kind)


def valid(rec: Any, spec: Mapping[str, type]) -> bool:
    """Fast check of one record (millions in a real file); ``check_fields`` says what is wrong."""
    if type(rec) is not dict:
        return False
    for name, kind in spec.items():
        value = rec.get(name)
        if type(value) is not kind or (kind is int and value < 0):  # type(True) is bool
            return False
    return True


def check_fields(rec: Any, spec: Mapping[str, type], file: str | Path, record: str | None) -> None:
    """Raise a DataError naming the file, the record and the first bad field of ``rec``."""
    if valid(rec, spec):
        return
    if not isinstance(rec, dict):
        raise DataError(file, f"expected an object, got {type(rec).__name__}", record=record)
    for name, kind in spec.items():
        expected = TYPE_NAMES[kind] + (" >= 0" if kind is int else "")
        if name not in rec:
            raise DataError(file, f"missing; expected {expected}", record=record, field=name)
        if not kind_ok(rec[name], kind):
            raise DataError(
                file,
                f"expected {expected}, got {json.dumps(rec[name])[:60]}",
                record=record,
                field=name,
            )
