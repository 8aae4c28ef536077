"""The run record (spec/harness.md §6, a contract): one typed, versioned schema for the writer
and the reader.

`harness.runs` builds a `RunRecord` and writes its `to_json()`; `parse_record` is the one
place that JSON is read back, and gives the same JSON again (the writer checks this on every
record it writes). The reader checks `schema_version` first, so a record from another version
of the harness stops the report with a message naming the file, not a KeyError halfway
through a table. It imports no torch and no models: a report is a function of records alone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from operator import getitem
from pathlib import Path
from typing import Any

from harness.config import COMPARED
from harness.errors import UserError

SCHEMA_VERSION = 1  # the version `harness.runs` writes and this reader understands
RECORD = "record.json"
STATUSES = ("complete", "failed")


class RecordError(UserError):
    """A record the report cannot read: names the file and the field, says what was expected."""

    def __init__(self, file: Path | str, message: str, field: str | None = None) -> None:
        self.file, self.field = str(file), field
        where = self.file if field is None else f"{self.file}, field {field!r}"
        super().__init__(f"{where}: {message}")


class DamagedRecord(RecordError):
    """A record whose bytes are not UTF-8 JSON (a crash, a bad disk), not a wrong field."""

    def __init__(self, file: Path | str, problem: str) -> None:
        self.problem = problem
        super().__init__(file, problem)


@dataclass(frozen=True)
class Damaged:
    """A damaged `record.json`, placed by its path: <task>/<study>/<scheduler>/seed-<n>/."""

    path: Path
    scheduler: str
    seed: int
    problem: str

    @property
    def study_dir(self) -> Path:
        return self.path.parents[2]

    @property
    def task(self) -> str:
        return self.path.parents[3].name


@dataclass(frozen=True)
class Eval:
    """The primary metric measured during training, at the end of a round."""

    step: int
    primary: float

    def to_json(self) -> dict:
        return {"step": self.step, "primary": self.primary}


@dataclass(frozen=True)
class BanditTrace:
    """What a bandit scheduler knew when it chose the round's modules (OPTIMA)."""

    phase: str
    arm: str | None
    posterior_means: dict[str, float | None]
    samples: dict[str, float | None]
    counts: dict[str, float]


@dataclass(frozen=True)
class Round:
    index: int
    active: tuple[str, ...]
    reward: float
    objective_before: float
    objective_after: float
    train: dict[str, float]  # mean loss terms over the round: loss, task, pred, layer/<module>
    reward_set: dict[str, float]
    lr: float
    scheduler: dict[str, Any]  # the scheduler's own trace of its choice (`trace()`), as written
    eval: Eval | None = None

    @property
    def bandit(self) -> BanditTrace | None:
        """The trace of a scheduler that keeps a posterior (OPTIMA); None for the others."""
        s = self.scheduler
        if "posterior_means" not in s:
            return None
        samples, counts = s.get("samples", {}), s.get("counts", {})
        return BanditTrace(s["phase"], s.get("arm"), s["posterior_means"], samples, counts)

    def to_json(self) -> dict:
        out = {
            "round": self.index,
            "active": list(self.active),
            "reward": self.reward,
            "objective_before": self.objective_before,
            "objective_after": self.objective_after,
            "train": self.train,
            "reward_set": self.reward_set,
            "lr": self.lr,
            "scheduler": self.scheduler,
        }
        if self.eval is not None:
            out["eval"] = self.eval.to_json()
        return out


class _Quoted(property):
    """A field of the resolved config that the report quotes: where it sits, and the reader's
    check for it (`_config` runs every one when a record is read)."""

    def __init__(self, kind: str, *path: str) -> None:
        super().__init__(lambda self: reduce(getitem, path, self.resolved))
        self.kind, self.path = kind, path


@dataclass(frozen=True)
class RecordConfig:
    """The resolved study config as written (`StudyConfig.to_dict()`); the fields the report
    quotes are read through properties, checked when the record is read."""

    resolved: dict[str, Any] = field(repr=False)

    preset = _Quoted("text", "preset")
    eval_split = _Quoted("text", "eval_split")
    teacher_model = _Quoted("text", "teacher", "model")
    student = _Quoted("text", "distill", "student")
    steps = _Quoted("integer", "distill", "steps")
    rounds = _Quoted("integer", "distill", "rounds")
    warmup_rounds = _Quoted("integer", "distill", "warmup_rounds")
    gamma = _Quoted("num", "distill", "gamma")

    @property
    def alpha(self) -> tuple[float, ...]:
        return tuple(self.resolved["distill"]["alpha"])

    @property
    def round_steps(self) -> int:
        return self.steps // self.rounds


