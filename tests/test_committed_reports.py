"""The committed reports are what `optima-repro report` builds from the committed run records
(reports/runs/): a number edited by hand, or a report left behind by a change of the report
code, fails here. After such a change, `optima-repro report --runs reports/runs` rebuilds them
with no run repeated."""

import shutil
from pathlib import Path

import pytest

from harness.report import write_reports
from harness.report.published import PUBLISHED

REPORTS = Path(__file__).parent.parent / "reports"
RUNS = REPORTS / "runs"


def test_committed_reports_are_built_from_the_committed_records(tmp_path):
    if not any(RUNS.glob("*/*/*/seed-*/record.json")):
        pytest.skip("no run records committed under reports/runs")
    shutil.copy(REPORTS / PUBLISHED, tmp_path / PUBLISHED)
    built = write_reports(RUNS, tmp_path)
    committed = {p.name: REPORTS / p.name for p in built}
    stale = [
        name
        for name, path in committed.items()
        if not path.exists() or path.read_text() != (tmp_path / name).read_text()
    ]
    assert not stale, f"reports/{stale} differ from what reports/runs builds: " + (
        "`optima-repro report --runs reports/runs` rebuilds them"
    )
