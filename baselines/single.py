"""Single-module distillation: the same one module every round (the `single:<module>` family)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SingleModuleScheduler:
    """Active set = ``{module}`` in every round: how much does one module's layer loss give on its
    own? The ablation row next to OPTIMA's adaptive choice (spec/optima.md §4)."""

    def __init__(self, modules: Sequence[str], seed: int, module: str) -> None:
        self.modules = tuple(modules)
        if module not in self.modules:
            raise ValueError(
                f"SingleModuleScheduler: module {module!r} is not one of {list(self.modules)}"
            )
        self.module = module
        self.name = f"single:{module}"
        self.seed = int(seed)  # unused: the choice is deterministic

    def choose(self, round_index: int) -> frozenset[str]:
        return frozenset([self.module])

    def observe(self, round_index: int, active: frozenset[str], reward: float) -> None:
        pass

    def trace(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(
                f"SingleModuleScheduler.load_state_dict: state is for {state.get('name')!r}, "
                f"expected {self.name!r}"
            )
