"""`--skip-bad-records`: a reader drops a record it would refuse, and the run says which.

Readers report each record-level refusal through `skip_or_raise`; outside
`skipping_bad_records()` (the default) it raises as before. A file-level error (no record
named: a missing file, malformed JSON of a whole document, an empty split) always raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from harness.errors import DataError

_skipped: ContextVar[list[DataError] | None] = ContextVar("skipped_records", default=None)


@contextlib.contextmanager
def skipping_bad_records(enabled: bool = True) -> Iterator[list[DataError]]:
    """Within the block readers skip bad records; the list collects their errors in order."""
    collected: list[DataError] = []
    token = _skipped.set(collected if enabled else None)
    try:
        yield collected
    finally:
        _skipped.reset(token)


def skip_or_raise(err: DataError) -> None:
    """Raise `err`, unless bad records are being skipped and it names one."""
    collected = _skipped.get()
    if collected is None or err.record is None:
        raise err
    collected.append(err)
