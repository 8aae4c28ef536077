"""The entry points: every task report found under a runs folder and the summary, or one
task's report from the records a grid run returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.errors import UserError
from harness.records import Grid, RunRecord, StudyRecords, group_studies, load_records
from harness.report.display import ordered_tasks
from harness.report.published import PUBLISHED, load_published
from harness.report.summary import write_summary
from harness.report.task import write_task_report


def write_reports(
    runs_dir: Path, reports_dir: Path, expected: Mapping[str, Grid] | None = None
) -> list[Path]:
    """Every task report under `runs_dir`, then the summary; returns the markdown paths.

    `expected` maps a task to the grid that was run, so the report names that study and lists
    its runs that wrote no record."""
    runs_dir, reports_dir = Path(runs_dir), Path(reports_dir)
    grids = dict(expected or {})
    records = load_records(runs_dir)
    if not records and not grids:
        raise UserError(
            f"{runs_dir}: no run records (record.json) found; `optima-repro reproduce` "
            "writes them under <workdir>/runs"
        )
    studies = group_studies(records, grids)
    published = load_published(reports_dir / PUBLISHED)
    paths = [
        write_task_report(studies[t], reports_dir, published.get(t, {}))
        for t in ordered_tasks(studies)
    ]
    paths.append(write_summary(studies, reports_dir))
    return paths


def task_report(task: str, records: Iterable[RunRecord | None], reports_dir: Path) -> Path:
    """One task's report from the records a grid run returns (`run_grid`; None: no record)."""
    study = group_studies([r for r in records if r and r.task == task]).get(task)
    study = study or StudyRecords(task, (), (), ())
    published = load_published(Path(reports_dir) / PUBLISHED)
    return write_task_report(study, Path(reports_dir), published.get(task, {}))
