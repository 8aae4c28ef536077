"""What every bandit baseline shares: arms, warm-up, reward range, trace and state.

The baselines (UCB1, discounted and sliding-window UCB, EXP3, epsilon-greedy) differ only in how
a policy picks an arm and digests a reward. The scheduler around it follows OPTIMA's conventions
(spec/optima.md §4) so that only the policy differs between runs: the same arms
(``optima.scheduler.build_arms``), the same round-robin (or random) warm-up, the same scheduler
stream ``default_rng([seed, SCHEDULER_STREAM_TAG])`` and a JSON trace with None for nan/inf.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from optima.scheduler import ArmScheduler

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


class CountsAndSums:
    """A policy whose state is per-arm play counts and reward sums (UCB1, D-UCB, epsilon-greedy):
    saved and restored here, with the configuration `_config` names checked on restore."""

    def __init__(self, n_arms: int, rng: np.random.Generator) -> None:
        self.n_arms, self.rng = int(n_arms), rng
        self.counts = np.zeros(self.n_arms)
        self.sums = np.zeros(self.n_arms)

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {**self._config(), "counts": self.counts.tolist(), "sums": self.sums.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_config(type(self).__name__, state, self._config())
        self.counts = np.asarray(state["counts"], dtype=float)
        self.sums = np.asarray(state["sums"], dtype=float)


class BanditScheduler(ArmScheduler):
    """A policy behind the scheduler contract (spec/harness.md §3), with OPTIMA's warm-up
    [card: T0 = 10]. The policy shares the scheduler's generator, saved once here."""

    name = "bandit"

    def __init__(
        self,
        modules: Sequence[str],
        seed: int,
        make_policy: Callable[[int, np.random.Generator], Policy],
        **options: Any,
    ) -> None:
        """``options``: ArmScheduler's (warm-up, arms, reward baseline)."""
        super().__init__(modules, seed, **options)
        self.policy = make_policy(len(self.arms), self.rng)

    def _pick(self):
        arm, selected = self.policy.select()
        return arm, {**self.policy.statistics(), **selected}

    def _warmup_values(self):
        return {**self.policy.statistics(), **dict.fromkeys(self.policy.select_keys)}

    def _update(self, arm: int, reward: float) -> None:
        self.policy.update(arm, reward)

    def _state(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "rng": self.rng.bit_generator.state}

    def _load(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.rng.bit_generator.state = state["rng"]
