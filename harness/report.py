"""Reports from run records alone (spec/harness.md §7, a contract): `reports/<task>.md` with its
figures beside it, and `reports/summary.md` across tasks.

A report is a pure function of the records (read through `harness.records`, the typed schema)
and `reports/published.toml`: no clocks, no absolute output paths, fixed figure sizes and no
PNG software stamp, so the same records give byte-identical files. Never imports models.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from harness import numerics  # noqa: E402
from harness.config import CARD_LR  # noqa: E402
from harness.errors import UserError  # noqa: E402
from harness.records import (  # noqa: E402
    Grid,
    RunRecord,
    Study,
    group_studies,
    load_records,
    parse_record,
)
from harness.stats import (  # noqa: E402
    MAX_SEEDS,
    POWER,
    Interval,
    describe_method,
    describe_power,
    mean_std,
    paired_interval,
    paired_power,
)
from harness.tasks import Display, cards  # noqa: E402

ORDER = ("optima", "uniform", "random", "none")
BASELINE = "uniform"
PUBLISHED = "published.toml"
SUMMARY = "summary.md"
FIGURES = ("module-selection", "rewards", "posterior", "curves")
DPI = 100
MODE = 0o644  # mkstemp makes files private; reports are meant to be read


def task_spec(task: str) -> Display:
    """How the task's report shows it: its card's, or the bare name for an unregistered one."""
    known = cards()
    return known[task].display if task in known else Display(task)


@dataclass(frozen=True)
class Published:
    value: float
    source: str


# -- entry points


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
        write_task_report(studies[t], reports_dir, published.get(t, {})) for t in _tasks(studies)
    ]
    paths.append(write_summary(studies, reports_dir))
    return paths


def task_report(task: str, records: Iterable[dict | None], reports_dir: Path) -> Path:
    """One task's report from in-memory record dicts (what `run_grid` returns)."""
    parsed = [
        parse_record(r, Path(f"<{task}/{r.get('scheduler')}/seed-{r.get('seed')}>"))
        for r in records
        if r
    ]
    study = group_studies([r for r in parsed if r.task == task]).get(task)
    study = study or Study(task, (), (), ())
    published = load_published(Path(reports_dir) / PUBLISHED)
    return write_task_report(study, Path(reports_dir), published.get(task, {}))


def _tasks(studies: Mapping[str, Study]) -> list[str]:
    known = cards()
    return [t for t in known if t in studies] + sorted(set(studies) - set(known))


def _rank(name: str) -> tuple[int, str]:
    return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name)


def _schedulers(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=_rank)


# -- published numbers


def load_published(path: Path) -> dict[str, dict[str, Published]]:
    """`[<task>.<row>]` tables with `primary` and `source`; absent file -> no numbers."""
    if not path.is_file():
        return {}
    text = path.read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        if not any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
            return {}
        raise UserError(f"{path}: reading published numbers needs Python >= 3.11") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: malformed TOML: {e}") from e
    out: dict[str, dict[str, Published]] = {}
    for task, rows in data.items():
        if not isinstance(rows, dict):
            raise UserError(f"{path}, [{task}]: expected a table of rows, got {rows!r}")
        for row, entry in rows.items():
            where = f"{path}, [{task}.{row}]"
            if not isinstance(entry, dict):
                raise UserError(f"{where}: expected a table with primary and source")
            value, source = entry.get("primary"), entry.get("source")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UserError(f"{where}, field 'primary': expected a number, got {value!r}")
            if not isinstance(source, str) or not source.strip():
                raise UserError(f"{where}, field 'source': every number needs its source")
            out.setdefault(task, {})[row] = Published(float(value), source.strip())
    return out


# -- formatting


def _num(v: float, digits: int) -> str:
    return f"{v:.{digits}f}"


def _signed(v: float, digits: int) -> str:
    text = f"{v:+.{digits}f}"
    return _num(0.0, digits) if float(text) == 0 else text


