"""How a report names and orders what it shows: a task's display (its card's, or the bare name)
and the order of tasks and scheduler rows, shared by the task report, its figures and the
summary so that all three list them alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from harness.records import RunRecord, StudyRecords
from harness.tasks import Display, cards

ORDER = ("optima", "uniform", "random", "none")
BASELINE = "uniform"


def task_spec(task: str) -> Display:
    """How the task's report shows it: its card's, or the bare name for an unregistered one."""
    known = cards()
    return known[task].display if task in known else Display(task)


def ordered_tasks(studies: Mapping[str, StudyRecords]) -> list[str]:
    known = cards()
    return [t for t in known if t in studies] + sorted(set(studies) - set(known))


def scheduler_rank(name: str) -> tuple[int, str]:
    return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name)


def ordered_schedulers(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=scheduler_rank)


def by_scheduler(records: Iterable[RunRecord], name: str) -> list[RunRecord]:
    return sorted((r for r in records if r.scheduler == name), key=lambda r: r.seed)
