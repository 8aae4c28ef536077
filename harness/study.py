"""A study: one task, one preset, a grid of schedulers x seeds sharing data, tokenizer and
teacher (spec/harness.md §2, §6). Complete runs are skipped when the grid is run again."""

from __future__ import annotations

import hashlib
import resource
import time
import traceback
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.atomic import write_json
from harness.backend import Backend
from harness.checkpoint import Checkpoints, exclusive
from harness.config import StudyConfig, check_sizes, config_hash
from harness.data.open_clip_tokenizer import OpenClipTokenizer
from harness.data.skips import skipping_bad_records
from harness.data.tokenizer import Tokenizer, ensure_tokenizer
from harness.distill.loop import DistillInputs, NumericalError, run_rounds
from harness.distill.losses import Projections
from harness.distill.teacher_outputs import CachedTeacher, LiveTeacher, cache_key, ensure_cached
from harness.errors import ConfigError, DataError, UserError
from harness.live import LiveView, live_dir
from harness.models.build import build_task_model, module_shapes
from harness.models.layer_map import init_student_from_teacher, layer_map, matching_modules
from harness.models.presets import PRETRAINED_ONLY
from harness.numerics import settle
from harness.pretrain import ensure_pretrained, shared_tokenizer
from harness.records import RECORD, SCHEMA_VERSION, RecordError, read_record_file
from harness.runs import is_complete, provenance, read_record, run_dir
from harness.schedulers import build_scheduler
from harness.seeding import torch_seeded
from harness.tasks import get_task
from harness.teacher import Teacher, ensure_teacher


@dataclass
class Study:
    cfg: StudyConfig
    task: object
    tokenizer: Tokenizer
    train: object
    evaluation: object
    extra: dict  # further evaluation splits by name (SNLI-VE and NLVR2 report dev too)
    teacher: Teacher
    reference_rows: list[dict]
    inputs: DistillInputs
    data: dict
    study_dir: Path
    backend: Backend

    @property
    def device(self) -> torch.device:
        return self.backend.device


def evaluate_all(task, model, evaluation, extra: dict, device, batch_size: int) -> dict:
    """The task metric on the evaluation split, and on each extra split under `splits`."""
    metrics = task.evaluate(model, evaluation, device, batch_size)
    if extra:
        metrics["splits"] = {
            name: task.evaluate(model, ex, device, batch_size) for name, ex in extra.items()
        }
    return metrics


def data_checksum(files: dict[str, str], images: list[Path]) -> str:
    """sha256 over the annotation files' hashes and the images' names and sizes (hashing every
    image byte of a real split would cost minutes; names and sizes catch a changed set)."""
    h = hashlib.sha256()
    for name, sha in sorted(files.items()):
        h.update(f"{name}:{sha}".encode())
    for p in sorted(images):
        h.update(f"{p.name}:{p.stat().st_size}".encode())
    return h.hexdigest()


@dataclass
class Prepared:
    """Data, tokenizer and teacher of a study: what `optima-repro teacher` builds alone."""

    task: object
    tokenizer: object
    train_split: object
    train: object
    evaluation: object
    extra: dict
    teacher: Teacher
    data: dict


def study_tokenizer(
    cfg: StudyConfig, task, train_split, synthetic_pretraining: bool, workdir: Path, progress: bool
):
    """open_clip's BPE when asked for (real open_clip weights index it); else sentencepiece:
    shared by the four synthetic worlds when they are pre-trained on, else trained on the
    task's train split."""
    if cfg.tokenizer == "open_clip":
        tokenizer = OpenClipTokenizer()
        print(f"tokenizer: open_clip BPE, {tokenizer.vocab_size} ids ({tokenizer.folder})")
        return tokenizer
    try:
        if synthetic_pretraining:
            tokenizer = shared_tokenizer(workdir, cfg.world, cfg.vocab_size, progress)
        else:
            texts = task.texts(train_split)
            tokenizer = Tokenizer(ensure_tokenizer(workdir / "tokenizers", texts, cfg.vocab_size))
    except RuntimeError as e:  # sentencepiece's: fewer pieces than the text has characters
        raise ConfigError(
            f"vocab_size {cfg.vocab_size}: sentencepiece cannot train this vocabulary on the "
            f"train text ({str(e).rsplit('] ', 1)[-1].strip()})"
        ) from e
    print(f"tokenizer: {tokenizer.vocab_size} sentencepiece pieces in {tokenizer.folder}")
    return tokenizer


