"""Ablations of OPTIMA's reconstructed ([ours]) choices: one option changed at a time, on the
study's data, teacher and seeds, so each row differs from OPTIMA's default reading in that
option alone (issue 9; spec/optima.md §4).

The default reading and `uniform` are the main study's own runs (shared, not re-run); every
other variant is a study of its own under `<workdir>/ablations/<task>/`, out of the main
report's sight. `reports/ablations-<task>.md` is a pure function of the records.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import write_text
from harness.config import (
    LAYER_LOSS_NORMS,
    REWARD_BASELINES,
    StudyConfig,
    apply_overrides,
    config_hash,
)
from harness.errors import ConfigError
from harness.records import RunRecord, read_record_file
from harness.report import readings, task_spec
from harness.report.tables import POWER_HEADER, interval, mean_std, power_cells, table
from harness.runs import RECORD, run_dir
from harness.stats import describe_method, describe_power, paired_interval

REFERENCE = "optima"


@dataclass(frozen=True)
class Variant:
    name: str
    changed: str  # what differs from OPTIMA's default reading, in words
    scheduler: str = "optima"
    overrides: tuple[str, ...] = ()
    shared: bool = False  # runs in the main study (its `reproduce` grid has this scheduler)


def variants(cfg: StudyConfig, modules: Sequence[str]) -> list[Variant]:
    """The ablation grid of issue 9 for this study's config."""
    d = cfg.distill
    out = [
        Variant(REFERENCE, "none: OPTIMA's default reading", shared=True),
        Variant(
            "uniform",
            "scheduler: layer-uniform KD (every module, every round)",
            "uniform",
            shared=True,
        ),
        Variant(
            "reward-absolute", "reward = R_before - R_after", overrides=("distill.reward=absolute",)
        ),
        Variant(
            "reward-loss-pred",
            "reward objective: L_pred only",
            overrides=("distill.reward_loss=pred",),
        ),
        Variant(
            "reward-loss-module",
            "reward objective: the active modules' terms",
            overrides=("distill.reward_loss=module",),
        ),
        Variant(
            "posterior-beta",
            "posterior: Beta (Bernoulli trick)",
            overrides=("distill.posterior=beta",),
        ),
        Variant(
            "arms-subsets",
            "arms: every non-empty module subset",
            overrides=("distill.arms=subsets",),
        ),
        Variant("warmup-random", "warm-up: arms at random", overrides=("distill.warmup=random",)),
        Variant(
            "warmup-all", "warm-up: every module, unrewarded", overrides=("distill.warmup=all",)
        ),
    ]
    # the other value(s) of each reading issue 14 added, whichever is the default
    readings = [
        ("reward_baseline", "reward-baseline", REWARD_BASELINES, "reward baseline: {}"),
        ("warmup", "warmup", ("round-robin", "shuffled"), "warm-up: {} order"),
        ("layer_loss_norm", "layer-norm", LAYER_LOSS_NORMS,
         "layer loss normalised: {}"),
        ("layer_loss_positions", "layer-positions", ("non-pad", "all"),
         "layer loss over positions: {}"),
    ]  # fmt: skip
    for field, prefix, values, words in readings:
        for value in values:
            if value != getattr(d, field):
                out.append(
                    Variant(
                        f"{prefix}-{value}",
                        words.format(value),
                        overrides=(f"distill.{field}={value}",),
                    )
                )
    if d.reward_skip_rounds == 0 and d.warmup_rounds > 0:
        out.append(
            Variant(
                "reward-skip-warmup",
                f"warm-up rewards (rounds < {d.warmup_rounds}) left out of the posterior",
                overrides=(f"distill.reward_skip_rounds={d.warmup_rounds}",),
            )
        )
    for gamma in (0.9, 1.0):
        if gamma != d.gamma:
            out.append(
                Variant(f"gamma-{gamma}", f"gamma = {gamma}", overrides=(f"distill.gamma={gamma}",))
            )
    for rounds in (d.rounds // 2, d.rounds * 2):
        if rounds >= d.warmup_rounds and rounds > 0 and d.steps % rounds == 0:
            out.append(
                Variant(
                    f"rounds-{rounds}",
                    f"P = {rounds} rounds of {d.steps // rounds} steps",
                    overrides=(f"distill.rounds={rounds}",),
                )
            )
    out += [Variant(f"single:{m}", f"scheduler: always `{m}`", f"single:{m}") for m in modules]
    return out


def select(all_variants: list[Variant], only: str | None) -> list[Variant]:
    """`--only a,b`: those variants (the reference always kept, for the paired differences)."""
    if not only:
        return all_variants
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {v.name for v in all_variants}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"--only: unknown variants {unknown}; expected names from {sorted(known)}"
        )
    return [v for v in all_variants if v.name == REFERENCE or v.name in names]


