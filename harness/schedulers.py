"""Scheduler registry: the harness finds module schedulers by name (spec/harness.md §3).

``REGISTRY`` maps a name to (one-line description, ``builder(modules, seed, cfg)``); options come
from the run's ``DistillConfig`` (gamma, warm-up, arms, posterior, reward baseline), and options
it lacks (UCB's c and xi, SW-UCB's window, EXP3's gamma, epsilon) are the module defaults named
in ``baselines``.
``FAMILIES`` holds parameterised names, ``<family>:<argument>``: ``single:visual``.
Beyond the contract of spec §3, a scheduler may say ``task_only = True`` (the ``none`` row):
the loop then weights the objective (1, 0, 0), the task loss alone, instead of ``alpha``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from baselines import (
    DiscountedUCBScheduler,
    EpsilonGreedyScheduler,
    EXP3Scheduler,
    NoDistillScheduler,
    RandomScheduler,
    SingleModuleScheduler,
    SlidingWindowUCBScheduler,
    ThompsonScheduler,
    UCB1Scheduler,
    UniformScheduler,
)
from baselines.epsilon_greedy import EPSILON
from baselines.ucb import SW_WINDOW
from harness.config import DistillConfig
from harness.errors import ConfigError
from optima import OptimaScheduler

Builder = Callable[[Sequence[str], int, DistillConfig], Any]


def _reward(cfg: DistillConfig) -> dict[str, Any]:
    """What OPTIMA feeds its bandit, shared by the bandit baselines (spec/optima.md §4)."""
    return {"reward_baseline": cfg.reward_baseline, "reward_skip_rounds": cfg.reward_skip_rounds}


def _warmup(cfg: DistillConfig) -> dict[str, Any]:
    """OPTIMA's warm-up, arm and reward options, shared by the bandit baselines (spec §4)."""
    return {
        "warmup_rounds": cfg.warmup_rounds,
        "warmup": cfg.warmup,
        "arms": cfg.arms,
        **_reward(cfg),
    }


def _optima(modules: Sequence[str], seed: int, cfg: DistillConfig) -> OptimaScheduler:
    return OptimaScheduler(modules, seed, gamma=cfg.gamma, posterior=cfg.posterior, **_warmup(cfg))


REGISTRY: dict[str, tuple[str, Builder]] = {
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
    "thompson": (
        "vanilla Thompson sampling: OPTIMA's sampler without discounting (gamma = 1)",
        lambda modules, seed, cfg: ThompsonScheduler(
            modules, seed, posterior=cfg.posterior, **_warmup(cfg)
        ),
    ),
    "ucb1": (
        "UCB1 (Auer et al. 2002) after OPTIMA's warm-up",
        lambda modules, seed, cfg: UCB1Scheduler(modules, seed, **_warmup(cfg)),
    ),
    "discounted-ucb": (
        "discounted UCB (Garivier and Moulines 2011) with OPTIMA's gamma",
        lambda modules, seed, cfg: DiscountedUCBScheduler(
            modules, seed, gamma=cfg.gamma, **_warmup(cfg)
        ),
    ),
    "sliding-window-ucb": (
        f"sliding-window UCB (Garivier and Moulines 2011) over the last {SW_WINDOW} rounds",
        lambda modules, seed, cfg: SlidingWindowUCBScheduler(modules, seed, **_warmup(cfg)),
    ),
    "exp3": (
        "EXP3 (Auer et al. 2002), adversarial bandit, rewards mapped to [0, 1]; no warm-up",
        lambda modules, seed, cfg: EXP3Scheduler(modules, seed, arms=cfg.arms, **_reward(cfg)),
    ),
    "epsilon-greedy": (
        f"epsilon-greedy (epsilon = {EPSILON}) on sample means after OPTIMA's warm-up",
        lambda modules, seed, cfg: EpsilonGreedyScheduler(modules, seed, **_warmup(cfg)),
    ),
}

# name -> (placeholder shown by `ls`, description, builder(modules, seed, cfg, argument))
FAMILIES: dict[str, tuple[str, str, Callable[[Sequence[str], int, DistillConfig, str], Any]]] = {
    "single": (
        "<module>",
        "the same one module every round, e.g. single:visual",
        lambda modules, seed, cfg, module: SingleModuleScheduler(modules, seed, module),
    ),
}


def list_schedulers() -> list[tuple[str, str]]:
    """(name, description) of every scheduler, families shown as ``single:<module>``."""
    plain = [(name, description) for name, (description, _) in REGISTRY.items()]
    families = [(f"{f}:{arg}", description) for f, (arg, description, _) in FAMILIES.items()]
    return plain + families


def _known() -> list[str]:
    return [name for name, _ in list_schedulers()]


def _check(name: str, modules: Sequence[str] | None, where: str) -> None:
    """Raise ConfigError unless ``name`` is registered, or a family member whose argument is one
    of ``modules`` (any non-empty argument when ``modules`` is None)."""
    if name in REGISTRY:
        return
    family, sep, argument = name.partition(":")
    if sep and family in FAMILIES and argument:
        if modules is None or argument in modules:
            return
        raise ConfigError(
            f"{where}: scheduler {name!r} names module {argument!r}; the modules are "
            f"{list(modules)}"
        )
    raise ConfigError(f"{where}: unknown scheduler {name!r}; expected one of {_known()}")


def build_scheduler(name: str, modules: Sequence[str], seed: int, cfg: DistillConfig):
    """The scheduler ``name`` (a registered name or e.g. ``single:visual``) for one run."""
    _check(name, modules, "build_scheduler")
    if name in REGISTRY:
        return REGISTRY[name][1](modules, seed, cfg)
    family, _, argument = name.partition(":")
    return FAMILIES[family][2](modules, seed, cfg, argument)


def parse_schedulers(text: str, modules: Sequence[str] | None = None) -> list[str]:
    """Comma-separated scheduler names; ``single:<module>`` is checked against ``modules`` when
    given (else only at build time, when the run's modules are known)."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ConfigError(f"--schedulers: no scheduler in {text!r}; expected some of {_known()}")
    for name in names:
        _check(name, modules, "--schedulers")
    return names
