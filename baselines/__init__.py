"""Baseline module schedulers (spec/optima.md §4, spec/harness.md §3).

``baselines`` may import ``optima`` (never ``harness``): vanilla Thompson sampling is OPTIMA's own
scheduler with gamma = 1, and every scheduler draws from ``optima.scheduler.scheduler_rng``.
"""

from baselines.bandit_scheduler import BanditScheduler, unit_reward
from baselines.epsilon_greedy import EpsilonGreedy, EpsilonGreedyScheduler
from baselines.exp3 import EXP3, EXP3Scheduler
from baselines.fixed import NoDistillScheduler, SingleModuleScheduler, UniformScheduler
from baselines.random_module import RandomScheduler
from baselines.thompson import ThompsonScheduler
from baselines.ucb import (
    UCB1,
    DiscountedUCB,
    DiscountedUCBScheduler,
    SlidingWindowUCB,
    SlidingWindowUCBScheduler,
    UCB1Scheduler,
)

__all__ = [
    "EXP3",
    "UCB1",
    "BanditScheduler",
    "DiscountedUCB",
    "DiscountedUCBScheduler",
    "EXP3Scheduler",
    "EpsilonGreedy",
    "EpsilonGreedyScheduler",
    "NoDistillScheduler",
    "RandomScheduler",
    "SingleModuleScheduler",
    "SlidingWindowUCB",
    "SlidingWindowUCBScheduler",
    "ThompsonScheduler",
    "UCB1Scheduler",
    "UniformScheduler",
    "unit_reward",
]
