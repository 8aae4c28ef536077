"""No distillation: the reference row where the student trains on the task loss alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class NoDistillScheduler:
    """Active set = empty, every round, so no layer loss is applied (spec/optima.md §4 rows)."""

    name = "none"

    def __init__(self, modules: Sequence[str], seed: int) -> None:
        self.modules = tuple(modules)
        self.seed = int(seed)  # unused: the choice is deterministic

    def choose(self, round_index: int) -> frozenset[str]:
        return frozenset()

    def observe(self, round_index: int, active: frozenset[str], reward: float) -> None:
        pass

    def trace(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(
                f"NoDistillScheduler.load_state_dict: state is for {state.get('name')!r}, "
                f"expected {self.name!r}"
            )
