"""The OPTIMA module scheduler: warm-up, then discounted Thompson sampling (spec/optima.md §4).

Follows the scheduler contract of spec/harness.md §3: ``choose`` before a round, ``observe``
after it, JSON-serialisable ``state_dict`` for resuming, and ``trace`` for the run record.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from optima.bandit import DiscountedThompson

# Second word of every scheduler's seed sequence, ``default_rng([seed, SCHEDULER_STREAM_TAG])``:
# the scheduler's random stream is its own, so changing the scheduler changes no data or model
# draw (spec §4). baselines/random_module.py uses the same tag (checked by a test).
SCHEDULER_STREAM_TAG = 0x5C4ED

# "shuffled" [ours]: round-robin over a permutation of the arms drawn once per seed, so no arm is
# always the first one tried, in the round whose objective falls most. "all" [ours]: warm-up
# rounds distill every module (layer-uniform KD) and feed the bandit no reward, so sampling
# starts from empty statistics at round T0.
WARMUPS = ("round-robin", "shuffled", "random", "all")
# What the policy is fed [ours]. "none": the round's reward r. "ratio": (r - b) / s, with b the
# mean and s the mean absolute value of the rewards of the last K rounds (any arm), i.e.
# (r - b) / |b| while they share a sign; s stays away from 0 when noise makes them straddle it.
# A round with fewer than K rewards before it (or s = 0) feeds nothing. The reward-set
# objective falls fast early and slowly later, so raw rewards mostly say *when* an arm was
# played (bandit-sim scenario "decaying"); the trend shared by all arms cancels in the ratio.
REWARD_BASELINES = ("none", "ratio")


ARM_KINDS = ("modules", "subsets")


def scheduler_rng(seed: int) -> np.random.Generator:
    """The scheduler stream for ``seed``, independent of the harness's data and model streams."""
    return np.random.default_rng([int(seed), SCHEDULER_STREAM_TAG])


def build_arms(modules: Sequence[str], kind: str) -> list[frozenset[str]]:
    """Arms as active sets, in a fixed order.

    ``modules``: one arm per module, in the given order. ``subsets``: every non-empty subset
    (K = 2^M - 1), by size, then in ``itertools.combinations`` order of the given module order;
    for (a, b, c): a, b, c, a+b, a+c, b+c, a+b+c. Singletons come first, so round-robin warm-up
    tries single modules before pairs.
    """
    if kind == "modules":
        return [frozenset([m]) for m in modules]
    return [
        frozenset(combo)
        for size in range(1, len(modules) + 1)
        for combo in itertools.combinations(modules, size)
    ]


def json_float(x: float) -> float | None:
    """None for nan/inf so run records stay valid JSON."""
    return float(x) if math.isfinite(x) else None


