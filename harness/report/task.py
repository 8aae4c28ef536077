"""One task's report, `reports/<task>.md`: the verdict, the main table with paired intervals
to `uniform`, per-seed values, rewards, figures, failed and missing runs and provenance."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness import atomic  # looked up at each write: a test stands in a full disk
from harness.records import StudyRecords
from harness.report.display import (
    BASELINE,
    by_scheduler,
    ordered_schedulers,
    scheduler_rank,
    task_spec,
)
from harness.report.figures import FIGURES, figure_links, write_figures
from harness.report.provenance import mixed_numerics, provenance_lines, readings, setup_line
from harness.report.published import Published
from harness.report.tables import POWER_HEADER, interval, mean_std, num, power_cells, table
from harness.stats import POWER, describe_method, describe_power, paired_interval, paired_power
from harness.tasks import Display


def _lookup(metrics: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    v: Any = metrics
    for key in path:
        if not isinstance(v, Mapping) or key not in v:
            return None
        v = v[key]
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _value(spec: Display, metrics: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    """A secondary metric as the table shows it (fractions in %, as the primary metric)."""
    v = _lookup(metrics, path)
    return 100 * v if v is not None and path in spec.fractions else v


def how_to_read() -> str:
    return (
        "**How to read this report.** Each row is one module scheduler, run on the same "
        "seeds: a seed fixes the data order, the student's initialisation and the reward set, "
        "so the rows differ only in which modules are distilled. Metrics are the mean ± "
        "sample standard deviation over the n seeds that completed. Δ uniform is the row "
        "minus `uniform` on the same seed, averaged over the seeds both completed, with its "
        f"{describe_method()}. An interval that excludes 0 is a difference the seeds "
        f"support; one that straddles 0 is not. Beside it, {describe_power()}; the "
        "table's note names the unit of a point. wins counts the seeds where the row beats "
        "`uniform` (a tie is no win). published quotes `reports/published.toml` with its "
        "source; it is comparable only for the paper preset on the real data. Every number "
        "and figure here comes from the run records alone: `optima-repro report` rebuilds "
        "this file from them."
    )


def write_task_report(
    study: StudyRecords, reports_dir: Path, published: Mapping[str, Published] | None = None
) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    text, figures = render_task(study, reports_dir, published or {})
    for name in FIGURES:  # a figure the records no longer support must not linger
        if name not in figures:
            (reports_dir / f"{study.task}-{name}.png").unlink(missing_ok=True)
    out = reports_dir / f"{study.task}.md"
    atomic.write_text(out, text)
    return out


def render_task(
    study: StudyRecords, reports_dir: Path, published: Mapping[str, Published]
) -> tuple[str, set[str]]:
    """The markdown, and the names of the figures written beside it."""
    spec = task_spec(study.task)
    lines = [f"# {spec.title}: OPTIMA against layer-uniform and random module selection", ""]
    lines += [how_to_read(), ""]
    if not study.records:
        lines += ["No run records were found for this task.", ""]
        lines += _runs_not_complete(study)
        return "\n".join(lines) + "\n", set()
    first = (study.complete or study.records)[0]
    lines += [f"**Verdict.** {verdict(study, spec)}", ""]
    names = ordered_schedulers(
        [r.scheduler for r in study.records] + [m.scheduler for m in study.missing]
    )
    lines += [setup_line(first, "none" in names), ""]
    lines += [readings(study.records), ""]
    lines += mixed_numerics(study)
    lines += _main_table(study, spec, names, published)
    lines += _per_seed(study, spec, names)
    figures = write_figures(study, names, reports_dir)
    lines += _reward_table(study, names)
    lines += figure_links(study.task, figures)
    lines += _runs_not_complete(study)
    if study.others:
        lines += ["", "## Other studies of this task (not in these tables)", ""]
        lines += [f"- {o}" for o in study.others]
    lines += provenance_lines(study)
    return "\n".join(lines) + "\n", figures


def verdict(study: StudyRecords, spec: Display) -> str:
    """The study's answer in one sentence: does `optima` beat `uniform` on the seeds both
    completed, by the paired interval of the main table."""
    base = {r.seed: r.primary for r in by_scheduler(study.complete, BASELINE)}
    done = by_scheduler(study.complete, "optima")
    pairs = [(r.primary, base[r.seed]) for r in done if r.seed in base]
    if len(pairs) < 2:
        return (
            f"None: `optima` and `{BASELINE}` completed {len(pairs)} common "
            "seed(s); a paired interval needs two."
        )
    a, b = zip(*pairs, strict=True)
    iv, power = paired_interval(a, b), paired_power(a, b)
    assert iv.low is not None and iv.high is not None
    if iv.low > 0:
        answer = f"OPTIMA beats `{BASELINE}` on this study"
    elif iv.high < 0:
        answer = f"OPTIMA does worse than `{BASELINE}` on this study"
    else:
        answer = f"this study cannot tell OPTIMA from `{BASELINE}`"
    detect = (
        ""
        if not power.detectable
        else f"; these seeds find a true difference of {num(power.detectable, spec.digits)} "
        f"{POWER:.0%} of the time"
    )
    return (
        f"On {len(pairs)} paired seeds, {answer}: optima - {BASELINE} = "
        f"{interval(iv, spec.digits)} (a point is {spec.point}{detect})."
    )


def _main_table(
    study: StudyRecords, spec: Display, names: list[str], published: Mapping[str, Published]
) -> list[str]:
    first = study.complete[0] if study.complete else None
    sec = [
        (label, path)
        for label, path in spec.secondary
        if first is None or path != (first.primary_key,)
    ]
    d = spec.digits
    sources: list[str] = []

    def pub(row: str) -> str:
        if row not in published:
            return ""
        if published[row].source not in sources:
            sources.append(published[row].source)
        return f"{num(published[row].value, d)} [{sources.index(published[row].source) + 1}]"

    header = ["row", "n", "primary", *(label for label, _ in sec)]
    header += ["Δ uniform (95% interval)", *POWER_HEADER, "wins vs uniform", "published"]
    rows = []
    if first is not None:
        t = first.teacher_metrics
        t_sec = [_value(spec, t, path) for _, path in sec]
        rows.append(
            ["teacher", "1", num(float(t["primary"]), d)]
            + [num(v, d) if v is not None else "–" for v in t_sec]
            + ["", "", "", "", pub("teacher")]
        )
        for label, m in first.reference_rows:
            rows.append(
                [label, "1", num(float(m["primary"]), d)]
                + [
                    num(v, d) if (v := _value(spec, m, path)) is not None else "–"
                    for _, path in sec
                ]
                + ["", "", "", "", ""]
            )
    base = {r.seed: r.primary for r in by_scheduler(study.complete, BASELINE)}
    for name in names:
        done = by_scheduler(study.complete, name)
        asked = len(by_scheduler(study.records, name)) + sum(
            m.scheduler == name for m in study.missing
        )
        n = str(len(done)) if len(done) == asked else f"{len(done)} of {asked}"
        row = [name, n, mean_std([r.primary for r in done], d)]
        for _, path in sec:
            row.append(
                mean_std([v for r in done if (v := _value(spec, r.metrics, path)) is not None], d)
            )
        pairs = [(r.primary, base[r.seed]) for r in done if r.seed in base]
        if name == BASELINE:
            row += ["", "", "", ""]
        elif not pairs:
            row += ["– (no seed pairs with uniform)", "", "", ""]
        else:
            a, b = zip(*pairs, strict=True)
            row.append(interval(paired_interval(a, b), d))
            row += power_cells(a, b, d)
            row.append(f"{sum(x > y for x, y in pairs)}/{len(pairs)}")
        row.append(pub(name))
        rows.append(row)
    lines = ["## Main table", ""] + table(header, rows) + [""]
    lines += [f"One point (seeds for 1 point) is {spec.point}.", ""]
    if sources:
        lines += [
            "Published numbers: " + "; ".join(f"[{i}] {s}" for i, s in enumerate(sources, 1)) + "."
        ]
    else:
        lines += ["Published numbers: none given in `reports/published.toml`."]
    return lines


def _per_seed(study: StudyRecords, spec: Display, names: list[str]) -> list[str]:
    """One line per seed, one column per row: a study has up to tens of seeds, a few rows."""
    seeds = sorted({r.seed for r in study.records} | {m.seed for m in study.missing})
    missing = {(m.scheduler, m.seed) for m in study.missing}
    done = {(r.scheduler, r.seed): r for r in study.records}
    lines = []
    for s in seeds:
        cells = []
        for name in names:
            r = done.get((name, s))
            if r is not None:
                cells.append(num(r.primary, spec.digits) if r.complete else "failed")
            else:
                cells.append("missing" if (name, s) in missing else "–")
        lines.append([str(s), *cells])
    return ["", "## Per seed (primary metric)", ""] + table(["seed", *names], lines)


def _reward_table(study: StudyRecords, names: list[str]) -> list[str]:
    rows = []
    for name in names:
        recs = [r for r in by_scheduler(study.complete, name) if r.rounds]
        if not recs:
            continue
        length = min(len(r.rounds) for r in recs)
        rewards = np.array([[x.reward for x in r.rounds[:length]] for r in recs])
        rows.append(
            [
                name,
                f"{rewards[:, 0].mean():.4f}",
                f"{rewards[:, -1].mean():.4f}",
                f"{rewards.mean():.4f}",
            ]
        )
    if not rows:
        return []
    header = ["row", "first round", "last round", "mean over rounds"]
    return ["", "## Reward per round (mean over seeds)", ""] + table(header, rows)


def _runs_not_complete(study: StudyRecords) -> list[str]:
    lines = ["", "## Failed and missing runs", ""]
    rows = []
    for r in study.failed:
        assert r.error is not None
        where = [f"round {r.error.round}" if r.error.round is not None else ""]
        where += [f"step {r.error.step}" if r.error.step is not None else ""]
        at = ", ".join(w for w in where if w)
        reason = r.error.message.splitlines()[0] if r.error.message else "no message"
        rows.append([r.scheduler, str(r.seed), "failed", reason + (f" ({at})" if at else "")])
    for m in study.missing:
        rows.append([m.scheduler, str(m.seed), "missing", m.reason])
    if not rows:
        n = len(study.records)
        return lines + [f"None: all {n} runs of this study completed."]
    rows.sort(key=lambda row: (scheduler_rank(row[0]), int(row[1])))
    return lines + table(["row", "seed", "status", "reason"], rows)
