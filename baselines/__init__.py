"""Baseline module schedulers (spec/optima.md §4, spec/harness.md §3)."""

from baselines.none import NoDistillScheduler
from baselines.random_module import RandomScheduler
from baselines.uniform import UniformScheduler

__all__ = ["NoDistillScheduler", "RandomScheduler", "UniformScheduler"]