class ArmScheduler:
    """Arms, warm-up, reward baseline, trace and state shared by OPTIMA and the bandit
    baselines, so that only the policy differs between their runs. A subclass says how an arm is
    picked after warm-up (``_pick``: the arm and per-arm values for the trace;
    ``_warmup_values``: the same keys with no values), how a reward is digested (``_update``)
    and what else its state holds (``_state``, ``_load``).

    Rounds ``round_index < warmup_rounds`` pick arms round-robin (``round_index % K``, over a
    per-seed permutation for ``shuffled``) or uniformly at random [card: T0 = 10], and their
    rewards reach the policy; or (``all``) distill every module without updating it. Rewards
    come from ``observe`` (spec §4), go through ``reward_baseline`` (``REWARD_BASELINES``), and
    rounds ``round_index < reward_skip_rounds`` feed the policy nothing [ours]: their rewards
    are the objective's steepest fall, whoever was played. The constructor's defaults are the
    first reading (raw reward, round-robin); a study's are its config's, passed explicitly.
    """

    name = "arms"
    pick_phase = "select"

    def __init__(
        self,
        modules: Sequence[str],
        seed: int,
        *,
        warmup_rounds: int = 10,
        warmup: str = "round-robin",
        arms: str = "modules",
        reward_baseline: str = "none",
        reward_skip_rounds: int = 0,
    ) -> None:
        owner = type(self).__name__
        self.modules = tuple(modules)
        if not self.modules or len(set(self.modules)) != len(self.modules):
            raise ValueError(f"{owner}: modules must be non-empty and unique, got {modules}")
        for option, value, allowed in (
            ("warmup", warmup, WARMUPS),
            ("arms", arms, ARM_KINDS),
            ("reward_baseline", reward_baseline, REWARD_BASELINES),
        ):
            if value not in allowed:
                raise ValueError(
                    f"{owner}: option {option} must be one of {allowed}, got {value!r}"
                )
        for option, value in (
            ("warmup_rounds", warmup_rounds),
            ("reward_skip_rounds", reward_skip_rounds),
        ):
            if value < 0:
                raise ValueError(f"{owner}: option {option} must be >= 0, got {value}")
        self.warmup_rounds = int(warmup_rounds)
        self.warmup = warmup
        self.reward_baseline = reward_baseline
        self.reward_skip_rounds = int(reward_skip_rounds)
        self.arms = build_arms(self.modules, arms)
        self.arm_names = ["+".join(m for m in self.modules if m in arm) for arm in self.arms]
        self._arm_index = {arm: k for k, arm in enumerate(self.arms)}
        self.rng = scheduler_rng(seed)
        # Drawn first and only when used, so the other readings' streams are unchanged.
        shuffled = warmup == "shuffled" and self.warmup_rounds > 0
        order = self.rng.permutation(len(self.arms)) if shuffled else range(len(self.arms))
        self.warmup_order = [int(k) for k in order]
        self.recent_rewards: list[float] = []  # the baseline's window: last K raw rewards
        self._trace: dict[str, Any] = {}

    def _pick(self) -> tuple[int, dict[str, np.ndarray | None]]:
        raise NotImplementedError

    def _warmup_values(self) -> dict[str, np.ndarray | None]:
        raise NotImplementedError

    def _update(self, arm: int, reward: float) -> None:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def choose(self, round_index: int) -> frozenset[str]:
        """Active modules for round ``round_index`` (0-based)."""
        if round_index < 0:
            raise ValueError(
                f"{type(self).__name__}.choose: round_index must be >= 0, got {round_index}"
            )
        if round_index < self.warmup_rounds:
            phase = "warmup"
            if self.warmup == "random":
                arm = int(self.rng.integers(len(self.arms)))
            elif self.warmup == "all":
                arm = -1
            else:
                arm = self.warmup_order[round_index % len(self.arms)]
            values = self._warmup_values()
        else:
            phase = self.pick_phase
            arm, values = self._pick()
        self._trace = {
            "phase": phase,
            "arm": self.arm_names[arm] if arm >= 0 else "+".join(self.modules),
            **{key: self._by_name(v) for key, v in values.items()},
        }
        return self.arms[arm] if arm >= 0 else frozenset(self.modules)

    def _by_name(self, values: np.ndarray | None) -> dict[str, float | None]:
        """Per-arm values keyed by arm name; None for nan/inf (or no values)."""
        if values is None:
            return dict.fromkeys(self.arm_names)
        return {n: json_float(v) for n, v in zip(self.arm_names, values, strict=True)}

    def observe(self, round_index: int, active: frozenset[str], reward: float) -> None:
        """Credit the round's reward to the arm whose active set was ``active``; the trace's
        ``fed_reward`` says what the policy got (None: nothing)."""
        self._trace["fed_reward"] = None
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
        fed = self._baselined(float(reward))
        if fed is not None and round_index >= self.reward_skip_rounds:
            self._trace["fed_reward"] = fed
            self._update(arm, fed)

    def _baselined(self, reward: float) -> float | None:
        """The reward relative to the recent ones (``REWARD_BASELINES``); records ``reward``."""
        window = list(self.recent_rewards)
        self.recent_rewards = [*window, reward][-len(self.arms) :]
        if self.reward_baseline == "none":
            return reward
        scale = sum(map(abs, window)) / len(self.arms)
        if len(window) < len(self.arms) or scale == 0.0:
            return None
        return (reward - sum(window) / len(self.arms)) / scale

    def trace(self) -> dict[str, Any]:
        """The latest choice and per-arm values for the run record ({} before any choice)."""
        return dict(self._trace)

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arms": list(self.arm_names),
            "recent_rewards": list(self.recent_rewards),
            **self._state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name or state.get("arms") != self.arm_names:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state is for scheduler "
                f"{state.get('name')!r} with arms {state.get('arms')}, expected {self.name!r} "
                f"with arms {self.arm_names}"
            )
        self.recent_rewards = [float(r) for r in state.get("recent_rewards", [])]
        self._load(state)


class OptimaScheduler(ArmScheduler):
    """OPTIMA: pick the module (or module subset) to distill in each round with a bandit:
    after warm-up, the argmax of one discounted Thompson sample per arm (spec §4)."""

    name = "optima"
    pick_phase = "sample"

    def __init__(
        self,
        modules: Sequence[str],
        seed: int,
        *,
        gamma: float = 0.98,
        posterior: str = "gaussian",
        **options: Any,
    ) -> None:
        """``options``: ArmScheduler's (warm-up, arms, reward baseline)."""
        super().__init__(modules, seed, **options)
        # The bandit shares the scheduler's generator: one stream, saved once (in the bandit).
        self.bandit = DiscountedThompson(len(self.arms), gamma, posterior, rng=self.rng)

    def _values(self, samples: np.ndarray | None) -> dict[str, np.ndarray | None]:
        b = self.bandit
        return {"posterior_means": b.means(), "samples": samples, "counts": b.counts}

    def _pick(self):
        arm, samples = self.bandit.sample()
        return arm, self._values(samples)

    def _warmup_values(self):
        return self._values(None)

    def _update(self, arm: int, reward: float) -> None:
        self.bandit.update(arm, reward)

    def _state(self) -> dict[str, Any]:
        return {"bandit": self.bandit.state_dict()}

    def _load(self, state: dict[str, Any]) -> None:
        self.bandit.load_state_dict(state["bandit"])