def _mean_std(values: Sequence[float], digits: int) -> str:
    if not values:
        return "–"
    m, s = mean_std(values)
    return _num(m, digits) if s is None else f"{_num(m, digits)} ± {_num(s, digits)}"


def _interval(iv: Interval, digits: int) -> str:
    if iv.low is None or iv.high is None:
        return f"{_signed(iv.mean, digits)} (one seed: no interval)"
    low, high = _signed(iv.low, digits), _signed(iv.high, digits)
    return f"{_signed(iv.mean, digits)} [{low}, {high}] {iv.method}"


def power_cells(a: Sequence[float], b: Sequence[float], digits: int) -> list[str]:
    """The two cells beside a paired difference's interval: the difference detectable at 80%
    power with these seeds, and the seeds a 1-point difference would need."""
    p = paired_power(a, b)
    if p.sd is None:
        return ["– (one seed)", "–"]
    if p.sd == 0:
        return ["– (no spread)", "–"]
    assert p.detectable is not None
    seeds = f"> {MAX_SEEDS:,}" if p.seeds_for_point is None else f"{p.seeds_for_point:,}"
    return [_num(p.detectable, digits), seeds]


POWER_HEADER = [f"detectable Δ ({POWER:.0%} power)", "seeds for 1 point"]


def _cell(text: Any) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


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


def _distinct(values: Iterable[Any]) -> str:
    """One value, or each value with how many records carry it (mixed provenance shows)."""
    counts = Counter(str(v) for v in values)
    if len(counts) == 1:
        return next(iter(counts))
    return "; ".join(f"{v} ({n} runs)" for v, n in sorted(counts.items()))


# -- the task report


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
    study: Study, reports_dir: Path, published: Mapping[str, Published] | None = None
) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    text, figures = render_task(study, reports_dir, published or {})
    for name in FIGURES:  # a figure the records no longer support must not linger
        if name not in figures:
            (reports_dir / f"{study.task}-{name}.png").unlink(missing_ok=True)
    out = reports_dir / f"{study.task}.md"
    write_text_atomic(out, text)
    return out


def render_task(
    study: Study, reports_dir: Path, published: Mapping[str, Published]
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
    lines += [_setup(first), ""]
    lines += [readings(study.records), ""]
    lines += _mixed_numerics(study)
    names = _schedulers([r.scheduler for r in study.records] + [m.scheduler for m in study.missing])
    lines += _main_table(study, spec, names, published)
    lines += _per_seed(study, spec, names)
    figures = _figures(study, names, reports_dir)
    lines += _reward_table(study, names)
    lines += _figure_links(study.task, figures)
    lines += _runs_not_complete(study)
    if study.others:
        lines += ["", "## Other studies of this task (not in these tables)", ""]
        lines += [f"- {o}" for o in study.others]
    lines += _provenance(study)
    return "\n".join(lines) + "\n", figures


def verdict(study: Study, spec: Display) -> str:
    """The study's answer in one sentence: does `optima` beat `uniform` on the seeds both
    completed, by the paired interval of the main table."""
    base = {r.seed: r.primary for r in _by_scheduler(study.complete, BASELINE)}
    done = _by_scheduler(study.complete, "optima")
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
        else f"; these seeds find a true difference of {_num(power.detectable, spec.digits)} "
        f"{POWER:.0%} of the time"
    )
    return (
        f"On {len(pairs)} paired seeds, {answer}: optima - {BASELINE} = "
        f"{_interval(iv, spec.digits)} (a point is {spec.point}{detect})."
    )


def _setup(r: RunRecord) -> str:
    c = r.config
    precision = str(c.resolved.get("precision", "fp32"))
    return (
        f"Preset `{c.preset}`, data: {r.provenance.data.source}. Teacher `{c.teacher_model}`, "
        f"student `{c.student}`; T = {c.steps} steps in P = {c.rounds} rounds, "
        f"T0 = {c.warmup_rounds}, gamma = {c.gamma}, a = {c.alpha}. `none` is the student "
        "trained on the task alone (a1 = 1, a2 = a3 = 0). Metric: "
        f"{r.metric_name} on `{c.eval_split}`. Precision: {PRECISIONS.get(precision, precision)}."
    )


