"""Errors a user can act on: each names the file, the record and the field at fault."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input or configuration; the CLI prints the message and exits with code 2."""


class ConfigError(UserError):
    pass


class DataError(UserError):
    """A dataset file that does not hold what its format promises."""

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        record: str | int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file)
        self.record = record
        self.field = field
        where = self.file
        if record is not None:
            where += f", record {record}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
