"""Task registry: each task owns its data reading, head, loss terms and official metric."""

from __future__ import annotations

from harness.errors import ConfigError


def get_task(name: str):
    if name == "vqa":
        from harness.tasks.vqa import VqaTask

        return VqaTask
    raise ConfigError(f"unknown task {name!r}; expected one of ['vqa']")