def variant_study(study, variant: Variant, workdir: Path):
    """The study a variant runs in: the main one for a shared variant, else a copy whose config
    carries its overrides and whose runs live under `<workdir>/ablations/`, out of the main
    report. Data, tokenizer, teacher and its cached outputs are shared: no override touches
    them."""
    if variant.shared:
        return study
    cfg = apply_overrides(study.cfg, list(variant.overrides))
    if cfg.teacher != study.cfg.teacher or cfg.pretrain != study.cfg.pretrain:
        raise ConfigError(f"ablation {variant.name}: an override may not change the teacher")
    key = config_hash({"config": cfg.to_dict(), "data": study.data.sha256})
    folder = workdir / "ablations" / cfg.task / f"{variant.name.replace(':', '-')}-{key}"
    return dataclasses.replace(study, cfg=cfg, study_dir=folder)


def run_ablation(
    study, chosen: list[Variant], seeds: list[int], workdir: Path, progress: bool, executor
):
    """Run every variant x seed through `executor` (harness/executors.py), one grid of them
    all (complete runs are skipped); returns (variant, study dir)."""
    pairs = [(v, variant_study(study, v, workdir)) for v in chosen]
    for v, _ in pairs:
        print(f"ablation {v.name}: {v.changed}")
    executor.run_grids([(vs, [(v.scheduler, n) for n in seeds]) for v, vs in pairs], progress)
    return [(v, vs.study_dir) for v, vs in pairs]


def load_variant(v: Variant, study_dir: Path, seeds: Iterable[int]) -> list[RunRecord | None]:
    recs = []
    for seed in seeds:
        path = run_dir(study_dir, v.scheduler, seed) / RECORD
        recs.append(read_record_file(path) if path.is_file() else None)
    return recs


def _selection_share(recs: list[RunRecord], modules: Sequence[str]) -> str:
    """How often each module was active over all rounds of all seeds."""
    counts: Counter[str] = Counter()
    rounds = 0
    for r in recs:
        for x in r.rounds:
            counts.update(x.active)
            rounds += 1
    if not rounds:
        return "–"
    return " / ".join(f"{100 * counts[m] / rounds:.0f}" for m in modules)


def same_choices(recs: Sequence[RunRecord], reference: Sequence[RunRecord]) -> bool:
    """Whether `recs` chose the same modules as `reference` in every round of every seed both
    completed (at least one): a variant whose option never changed a choice."""
    ref = {r.seed: [x.active for x in r.rounds] for r in reference}
    paired = [r for r in recs if r.seed in ref]
    return bool(paired) and all(
        r.rounds and [x.active for x in r.rounds] == ref[r.seed] for r in paired
    )


