"""A study's data, tokenizer and teacher (spec/harness.md §2): the first steps of the flow,
data and tokenizer -> pre-training -> fine-tuned teacher, each cached. `optima-repro teacher`
stops here; `harness.study` takes what this builds on to the runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.config import StudyConfig, check_sizes
from harness.data.open_clip_tokenizer import OpenClipTokenizer
from harness.data.skips import skipping_bad_records
from harness.data.tokenizer import Tokenizer, ensure_tokenizer
from harness.errors import ConfigError, DataError
from harness.models.build import module_shapes
from harness.models.presets import PRETRAINED_ONLY
from harness.numerics import settle
from harness.pretrain import ensure_pretrained, shared_tokenizer
from harness.records import DataProvenance
from harness.tasks import get_task
from harness.teacher import Teacher, ensure_teacher


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
    data: DataProvenance


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
    data = DataProvenance(
        root=str(root),
        source=source,
        sha256=data_sha,
        splits={
            cfg.train_split: len(train),
            cfg.eval_split: len(evaluation),
            **{name: len(ex) for name, ex in extra.items()},
        },
        tokenizer_sha256=tokenizer.sha256,
        pretrained=str(pretrained.path) if pretrained else None,
        skipped_records=tuple(str(err) for err in bad) if skip_bad_records else None,
    )
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
