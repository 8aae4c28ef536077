"""Published numbers for the `published` column, from `reports/published.toml`: each with its
source, since a number without one cannot be checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

PUBLISHED = "published.toml"


@dataclass(frozen=True)
class Published:
    value: float
    source: str


def load_published(path: Path) -> dict[str, dict[str, Published]]:
    """`[<task>.<row>]` tables with `primary` and `source`; absent file -> no numbers."""
    if not path.is_file():
        return {}
    text = path.read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        if not any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
            return {}
        raise UserError(f"{path}: reading published numbers needs Python >= 3.11") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: malformed TOML: {e}") from e
    out: dict[str, dict[str, Published]] = {}
    for task, rows in data.items():
        if not isinstance(rows, dict):
            raise UserError(f"{path}, [{task}]: expected a table of rows, got {rows!r}")
        for row, entry in rows.items():
            where = f"{path}, [{task}.{row}]"
            if not isinstance(entry, dict):
                raise UserError(f"{where}: expected a table with primary and source")
            value, source = entry.get("primary"), entry.get("source")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UserError(f"{where}, field 'primary': expected a number, got {value!r}")
            if not isinstance(source, str) or not source.strip():
                raise UserError(f"{where}, field 'source': every number needs its source")
            out.setdefault(task, {})[row] = Published(float(value), source.strip())
    return out
