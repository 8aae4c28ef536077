"""Study configuration: named presets plus overrides, validated and hashed.

A study is (task, preset); a run is (study, scheduler, seed). Every [ours] choice of
`spec/optima.md` is a named field here, so it is recorded in each run and printed in reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.tasks import TaskCard, card
from optima.scheduler import REWARD_BASELINES, WARMUPS


@dataclass(frozen=True)
class TeacherConfig:
    """How the teacher is obtained on the embedded default (no checkpoint exists to load)."""

    model: str
    steps: int
    lr: float
    batch_size: int
    weight_decay: float = 0.05
    warmup_steps: int = 100


# How each block's layer-loss MSE is scaled [ours] (harness/distill/losses.py)
LAYER_LOSS_NORMS = ("none", "teacher-variance", "layernorm")
CARD_LR = 1e-3  # the card's distillation learning rate (spec/optima.md §5)
# why a preset trains at another rate than the card's, as measured (preset, lr): the reports
# print it for that preset's studies only
LR_EVIDENCE = {
    ("default", 1e-2): "measured: at the card's rate the default VQA study's students end at "
    "47.9 (optima) and 47.2 (uniform) against 59.5 and 58.6 at 0.01, seeds 0-3 (README, "
    "'Sizing the studies')",
}


@dataclass(frozen=True)
class DistillConfig:
    """Spec §3-§5. Defaults are the card's where it has one; [ours] fields are marked."""

    student: str
    steps: int  # T [card: 100k]
    rounds: int  # P [card: 100]
    warmup_rounds: int  # T0 [card: 10]
    gamma: float = 0.98  # [card]
    alpha: tuple[float, float, float] = (0.0, 1.0, 1e-2)  # a1, a2, a3 [card]
    lr: float = CARD_LR  # [card], linear decay to 0 over `steps`
    weight_decay: float = 0.01  # [ours]
    batch_size: int = 64  # [ours]
    reward_set_size: int = 256  # [ours] N
    temperature: float = 1.0  # [ours] tau of L_pred for softmax heads
    # [ours] interpretation options (spec/optima.md §2-§4)
    reward: str = "relative"
    reward_loss: str = "full"
    arms: str = "modules"
    posterior: str = "gaussian"
    warmup: str = "shuffled"  # was round-robin; see reward_baseline
    # teacher layers copied into the modules whose width matches the teacher's (spec §2)
    student_init: str = "teacher-layers"
    layer_loss_positions: str = "non-pad"
    # optima.scheduler.REWARD_BASELINES; "ratio" and "shuffled" are the reading that beats
    # random on bandit-sim's `decaying` scenario, whose rewards have the measured shape (README)
    reward_baseline: str = "ratio"
    reward_skip_rounds: int = 0  # rounds whose reward the bandit never sees
    layer_loss_norm: str = "teacher-variance"  # LAYER_LOSS_NORMS

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
    "reward_baseline",
    "reward_skip_rounds",
    "layer_loss_norm",
    "weight_decay",
    "batch_size",
    "reward_set_size",
    "temperature",
)