def prepare_teacher(
    cfg: StudyConfig,
    data_root: Path | None,
    workdir: Path,
    device: torch.device,
    progress: bool = True,
    skip_bad_records: bool = False,
) -> Prepared:
    """Data, tokenizer and the fine-tuned teacher (trained once, then read from its cache).
    With `skip_bad_records` a record the readers would refuse is left out, and the run
    records list it."""
    settle(cfg.numerics, cfg.numerics.teacher_threads, device.type)  # the teacher's numerics
    spec = get_task(cfg.task)
    given = cfg.teacher_checkpoint or cfg.teacher_finetuned
    if cfg.teacher.model in PRETRAINED_ONLY and not given:
        raise ConfigError(
            f"preset {cfg.preset!r}: its {cfg.teacher.model} teacher is too large to train from "
            "scratch; --set teacher_checkpoint=FILE (a pre-trained CoCa of that architecture) "
            "or teacher_finetuned=FILE; `optima-repro plan "
            f"{cfg.task} --preset {cfg.preset}` shows what the study would cost"
        )
    if given and not Path(given).is_file():  # before minutes of reading data
        raise DataError(given, "teacher checkpoint: file not found")
    if data_root is None:
        root = spec.ensure_world(workdir / "data", cfg.world, progress)
        source = f"synthetic world '{cfg.world}' (embedded default)"
    else:
        root = data_root
        source = "user data"
    print(f"data: {source} at {root}")
    with skipping_bad_records(skip_bad_records) as bad:
        train_split = spec.read(root, cfg.train_split)
        eval_split = spec.read(root, cfg.eval_split)
        extra_splits = {name: spec.read(root, name) for name in cfg.extra_eval_splits}
    for err in bad:
        print(f"skipped bad record: {err}")
    task = spec.from_train(train_split, cfg)
    # the synthetic worlds share a tokenizer whether or not a checkpoint replaces pre-training
    shared = cfg.pretrain is not None and data_root is None
    tokenizer = study_tokenizer(cfg, task, train_split, shared, workdir, progress)
    size = image_size(cfg)
    train = task.examples(train_split, tokenizer, size, cfg.context_length, progress)
    check_sizes(cfg, len(train), cfg.train_split)  # before minutes of training
    pretrained = (
        ensure_pretrained(cfg, tokenizer, workdir, device, progress)
        if shared and not given
        else None
    )
    evaluation = task.examples(eval_split, tokenizer, size, cfg.context_length, progress)
    extra = {
        name: task.examples(split, tokenizer, size, cfg.context_length, progress)
        for name, split in extra_splits.items()
    }
    data_sha = data_checksum(
        {
            f: sha
            for split in (train_split, eval_split, *extra_splits.values())
            for f, sha in split.files.items()
        },
        [p for ex in (train, evaluation, *extra.values()) for p in ex.images.paths],
    )

    def evaluate(model) -> dict:
        return evaluate_all(task, model, evaluation, extra, device, cfg.eval_batch_size)

    teacher = ensure_teacher(
        cfg,
        task,
        train,
        evaluate,
        tokenizer,
        data_sha,
        workdir / "teachers",
        device,
        progress,
        pretrained,
    )
    data = {
        "root": str(root),
        "source": source,
        "sha256": data_sha,
        "splits": {
            cfg.train_split: len(train),
            cfg.eval_split: len(evaluation),
            **{name: len(ex) for name, ex in extra.items()},
        },
        "tokenizer_sha256": tokenizer.sha256,
        "pretrained": str(pretrained.path) if pretrained else None,
    }
    if skip_bad_records:
        data["skipped_records"] = [str(err) for err in bad]
    return Prepared(task, tokenizer, train_split, train, evaluation, extra, teacher, data)