@dataclass(frozen=True)
class DataProvenance:
    root: str
    source: str
    sha256: str
    splits: dict[str, int]
    tokenizer_sha256: str | None
    pretrained: str | None = None  # the pre-trained CoCa's folder, when the teacher had one
    skipped_records: tuple[str, ...] | None = None  # with --skip-bad-records: each one's error

    def to_json(self) -> dict:
        out = {
            "root": self.root,
            "source": self.source,
            "sha256": self.sha256,
            "splits": self.splits,
            "tokenizer_sha256": self.tokenizer_sha256,
            "pretrained": self.pretrained,
        }
        if self.skipped_records is not None:
            out["skipped_records"] = list(self.skipped_records)
        return out


@dataclass(frozen=True)
class Provenance:
    git_commit: str | None
    git_dirty: bool | None
    packages: dict[str, str | None]
    python: str
    platform: str
    device: str
    torch_threads: int | None
    numerics: dict[str, Any]  # harness.numerics.settle's findings
    data: DataProvenance
    evaluator: dict[str, Any]
    ours_options: dict[str, Any]
    optimizer: dict[str, Any]
    # option, copied_modules, random_modules, copied_parameters (harness.runs.init_student);
    # {} when the run failed before its student was built
    student_init: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "git": {"commit": self.git_commit, "dirty": self.git_dirty},
            "packages": self.packages,
            "python": self.python,
            "platform": self.platform,
            "device": self.device,
            "torch_threads": self.torch_threads,
            "numerics": self.numerics,
            "data": self.data.to_json(),
            "evaluator": self.evaluator,
            "ours_options": self.ours_options,
            "optimizer": self.optimizer,
            "student_init": self.student_init,
        }


@dataclass(frozen=True)
class RunError:
    message: str
    round: int | None = None
    step: int | None = None
    terms: tuple[str, ...] | None = None  # a non-finite loss: the terms that were not finite
    traceback: str | None = None  # an exception: where it was raised

    def to_json(self) -> dict:
        out: dict[str, Any] = {"message": self.message}
        for key in ("round", "step", "terms", "traceback"):
            if (v := getattr(self, key)) is not None:
                out[key] = list(v) if key == "terms" else v
        return out


@dataclass(frozen=True)
class RunRecord:
    """One run's record, as `harness.runs` writes it (`to_json`) and the report reads it back
    (`parse_record`): the one definition of record.json (spec/harness.md §6)."""

    path: Path
    schema_version: int
    task: str
    scheduler: str
    seed: int
    status: str
    config: RecordConfig
    config_hash: str
    metric_name: str
    primary_key: str
    teacher_key: str
    teacher_metrics: dict[str, Any]
    reference_rows: tuple[tuple[str, dict[str, Any]], ...]  # e.g. a trivial baseline's metrics
    metrics: dict[str, Any]  # empty on a failed run
    rounds: tuple[Round, ...]
    timing: dict[str, float | None]
    provenance: Provenance
    resumed_from_round: int | None  # the round a resumed run started from
    backend: dict[str, Any]  # device kind, data-parallel ranks, XLA compilations
    error: RunError | None

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def primary(self) -> float | None:
        return self.metrics.get("primary") if self.complete else None

    @property
    def study_key(self) -> tuple[str, str, str]:
        """Runs of one study share task, config and data (the study folder's key)."""
        return self.task, self.config_hash, self.provenance.data.sha256

    def to_json(self) -> dict:
        out = {
            "schema_version": self.schema_version,
            "task": self.task,
            "scheduler": self.scheduler,
            "seed": self.seed,
            "status": self.status,
            "config": self.config.resolved,
            "config_hash": self.config_hash,
            "metric": {"name": self.metric_name, "primary": self.primary_key},
            "teacher": {"key": self.teacher_key, "metrics": self.teacher_metrics},
            "reference_rows": [{"row": r, "metrics": m} for r, m in self.reference_rows],
            "metrics": self.metrics,
            "rounds": [x.to_json() for x in self.rounds],
            "timing": self.timing,
            "provenance": self.provenance.to_json(),
            "resumed_from_round": self.resumed_from_round,
        }
        if self.error is not None:
            out["error"] = self.error.to_json()
        out["backend"] = self.backend
        return out