@dataclass(frozen=True)
class NumericsConfig:
    """How a run's arithmetic is pinned (harness/numerics.py): part of its configuration,
    since kernels and thread counts change the digits a study reports."""

    mode: str = "portable"  # or "native": the machine's own kernels, same-CPU reproducible
    threads: int = 1  # torch intra-op threads of each distillation run
    teacher_threads: int = 2  # pre-training, teacher fine-tuning, teacher-output cache


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
    teacher_cache: bool = True  # teacher outputs computed once, stored, memory-mapped, reused
    teacher_cache_dtype: str = "float32"  # or float16 / bfloat16: half the disk and memory
    # [ours] embedded default only: captioning pre-training shared by the tasks' teachers
    pretrain: TeacherConfig | None = None
    eval_batch_size: int = 256
    eval_every_rounds: int = 5  # metric on the eval split during training, for curves
    # Real CoCa weights (README "A real CoCa checkpoint"): a pre-trained open_clip CoCa file the
    # teacher is fine-tuned from (it replaces the embedded pre-training), or a teacher already
    # fine-tuned by `optima-repro teacher` (its teacher.pt: fine-tuning is skipped).
    teacher_checkpoint: str = ""
    teacher_finetuned: str = ""
    tokenizer: str = "sentencepiece"  # or "open_clip": CLIP's BPE, which open_clip weights need
    max_steps: int = 0  # > 0: every training loop stops after this many steps (smoke checks)
    numerics: NumericsConfig = NumericsConfig()
    # "bf16": distillation under autocast in bfloat16, float32 weights and optimizer state
    precision: str = "fp32"
    tensorboard: bool = False  # event files under <workdir>/tensorboard/: a view, not a result
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The config as it names a result (its hash, its study folder): views left out, and
        fields added after results were published left out at their defaults, so those
        results keep their hash."""
        d = self.to_dict()
        for name in VIEWS:
            d.pop(name)
        for name, default in LATE_DEFAULTS.items():
            *sections, leaf = name.split(".")
            where = d
            for section in sections:
                where = where[section]
            if where[leaf] == default:
                where.pop(leaf)
        return d

    def hash(self) -> str:
        return config_hash(self.identity())


VIEWS = ("tensorboard",)
# dotted paths for fields of a section; the value is the reading results were published with
LATE_DEFAULTS = {
    "precision": "fp32",
    "distill.reward_baseline": "none",
    "distill.reward_skip_rounds": 0,
    "distill.layer_loss_norm": "none",
}


def config_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _presets(card: TaskCard) -> dict[str, StudyConfig]:
    """`smoke` (tests, about a minute) and `default` (the embedded study), measured as README
    says; the same models for every task, the budgets of the task's card."""
    common = dict(
        task=card.name,
        train_split=card.train_split,
        eval_split=card.eval_split,
        extra_eval_splits=card.extra_eval_splits,
        context_length=card.context_length,
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
        teacher=TeacherConfig(
            model="teacher-small", steps=card.teacher_steps, lr=1e-3, batch_size=64
        ),
        distill=DistillConfig(
            student="student-small",
            steps=card.student_steps,
            rounds=20,
            warmup_rounds=6,
            lr=1e-2,
        ),
        vocab_size=512,
        pretrain=TeacherConfig(model="teacher-small", steps=2000, lr=1e-3, batch_size=64),
        eval_every_rounds=card.curve_every,
    )
    # The paper's setting (spec/optima.md §2-§5): CoCa-Large teacher, the `half` student
    # (`--set distill.student=quarter` for the other), T = 100k, P = 100, T0 = 10. [ours]:
    # 288 px images, batch 64, 64 tokens, CoCa's 64k vocabulary, teacher outputs not cached
    # (every layer of every example of a real split does not fit in memory).
    paper = StudyConfig(
        **{**common, "context_length": 64},
        preset="paper",
        world="default",
        teacher=TeacherConfig(model="coca-large", steps=20_000, lr=1e-5, batch_size=64),
        distill=DistillConfig(student="half", steps=100_000, rounds=100, warmup_rounds=10),
        vocab_size=64_000,
        teacher_cache=False,
        eval_every_rounds=10,
    )
    return {"smoke": smoke, "default": default, "paper": paper}


# The verdict's pair [ours]: each task report's question is whether `optima` beats `uniform`,
# so those rows run every seed of a study; the other rows (random, none, bandit baselines)
# describe and run the first DESCRIPTIVE_SEEDS of them (README, "Sizing the studies").
COMPARED = ("optima", "uniform")
DESCRIPTIVE_SEEDS = 3
SEEDS = {"smoke": "0,1,2", "default": "0-7", "paper": "0,1,2"}  # `--seeds` of `reproduce`


def default_seeds(task: str, preset: str) -> str:
    """`reproduce --seeds` when not given: the preset's, or the task card's for `default`."""
    return (preset == "default" and card(task).seeds) or SEEDS[preset]


def row_seeds(schedulers: Sequence[str], seeds: Sequence[int], descriptive: int) -> dict:
    """Each row's seeds: all of them for the compared rows, the first `descriptive` else."""
    if descriptive < 1:
        raise ConfigError(f"--descriptive-seeds must be >= 1, got {descriptive}")
    return {s: list(seeds if s in COMPARED else seeds[:descriptive]) for s in schedulers}


def study_config(task: str, preset: str) -> StudyConfig:
    presets = _presets(card(task))
    if preset not in presets:
        raise ConfigError(
            f"unknown preset {preset!r} for {task}; expected one of {sorted(presets)}"
        )
    cfg = presets[preset]
    validate(cfg)
    return cfg


