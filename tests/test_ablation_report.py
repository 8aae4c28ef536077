"""The ablation report from records built here: a variant that chose what `optima` chose in
every round says so instead of a collapsed interval, and every difference carries its power."""

from pathlib import Path

import pytest
from test_report import MODULES, record

from harness.records import parse_record
from harness.tools.ablation import REFERENCE, Variant, render, same_choices


def _records(name: str, primaries: list[float], active=None) -> list:
    out = []
    for seed, value in enumerate(primaries):
        r = record("optima", seed, value)
        if active is not None:
            for p, x in enumerate(r["rounds"]):
                x["active"] = active(p, seed)
        out.append(parse_record(r, Path(f"<{name}/seed-{seed}>")))
    return out


def _row(text: str, name: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if cells[0] == f"`{name}`":
            return cells
    raise AssertionError(f"no row {name!r}")


OPTIMA = [65.0, 63.25, 66.5]


@pytest.fixture(scope="module")
def text() -> str:
    rows = [
        (Variant(REFERENCE, "none", shared=True), _records(REFERENCE, OPTIMA)),
        # gamma changed nothing the bandit chose: the same runs
        (Variant("gamma-1.0", "gamma = 1.0"), _records("gamma-1.0", OPTIMA)),
        # same choices, yet another metric (an option acting outside the bandit)
        (
            Variant("positions-all", "layer loss on all positions"),
            _records("p", [66.0, 63.0, 67.25]),
        ),
        (
            Variant("warmup-random", "warm-up: arms at random"),
            _records("w", [66.0, 65.5, 66.0], active=lambda p, s: [MODULES[(p + s + 1) % 3]]),
        ),
    ]
    return render("vqa", rows, [0, 1, 2], MODULES)


def test_same_choices_say_so_instead_of_a_zero_interval(text):
    row = _row(text, "gamma-1.0")
    assert row[4] == "same choices as optima in every round (identical metric on every seed)"
    assert row[5:8] == ["–", "–", "0/3"]
    assert "0.00 [0.00, 0.00]" not in text


def test_same_choices_with_another_metric_keep_the_interval(text):
    row = _row(text, "positions-all")
    assert row[4].startswith("same choices as optima in every round; +0.50 [")
    assert row[5] != "–" and row[7] == "2/3"


def test_other_choices_get_an_interval_and_power(text):
    row = _row(text, "warmup-random")
    assert row[4].startswith("+0.92 [") and row[4].endswith("] t")
    assert row[5].replace(".", "").isdigit() and row[6].isdigit()
    assert "detectable Δ (80% power) | seeds for 1 point" in text
    assert "one percentage point of accuracy" in text


def test_same_choices_needs_a_paired_seed():
    optima = _records(REFERENCE, OPTIMA)
    assert same_choices(optima[:2], optima)
    assert not same_choices(optima[:2], optima[2:])  # no seed in common
    other = _records("w", OPTIMA, active=lambda p, s: [MODULES[(p + 1) % 3]])
    assert not same_choices(other, optima)


def test_the_reading_of_the_reference_is_named(text):
    assert "**Readings of the `optima` row.** Distillation lr not recorded; reward=relative" in text
