"""The one reader of predictions CSVs (``evaluate snli-ve``, ``evaluate nlvr2``): rows of
``id,prediction``, with the variants found in the wild accepted alike in both.

- A header row (the two column names, any case) is optional: the official NLVR2 format has
  none, spreadsheets and pandas write one.
- A UTF-8 BOM, CRLF line ends, blank lines and CSV quoting are accepted; columns past the
  second are ignored (the official NLVR2 script ignores them).
- Each line is stripped of surrounding whitespace, as the official NLVR2 script does; cells
  are not: ``id, True`` is refused, where the official script would silently score it wrong.
- A field longer than Python csv's limit (128 KiB) is refused, naming the line it starts on:
  ids and labels are short, so it is a broken file, most often a quote never closed.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from harness.data.files import read_bytes
from harness.data.json_fields import first_seen
from harness.errors import DataError

T = TypeVar("T")


def read_predictions_csv(
    path: Path, columns: tuple[str, str], parse: Callable[[str], T | None], expected: str
) -> dict[str, T]:
    """Predictions by id; ``parse`` gives a cell's value, or None when the cell is not one
    (``expected`` says what it should be)."""
    path = Path(path)
    try:
        text = read_bytes(path).decode("utf-8-sig")  # a spreadsheet's BOM is not data
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text: {err}") from err
    # Split on "\n" only: str.splitlines would also break at U+2028 inside a cell.
    rows = csv.reader(line.strip() for line in text.split("\n"))
    header = [name.lower() for name in columns]
    out: dict[str, T] = {}
    first: dict[str, str] = {}
    seen_header = seen_row = False
    while True:
        start = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as err:
            raise DataError(path, _csv_problem(err), record=f"line {start}") from err
        if not any(cell.strip() for cell in row):
            continue
        if not (seen_header or seen_row) and [c.strip().lower() for c in row[:2]] == header:
            seen_header = True
            continue
        where = f"line {start}"
        if len(row) < 2:
            got = ",".join(row)[:60]
            raise DataError(
                path, f"expected '{columns[0]},{columns[1]}', got {got!r}", record=where
            )
        key, cell = row[0], row[1]
        if not key:
            raise DataError(path, f"empty {columns[0]}", record=where, field=columns[0])
        value = parse(cell)
        if value is None:
            hint = (
                "" if seen_header or seen_row else f" (a header row must read {','.join(columns)})"
            )
            raise DataError(
                path,
                f"expected {expected}, got {cell[:40]!r}{hint}",
                record=f"{where} ({key[:60]})",
                field=columns[1],
            )
        what = f"{columns[0]} {key[:60]!r}"
        first_seen(first, key, where, path, what=what, record=where, field=columns[0])
        out[key] = value
        seen_row = True
    if not out:
        raise DataError(
            path, "no predictions after the header" if seen_header else "empty file: no predictions"
        )
    return out


def _csv_problem(err: csv.Error) -> str:
    if "field limit" in str(err):
        return (
            f"a field longer than {csv.field_size_limit()} characters: ids and labels are "
            "short, so a quote was probably never closed"
        )
    return f"unreadable CSV: {err}"
