"""Study configuration: named presets plus overrides, validated and hashed.

A study is (task, preset); a run is (study, scheduler, seed). Every [ours] choice of
`spec/optima.md` is a named field here, so it is recorded in each run and printed in reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError


@dataclass(frozen=True)
class TeacherConfig:
    """How the teacher is obtained on the embedded default (no checkpoint exists to load)."""

    model: str
    steps: int
    lr: float
    batch_size: int
    weight_decay: float = 0.05
    warmup_steps: int = 100


@dataclass(frozen=True)
class DistillConfig:
    """Spec §3-§5. Defaults are the card's where it has one; [ours] fields are marked."""

    student: str
    steps: int  # T [card: 100k]
    rounds: int  # P [card: 100]
    warmup_rounds: int  # T0 [card: 10]
    gamma: float = 0.98  # [card]
    alpha: tuple[float, float, float] = (0.0, 1.0, 1e-2)  # a1, a2, a3 [card]
    lr: float = 1e-3  # [card], linear decay to 0 over `steps`
    weight_decay: float = 0.01  # [ours]
    batch_size: int = 64  # [ours]
    reward_set_size: int = 256  # [ours] N
    temperature: float = 1.0  # [ours] tau of L_pred for softmax heads
    # [ours] interpretation options (spec/optima.md §2-§4)
    reward: str = "relative"
    reward_loss: str = "full"
    arms: str = "modules"
    posterior: str = "gaussian"
    warmup: str = "round-robin"
    student_init: str = "random"
    layer_loss_positions: str = "non-pad"

    @property
    def round_steps(self) -> int:
        return self.steps // self.rounds


OURS_OPTIONS = (
    "reward",
    "reward_loss",
    "arms",
    "posterior",
    "warmup",
    "student_init",
    "layer_loss_positions",
    "weight_decay",
    "batch_size",
    "reward_set_size",
    "temperature",
)


@dataclass(frozen=True)
class StudyConfig:
    task: str
    preset: str
    world: str  # synthetic world preset used when no --data-root is given
    teacher: TeacherConfig
    distill: DistillConfig
    train_split: str
    eval_split: str
    extra_eval_splits: tuple[str, ...] = ()
    vocab_size: int = 256  # sentencepiece vocabulary trained on the train split's text
    context_length: int = 16
    answer_top_k: int = 3129  # VQA answer vocabulary: the k most frequent train answers
    teacher_cache: bool = True  # teacher outputs computed once per study and reused
    # [ours] embedded default only: captioning pre-training shared by the tasks' teachers
    pretrain: TeacherConfig | None = None
    eval_batch_size: int = 256
    eval_every_rounds: int = 5  # metric on the eval split during training, for curves
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        return config_hash(self.to_dict())


def config_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# (train, eval, extra eval splits) of each task's release, as its readers name them
SPLITS = {
    "vqa": ("train2014", "val2014", ()),
    "snli-ve": ("train", "test", ("dev",)),
    "nlvr2": ("train", "test1", ("dev",)),
    "coco": ("train", "test", ()),
}
CONTEXT = {"vqa": 16, "snli-ve": 16, "nlvr2": 20, "coco": 24}  # tokens, end token included


def _presets(task: str) -> dict[str, StudyConfig]:
    """`smoke` (tests, about a minute) and `default` (the embedded study, under 15 minutes on 2
    CPU cores), measured as README says; the same models for every task."""
    train, evaluation, extra = SPLITS[task]
    common = dict(
        task=task,
        train_split=train,
        eval_split=evaluation,
        extra_eval_splits=extra,
        context_length=CONTEXT[task],
    )
    smoke = StudyConfig(
        **common,
        preset="smoke",
        world="smoke",
        teacher=TeacherConfig(model="tiny", steps=150, lr=2e-3, batch_size=32, warmup_steps=15),
        distill=DistillConfig(
            student="tiny-student",
            steps=48,
            rounds=6,
            warmup_rounds=3,
            lr=1e-2,
            batch_size=32,
            reward_set_size=64,
        ),
        vocab_size=256,
        eval_batch_size=128,
        pretrain=TeacherConfig(model="tiny", steps=150, lr=2e-3, batch_size=32, warmup_steps=15),
    )
    default = StudyConfig(
        **common,
        preset="default",
        world="default",
        teacher=TeacherConfig(model="teacher-small", **DEFAULT_TEACHER[task]),
        distill=DistillConfig(
            student="student-small", rounds=20, warmup_rounds=6, lr=1e-2, **DEFAULT_STUDENT[task]
        ),
        vocab_size=512,
        pretrain=TeacherConfig(model="teacher-small", steps=2000, lr=1e-3, batch_size=64),
    )
    return {"smoke": smoke, "default": default}


# Fine-tuning steps of the pre-trained teacher, and distillation steps, per task (measured on
# 2 CPU cores; an NLVR2 step sees two images, so it costs about twice a step of the others).
DEFAULT_TEACHER = {
    "vqa": dict(steps=1500, lr=1e-3, batch_size=64),
    "snli-ve": dict(steps=2000, lr=1e-3, batch_size=64),
    "nlvr2": dict(steps=2000, lr=1e-3, batch_size=64),
    "coco": dict(steps=1000, lr=1e-3, batch_size=64),
}
DEFAULT_STUDENT = {
    "vqa": dict(steps=800),
    "snli-ve": dict(steps=800),
    "nlvr2": dict(steps=600),
    "coco": dict(steps=800),
}
PRESETS: dict[str, dict[str, StudyConfig]] = {task: _presets(task) for task in SPLITS}


def study_config(task: str, preset: str) -> StudyConfig:
    if task not in PRESETS:
        raise ConfigError(f"unknown task {task!r}; expected one of {sorted(PRESETS)}")
    presets = PRESETS[task]
    if preset not in presets:
        raise ConfigError(
            f"unknown preset {preset!r} for {task}; expected one of {sorted(presets)}"
        )
    cfg = presets[preset]
    validate(cfg)
    return cfg


def validate(cfg: StudyConfig) -> None:
    d = cfg.distill
    if not 0.0 < d.gamma <= 1.0:
        raise ConfigError(f"distill.gamma must lie in (0, 1], got {d.gamma}")
    if d.rounds <= 0 or d.steps % d.rounds:
        raise ConfigError(f"distill.rounds (P={d.rounds}) must divide distill.steps (T={d.steps})")
    if not 0 <= d.warmup_rounds <= d.rounds:
        raise ConfigError(f"distill.warmup_rounds must lie in [0, P], got {d.warmup_rounds}")
    choices = {
        "reward": ("relative", "absolute"),
        "reward_loss": ("full", "pred", "module"),
        "arms": ("modules", "subsets"),
        "posterior": ("gaussian", "beta"),
        "warmup": ("round-robin", "random"),
        "student_init": ("random", "teacher-layers"),
        "layer_loss_positions": ("non-pad", "all"),
    }
    for name, allowed in choices.items():
        value = getattr(d, name)
        if value not in allowed:
            raise ConfigError(f"distill.{name} must be one of {allowed}, got {value!r}")


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise ConfigError(f"--seeds must be integers separated by commas, got {text!r}") from e
    if not seeds:
        raise ConfigError("--seeds names no seed")
    return seeds
