"""OPTIMA's bandit and module scheduler (spec/optima.md §4)."""

from optima.bandit import DiscountedThompson
from optima.scheduler import OptimaScheduler

__all__ = ["DiscountedThompson", "OptimaScheduler"]
