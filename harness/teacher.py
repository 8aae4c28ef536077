"""The teacher: fine-tuned on the task from a pre-trained CoCa (a real checkpoint, or the
embedded default's stand-in), trained from scratch when there is neither, or taken as it is
from an already fine-tuned checkpoint; cached under a key that covers everything that shapes
it, and reused by every scheduler and seed of a study (`optima-repro teacher` builds it
alone)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from harness.atomic import atomic_path
from harness.backend import step_end
from harness.checkpoint import exclusive
from harness.config import StudyConfig, config_hash
from harness.data.order import BatchOrder
from harness.integrity import clear_temps, record, sha256_file, verified
from harness.models.build import build_task_model, load_checkpoint, load_pretrained
from harness.models.weights import check_keys, read_state_dict
from harness.numerics import teacher_identity
from harness.tasks import card

TEACHER_SEED = 0  # one teacher per study, shared by all seeds (spec/harness.md §6)
CARD_SOURCES = "<the task card's sources>"  # its implementation and evaluator modules
SHAPING_SOURCES = (
    "models",
    "tasks/common.py",
    CARD_SOURCES,
    "data/tokenizer.py",
    "data/image_store.py",
    "data/order.py",
    "pretrain.py",
    "teacher.py",
)


def code_hash(task: str) -> str:
    """Hash of the source files that shape the task's trained teacher and its metrics."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    own = card(task).sources
    for name in (n for s in SHAPING_SOURCES for n in (own if s == CARD_SOURCES else [s])):
        path = root / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class Teacher:
    model: torch.nn.Module
    key: str
    path: Path
    metrics: dict
    train_seconds: float


def teacher_key(
    cfg: StudyConfig, answers: list[str], tokenizer_sha: str, data_sha: str, pretrained: str | None
) -> str:
    return config_hash(
        {
            "pretrained": pretrained,
            "teacher": asdict(cfg.teacher),
            "context_length": cfg.context_length,
            "evaluated_on": [cfg.eval_split, *cfg.extra_eval_splits],
            "answers": answers,
            "tokenizer": tokenizer_sha,
            "data": data_sha,
            "code": code_hash(cfg.task),
            "max_steps": cfg.max_steps,
            "numerics": teacher_identity(cfg.numerics),
        }
    )


def starting_point(cfg: StudyConfig, pretrained) -> str | None:
    """What the teacher starts from, for its key: a given file's checksum, the embedded
    pre-training's key, or nothing (trained from scratch). A checkpoint's identity is its
    bytes' checksum (its path may move; its bytes do not)."""
    for kind in ("teacher_finetuned", "teacher_checkpoint"):
        path = getattr(cfg, kind)
        if path:
            return f"{kind}:{sha256_file(Path(path))}"
    return pretrained.key if pretrained else None


def ensure_teacher(
    cfg: StudyConfig,
    task,
    train,
    evaluate: Callable[[torch.nn.Module], dict],
    tokenizer,
    data_sha: str,
    cache_dir: Path,
    device: torch.device,
    progress: bool = True,
    pretrained=None,
) -> Teacher:
    """The task's teacher: `cfg.teacher_finetuned` as it is; else fine-tuned from
    `cfg.teacher_checkpoint` or from `pretrained` (a `harness.pretrain.Pretrained`); else
    trained from scratch."""
    start = starting_point(cfg, pretrained)
    key = teacher_key(cfg, getattr(task, "answers", []), tokenizer.sha256, data_sha, start)
    folder = cache_dir / f"{cfg.task}-{cfg.teacher.model}-{key}"
    weights, meta_file = folder / "teacher.pt", folder / "teacher.json"
    model = build_task_model(cfg.teacher.model, task, tokenizer, cfg.context_length, TEACHER_SEED)
    with exclusive(folder.with_name(folder.name + ".lock"), wait=True):  # one trainer at a time
        clear_temps(folder)
        meta = verified(weights, meta_file, "teacher")  # teacher.json holds the checksum
        if meta is not None:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            print(f"teacher: reusing {folder}")
            return Teacher(model.to(device).eval(), key, folder, meta["metrics"], meta["seconds"])

        if cfg.teacher_finetuned:
            path = Path(cfg.teacher_finetuned)
            state = read_state_dict(path)
            check_keys(path, state, model.state_dict(), "this task's teacher (preset, task)")
            model.load_state_dict(state)
            model.to(device).eval()
            seconds = 0.0
        else:
            if cfg.teacher_checkpoint:
                load_checkpoint(model.coca, Path(cfg.teacher_checkpoint))
            elif pretrained is not None:
                load_pretrained(model.coca, pretrained.state)
            model.to(device)
            seconds = train_supervised(
                model, cfg.teacher, task, train, device, progress, "teacher", cfg.max_steps
            )
        metrics = evaluate(model)
        with atomic_path(weights) as tmp, open(tmp, "wb") as f:  # a full disk: an OSError
            torch.save(model.state_dict(), f)
        meta = {"key": key, "metrics": metrics, "seconds": seconds, "config": asdict(cfg.teacher)}
        record(weights, meta_file, meta)  # written last: it marks a complete teacher
    print(f"teacher: {task.metric_name} {metrics['primary']:.2f}, saved to {folder}")
    return Teacher(model.eval(), key, folder, metrics, seconds)


def train_supervised(
    model, t, task, train, device, progress: bool, desc: str, max_steps: int = 0
) -> float:
    """Task loss only, AdamW with linear warm-up then cosine decay; `t` a TeacherConfig.
    `max_steps` > 0 stops early (smoke checks), the schedule staying that of `t.steps`."""
    steps = min(t.steps, max_steps) if max_steps else t.steps
    # fused on CPU: the single-tensor step's `sqrt` is MKL's vsSqrt, whose reproducible branch is
    # not correctly rounded and rounds differently on Intel and AMD CPUs (issue 19); the fused
    # kernel's is ATen's own, correctly rounded everywhere
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=device.type == "cpu"
    )

    def factor(step: int) -> float:
        if step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        progress_ = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress_))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=steps, desc=desc, disable=not progress)
    order = BatchOrder(np.arange(len(train)), t.batch_size, TEACHER_SEED, f"{desc}-data")
    for _, index in zip(range(steps), order, strict=False):
        batch = task.batch(train, index, device)
        loss = task.task_loss(task.forward(model, batch)["task_logits"], batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step_end(device)
        bar.update(1)
        if bar.n % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    return time.perf_counter() - start
