"""What every reader and evaluator of JSON input shares: a parse whose every failure names the
file (and line), the typed field checks, the text rule, duplicate ids, short renderings of bad
values. Fast paths for records read by the million; slow paths that name what is wrong.

The text rule: a string read from a dataset must be valid Unicode. JSON's ``"\\ud800"`` escape
(and Python's ``json`` on raw bytes, which it decodes with ``surrogatepass``) yields lone
surrogates, which no UTF-8 writer and no tokenizer accepts: refused here, not in a training run.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.data.files import read_bytes
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


def parse_json(raw: bytes | str, file: str | Path, *, record: str | None = None) -> Any:
    """``json.loads``, every failure a DataError naming ``file`` (and ``record``: the line of a
    JSON-lines file): malformed text, bad UTF-8, nesting past the recursion limit, an integer
    of more digits than Python converts."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        at = f"column {err.colno}" if record else f"line {err.lineno}, column {err.colno}"
        raise DataError(file, f"malformed JSON at {at}: {err.msg}", record=record) from err
    except UnicodeDecodeError as err:
        raise DataError(file, f"not UTF-8 text: {err}", record=record) from err
    except RecursionError as err:
        raise DataError(file, "JSON nested too deeply to read", record=record) from err
    except ValueError as err:  # an integer of over 4300 digits (sys.set_int_max_str_digits)
        raise DataError(file, f"unreadable JSON: {err}", record=record) from err


def load_json(path: Path) -> tuple[Any, str]:
    """Parse ``path``, hashing the very bytes parsed."""
    raw = read_bytes(path)
    return parse_json(raw, path), hashlib.sha256(raw).hexdigest()


def text_problem(text: str) -> str | None:
    """Why ``text`` breaks the text rule (module doc), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"not valid Unicode: a lone surrogate {text[err.start]!r} at character {err.start}"
    return None


def check_text(text: str, file: str | Path, *, record: str | int | None, field: str | None) -> None:
    problem = text_problem(text)
    if problem is not None:
        raise DataError(file, problem, record=record, field=field)


def is_int(value: Any) -> bool:
    """A JSON integer: true/false parse as bool, a subclass of int, and are not ids."""
    return isinstance(value, int) and not isinstance(value, bool)


def kind_ok(value: Any, kind: type) -> bool:
    if kind is int:
        return is_int(value) and value >= 0
    if kind is str:
        return isinstance(value, str) and text_problem(value) is None
    return isinstance(value, kind)


def valid(rec: Any, spec: Mapping[str, type]) -> bool:
    """Fast check of one record (millions in a real file); ``check_fields`` says what is wrong."""
    if type(rec) is not dict:
        return False
    for name, kind in spec.items():
        value = rec.get(name)
        if (
            type(value) is not kind  # type(True) is bool, not int
            or (kind is int and value < 0)
            or (kind is str and not value.isascii() and text_problem(value) is not None)
        ):
            return False
    return True


def check_fields(rec: Any, spec: Mapping[str, type], file: str | Path, record: str | None) -> None:
    """Raise a DataError naming the file, the record and the first bad field of ``rec``."""
    if valid(rec, spec):
        return
    if not isinstance(rec, dict):
        raise DataError(file, f"expected an object, got {show(rec)}", record=record)
    for name, kind in spec.items():
        expected = TYPE_NAMES[kind] + (" >= 0" if kind is int else "")
        if name not in rec:
            raise DataError(file, f"missing; expected {expected}", record=record, field=name)
        value = rec[name]
        if kind is str and isinstance(value, str):
            check_text(value, file, record=record, field=name)
        elif not kind_ok(value, kind):
            raise DataError(
                file, f"expected {expected}, got {show(value)}", record=record, field=name
            )


def expected(what: str, rec: Mapping[str, Any], field: str) -> str:
    """The message for a missing or mistyped field: ``missing; expected ...`` or ``got ...``."""
    if field not in rec:
        return f"missing; expected {what}"
    return f"expected {what}, got {show(rec[field])}"


def show(value: Any, limit: int = 60) -> str:
    """A bad value as an error message shows it: JSON, cut short; a list or object only by its
    size, so a huge or deeply nested one costs nothing to describe."""
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, str):
        value = value[:limit]
    try:
        return json.dumps(value)[:limit]
    except ValueError:  # an int too long to print
        return f"an integer of over {limit} digits"


def first_seen(
    seen: dict[Any, str],
    key: Any,
    where: str,
    file: str | Path,
    *,
    what: str,
    record: str | None,
    field: str,
) -> None:
    """Note that ``key`` is at ``where``; a DataError naming both places if it was seen before.
    (Loops over millions of records test ``key in seen`` themselves, then call this to raise.)"""
    if key in seen:
        raise DataError(
            file, f"duplicate {what} (first at {seen[key]})", record=record, field=field
        )
    seen[key] = where