# the [ours] options a readings line names (by prefix): how the reward is formed, how the
# bandit warms up, how the layer loss is taken, and how the student starts
READING_PREFIXES = ("reward", "warmup", "layer", "student_init")


def readings(records: Sequence[RunRecord], label: str = "Readings") -> str:
    """One line naming the reading of the method the runs used: the distillation learning rate
    against the card's, and the reward, warm-up, layer-loss and initialisation options (every
    [ours] option is under Provenance). Records that differ show each value with its count."""
    lr = _distinct(_lr(r) for r in records)
    options = _distinct(
        _kv({k: v for k, v in r.provenance.ours_options.items() if k.startswith(READING_PREFIXES)})
        or "none recorded"
        for r in records
    )
    init = _distinct(_init(r) for r in records)
    return f"**{label}.** Distillation lr {lr}; {options}; student initialisation: {init}."


def _lr(r: RunRecord) -> str:
    lr = r.config.resolved.get("distill", {}).get("lr")
    if isinstance(lr, bool) or not isinstance(lr, int | float):
        return "not recorded"
    same = "the card's value" if lr == CARD_LR else f"not the card's {CARD_LR:g}"
    return f"{lr:g} ({same})"


def _init(r: RunRecord) -> str:
    s = r.provenance.student_init
    if not s:
        return "not recorded"
    copied, kept = s.get("copied_modules") or [], s.get("random_modules") or []
    if s.get("option") != "teacher-layers":
        return f"{s.get('option')} (no teacher layers copied)"
    if not copied:
        return "teacher-layers, but no module's width matches the teacher's: all random"
    text = f"teacher-layers, copied into {', '.join(copied)} ({s.get('copied_parameters')} tensors)"
    return text + (f"; {', '.join(kept)} random (another width)" if kept else "")


# a record's `precision` (records made before the field have none: float32)
PRECISIONS = {
    "fp32": "float32",
    "bf16": "bfloat16 autocast (float32 weights and optimizer state)",
}


def _by_scheduler(records: Iterable[RunRecord], name: str) -> list[RunRecord]:
    return sorted((r for r in records if r.scheduler == name), key=lambda r: r.seed)


def _main_table(
    study: Study, spec: Display, names: list[str], published: Mapping[str, Published]
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
        return f"{_num(published[row].value, d)} [{sources.index(published[row].source) + 1}]"

    header = ["row", "n", "primary", *(label for label, _ in sec)]
    header += ["Δ uniform (95% interval)", *POWER_HEADER, "wins vs uniform", "published"]
    rows = []
    if first is not None:
        t = first.teacher_metrics
        t_sec = [_value(spec, t, path) for _, path in sec]
        rows.append(
            ["teacher", "1", _num(float(t["primary"]), d)]
            + [_num(v, d) if v is not None else "–" for v in t_sec]
            + ["", "", "", "", pub("teacher")]
        )
        for label, m in first.reference_rows:
            rows.append(
                [label, "1", _num(float(m["primary"]), d)]
                + [
                    _num(v, d) if (v := _value(spec, m, path)) is not None else "–"
                    for _, path in sec
                ]
                + ["", "", "", "", ""]
            )
    base = {r.seed: r.primary for r in _by_scheduler(study.complete, BASELINE)}
    for name in names:
        done = _by_scheduler(study.complete, name)
        asked = len(_by_scheduler(study.records, name)) + sum(
            m.scheduler == name for m in study.missing
        )
        n = str(len(done)) if len(done) == asked else f"{len(done)} of {asked}"
        row = [name, n, _mean_std([r.primary for r in done], d)]
        for _, path in sec:
            row.append(
                _mean_std([v for r in done if (v := _value(spec, r.metrics, path)) is not None], d)
            )
        pairs = [(r.primary, base[r.seed]) for r in done if r.seed in base]
        if name == BASELINE:
            row += ["", "", "", ""]
        elif not pairs:
            row += ["– (no seed pairs with uniform)", "", "", ""]
        else:
            a, b = zip(*pairs, strict=True)
            row.append(_interval(paired_interval(a, b), d))
            row += power_cells(a, b, d)
            row.append(f"{sum(x > y for x, y in pairs)}/{len(pairs)}")
        row.append(pub(name))
        rows.append(row)
    lines = ["## Main table", ""] + _table(header, rows) + [""]
    lines += [f"One point (seeds for 1 point) is {spec.point}.", ""]
    if sources:
        lines += [
            "Published numbers: " + "; ".join(f"[{i}] {s}" for i, s in enumerate(sources, 1)) + "."
        ]
    else:
        lines += ["Published numbers: none given in `reports/published.toml`."]
    return lines


def _per_seed(study: Study, spec: Display, names: list[str]) -> list[str]:
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
                cells.append(_num(r.primary, spec.digits) if r.complete else "failed")
            else:
                cells.append("missing" if (name, s) in missing else "–")
        lines.append([str(s), *cells])
    return ["", "## Per seed (primary metric)", ""] + _table(["seed", *names], lines)


def _reward_table(study: Study, names: list[str]) -> list[str]:
    rows = []
    for name in names:
        recs = [r for r in _by_scheduler(study.complete, name) if r.rounds]
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
    return ["", "## Reward per round (mean over seeds)", ""] + _table(header, rows)


def _runs_not_complete(study: Study) -> list[str]:
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
    rows.sort(key=lambda row: (_rank(row[0]), int(row[1])))
    return lines + _table(["row", "seed", "status", "reason"], rows)


def _provenance(study: Study) -> list[str]:
    recs = study.records
    p = [r.provenance for r in recs]
    first = recs[0]
    dirty = " (uncommitted changes)" if any(x.git_dirty for x in p) else ""
    packages = sorted({k for x in p for k in x.packages})
    complete = study.complete
    wall = sum(r.timing.get("wall_seconds", 0.0) for r in recs)
    lines = [
        "",
        "## Provenance",
        "",
        f"- records: {len(complete)} complete, {len(study.failed)} failed, "
        f"{len(study.missing)} missing; record schema {_distinct(r.schema_version for r in recs)}",
        f"- config hash `{_distinct(r.config_hash for r in recs)}`; teacher "
        f"`{first.config.teacher_model}`, key `{_distinct(r.teacher_key for r in recs)}`",
        f"- git `{_distinct(x.git_commit for x in p)}`{dirty}",
        "- packages: "
        + ", ".join(f"{k} {_distinct(x.packages.get(k) for x in p)}" for k in packages),
        f"- python {_distinct(x.python for x in p)}, platform `{_distinct(x.platform for x in p)}`",
        f"- device `{_distinct(x.device for x in p)}`, CPU `{_distinct(_cpu(x) for x in p)}`",
        f"- numerics: {_distinct(numerics.describe(x.numerics) for x in p)}",
        f"- data: {_distinct(x.data.source for x in p)} at `{_distinct(x.data.root for x in p)}`; "
        f"splits {_distinct(_kv(x.data.splits) for x in p)}",
        f"- data sha256 `{_distinct(x.data.sha256 for x in p)}`",
        *_skipped_lines(p),
        f"- tokenizer sha256 `{_distinct(x.data.tokenizer_sha256 for x in p)}`",
        f"- evaluator: {_distinct(_kv(x.evaluator, ': ') for x in p)}",
        f"- [ours] options (the reading of the method these runs used): "
        f"{_distinct(_kv(x.ours_options) for x in p)}",
    ]
    if any(x.optimizer for x in p):
        lines.append(f"- optimizer: {_distinct(_kv(x.optimizer, ': ') for x in p)}")
    lines += [f"- run wall time: {wall:.0f} s over {len(recs)} runs", ""]
    return lines


def _cpu(p: Any) -> str:
    found = p.numerics
    return f"{found['cpu']} ({', '.join(found['cpu_flags'])})" if found else p.platform


def _mixed_numerics(study: Study) -> list[str]:
    """Records of one study from different kernels or thread counts: their digits differ by
    arithmetic alone, so the report says so at the top (and `report` warns)."""
    kinds = numerics.mixed([r.provenance.numerics for r in study.records])
    if not kinds:
        return []
    print(
        f"warning: {study.task}: its records come from {len(kinds)} different numerics",
        file=sys.stderr,
    )
    return [
        f"**Warning: these records come from {len(kinds)} different numerics**, so their digits "
        "differ by arithmetic as well as by method (see Provenance):",
        "",
        *[f"- {k}" for k in kinds],
        "",
    ]


def _skipped_lines(p: Sequence[Any]) -> list[str]:
    """With --skip-bad-records: how many records the readers left out, and which."""
    lists = {x.data.skipped_records for x in p if x.data.skipped_records is not None}
    if not lists:
        return []
    skipped = sorted({e for errors in lists for e in errors})
    lines = [f"- bad records skipped (`--skip-bad-records`): {len(skipped)}"]
    return lines + [f"  - {_cell(e)}" for e in skipped]


def _kv(d: Mapping[str, Any], sep: str = "=") -> str:
    return ", ".join(f"{k}{sep}{v}" for k, v in d.items())


# -- figures


def _figure_links(task: str, figures: set[str]) -> list[str]:
    captions = {
        "module-selection": (
            "Module selection",
            "Share of seeds that distilled each module in each round, stacked, one panel per "
            "scheduler (`uniform` distils every module every round; `none` none).",
        ),
        "rewards": (
            "Rewards",
            "Reward per round: relative drop of the reward-set objective; line: mean over "
            "seeds, band: min to max.",
        ),
        "posterior": (
            "OPTIMA posterior",
            "Posterior mean of each arm's reward when the round's modules were chosen; "
            "line: mean over seeds, band: min to max; gaps before an arm's first reward.",
        ),
        "curves": (
            "Training curves",
            "Primary metric measured during training (where the records have it) and the "
            "loss terms, each the mean over a round's steps, against steps; line: mean over "
            "seeds, band: min to max.",
        ),
    }
    lines = []
    for name in FIGURES:
        if name in figures:
            title, caption = captions[name]
            lines += ["", f"## {title}", "", caption, "", f"![{title}]({task}-{name}.png)"]
    return lines


def _figures(study: Study, names: list[str], reports_dir: Path) -> set[str]:
    done = {n: _by_scheduler(study.complete, n) for n in names}
    done = {n: [r for r in rs if r.rounds] for n, rs in done.items()}
    done = {n: rs for n, rs in done.items() if rs}
    if not done:
        return set()
    makers: dict[str, Callable[[dict[str, list[RunRecord]]], plt.Figure | None]] = {
        "module-selection": _selection_figure,
        "rewards": _reward_figure,
        "posterior": _posterior_figure,
        "curves": _curves_figure,
    }
    written = set()
    with plt.style.context("default"):
        for name, make in makers.items():
            fig = make(done)
            if fig is not None:
                save_figure(fig, reports_dir / f"{study.task}-{name}.png")
                written.add(name)
    return written


def save_figure(fig: plt.Figure, path: Path) -> None:
    """PNG without a software stamp, written to a temp file and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI, metadata={"Software": None})
        os.chmod(tmp, MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


def _color(name: str, names: Sequence[str]) -> Any:
    colors = plt.get_cmap("tab10").colors
    known = [*ORDER, *sorted(set(names) - set(ORDER))]
    return colors[known.index(name) % len(colors)]


def _modules(records: Iterable[RunRecord]) -> list[str]:
    """Modules in the order the records name their layer losses (the model's order)."""
    order: list[str] = []
    for r in records:
        for x in r.rounds:
            for key in x.train:
                m = key.removeprefix("layer/")
                if key.startswith("layer/") and m not in order:
                    order.append(m)
            for m in x.active:
                if m not in order:
                    order.append(m)
    return order


def _band(ax: Any, points: list[tuple[float, float]], label: str, color: Any) -> None:
    """Mean line and min-max band over seeds of (x, y) points pooled across runs."""
    by_x: dict[float, list[float]] = {}
    for x, y in points:
        if y is not None and np.isfinite(y):
            by_x.setdefault(x, []).append(y)
    if not by_x:
        return
    xs = np.array(sorted(by_x))
    ys = [np.array(by_x[x]) for x in xs]
    ax.plot(xs, [y.mean() for y in ys], color=color, label=label, linewidth=1.5, marker=".")
    ax.fill_between(
        xs, [y.min() for y in ys], [y.max() for y in ys], color=color, alpha=0.2, linewidth=0
    )


def _margins(
    fig: plt.Figure, left: float, right: float, top: float, bottom: float, **space: float
) -> None:
    """Fixed margins in inches: cheaper than tight_layout (most of a report's time) and
    independent of text extents, so a figure's layout depends on its size alone."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h, **space
    )


def _integer_x(ax: Any) -> None:
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def _selection_figure(done: dict[str, list[RunRecord]]) -> plt.Figure | None:
    panels = {n: rs for n, rs in done.items() if any(x.active for r in rs for x in r.rounds)}
    if not panels:
        return None
    modules = _modules(r for rs in panels.values() for r in rs)
    colors = plt.get_cmap("tab10").colors
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels) + 0.9), squeeze=False)
    for ax, (name, recs) in zip(axes[:, 0], panels.items(), strict=True):
        n_rounds = min(len(r.rounds) for r in recs)
        share = np.zeros((len(modules), n_rounds))
        for r in recs:
            for p, x in enumerate(r.rounds[:n_rounds]):
                for m in x.active:
                    share[modules.index(m), p] += 1 / len(recs)
        bottom = np.zeros(n_rounds)
        for i, m in enumerate(modules):
            ax.bar(np.arange(n_rounds), share[i], bottom=bottom, color=colors[i % 10], label=m)
            bottom += share[i]
        ax.set_title(f"{name} ({len(recs)} seeds)", fontsize="medium")
        ax.set_ylabel("share of seeds (stacked)")
        ax.set_ylim(0, max(1.0, float(bottom.max())) * 1.05)
        _integer_x(ax)
    axes[-1, 0].set_xlabel("round")
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    _margins(fig, left=0.75, right=1.6, top=0.35, bottom=0.55, hspace=0.45)
    return fig


def _reward_figure(done: dict[str, list[RunRecord]]) -> plt.Figure | None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, recs in done.items():
        points = [(x.index, x.reward) for r in recs for x in r.rounds]
        _band(ax, points, f"{name} ({len(recs)})", _color(name, list(done)))
    ax.set_xlabel("round")
    ax.set_ylabel("reward")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    _integer_x(ax)
    ax.legend(fontsize="small")
    _margins(fig, left=0.75, right=0.2, top=0.2, bottom=0.55)
    return fig


def _posterior_figure(done: dict[str, list[RunRecord]]) -> plt.Figure | None:
    recs = [r for r in done.get("optima", []) if any(x.bandit for x in r.rounds)]
    if not recs:
        return None
    arms = sorted({a for r in recs for x in r.rounds if x.bandit for a in x.bandit.posterior_means})
    modules = _modules(recs)
    arms.sort(key=lambda a: (modules.index(a) if a in modules else len(modules), a))
    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, arm in enumerate(arms):
        points = [
            (x.index, x.bandit.posterior_means.get(arm))
            for r in recs
            for x in r.rounds
            if x.bandit is not None
        ]
        _band(ax, points, arm, colors[i % 10])
    if not ax.lines:  # no finite posterior yet (runs cut short by `--max-steps`)
        plt.close(fig)
        return None
    ax.set_title(f"optima: posterior mean per arm ({len(recs)} seeds)", fontsize="medium")
    ax.set_xlabel("round")
    ax.set_ylabel("posterior mean reward")
    _integer_x(ax)
    ax.legend(fontsize="small")
    _margins(fig, left=0.75, right=0.2, top=0.35, bottom=0.55)
    return fig


def _curves_figure(done: dict[str, list[RunRecord]]) -> plt.Figure | None:
    all_recs = [r for rs in done.values() for r in rs]
    terms = _loss_terms(all_recs)
    has_eval = any(x.eval for r in all_recs for x in r.rounds)
    panels = (["primary metric"] if has_eval else []) + terms
    if not panels:
        return None
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows + 0.85), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for name, recs in done.items():
            if panel == "primary metric":  # evaluations during training, then the final one
                points = [(x.eval.step, x.eval.primary) for r in recs for x in r.rounds if x.eval]
                points += [(r.config.round_steps * len(r.rounds), r.primary) for r in recs]
            else:
                points = [
                    ((x.index + 1) * r.config.round_steps, x.train.get(panel))
                    for r in recs
                    for x in r.rounds
                ]
            _band(ax, points, name, _color(name, list(done)))
        ax.set_title(panel, fontsize="medium")
        ax.set_xlabel("step")
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize="small")
    _margins(fig, left=0.5, right=0.1, top=0.35, bottom=0.5, hspace=0.42, wspace=0.22)
    return fig


def _loss_terms(records: list[RunRecord]) -> list[str]:
    order: list[str] = []
    for r in records:
        for x in r.rounds:
            order += [k for k in x.train if k not in order]
    return order


# -- the summary across tasks


def write_summary(studies: Mapping[str, Study], reports_dir: Path) -> Path:
    tasks = _tasks(studies)
    names = _schedulers(
        [r.scheduler for s in studies.values() for r in s.records]
        + [m.scheduler for s in studies.values() for m in s.missing]
    )
    rows = []
    firsts = {t: (studies[t].complete or studies[t].records or (None,))[0] for t in tasks}
    teacher = ["teacher"]
    for t in tasks:
        f = firsts[t]
        d = task_spec(t).digits
        teacher.append(_num(float(f.teacher_metrics["primary"]), d) if f and f.complete else "–")
    rows.append(teacher)
    for name in names:
        row = [name]
        for t in tasks:
            vals = [r.primary for r in _by_scheduler(studies[t].complete, name)]
            row.append(f"{_mean_std(vals, task_spec(t).digits)} (n={len(vals)})" if vals else "–")
        rows.append(row)
    done = ["runs complete"]
    for t in tasks:
        s = studies[t]
        done.append(f"{len(s.complete)}/{len(s.records) + len(s.missing)}")
    rows.append(done)
    lines = [
        "# Summary: OPTIMA against layer-uniform and random module selection",
        "",
        "**How to read this summary.** One column per task, one row per module scheduler: "
        "the task's primary metric, mean ± sample standard deviation over the n seeds that "
        "completed (the teacher is a single model). The last row counts complete runs out of "
        "those expected. Paired differences to `uniform` with their intervals, per-seed "
        "values, figures, failed runs and provenance are in each task's report. Built from "
        "run records alone by `optima-repro report`.",
        "",
    ]
    lines += _table(["row", *(task_spec(t).title for t in tasks)], rows)
    lines += ["", "Verdicts (each task report's first line):", ""]
    lines += [f"- {task_spec(t).title}: {verdict(studies[t], task_spec(t))}" for t in tasks]
    lines += ["", "Metrics:", ""]
    for t in tasks:
        f = firsts[t]
        what = (
            f"{f.metric_name} on `{f.config.eval_split}`, preset `{f.config.preset}`"
            if f
            else "no records"
        )
        lines.append(f"- {task_spec(t).title}: {what}; report: [{t}.md]({t}.md)")
    out = reports_dir / SUMMARY
    write_text_atomic(out, "\n".join(lines) + "\n")
    return out


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