def apply_overrides(cfg: StudyConfig, overrides: list[str]) -> StudyConfig:
    """`--set distill.gamma=0.9`: dotted field paths, values read as the field's current type
    (a tuple from comma-separated items), validated afterwards like a preset. `precision=bf16`
    stores the teacher's outputs in bfloat16 too, unless `teacher_cache_dtype` is set."""
    keys = set()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected field=value, e.g. distill.gamma=0.9")
        cfg = _replace_path(cfg, key.strip().split("."), raw.strip(), key.strip())
        keys.add(key.strip())
    if cfg.precision == "bf16" and "teacher_cache_dtype" not in keys:
        cfg = dataclasses.replace(cfg, teacher_cache_dtype="bfloat16")
    validate(cfg)
    return cfg


def _replace_path(obj: Any, path: list[str], raw: str, key: str) -> Any:
    names = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []
    if path[0] not in names:
        raise ConfigError(f"--set {key}: no field {path[0]!r} here; fields are {names}")
    current = getattr(obj, path[0])
    if len(path) > 1:
        value = _replace_path(current, path[1:], raw, key)
    else:
        value = _parse_value(current, raw, key)
    return dataclasses.replace(obj, **{path[0]: value})


def _parse_value(current: Any, raw: str, key: str) -> Any:
    if dataclasses.is_dataclass(current) or isinstance(current, dict) or current is None:
        raise ConfigError(f"--set {key}: this field is not a single value; set its fields")
    if isinstance(current, tuple):
        items = [x.strip() for x in raw.split(",") if x.strip()]
        kinds = [type(x) for x in current] or [str]
        if len(set(kinds)) == 1:
            kinds = kinds[:1] * len(items)
        if len(kinds) != len(items):
            raise ConfigError(f"--set {key}: expected {len(kinds)} comma-separated values")
        return tuple(_scalar(kind, x, key) for kind, x in zip(kinds, items, strict=True))
    return _scalar(type(current), raw, key)


def _scalar(kind: type, raw: str, key: str) -> Any:
    if kind is bool:
        if raw.lower() not in ("true", "false"):
            raise ConfigError(f"--set {key}: expected true or false, got {raw!r}")
        return raw.lower() == "true"
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"--set {key}: expected {kind.__name__}, got {raw!r}") from None


TOKENIZERS = ("sentencepiece", "open_clip")


@dataclass(frozen=True)
class Domain:
    """The values a field accepts, and how an error says so."""

    text: str
    accepts: Callable[[Any], bool]


def at_least(n: int) -> Domain:
    return Domain(f">= {n}", lambda v: v >= n)


def one_of(*values: str) -> Domain:
    return Domain(f"one of {values}", lambda v: v in values)


POSITIVE = Domain("> 0", lambda v: v > 0)
UNIT = Domain("in (0, 1]", lambda v: 0 < v <= 1)
WEIGHTS = Domain(
    "three weights >= 0, not all 0 (a1, a2, a3)",
    lambda v: len(v) == 3 and min(v) >= 0 and max(v) > 0,
)
TEACHER_DOMAINS = {
    "steps": at_least(0),
    "lr": POSITIVE,
    "batch_size": at_least(1),
    "weight_decay": at_least(0),
    "warmup_steps": at_least(0),
}
# Every number, tuple and choice of every section has a domain here (a test holds to it);
# floats are also checked finite. Limits set by the data (the reward set and batches drawn
# from the train split) are checked by `check_sizes` once the data is read.
DOMAINS: dict[type, dict[str, Domain]] = {
    TeacherConfig: TEACHER_DOMAINS,
    DistillConfig: {
        "steps": at_least(1),
        "rounds": at_least(1),
        "warmup_rounds": at_least(0),
        "gamma": UNIT,
        "alpha": WEIGHTS,
        "lr": POSITIVE,
        "weight_decay": at_least(0),
        "batch_size": at_least(1),
        "reward_set_size": at_least(1),
        "temperature": POSITIVE,
        "reward": one_of("relative", "absolute"),
        "reward_loss": one_of("full", "pred", "module"),
        "arms": one_of("modules", "subsets"),
        "posterior": one_of("gaussian", "beta"),
        "warmup": one_of(*WARMUPS),
        "reward_baseline": one_of(*REWARD_BASELINES),
        "reward_skip_rounds": at_least(0),
        "layer_loss_norm": one_of(*LAYER_LOSS_NORMS),
        "student_init": one_of("random", "teacher-layers"),
        "layer_loss_positions": one_of("non-pad", "all"),
    },
    NumericsConfig: {
        "mode": one_of("portable", "native"),
        "threads": at_least(1),
        "teacher_threads": at_least(1),
    },
    StudyConfig: {
        "vocab_size": at_least(5),  # 4 special pieces; the text's characters need more
        "context_length": at_least(2),  # one text token and the end token
        "answer_top_k": at_least(1),
        "teacher_cache_dtype": one_of("float32", "float16", "bfloat16"),
        "eval_batch_size": at_least(1),
        "eval_every_rounds": at_least(0),  # 0: no curve
        "tokenizer": one_of(*TOKENIZERS),
        "max_steps": at_least(0),  # 0: no cap
        "precision": one_of("fp32", "bf16"),
    },
}


