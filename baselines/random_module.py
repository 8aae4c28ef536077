"""Random module selection: one module drawn uniformly at random per round (spec/optima.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optima.scheduler import SCHEDULER_STREAM_TAG, scheduler_rng

# The tag is re-exported: tests/test_schedulers.py checks that all schedulers share it.
__all__ = ["SCHEDULER_STREAM_TAG", "RandomScheduler"]


class RandomScheduler:
    """One module per round from the scheduler's own stream ``default_rng([seed, TAG])``
    (optima.scheduler.scheduler_rng), so the draws never disturb the data or model streams."""

    name = "random"

    def __init__(self, modules: Sequence[str], seed: int) -> None:
        self.modules = tuple(modules)
        if not self.modules or len(set(self.modules)) != len(self.modules):
            raise ValueError(
                f"RandomScheduler: modules must be non-empty and unique, got {modules}"
            )
        self.rng = scheduler_rng(seed)

    def choose(self, round_index: int) -> frozenset[str]:
        return frozenset([self.modules[int(self.rng.integers(len(self.modules)))]])

    def observe(self, round_index: int, active: frozenset[str], reward: float) -> None:
        pass

    def trace(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(
                f"RandomScheduler.load_state_dict: state is for {state.get('name')!r}, "
                f"expected {self.name!r}"
            )
        self.rng.bit_generator.state = state["rng"]
