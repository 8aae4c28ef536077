"""Golden numerics: a smoke study of each task, reproduced digit for digit from values made on
this project's own kinds of machine (tests/golden/numerics.json, one entry per CPU vendor),
in portable mode.

A difference here means the arithmetic of a run changed: a change of code, of a package, of
the kernels or threads (harness/numerics.py), or a machine that portable mode does not cover.
Regenerate the file only for an intended change of numerics, and say so in the commit:
`OPTIMA_UPDATE_GOLDEN=1 pytest tests/test_golden_numerics.py` (it rewrites this vendor's entry
and keeps the others: regenerate each vendor's on a machine of that vendor)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.numerics import cpu_model, cpu_vendor
from harness.tasks import cards

TASKS = sorted(cards())

GOLDEN = Path(__file__).parent / "golden" / "numerics.json"
UPDATE = os.environ.get("OPTIMA_UPDATE_GOLDEN") == "1"
# every training loop (pre-training, teacher, distillation) capped: the same code paths and
# kernels as a full smoke study in a fraction of its time; 24 steps = 3 of the 6 rounds
MAX_STEPS = 24


def _measure(task: str, workdir: Path, reports: Path) -> dict:
    argv = ["reproduce", task, "--preset", "smoke", "--seeds", "0", "--schedulers", "optima"]
    argv += ["--max-steps", str(MAX_STEPS)]
    # the reading the golden values were made with (a later default changes the digits)
    argv += ["--set", "distill.layer_loss_norm=none"]
    assert main([*argv, "--quiet", "--workdir", str(workdir), "--reports", str(reports)]) == 0
    (path,) = workdir.glob(f"runs/{task}/*/optima/seed-0/record.json")
    record = json.loads(path.read_text())
    assert record["provenance"]["numerics"]["portable"] is True
    return {
        "config_hash": record["config_hash"],
        "teacher": record["teacher"]["metrics"]["primary"],
        "metric": record["metrics"]["primary"],
        "rewards": [r["reward"] for r in record["rounds"]],
        "active": [r["active"] for r in record["rounds"]],
    }


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("golden")
    found = {t: _measure(t, base / "work", base / "reports") for t in sorted(TASKS)}
    if UPDATE:
        known = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        entry = {"made_on": cpu_model(), **found}
        GOLDEN.write_text(json.dumps({**known, cpu_vendor(): entry}, indent=1) + "\n")
    return found


# Values are kept per CPU vendor, each exact on its own vendor's machines. Measured (issue 19):
# an AMD EPYC's values reproduced on an Intel Xeon for VQA and COCO but not NLVR2 and SNLI-VE
# (7th digit of a round's reward); an Intel Xeon's reproduce on the CI machines (all four)
# and differ on an AMD EPYC (all four, 7th digit of round 0's reward, teachers' metrics
# equal). Some kernel still follows the CPU vendor: digits are portable within a vendor as far
# as measured, not across vendors. `optima-repro numerics --compare` on two machines names
# the kernels whose bits differ.
def _golden() -> dict:
    known = json.loads(GOLDEN.read_text())
    if cpu_vendor() not in known:
        pytest.skip(
            f"no golden values for CPU vendor {cpu_vendor()} (kept for {sorted(known)}): "
            "OPTIMA_UPDATE_GOLDEN=1 adds them"
        )
    return known[cpu_vendor()]


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_smoke_study_reproduces_golden_values_exactly(measured, task):
    golden = _golden()[task]
    got = measured[task]
    assert got["config_hash"] == golden["config_hash"], "the smoke preset changed: regenerate"
    assert got["active"] == golden["active"]
    # floats compared exactly: JSON keeps every digit of a double
    assert got["teacher"] == golden["teacher"]
    assert got["rewards"] == golden["rewards"]
    assert got["metric"] == golden["metric"]
