"""`optima-repro compare`: two reports' tables, cell by cell, every difference listed.

What a reviewer runs to check that a study reproduces: regenerate a report into another folder
and compare it with the committed one. Tables carry the numbers; the provenance list (commit,
machine, wall time) is expected to differ and is not compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import DataError


@dataclass(frozen=True)
class Difference:
    report: str
    table: str
    row: str
    column: str
    old: str
    new: str

    def __str__(self) -> str:
        where = " | ".join(x for x in (self.report, self.table, self.row, self.column) if x)
        return f"{where}: {self.old or '(none)'} -> {self.new or '(none)'}"


def tables(text: str) -> dict[str, list[list[str]]]:
    """Each table of a markdown report under the heading above it (a second table under one
    heading gets `#2`), as rows of stripped cells, the separator row left out."""
    found: dict[str, list[list[str]]] = {}
    heading, current = "(top)", None
    for line in text.splitlines():
        if line.startswith("#"):
            heading, current = line.lstrip("#").strip(), None
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue
            if current is None:
                name, n = heading, 2
                while name in found:
                    name, n = f"{heading} #{n}", n + 1
                current = found.setdefault(name, [])
            current.append(cells)
        else:
            current = None
    return found


def compare_texts(name: str, old: str, new: str) -> list[Difference]:
    a, b = tables(old), tables(new)
    out = []
    for table in sorted(set(a) | set(b), key=lambda t: (t not in a, t)):
        if table not in a or table not in b:
            where = "only in the new report" if table not in a else "missing from the new report"
            out.append(Difference(name, table, "", "", "" if table not in a else "table", where))
            continue
        out += _compare_table(name, table, a[table], b[table])
    return out


def _compare_table(name: str, table: str, a: list[list[str]], b: list[list[str]]) -> list:
    header = a[0]
    if b[0] != header:
        return [Difference(name, table, "(header)", "", " | ".join(a[0]), " | ".join(b[0]))]
    rows_a = {r[0]: r for r in a[1:]}
    rows_b = {r[0]: r for r in b[1:]}
    out = []
    for row in [*rows_a, *(r for r in rows_b if r not in rows_a)]:
        ra, rb = rows_a.get(row), rows_b.get(row)
        if ra is None or rb is None:
            out.append(Difference(name, table, row, "", "row" if ra else "", "row" if rb else ""))
            continue
        for col, x, y in zip(header, ra, rb, strict=False):
            if x != y:
                out.append(Difference(name, table, row, col, x, y))
    return out


def compare(old: Path, new: Path) -> list[Difference]:
    """Two report files, or two folders (every `*.md` of the old folder)."""
    old, new = Path(old), Path(new)
    if not old.exists():
        raise DataError(old, "no such report or folder")
    if old.is_dir():
        names = sorted(p.name for p in old.glob("*.md"))
        if not names:
            raise DataError(old, "no markdown reports (*.md) in this folder")
        pairs = [(old / n, new / n) for n in names]
    else:
        pairs = [(old, new / old.name if new.is_dir() else new)]
    out = []
    for a, b in pairs:
        if not b.exists():
            out.append(Difference(a.name, "", "", "", "report", f"no {b}"))
            continue
        out += compare_texts(a.name, _read(a), _read(b))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read this report ({e})") from e
