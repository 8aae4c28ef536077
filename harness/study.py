"""A study: one task, one preset, a grid of schedulers x seeds sharing data, tokenizer and
teacher (spec/harness.md §2, §6). `prepare` takes the prepared data and teacher
(`harness.prepare`) to what every run reads: the teacher's cached outputs, the layer maps,
the distillation inputs and the study's folder. The runs themselves are `harness.runs`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from harness.backend import Backend
from harness.config import StudyConfig, config_hash
from harness.data.tokenizer import Tokenizer
from harness.distill.loop import DistillInputs
from harness.distill.teacher_outputs import CachedTeacher, LiveTeacher, cache_key, ensure_cached
from harness.models.build import module_shapes
from harness.models.layer_map import layer_map
from harness.prepare import prepare_teacher
from harness.records import DataProvenance
from harness.teacher import Teacher


@dataclass
class Study:
    cfg: StudyConfig
    task: object
    tokenizer: Tokenizer
    train: object
    evaluation: object
    extra: dict  # further evaluation splits by name (SNLI-VE and NLVR2 report dev too)
    teacher: Teacher
    reference_rows: tuple[tuple[str, dict], ...]  # (row label, metrics): a trivial baseline
    inputs: DistillInputs
    data: DataProvenance
    study_dir: Path
    backend: Backend

    @property
    def device(self) -> torch.device:
        return self.backend.device


def prepare(
    cfg: StudyConfig,
    data_root: Path | None,
    workdir: Path,
    backend: Backend,
    progress: bool = True,
    skip_bad_records: bool = False,
) -> Study:
    """Data, tokenizer, teacher and its cached outputs of a study.

    With data-parallel ranks, rank 0 writes the worlds, tokenizer, teacher and its outputs
    first and the others then read them from the work directory: no two ranks write one
    file."""
    if not backend.is_main:
        backend.barrier()
    study = _prepare(
        cfg, data_root, workdir, backend, progress and backend.is_main, skip_bad_records
    )
    if backend.is_main:
        backend.barrier()
    return study


def _prepare(
    cfg: StudyConfig,
    data_root: Path | None,
    workdir: Path,
    backend: Backend,
    progress: bool,
    skip_bad_records: bool,
) -> Study:
    device = backend.device
    backend.check_batch(cfg.distill.batch_size)
    p = prepare_teacher(cfg, data_root, workdir, device, progress, skip_bad_records)
    task, train, teacher = p.task, p.train, p.teacher
    label, base = task.baseline(p.train_split, p.evaluation)
    reference_rows = ((f"trivial: {label}", base),)
    t_shapes = module_shapes(cfg.teacher.model)
    s_shapes = module_shapes(cfg.distill.student)
    modules = tuple(t_shapes["layers"])
    maps = {m: layer_map(s_shapes["layers"][m], t_shapes["layers"][m]) for m in modules}
    live = LiveTeacher(teacher.model, task.forward, maps)
    if cfg.teacher_cache:

        def make_batch(index: torch.Tensor) -> dict:
            return task.batch(train, index, device)

        def build() -> CachedTeacher:
            return CachedTeacher.build(live, len(train), make_batch, cfg.eval_batch_size, progress)

        dtype = cfg.teacher_cache_dtype
        path = workdir / "teacher-outputs" / f"{cache_key(teacher.key, maps, dtype, len(train))}.pt"
        source_of_teacher, reused = ensure_cached(path, build, dtype)
        mib = source_of_teacher.nbytes() / 2**20
        how = "reusing" if reused else "stored in"
        print(f"teacher outputs: {how} {path} ({mib:.0f} MiB {dtype}, memory-mapped)")
    else:
        source_of_teacher = live
    inputs = DistillInputs(
        task=task,
        train=train,
        teacher=source_of_teacher,
        modules=modules,
        pad_id=p.tokenizer.pad_id,
        device=device,
    )
    key = config_hash({"config": cfg.identity(), "data": p.data.sha256})
    study_dir = workdir / "runs" / cfg.task / f"{cfg.preset}-{key}"
    return Study(
        cfg,
        task,
        p.tokenizer,
        train,
        p.evaluation,
        p.extra,
        teacher,
        reference_rows,
        inputs,
        p.data,
        study_dir,
        backend,
    )
