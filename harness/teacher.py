"""The teacher: trained on the task when no checkpoint is given (the embedded default has none
to load), cached under a key that covers everything that shapes it, and reused by every
scheduler and seed of a study."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from harness.config import StudyConfig, config_hash
from harness.distill.loop import batch_indices
from harness.models.build import build_task_model

TEACHER_SEED = 0  # one teacher per study, shared by all seeds (spec/harness.md §6)
SHAPING_SOURCES = ("models", "tasks", "data/tokenizer.py", "data/image_store.py", "teacher.py")


def code_hash() -> str:
    """Hash of the source files that shape a trained teacher."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for name in SHAPING_SOURCES:
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


def teacher_key(cfg: StudyConfig, answers: list[str], tokenizer_sha: str, data_sha: str) -> str:
    return config_hash(
        {
            "teacher": asdict(cfg.teacher),
            "context_length": cfg.context_length,
            "answers": answers,
            "tokenizer": tokenizer_sha,
            "data": data_sha,
            "code": code_hash(),
        }
    )


def ensure_teacher(
    cfg: StudyConfig,
    task,
    train,
    evaluation,
    tokenizer,
    data_sha: str,
    cache_dir: Path,
    device: torch.device,
    progress: bool = True,
) -> Teacher:
    key = teacher_key(cfg, getattr(task, "answers", []), tokenizer.sha256, data_sha)
    folder = cache_dir / f"{cfg.task}-{cfg.teacher.model}-{key}"
    weights, meta_file = folder / "teacher.pt", folder / "teacher.json"
    model = build_task_model(cfg.teacher.model, task, tokenizer, cfg.context_length, TEACHER_SEED)
    if weights.exists() and meta_file.exists():
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        meta = json.loads(meta_file.read_text())
        print(f"teacher: reusing {folder}")
        return Teacher(model.to(device).eval(), key, folder, meta["metrics"], meta["seconds"])

    model.to(device)
    seconds = train_teacher(model, cfg, task, train, device, progress)
    metrics = task.evaluate(model, evaluation, device, cfg.eval_batch_size)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, weights)
    meta = {"key": key, "metrics": metrics, "seconds": seconds, "config": asdict(cfg.teacher)}
    tmp = meta_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_file)  # written last: its presence marks a complete teacher
    print(f"teacher: {task.metric_name} {metrics['primary']:.2f}, saved to {folder}")
    return Teacher(model.eval(), key, folder, metrics, seconds)


def train_teacher(model, cfg: StudyConfig, task, train, device, progress: bool) -> float:
    """Task loss only, AdamW with linear warm-up then cosine decay."""
    t = cfg.teacher
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)

    def factor(step: int) -> float:
        if step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        progress_ = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress_))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    pool = np.arange(len(train))
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=t.steps, desc="teacher", disable=not progress)
    for index in batch_indices(pool, t.batch_size, t.steps, TEACHER_SEED, "teacher-data"):
        batch = task.batch(train, index, device)
        loss = task.task_loss(task.forward(model, batch)["task_logits"], batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.update(1)
        if bar.n % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    return time.perf_counter() - start
