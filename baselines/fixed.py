"""Schedulers whose active set never changes: layer-uniform KD (every module), no
distillation (no module: the task-only reference row) and `single:<module>` (one module, the
ablation row next to OPTIMA's adaptive choice). Spec/optima.md §4. Rewards are recorded by the
harness and not used."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class FixedScheduler:
    task_only = False  # True: the loop trains on the task loss alone (no prediction loss)

    def __init__(self, name: str, modules: Sequence[str], active: Iterable[str], seed: int):
        self.name = name
        self.modules = tuple(modules)
        self.active = frozenset(active)
        self.seed = int(seed)  # unused: the choice is deterministic

    def choose(self, round_index: int) -> frozenset[str]:
        return self.active

    def observe(self, round_index: int, active: frozenset[str], reward: float) -> None:
        pass

    def trace(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state is for {state.get('name')!r}, "
                f"expected {self.name!r}"
            )


class UniformScheduler(FixedScheduler):
    """Every module, every round."""

    def __init__(self, modules: Sequence[str], seed: int) -> None:
        super().__init__("uniform", modules, modules, seed)


class NoDistillScheduler(FixedScheduler):
    """No module and no prediction loss: the student trains on the task loss alone."""

    task_only = True

    def __init__(self, modules: Sequence[str], seed: int) -> None:
        super().__init__("none", modules, (), seed)


class SingleModuleScheduler(FixedScheduler):
    """``{module}`` in every round: what one module's layer loss gives on its own."""

    def __init__(self, modules: Sequence[str], seed: int, module: str) -> None:
        if module not in modules:
            raise ValueError(
                f"SingleModuleScheduler: module {module!r} is not one of {list(modules)}"
            )
        super().__init__(f"single:{module}", modules, (module,), seed)
        self.module = module