@dataclass(frozen=True)
class Grid:
    """The runs a study was asked for, so the report can list those that wrote no record.

    Rows may have different seeds (the compared rows more, harness/config.COMPARED). Without
    a grid, a study's expected runs are inferred from its records alone: a compared row every
    seed seen in the study, another row every seed seen up to the highest it has."""

    config_hash: str
    runs: tuple[tuple[str, int], ...]  # (scheduler, seed), seed-major
    data_sha256: str | None = None

    @classmethod
    def of(
        cls,
        config_hash: str,
        seeds: Mapping[str, Iterable[int]],
        data_sha256: str | None = None,
    ) -> Grid:
        """From each row's seeds, in run order: by seed, then by row."""
        everyone = sorted({n for row in seeds.values() for n in row})
        runs = tuple((s, n) for n in everyone for s, row in seeds.items() if n in set(row))
        return cls(config_hash, runs, data_sha256)

    def matches(self, key: tuple[str, str, str]) -> bool:
        return key[1] == self.config_hash and self.data_sha256 in (None, key[2])


@dataclass(frozen=True)
class Missing:
    scheduler: str
    seed: int
    reason: str


@dataclass(frozen=True)
class StudyRecords:
    """One task's records as a report sees them: the runs, the gaps, the studies left out."""

    task: str
    records: tuple[RunRecord, ...]
    missing: tuple[Missing, ...]
    others: tuple[str, ...]  # other studies of this task found under the runs folder

    @property
    def complete(self) -> tuple[RunRecord, ...]:
        return tuple(r for r in self.records if r.complete)

    @property
    def failed(self) -> tuple[RunRecord, ...]:
        return tuple(r for r in self.records if not r.complete)