def render(
    task: str,
    rows: list[tuple[Variant, list[RunRecord | None]]],
    seeds: list[int],
    modules: Sequence[str],
) -> str:
    spec = task_spec(task)
    d = spec.digits
    done = {v.name: [r for r in recs if r is not None and r.complete] for v, recs in rows}
    ref = {r.seed: r.primary for r in done.get(REFERENCE, [])}
    everything = [r for recs in done.values() for r in recs]
    lines = [f"# {spec.title}: ablations of OPTIMA's reconstructed choices", ""]
    lines += [
        "**How to read this report.** Each row changes one thing in OPTIMA's default reading "
        "(the `optima` row, the main study's runs) and keeps the data, teacher, student "
        "initialisation, data order and reward set of each seed. Metrics are the mean ± "
        "sample standard deviation over the seeds that completed; Δ optima is the row minus "
        f"`optima` on the same seed, with its {describe_method()}. An interval that excludes "
        f"0 is a difference the seeds support. Beside it, {describe_power()}; one point is "
        f"{spec.point}. A variant that chose the same modules as `optima` in every round of "
        "every seed says so instead of an interval: its option changed no choice. Selection "
        "share is how often each module was "
        f"distilled, in % of rounds ({' / '.join(f'`{m}`' for m in modules) or 'none'}). "
        "Every number comes from the run records: `optima-repro ablate` rebuilds this file "
        "from them without re-running.",
        "",
    ]
    first = everything[0] if everything else None
    if first is not None:
        c = first.config
        lines += [
            f"Preset `{c.preset}`, data: {first.provenance.data.source}. Teacher "
            f"`{c.teacher_model}` ({spec.title} {first.metric_name}: "
            f"{float(first.teacher_metrics['primary']):.{d}f}), student `{c.student}`; default "
            f"reading T = {c.steps}, P = {c.rounds}, T0 = {c.warmup_rounds}, gamma = {c.gamma}. "
            f"Seeds {', '.join(map(str, seeds))}.",
            "",
            readings(done.get(REFERENCE) or everything, "Readings of the `optima` row"),
            "",
        ]
    header = ["variant", "changed", "n", "primary", "Δ optima (95% interval)", *POWER_HEADER]
    header.append("wins vs optima")
    header.append("selection share (%)")
    body = []
    missing = []
    for v, recs in rows:
        ok = done[v.name]
        for seed, r in zip(seeds, recs, strict=True):
            if r is None:
                missing.append(f"- `{v.name}` seed {seed}: no record")
            elif not r.complete:
                why = r.error.message.splitlines()[0] if r.error else "no message"
                missing.append(f"- `{v.name}` seed {seed}: failed ({why})")
        n = str(len(ok)) if len(ok) == len(seeds) else f"{len(ok)} of {len(seeds)}"
        row = [f"`{v.name}`", v.changed, n, mean_std([r.primary for r in ok], d)]
        pairs = [(r.primary, ref[r.seed]) for r in ok if r.seed in ref]
        if v.name == REFERENCE:
            row += ["", "", "", ""]
        elif not pairs:
            row += ["– (no seed pairs with optima)", "", "", ""]
        else:
            a, b = zip(*pairs, strict=True)
            wins = f"{sum(x > y for x, y in pairs)}/{len(pairs)}"
            if same_choices(ok, done.get(REFERENCE, [])):
                same = "same choices as optima in every round"
                if all(x == y for x, y in pairs):
                    row += [f"{same} (identical metric on every seed)", "–", "–", wins]
                else:
                    row += [f"{same}; {interval(paired_interval(a, b), d)}"]
                    row += [*power_cells(a, b, d), wins]
            else:
                row += [interval(paired_interval(a, b), d), *power_cells(a, b, d), wins]
        row.append(_selection_share(ok, modules))
        body.append(row)
    lines += ["## Variants", ""] + table(header, body) + [""]
    lines += ["## Failed and missing runs", ""]
    lines += missing or [f"None: all {len(rows) * len(seeds)} runs completed."]
    wall = sum(r.timing.get("wall_seconds", 0.0) for recs in done.values() for r in recs)
    lines += ["", "## Provenance", ""]
    if first is not None:
        p = first.provenance
        lines += [
            f"- git `{p.git_commit}`; data sha256 `{p.data.sha256}`",
            f"- teacher key `{first.teacher_key}`",
            f"- device `{p.device}`, torch threads {p.torch_threads}",
        ]
    lines += [f"- run wall time: {wall:.0f} s over {sum(len(x) for x in done.values())} runs", ""]
    return "\n".join(lines)


def write_report(
    task: str, results, seeds: list[int], modules: Sequence[str], reports_dir: Path
) -> tuple[Path, bool]:
    """The report, and whether every run of every variant completed."""
    rows = [(v, load_variant(v, folder, seeds)) for v, folder in results]
    reports_dir.mkdir(parents=True, exist_ok=True)
    out = reports_dir / f"ablations-{task}.md"
    write_text(out, render(task, rows, seeds, modules))
    complete = all(r is not None and r.complete for _, recs in rows for r in recs)
    return out, complete
