"""Scheduler registry: the harness finds module schedulers by name (spec/harness.md §3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from baselines import NoDistillScheduler, RandomScheduler, UniformScheduler
from harness.config import DistillConfig
from harness.errors import ConfigError
from optima import OptimaScheduler


def _optima(modules: Sequence[str], seed: int, cfg: DistillConfig) -> OptimaScheduler:
    return OptimaScheduler(
        modules,
        seed,
        gamma=cfg.gamma,
        warmup_rounds=cfg.warmup_rounds,
        warmup=cfg.warmup,
        arms=cfg.arms,
        posterior=cfg.posterior,
    )


REGISTRY: dict[str, tuple[str, Callable]] = {
    "optima": ("OPTIMA: one module per round by discounted Thompson sampling", _optima),
    "uniform": (
        "layer-uniform KD: all modules every round",
        lambda modules, seed, cfg: UniformScheduler(modules, seed),
    ),
    "random": (
        "random module selection: one module per round, uniformly",
        lambda modules, seed, cfg: RandomScheduler(modules, seed),
    ),
    "none": (
        "reference: no distillation, the student trains on the task alone (a1=1, a2=a3=0)",
        lambda modules, seed, cfg: NoDistillScheduler(modules, seed),
    ),
}


def build_scheduler(name: str, modules: Sequence[str], seed: int, cfg: DistillConfig):
    if name not in REGISTRY:
        raise ConfigError(f"unknown scheduler {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name][1](modules, seed, cfg)


def parse_schedulers(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise ConfigError(
            f"--schedulers: unknown {unknown or text!r}; expected some of {list(REGISTRY)}"
        )
    return names
