"""A run (spec/harness.md §6): one scheduler and seed of a study, resumed from its last round,
and its record, one `record.json` per run written atomically and read back by the report's
reader. The report reads these and nothing else, so a record carries everything a table or a
provenance footer quotes: resolved config, metrics, round traces, timing, provenance.
Complete runs are skipped when the grid is run again."""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from harness.atomic import set_aside, write_json
from harness.checkpoint import Checkpoints, exclusive
from harness.config import OURS_OPTIONS, StudyConfig
from harness.distill.loop import NumericalError, Watch, run_rounds
from harness.distill.losses import Projections
from harness.errors import UserError
from harness.live import LiveView, live_dir
from harness.models.build import build_task_model, module_shapes
from harness.models.layer_map import init_student_from_teacher, matching_modules
from harness.numerics import settle
from harness.prepare import evaluate_all
from harness.records import (
    RECORD,
    SCHEMA_VERSION,
    DataProvenance,
    Provenance,
    RecordConfig,
    RecordError,
    RunError,
    RunRecord,
    read_record_file,
)
from harness.schedulers import build_scheduler
from harness.seeding import torch_seeded
from harness.study import Study

PACKAGES = ("optima-repro", "torch", "numpy", "transformers", "sentencepiece", "pillow")


def run_dir(study_dir: Path, scheduler: str, seed: int) -> Path:
    return study_dir / scheduler / f"seed-{seed}"


def read_record(path: Path) -> RunRecord | None:
    """The record at `path`, or None when there is none. One the report's reader refuses
    (bytes that are not UTF-8 JSON, an unreadable file, a field it cannot read, another
    schema version) is set aside as `record.json.damaged-<n>` and counts as none: the run is
    done again, resuming from its last intact checkpoint."""
    if not path.exists():
        return None
    try:
        return read_record_file(path)
    except RecordError as e:
        why = str(e).removeprefix(f"{path}: ").removeprefix(f"{path}, ")
    if (aside := set_aside(path)) is not None:
        print(f"run record {path}: damaged ({why}); kept as {aside.name}, the run is done again")
    return None


def is_complete(folder: Path, config_hash: str) -> bool:
    record = read_record(folder / RECORD)
    return bool(record and record.complete and record.config_hash == config_hash)


def git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(
    cfg: StudyConfig, device: torch.device, data: DataProvenance, evaluator: dict, numerics: dict
) -> Provenance:
    """`numerics`: what `harness.numerics.settle` found in force for this run."""
    git = git_commit()
    return Provenance(
        git_commit=git["commit"],
        git_dirty=git["dirty"],
        packages=package_versions(),
        python=sys.version.split()[0],
        platform=platform.platform(),
        device=str(device),
        torch_threads=torch.get_num_threads(),
        numerics=numerics,
        data=data,
        evaluator=evaluator,
        ours_options={k: getattr(cfg.distill, k) for k in OURS_OPTIONS},
        optimizer={
            "name": "harness.distill.adafactor.Adafactor",
            "note": "torch's Adafactor (bit for bit on CPU) with its scalars on the device; it "
            "keeps no first moment: the card's beta1 = 0.9 has no counterpart; its second "
            "moment decays as 1 - t^-0.8 (beta2_decay=-0.8)",
        },
    )


def init_student(option: str, student, teacher) -> dict:
    """The student's initialisation (spec/optima.md §2), and what the run record says of it:
    which modules started from teacher layers, which kept their random init, and how many
    parameter tensors were copied."""
    copied = init_student_from_teacher(student, teacher) if option == "teacher-layers" else []
    modules = matching_modules(student, teacher) if copied else []
    return {
        "option": option,
        "copied_modules": modules,
        "random_modules": [m for m in student.module_sizes() if m not in modules],
        "copied_parameters": len(copied),
    }


