"""Numbers as report text and markdown tables, shared by the task report, the summary and the
ablation report so that a number reads the same in all of them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness import stats


def num(v: float, digits: int) -> str:
    return f"{v:.{digits}f}"


def signed(v: float, digits: int) -> str:
    text = f"{v:+.{digits}f}"
    return num(0.0, digits) if float(text) == 0 else text


def mean_std(values: Sequence[float], digits: int) -> str:
    if not values:
        return "–"
    m, s = stats.mean_std(values)
    return num(m, digits) if s is None else f"{num(m, digits)} ± {num(s, digits)}"


def interval(iv: stats.Interval, digits: int) -> str:
    if iv.low is None or iv.high is None:
        return f"{signed(iv.mean, digits)} (one seed: no interval)"
    low, high = signed(iv.low, digits), signed(iv.high, digits)
    return f"{signed(iv.mean, digits)} [{low}, {high}] {iv.method}"


def power_cells(a: Sequence[float], b: Sequence[float], digits: int) -> list[str]:
    """The two cells beside a paired difference's interval: the difference detectable at 80%
    power with these seeds, and the seeds a 1-point difference would need."""
    p = stats.paired_power(a, b)
    if p.sd is None:
        return ["– (one seed)", "–"]
    if p.sd == 0:
        return ["– (no spread)", "–"]
    assert p.detectable is not None
    seeds = f"> {stats.MAX_SEEDS:,}" if p.seeds_for_point is None else f"{p.seeds_for_point:,}"
    return [num(p.detectable, digits), seeds]


POWER_HEADER = [f"detectable Δ ({stats.POWER:.0%} power)", "seeds for 1 point"]


def cell(text: Any) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines
