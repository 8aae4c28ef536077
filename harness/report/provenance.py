"""The lines that say how a study's runs were made, from their records: the set-up, the
reading of the method, the numerics warning and the Provenance section. Records that differ
show each value with its count, so mixed provenance is never hidden behind the first run's."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness import numerics
from harness.config import CARD_LR, LR_EVIDENCE
from harness.records import RunRecord, StudyRecords
from harness.report.tables import cell


def _distinct(values: Iterable[Any]) -> str:
    """One value, or each value with how many records carry it (mixed provenance shows)."""
    counts = Counter(str(v) for v in values)
    if len(counts) == 1:
        return next(iter(counts))
    return "; ".join(f"{v} ({n} runs)" for v, n in sorted(counts.items()))


def setup_line(r: RunRecord, with_none: bool) -> str:
    """`with_none`: the report has a `none` row, which the line then defines."""
    c = r.config
    precision = str(c.resolved.get("precision", "fp32"))
    none = " `none` is the student trained on the task alone (a1 = 1, a2 = a3 = 0)."
    return (
        f"Preset `{c.preset}`, data: {r.provenance.data.source}. Teacher `{c.teacher_model}`, "
        f"student `{c.student}`; T = {c.steps} steps in P = {c.rounds} rounds, "
        f"T0 = {c.warmup_rounds}, gamma = {c.gamma}, a = {c.alpha}.{none if with_none else ''}"
        f" Metric: {r.metric_name} on `{c.eval_split}`. "
        f"Precision: {PRECISIONS.get(precision, precision)}."
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
    if lr == CARD_LR:
        return f"{lr:g} (the card's value)"
    why = LR_EVIDENCE.get((r.config.preset, lr))
    return f"{lr:g} (not the card's {CARD_LR:g}{'; ' + why if why else ''})"


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


def provenance_lines(study: StudyRecords) -> list[str]:
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


def mixed_numerics(study: StudyRecords) -> list[str]:
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
    return lines + [f"  - {cell(e)}" for e in skipped]


def _kv(d: Mapping[str, Any], sep: str = "=") -> str:
    return ", ".join(f"{k}{sep}{v}" for k, v in d.items())