def image_size(cfg: StudyConfig) -> int:
    """The image size teacher and student share (spec/optima.md §5: the same images)."""
    t_size = module_shapes(cfg.teacher.model)["image_size"]
    s_size = module_shapes(cfg.distill.student)["image_size"]
    if t_size != s_size:
        raise ConfigError(
            f"teacher {cfg.teacher.model} sees {t_size} px images, student "
            f"{cfg.distill.student} {s_size} px: they must see the same images"
        )
    return t_size


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
    reference_rows = [{"row": f"trivial: {label}", "metrics": base}]
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
    key = config_hash({"config": cfg.identity(), "data": p.data["sha256"]})
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
) -> dict:
    """One run, resumed from its latest round checkpoint under `folder` if there is one."""
    cfg, task = study.cfg, study.task
    numerics = settle(cfg.numerics, cfg.numerics.threads, study.device.type)
    start = time.perf_counter()
    compiled_before = study.backend.compile_stats()
    record = {
        "schema_version": SCHEMA_VERSION,
        "task": cfg.task,
        "scheduler": scheduler_name,
        "seed": seed,
        "status": "failed",
        "config": cfg.to_dict(),
        "config_hash": cfg.hash(),
        "metric": {"name": task.metric_name, "primary": task.primary},
        "teacher": {"key": study.teacher.key, "metrics": study.teacher.metrics},
        "reference_rows": study.reference_rows,
        "metrics": {},
        "rounds": [],
        "timing": {},
        "provenance": provenance(cfg, study.device, study.data, task.evaluator, numerics),
    }
    live = LiveView(live_dir(folder)) if cfg.tensorboard and study.backend.is_main else None
    try:
        t_shapes = module_shapes(cfg.teacher.model)
        s_shapes = module_shapes(cfg.distill.student)
        student = build_task_model(
            cfg.distill.student, task, study.tokenizer, cfg.context_length, seed
        )
        with torch_seeded(seed, "projections"):
            projections = Projections(s_shapes["widths"], t_shapes["widths"])
        record["provenance"]["student_init"] = init_student(
            cfg.distill.student_init, student.coca, study.teacher.model.coca
        )
        student.to(study.device)
        projections.to(study.device)
        scheduler = build_scheduler(scheduler_name, study.inputs.modules, seed, cfg.distill)
        result = run_rounds(
            study.inputs,
            student,
            projections,
            scheduler,
            scheduler_name,
            cfg.distill,
            seed,
            cfg.eval_batch_size,
            progress,
            evaluate=lambda: task.evaluate(
                student, study.evaluation, study.device, cfg.eval_batch_size
            ),
            eval_every_rounds=cfg.eval_every_rounds,
            checkpoints=Checkpoints(
                folder / "checkpoints", cfg.hash(), writer=study.backend.is_main
            ),
            max_steps=cfg.max_steps,
            backend=study.backend,
            precision=cfg.precision,
            live=live,
        )
        record["resumed_from_round"] = result["resumed_from_round"]
        t0 = time.perf_counter()
        record["metrics"] = evaluate_all(
            task, student, study.evaluation, study.extra, study.device, cfg.eval_batch_size
        )
        record["rounds"] = result["rounds"]
        if live is not None:
            live.final(record["metrics"])
        record["status"] = "complete"
        record["timing"] = {**result["timing"], "eval_seconds": time.perf_counter() - t0}
    except NumericalError as e:
        record["error"] = {
            "message": str(e),
            "round": e.round_index,
            "step": e.step,
            "terms": e.terms,
        }
    except Exception as e:  # a failed run is recorded and the grid goes on
        record["error"] = {
            "message": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(),
        }
    finally:
        if live is not None:
            live.close()
    record["timing"]["wall_seconds"] = time.perf_counter() - start
    record["backend"] = {
        "device": study.backend.kind,
        "data_parallel_ranks": study.backend.world_size,
        "xla": study.backend.xla_since(compiled_before),
    }
    record["timing"]["process_peak_rss_mib"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return record


def run_grid(study: Study, runs: Sequence[tuple[str, int]], progress: bool = True) -> list[dict]:
    """Every (scheduler, seed) of `runs` once, in that order. A run another process holds (its
    lock) is left to it and waited for at the end, so two grids on one work directory share
    the runs. Data-parallel ranks run the same runs in the same order; rank 0 holds the locks
    and writes."""
    todo = list(runs)
    waiting = []
    for name, seed in todo:
        if not _run_once(study, name, seed, wait=False, progress=progress):
            print(f"run {name} seed {seed}: running in another process, taken up later")
            waiting.append((name, seed))
    for name, seed in waiting:
        _run_once(study, name, seed, wait=True, progress=progress)
    study.backend.barrier()  # rank 0 has written every record
    return [read_record(run_dir(study.study_dir, n, s) / RECORD) for n, s in todo]


class RecordWriteError(UserError):
    """A run record that cannot be written (a full disk): the grid stops, nothing is lost."""


def write_record(path: Path, record: dict) -> dict:
    """Write `record`; when that fails (a full disk, a number JSON cannot hold), write a
    failed-run record saying why in its place. Returns what was written. Each written record
    is read back by the report's reader (`records.read_record_file`), so the writer cannot
    drift from the one schema the report reads: a record it would refuse is a harness bug."""
    try:
        write_json(path, record)
        return _read_back(path, record)
    except (OSError, ValueError) as e:
        why = f"its record {path.name} could not be written: {e}"
    if record.get("error"):
        why = f"{record['error']['message']}; then {why}"
    failed = {**record, "status": "failed", "metrics": {}, "rounds": [], "error": {"message": why}}
    try:
        write_json(path, failed)
        _read_back(path, failed)
    except (OSError, ValueError) as e:
        raise RecordWriteError(
            f"run {record['scheduler']} seed {record['seed']}: {why}; a failed-run record "
            f"could not be written either ({e}). Free space (or fix permissions) and run the "
            "same command again: complete runs are skipped, this one resumes from its last "
            "checkpoint"
        ) from e
    return failed


def _read_back(path: Path, record: dict) -> dict:
    try:
        read_record_file(path)
    except RecordError as e:
        raise RuntimeError(f"harness bug: it wrote a run record its report refuses: {e}") from e
    return record


def _run_once(study: Study, name: str, seed: int, wait: bool, progress: bool) -> bool:
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
        record = write_record(folder / RECORD, record)
    if record["status"] == "complete":
        print(f"run {name} seed {seed}: {record['metrics']['primary']:.2f} -> {folder / RECORD}")
    else:
        print(f"run {name} seed {seed}: FAILED ({record['error']['message']})")
    return True