def execute_run(
    study: Study, scheduler_name: str, seed: int, folder: Path, progress: bool = True
) -> RunRecord:
    """One run, resumed from its latest round checkpoint under `folder` if there is one."""
    cfg, task = study.cfg, study.task
    numerics = settle(cfg.numerics, cfg.numerics.threads, study.device.type)
    start = time.perf_counter()
    compiled_before = study.backend.compile_stats()
    prov = provenance(cfg, study.device, study.data, task.evaluator, numerics)
    status, metrics, rounds, timing = "failed", {}, (), {}
    resumed, error = None, None
    live = LiveView(live_dir(folder)) if cfg.tensorboard and study.backend.is_main else None
    try:
        t_shapes = module_shapes(cfg.teacher.model)
        s_shapes = module_shapes(cfg.distill.student)
        student = build_task_model(
            cfg.distill.student, task, study.tokenizer, cfg.context_length, seed
        )
        with torch_seeded(seed, "projections"):
            projections = Projections(s_shapes["widths"], t_shapes["widths"])
        prov = replace(
            prov,
            student_init=init_student(
                cfg.distill.student_init, student.coca, study.teacher.model.coca
            ),
        )
        student.to(study.device)
        projections.to(study.device)
        scheduler = build_scheduler(scheduler_name, study.inputs.modules, seed, cfg.distill)
        watch = Watch(
            label=f"{scheduler_name} seed {seed}",
            progress=progress,
            evaluate=lambda: task.evaluate(
                student, study.evaluation, study.device, cfg.eval_batch_size
            ),
            eval_every_rounds=cfg.eval_every_rounds,
            checkpoints=Checkpoints(
                folder / "checkpoints", cfg.hash(), writer=study.backend.is_main
            ),
            live=live,
        )
        result = run_rounds(
            study.inputs,
            student,
            projections,
            scheduler,
            cfg.distill,
            seed,
            cfg.eval_batch_size,
            watch,
            max_steps=cfg.max_steps,
            backend=study.backend,
            precision=cfg.precision,
        )
        resumed = result["resumed_from_round"]
        t0 = time.perf_counter()
        metrics = evaluate_all(
            task, student, study.evaluation, study.extra, study.device, cfg.eval_batch_size
        )
        rounds = tuple(result["rounds"])
        if live is not None:
            live.final(metrics)
        status = "complete"
        timing = {**result["timing"], "eval_seconds": time.perf_counter() - t0}
    except NumericalError as e:
        error = RunError(str(e), e.round_index, e.step, terms=tuple(e.terms))
    except Exception as e:  # a failed run is recorded and the grid goes on
        error = RunError(f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
    finally:
        if live is not None:
            live.close()
    timing["wall_seconds"] = time.perf_counter() - start
    timing["process_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return RunRecord(
        path=folder / RECORD,
        schema_version=SCHEMA_VERSION,
        task=cfg.task,
        scheduler=scheduler_name,
        seed=seed,
        status=status,
        config=RecordConfig(cfg.to_dict()),
        config_hash=cfg.hash(),
        metric_name=task.metric_name,
        primary_key=task.primary,
        teacher_key=study.teacher.key,
        teacher_metrics=study.teacher.metrics,
        reference_rows=study.reference_rows,
        metrics=metrics,
        rounds=rounds,
        timing=timing,
        provenance=prov,
        resumed_from_round=resumed,
        backend={
            "device": study.backend.kind,
            "data_parallel_ranks": study.backend.world_size,
            "xla": study.backend.xla_since(compiled_before),
        },
        error=error,
    )


def run_grid(
    study: Study, runs: Sequence[tuple[str, int]], progress: bool = True
) -> list[RunRecord | None]:
    """Every (scheduler, seed) of `runs` once, in that order. A run another process holds (its
    lock) is left to it and waited for at the end, so two grids on one work directory share
    the runs. Data-parallel ranks run the same runs in the same order; rank 0 holds the locks
    and writes."""
    todo = list(runs)
    waiting = []
    for name, seed in todo:
        if not run_once(study, name, seed, wait=False, progress=progress):
            print(f"run {name} seed {seed}: running in another process, taken up later")
            waiting.append((name, seed))
    for name, seed in waiting:
        run_once(study, name, seed, wait=True, progress=progress)
    study.backend.barrier()  # rank 0 has written every record
    return [read_record(run_dir(study.study_dir, n, s) / RECORD) for n, s in todo]


class RecordWriteError(UserError):
    """A run record that cannot be written (a full disk): the grid stops, nothing is lost."""


def write_record(record: RunRecord) -> RunRecord:
    """Write `record` to its path; when that fails (a full disk, a number JSON cannot hold),
    write a failed-run record saying why in its place. Returns what was written. Each written
    file is read back by the report's reader and must give the same JSON again, so the writer
    cannot drift from the schema the report reads: a record it refuses is a harness bug."""
    try:
        return _write_checked(record)
    except (OSError, ValueError) as e:
        why = f"its record {record.path.name} could not be written: {e}"
    if record.error is not None:
        why = f"{record.error.message}; then {why}"
    failed = replace(record, status="failed", metrics={}, rounds=(), error=RunError(why))
    try:
        return _write_checked(failed)
    except (OSError, ValueError) as e:
        raise RecordWriteError(
            f"run {record.scheduler} seed {record.seed}: {why}; a failed-run record "
            f"could not be written either ({e}). Free space (or fix permissions) and run the "
            "same command again: complete runs are skipped, this one resumes from its last "
            "checkpoint"
        ) from e


def _write_checked(record: RunRecord) -> RunRecord:
    write_json(record.path, record.to_json())
    try:
        back = read_record_file(record.path)
        written = json.loads(record.path.read_text(encoding="utf-8"))
    except RecordError as e:
        raise RuntimeError(f"harness bug: it wrote a run record its report refuses: {e}") from e
    if back.to_json() != written:
        raise RuntimeError(f"harness bug: {record.path} does not read back as it was written")
    return back


def run_once(study: Study, name: str, seed: int, wait: bool, progress: bool) -> bool:
    """Run unless complete; False when another process holds the run and `wait` is false."""
    folder = run_dir(study.study_dir, name, seed)
    backend = study.backend
    lock = (
        exclusive(folder / ".lock", wait or backend.distributed)
        if backend.is_main
        else nullcontext(True)
    )
    with lock as held:
        if not held:
            return False
        if backend.agree(is_complete(folder, study.cfg.hash())):
            if backend.is_main:
                print(f"run {name} seed {seed}: complete, skipped ({folder})")
            return True
        record = execute_run(study, name, seed, folder, progress and backend.is_main)
        if not backend.is_main:
            return True
        record = write_record(record)
    if record.complete:
        print(f"run {name} seed {seed}: {record.primary:.2f} -> {record.path}")
    else:
        print(f"run {name} seed {seed}: FAILED ({record.error.message})")
    return True
