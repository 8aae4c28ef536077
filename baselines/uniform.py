"""Layer-uniform KD: every module is distilled in every round (spec/optima.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class UniformScheduler:
    """Active set = all modules, every round; rewards are recorded by the harness, not used."""

    name = "uniform"

    def __init__(self, modules: Sequence[str], seed: int) -> None:
        self.modules = frozenset(modules)
        self.seed = int(seed)  # unused: the choice is deterministic

    def choose(self, round_index: int) -> frozenset[str]:
        return self.modules

    def observe(self, round_index: int, active: frozenset[str], reward: float) -> None:
        pass

    def trace(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(
                f"UniformScheduler.load_state_dict: state is for {state.get('name')!r}, "
                f"expected {self.name!r}"
            )
