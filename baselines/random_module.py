"""Random module selection: one module drawn uniformly at random per round (spec/optima.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Same tag as optima.scheduler.SCHEDULER_STREAM_TAG (a test checks they agree); repeated here
# because baselines/ imports only stdlib/numpy/torch (spec/harness.md §3).
SCHEDULER_STREAM_TAG = 0x5C4ED


class RandomScheduler:
    """One module per round from the scheduler's own stream ``default_rng([seed, TAG])``,
    so the draws never disturb the data or model streams (spec §4)."""

    name = "random"

    def __init__(self, modules: Sequence[str], seed: int) -> None:
        self.modules = tuple(modules)
        if not self.modules or len(set(self.modules)) != len(self.modules):
            raise ValueError(
                f"RandomScheduler: modules must be non-empty and unique, got {modules}"
            )
        self.rng = np.random.default_rng([int(seed), SCHEDULER_STREAM_TAG])

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
