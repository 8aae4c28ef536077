"""What every bandit baseline shares: arms, warm-up, reward range, trace and state.

The baselines (UCB1, discounted and sliding-window UCB, EXP3, epsilon-greedy) differ only in how
a policy picks an arm and digests a reward. The scheduler around it follows OPTIMA's conventions
(spec/optima.md §4) so that only the policy differs between runs: the same arms
(``optima.scheduler.build_arms``), the same round-robin (or random) warm-up, the same scheduler
stream ``default_rng([seed, SCHEDULER_STREAM_TAG])`` and a JSON trace with None for nan/inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from optima.scheduler import ARM_KINDS, WARMUPS, build_arms, scheduler_rng, warmup_choice

# Policies whose analysis assumes bounded rewards (UCB family, EXP3) see rewards mapped from this
# interval onto [0, 1]. OPTIMA's reward r = (R_before - R_after) / R_before is at most 1 since
# R >= 0; r = -1 means the round doubled the objective.
REWARD_LOW, REWARD_HIGH = -1.0, 1.0


def unit_reward(reward: float) -> float:
    """``x = clip((r - REWARD_LOW) / (REWARD_HIGH - REWARD_LOW), 0, 1)``, i.e. ``(r + 1) / 2``.

    Affine on [-1, 1], so arms keep the order of their mean rewards (a plain clip to [0, 1] would
    favour noisy arms whose negative rewards it truncates); only rounds that more than double the
    objective are clipped (to 0).
    """
    x = (float(reward) - REWARD_LOW) / (REWARD_HIGH - REWARD_LOW)
    return min(max(x, 0.0), 1.0)


def argmax_random_tie(values: np.ndarray, rng: np.random.Generator) -> int:
    """Index of the largest value; ties are broken by ``rng`` (as in optima.bandit)."""
    best = np.flatnonzero(values == values.max())
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


def json_float(x: float) -> float | None:
    """None for nan/inf so run records stay valid JSON."""
    return float(x) if math.isfinite(x) else None


class Policy(Protocol):
    """A bandit over arm indices; it draws only from the generator it was built with."""

    select_keys: tuple[str, ...]  # the per-arm arrays ``select`` returns, for the trace

    def select(self) -> tuple[int, dict[str, np.ndarray]]: ...
    def update(self, arm: int, reward: float) -> None: ...
    def statistics(self) -> dict[str, np.ndarray]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def check_config(owner: str, state: dict[str, Any], expected: dict[str, Any]) -> None:
    """Refuse a state saved with another configuration, naming the field."""
    for key, value in expected.items():
        if state.get(key) != value:
            raise ValueError(
                f"{owner}.load_state_dict: field {key!r} is {state.get(key)!r} in the state but "
                f"{value!r} in this instance"
            )


class BanditScheduler:
    """A policy behind the scheduler contract (spec/harness.md §3).

    Rounds ``round_index < warmup_rounds`` warm up as OPTIMA does [card: T0 = 10]: arms
    round-robin or at random, their rewards reaching the policy, or every module, unrewarded.
    Later rounds ask the policy. The policy shares the scheduler's generator, saved once here.
    """

    name = "bandit"

    def __init__(
        self,
        modules: Sequence[str],
        seed: int,
        make_policy: Callable[[int, np.random.Generator], Policy],
        *,
        warmup_rounds: int = 10,
        warmup: str = "round-robin",
        arms: str = "modules",
    ) -> None:
        owner = type(self).__name__
        self.modules = tuple(modules)
        if not self.modules or len(set(self.modules)) != len(self.modules):
            raise ValueError(f"{owner}: modules must be non-empty and unique, got {modules}")
        if warmup not in WARMUPS:
            raise ValueError(f"{owner}: option warmup must be one of {WARMUPS}, got {warmup!r}")
        if arms not in ARM_KINDS:
            raise ValueError(f"{owner}: option arms must be one of {ARM_KINDS}, got {arms!r}")
        if warmup_rounds < 0:
            raise ValueError(f"{owner}: option warmup_rounds must be >= 0, got {warmup_rounds}")
        self.warmup_rounds = int(warmup_rounds)
        self.warmup = warmup
        self.arms = build_arms(self.modules, arms)
        self.arm_names = ["+".join(m for m in self.modules if m in arm) for arm in self.arms]
        self._arm_index = {arm: k for k, arm in enumerate(self.arms)}
        self.rng = scheduler_rng(seed)
        self.policy = make_policy(len(self.arms), self.rng)
        self._trace: dict[str, Any] = {}

    def choose(self, round_index: int) -> frozenset[str]:
        """Active modules for round ``round_index`` (0-based)."""
        if round_index < 0:
            raise ValueError(
                f"{type(self).__name__}.choose: round_index must be >= 0, got {round_index}"
            )
        k = len(self.arms)
        if round_index < self.warmup_rounds:
            phase = "warmup"
            arm = warmup_choice(self.warmup, round_index, k, self.rng)
            selected = dict.fromkeys(self.policy.select_keys)
        else:
            phase = "select"
            arm, selected = self.policy.select()
        self._trace = {
            "phase": phase,
            "arm": self.arm_names[arm] if arm >= 0 else "+".join(self.modules),
            **{key: self._by_name(v) for key, v in self.policy.statistics().items()},
            **{key: self._by_name(v) for key, v in selected.items()},
        }
        return self.arms[arm] if arm >= 0 else frozenset(self.modules)

    def _by_name(self, values: np.ndarray | None) -> dict[str, float | None]:
        if values is None:
            return dict.fromkeys(self.arm_names)
        return {n: json_float(v) for n, v in zip(self.arm_names, values, strict=True)}

    def observe(self, round_index: int, active: frozenset[str], reward: float) -> None:
        """Credit the round's reward to the arm whose active set was ``active``."""
        if self.warmup == "all" and round_index < self.warmup_rounds:
            return
        arm = self._arm_index.get(frozenset(active))
        if arm is None:
            raise ValueError(
                f"{type(self).__name__}.observe: round {round_index} active set {sorted(active)} "
                f"is not an arm; arms are {self.arm_names}"
            )
        if not math.isfinite(float(reward)):
            raise ValueError(
                f"{type(self).__name__}.observe: round {round_index} reward is {reward!r}"
            )
        self.policy.update(arm, float(reward))

    def trace(self) -> dict[str, Any]:
        """The latest choice, per-arm statistics and selection values ({} before any choice)."""
        return dict(self._trace)

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arms": list(self.arm_names),
            "policy": self.policy.state_dict(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name or state.get("arms") != self.arm_names:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state is for scheduler "
                f"{state.get('name')!r} with arms {state.get('arms')}, expected {self.name!r} "
                f"with arms {self.arm_names}"
            )
        self.policy.load_state_dict(state["policy"])
        self.rng.bit_generator.state = state["rng"]