def validate(cfg: StudyConfig) -> None:
    """Every field against its domain, before any work starts: a bad value stops the command
    naming the field, not a run or a traceback later."""
    _check_domains(cfg, "")
    if cfg.teacher_checkpoint and cfg.teacher_finetuned:
        raise ConfigError(
            "teacher_checkpoint (fine-tune from it) and teacher_finetuned (use it as it is) "
            "exclude each other; set one"
        )
    d = cfg.distill
    if d.steps % d.rounds:
        raise ConfigError(f"distill.rounds (P={d.rounds}) must divide distill.steps (T={d.steps})")
    if d.warmup_rounds > d.rounds:
        raise ConfigError(
            f"distill.warmup_rounds must lie in [0, P={d.rounds}], got {d.warmup_rounds}"
        )


def _check_domains(obj: Any, prefix: str) -> None:
    domains = DOMAINS.get(type(obj), {})
    for f in dataclasses.fields(obj):
        name, value = prefix + f.name, getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_domains(value, f"{name}.")
            continue
        items = value if isinstance(value, tuple) else (value,)
        if any(isinstance(x, float) and not math.isfinite(x) for x in items):
            raise ConfigError(f"{name} must be a finite number, got {_show(value)}")
        domain = domains.get(f.name)
        if domain is not None and not domain.accepts(value):
            raise ConfigError(f"{name} must be {domain.text}, got {_show(value)}")


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else repr(value)


def check_sizes(cfg: StudyConfig, train_examples: int, train_file: str) -> None:
    """The limits the train split sets, checked as soon as it is read: the reward set is drawn
    from it and held out of training, and every batch must fill (spec/optima.md §4)."""
    d = cfg.distill
    where = f"the {train_examples} examples of the train split ({train_file})"
    if d.reward_set_size >= train_examples:
        raise ConfigError(
            f"distill.reward_set_size {d.reward_set_size} leaves no training examples: the "
            f"reward set is drawn from {where} and held out of training"
        )
    pool = train_examples - d.reward_set_size
    if d.batch_size > pool:
        raise ConfigError(
            f"distill.batch_size {d.batch_size} is larger than the {pool} training examples "
            f"left of {where} once the reward set ({d.reward_set_size}) is held out"
        )
    if not cfg.teacher_finetuned and cfg.teacher.batch_size > train_examples:
        raise ConfigError(f"teacher.batch_size {cfg.teacher.batch_size} is larger than {where}")


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """`0,1,2`, `0-15` or a mix (`0-3,8`), in the order given, each seed once."""
    seeds: list[int] = []
    try:
        for item in (s.strip() for s in text.split(",")):
            if not item:
                continue
            first, _, last = item.partition("-") if not item.startswith("-") else (item, "", "")
            span = range(int(first), int(last) + 1) if last else [int(first)]
            if last and not span:
                raise ConfigError(f"{option}: the range {item!r} is empty (write low-high)")
            seeds += [n for n in span if n not in seeds]
    except ValueError as e:
        raise ConfigError(
            f"{option} must be integers or ranges (0-15) separated by commas, got {text!r}"
        ) from e
    if not seeds:
        raise ConfigError(f"{option} names no seed")
    negative = [s for s in seeds if s < 0]
    if negative:
        raise ConfigError(f"{option} must be integers >= 0, got {negative[0]}")
    return seeds