# -- field readers: each names the record and the field when the value is not what we expect


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, expected: str, got: Any) -> RecordError:
        return RecordError(self.path, f"expected {expected}, got {_show(got)}", where)

    def obj(self, d: Mapping, key: str, where: str) -> dict:
        v = self.get(d, key, where)
        if not isinstance(v, dict):
            raise self.fail(where, "an object", v)
        return v

    def get(self, d: Mapping, key: str, where: str) -> Any:
        if key not in d:
            raise RecordError(self.path, "missing", where)
        return d[key]

    def text(self, d: Mapping, key: str, where: str, optional: bool = False) -> str | None:
        v = d.get(key) if optional else self.get(d, key, where)
        if v is None and optional:
            return None
        if not isinstance(v, str):
            raise self.fail(where, "a string", v)
        return v

    def integer(self, d: Mapping, key: str, where: str, optional: bool = False) -> int | None:
        v = d.get(key) if optional else self.get(d, key, where)
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(where, "an integer", v)
        return v

    def num(self, d: Mapping, key: str, where: str) -> float:
        return self.number(self.get(d, key, where), where)

    def number(self, v: Any, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(where, "a number", v)
        return float(v)

    def numbers(self, d: Mapping, key: str, where: str, nullable: bool = False) -> dict:
        out = {}
        for k, v in self.obj(d, key, where).items():
            out[k] = None if v is None and nullable else self.number(v, f"{where}.{k}")
        return out


def _show(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def check_version(obj: Any, path: Path) -> int:
    """The first check on any record: its schema version is the one this reader knows."""
    if not isinstance(obj, dict):
        raise RecordError(path, f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise RecordError(
            path,
            f"no integer schema version (got {_show(version)}); this report reads records of "
            f"schema {SCHEMA_VERSION} written by `optima-repro reproduce`",
            "schema_version",
        )
    if version < SCHEMA_VERSION:
        raise RecordError(
            path,
            f"record schema {version} is older than the schema {SCHEMA_VERSION} this report "
            "reads; re-run the grid with this version of optima-repro (complete runs of an "
            "older schema are re-run, not skipped), or report them with the version that "
            "wrote them",
            "schema_version",
        )
    if version > SCHEMA_VERSION:
        raise RecordError(
            path,
            f"record schema {version} is newer than the schema {SCHEMA_VERSION} this report "
            "reads; upgrade optima-repro to report it",
            "schema_version",
        )
    return version


def parse_record(obj: Any, path: Path) -> RunRecord:
    """A record's JSON (`RunRecord.to_json()`, as `harness.runs` writes it) -> RunRecord, or a
    RecordError naming the field. Lossless for what the writer writes: `to_json()` of the
    result gives `obj` back (`harness.runs.write_record` checks it on every record)."""
    version = check_version(obj, path)
    r = _Reader(path)
    _check_finite(r, obj)
    status = r.text(obj, "status", "status")
    if status not in STATUSES:
        raise r.fail("status", " or ".join(map(repr, STATUSES)), status)
    metric = r.obj(obj, "metric", "metric")
    teacher = r.obj(obj, "teacher", "teacher")
    metrics = r.obj(obj, "metrics", "metrics")
    complete = status == "complete"
    if complete:
        r.num(metrics, "primary", "metrics.primary")
    r.num(r.obj(teacher, "metrics", "teacher.metrics"), "primary", "teacher.metrics.primary")
    rounds = obj.get("rounds", [])
    if not isinstance(rounds, list):
        raise r.fail("rounds", "a list", rounds)
    return RunRecord(
        path=path,
        schema_version=version,
        task=r.text(obj, "task", "task"),
        scheduler=r.text(obj, "scheduler", "scheduler"),
        seed=r.integer(obj, "seed", "seed"),
        status=status,
        config=_config(r, r.obj(obj, "config", "config")),
        config_hash=r.text(obj, "config_hash", "config_hash"),
        metric_name=r.text(metric, "name", "metric.name"),
        primary_key=r.text(metric, "primary", "metric.primary"),
        teacher_key=r.text(teacher, "key", "teacher.key"),
        teacher_metrics=r.obj(teacher, "metrics", "teacher.metrics"),
        reference_rows=tuple(
            (
                r.text(x, "row", f"reference_rows[{i}].row"),
                r.obj(x, "metrics", f"reference_rows[{i}].metrics"),
            )
            for i, x in enumerate(obj.get("reference_rows", []))
        ),
        metrics=metrics,
        rounds=tuple(_round(r, x, f"rounds[{i}]") for i, x in enumerate(rounds)),
        timing=r.numbers(obj, "timing", "timing", nullable=True) if "timing" in obj else {},
        provenance=_provenance(r, r.obj(obj, "provenance", "provenance")),
        resumed_from_round=r.integer(obj, "resumed_from_round", "resumed_from_round", True),
        backend=r.obj(obj, "backend", "backend") if "backend" in obj else {},
        error=None if complete else _error(r, obj.get("error")),
    )


def _check_finite(r: _Reader, obj: Any) -> None:
    """Records are written without NaN or infinity; Python's json reads a hand-edited one."""
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        where, v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise r.fail(where, "a finite number", v)
        if isinstance(v, dict):
            stack += [(f"{where}.{k}" if where else str(k), x) for k, x in v.items()]
        elif isinstance(v, list):
            stack += [(f"{where}[{i}]", x) for i, x in enumerate(v)]


def _config(r: _Reader, c: dict) -> RecordConfig:
    for quoted in vars(RecordConfig).values():
        if isinstance(quoted, _Quoted):
            *sections, leaf = quoted.path
            where = c
            for i, key in enumerate(sections):
                where = r.obj(where, key, "config." + ".".join(sections[: i + 1]))
            getattr(r, quoted.kind)(where, leaf, "config." + ".".join(quoted.path))
    alpha = r.get(c["distill"], "alpha", "config.distill.alpha")
    if not isinstance(alpha, list):
        raise r.fail("config.distill.alpha", "a list of numbers", alpha)
    for a in alpha:
        r.number(a, "config.distill.alpha")
    if c["distill"]["rounds"] < 1:
        raise r.fail("config.distill.rounds", "at least 1", c["distill"]["rounds"])
    return RecordConfig(c)


def parse_round(obj: Any, path: Path, where: str = "round") -> Round:
    """One round as `Round.to_json()` wrote it (a record's, or a checkpoint's state.json)."""
    return _round(_Reader(path), obj, where)


def _round(r: _Reader, x: Any, where: str) -> Round:
    if not isinstance(x, dict):
        raise r.fail(where, "an object", x)
    active = r.get(x, "active", f"{where}.active")
    if not isinstance(active, list) or not all(isinstance(m, str) for m in active):
        raise r.fail(f"{where}.active", "a list of module names", active)
    sched = r.obj(x, "scheduler", f"{where}.scheduler")
    if "posterior_means" in sched:  # a bandit's trace: the fields `Round.bandit` reads
        w = f"{where}.scheduler"
        r.text(sched, "phase", f"{w}.phase")
        r.text(sched, "arm", f"{w}.arm", optional=True)
        r.numbers(sched, "posterior_means", f"{w}.posterior_means", True)
        if "samples" in sched:
            r.numbers(sched, "samples", f"{w}.samples", True)
        if "counts" in sched:
            r.numbers(sched, "counts", f"{w}.counts")
    ev = None
    if x.get("eval") is not None:
        e = r.obj(x, "eval", f"{where}.eval")
        ev = Eval(r.integer(e, "step", f"{where}.eval.step"), r.num(e, "primary", f"{where}.eval"))
    return Round(
        index=r.integer(x, "round", f"{where}.round"),
        active=tuple(active),
        reward=r.num(x, "reward", f"{where}.reward"),
        objective_before=r.num(x, "objective_before", f"{where}.objective_before"),
        objective_after=r.num(x, "objective_after", f"{where}.objective_after"),
        train=r.numbers(x, "train", f"{where}.train"),
        reward_set=r.numbers(x, "reward_set", f"{where}.reward_set"),
        lr=r.num(x, "lr", f"{where}.lr"),
        scheduler=sched,
        eval=ev,
    )


def _provenance(r: _Reader, p: dict) -> Provenance:
    git = r.obj(p, "git", "provenance.git")
    data = r.obj(p, "data", "provenance.data")
    splits = r.obj(data, "splits", "provenance.data.splits")
    dirty = git.get("dirty")
    if dirty is not None and not isinstance(dirty, bool):
        raise r.fail("provenance.git.dirty", "true, false or null", dirty)
    return Provenance(
        git_commit=r.text(git, "commit", "provenance.git.commit", optional=True),
        git_dirty=dirty,
        packages=r.obj(p, "packages", "provenance.packages"),
        python=r.text(p, "python", "provenance.python"),
        platform=r.text(p, "platform", "provenance.platform"),
        device=r.text(p, "device", "provenance.device"),
        torch_threads=r.integer(p, "torch_threads", "provenance.torch_threads", optional=True),
        data=DataProvenance(
            root=r.text(data, "root", "provenance.data.root"),
            source=r.text(data, "source", "provenance.data.source"),
            sha256=r.text(data, "sha256", "provenance.data.sha256"),
            splits={k: r.integer(splits, k, f"provenance.data.splits.{k}") for k in splits},
            tokenizer_sha256=r.text(
                data, "tokenizer_sha256", "provenance.data.tokenizer_sha256", optional=True
            ),
            pretrained=r.text(data, "pretrained", "provenance.data.pretrained", optional=True),
            skipped_records=_strings(
                r, data.get("skipped_records"), "provenance.data.skipped_records"
            ),
        ),
        evaluator=r.obj(p, "evaluator", "provenance.evaluator"),
        ours_options=r.obj(p, "ours_options", "provenance.ours_options"),
        optimizer=r.obj(p, "optimizer", "provenance.optimizer") if "optimizer" in p else {},
        numerics=r.obj(p, "numerics", "provenance.numerics") if "numerics" in p else {},
        student_init=(
            r.obj(p, "student_init", "provenance.student_init") if "student_init" in p else {}
        ),
    )


def _strings(r: _Reader, value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise r.fail(where, "a list of strings", value)
    return tuple(value)


def _error(r: _Reader, e: Any) -> RunError:
    if e is None:
        return RunError("no error recorded")
    if not isinstance(e, dict):
        raise r.fail("error", "an object", e)
    return RunError(
        message=r.text(e, "message", "error.message"),
        round=r.integer(e, "round", "error.round", optional=True),
        step=r.integer(e, "step", "error.step", optional=True),
        terms=_strings(r, e.get("terms"), "error.terms"),
        traceback=r.text(e, "traceback", "error.traceback", optional=True),
    )


def read_record_file(path: Path) -> RunRecord:
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as e:
        raise DamagedRecord(path, f"malformed JSON at line {e.lineno}: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise DamagedRecord(path, f"not UTF-8 text (byte {e.start})") from e
    except RecursionError as e:
        raise DamagedRecord(path, "JSON nested too deep") from e
    except OSError as e:
        raise DamagedRecord(path, f"unreadable ({e.strerror or e})") from e
    return parse_record(obj, path)


def load_records(runs_dir: Path) -> list[RunRecord | Damaged]:
    """Every `record.json` under `runs_dir` (any depth), in path order. One whose bytes cannot
    be decoded stands as a `Damaged`, so the report lists its run instead of stopping; one that
    decodes but holds a wrong field stops the report with a RecordError naming it."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RecordError(runs_dir, "no such directory of run records")
    out: list[RunRecord | Damaged] = []
    for path in sorted(p for p in runs_dir.rglob(RECORD) if p.is_file()):
        try:
            out.append(read_record_file(path))
        except DamagedRecord as e:
            seed = re.fullmatch(r"seed-(\d+)", path.parent.name)
            if seed is None or len(path.relative_to(runs_dir).parts) < 4:
                raise  # not where `reproduce` writes records: no run to list it under
            out.append(Damaged(path, path.parents[1].name, int(seed[1]), e.problem))
    return out


# -- studies: which records one task's report covers, and which runs it lacks


def group_studies(
    records: Iterable[RunRecord | Damaged], expected: Mapping[str, Grid] | None = None
) -> dict[str, StudyRecords]:
    """One study per task. The grid in `expected` names it; otherwise the study with the most
    complete runs (then the most steps, then the config hash) so the choice is a function of
    the records, and the others are named in the report rather than mixed into its tables.
    A damaged record belongs to the study of the records in its study folder; its run is
    listed as missing, with the reason."""
    expected = dict(expected or {})
    by_key: dict[tuple[str, str, str], list[RunRecord]] = {}
    damaged = []
    for rec in records:
        if isinstance(rec, Damaged):
            damaged.append(rec)
        else:
            by_key.setdefault(rec.study_key, []).append(rec)
    key_of = {_study_dir(r.path): key for key, recs in by_key.items() for r in recs}
    placed = [(d, k, k[0] if k else d.task) for d in damaged for k in [key_of.get(d.study_dir)]]
    tasks = sorted({k[0] for k in by_key} | set(expected) | {t for _, _, t in placed})
    studies = {}
    for task in tasks:
        keys = sorted(k for k in by_key if k[0] == task)
        grid = expected.get(task)
        if grid is not None:
            chosen = [k for k in keys if grid.matches(k)]
        else:
            chosen = [max(keys, key=lambda k: _study_rank(by_key[k]))] if keys else []
        recs = sorted(
            (x for k in chosen for x in by_key[k]), key=lambda x: (x.scheduler, x.seed, x.path)
        )
        _check_unique(recs)
        others = [_describe(k, by_key[k]) for k in keys if k not in chosen]
        broken = {}
        for d, k, t in placed:
            if t != task:
                continue
            if k in chosen or (k is None and not chosen):
                broken[(d.scheduler, d.seed)] = (
                    f"record damaged ({d.problem}); `optima-repro reproduce` sets it aside and "
                    "runs it again"
                )
            else:
                others.append(f"a damaged record of {d.scheduler} seed {d.seed}: {d.problem}")
        studies[task] = StudyRecords(task, tuple(recs), _missing(recs, grid, broken), tuple(others))
    return studies


def _study_dir(path: Path) -> Path | None:
    return path.parents[2] if len(path.parents) > 2 else None


def _study_rank(recs: list[RunRecord]) -> tuple[int, int, str]:
    return sum(r.complete for r in recs), recs[0].config.steps, recs[0].config_hash


def _describe(key: tuple[str, str, str], recs: list[RunRecord]) -> str:
    done = sum(r.complete for r in recs)
    return (
        f"preset `{recs[0].config.preset}`, config hash `{key[1]}`, data sha256 "
        f"`{key[2][:12]}…`: {done} complete of {len(recs)} records"
    )


def _check_unique(recs: list[RunRecord]) -> None:
    seen: dict[tuple[str, int], Path] = {}
    for r in recs:
        first = seen.setdefault((r.scheduler, r.seed), r.path)
        if first != r.path:
            raise RecordError(
                r.path,
                f"a second record of {r.task} {r.scheduler} seed {r.seed} in one study "
                f"(the first is {first}); remove one copy",
            )


def _missing(
    recs: list[RunRecord], grid: Grid | None, damaged: Mapping[tuple[str, int], str]
) -> tuple[Missing, ...]:
    have = {(r.scheduler, r.seed) for r in recs}
    seen = have | set(damaged)
    seeds = {n for _, n in seen}
    reasons = {}
    for s in {s for s, _ in seen}:
        highest = max(seeds) if s in COMPARED else max(n for t, n in seen if t == s)
        for n in seeds:
            if n <= highest:
                reasons[(s, n)] = "no record; other runs of this study have this scheduler and seed"
    if grid is not None:
        for s, n in grid.runs:
            reasons[(s, n)] = "no record; the grid asked for this run"
    reasons.update(damaged)
    return tuple(
        Missing(s, n, why) for (s, n), why in sorted(reasons.items()) if (s, n) not in have
    )
