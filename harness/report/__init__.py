"""Reports from run records alone (spec/harness.md §7, a contract): `reports/<task>.md` with its
figures beside it, and `reports/summary.md` across tasks.

A report is a pure function of the records (read through `harness.records`, the typed schema)
and `reports/published.toml`: no clocks, no absolute output paths, fixed figure sizes and no
PNG software stamp, so the same records give byte-identical files. Never imports models.

What is where: `build` (the entry points), `task` (one task's report), `summary` (across
tasks), `figures` (matplotlib), `provenance` (how the runs were made), `tables` (numbers and
markdown tables, also the ablation report's), `display` (names and order of tasks and rows),
`published` (`published.toml`); files are written by `harness.atomic`. This module re-exports
the public names.
"""

from harness.report.build import task_report, write_reports
from harness.report.display import BASELINE, ORDER, task_spec
from harness.report.figures import DPI, FIGURES, save_figure
from harness.report.provenance import PRECISIONS, READING_PREFIXES, readings
from harness.report.published import PUBLISHED, Published, load_published
from harness.report.summary import SUMMARY, write_summary
from harness.report.tables import POWER_HEADER, power_cells
from harness.report.task import how_to_read, render_task, verdict, write_task_report

__all__ = [
    "BASELINE",
    "DPI",
    "FIGURES",
    "ORDER",
    "POWER_HEADER",
    "PRECISIONS",
    "PUBLISHED",
    "READING_PREFIXES",
    "SUMMARY",
    "Published",
    "how_to_read",
    "load_published",
    "power_cells",
    "readings",
    "render_task",
    "save_figure",
    "task_report",
    "task_spec",
    "verdict",
    "write_reports",
    "write_summary",
    "write_task_report",
]
