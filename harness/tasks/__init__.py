"""Task registry: each task owns its data reading, head, loss terms and official metric."""

from __future__ import annotations

import importlib

from harness.errors import ConfigError

TASKS = {
    "vqa": "harness.tasks.vqa:VqaTask",
    "snli-ve": "harness.tasks.snli_ve:SnliVeTask",
    "nlvr2": "harness.tasks.nlvr2:Nlvr2Task",
    "coco": "harness.tasks.coco:CocoTask",
}


def get_task(name: str):
    """The task class; imported on demand, so a task's dependencies load only when used."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)
