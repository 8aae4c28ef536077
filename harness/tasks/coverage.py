"""The id checks every evaluator makes: each reference id has a prediction (or annotation), and
nothing names an id the reference lacks. An error names the file, the field, how many ids and
the first of them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import DataError


def some(ids: Sequence[Any], limit: int = 10) -> str:
    more = f" (and {len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(repr(i) for i in ids[:limit]) + more


def check_covered(
    reference_ids: Iterable[Any],
    given: Collection[Any],
    *,
    file: str | Path,
    field: str,
    noun: str,
    reference: str | Path,
    what: str = "prediction",
) -> None:
    """Every id of `reference` has a `what` in `file`."""
    missing = [i for i in reference_ids if i not in given]
    if missing:
        raise DataError(
            file,
            f"no {what} for {len(missing)} {noun}(s) of {reference}: {some(missing)}",
            field=field,
        )


def check_known(
    given: Iterable[Any],
    reference_ids: Collection[Any],
    *,
    file: str | Path,
    field: str,
    noun: str,
    reference: str | Path,
) -> None:
    """No id in `file` that `reference` lacks."""
    extra = [i for i in given if i not in reference_ids]
    if extra:
        raise DataError(
            file, f"{len(extra)} {noun}(s) not in {reference}: {some(extra)}", field=field
        )
