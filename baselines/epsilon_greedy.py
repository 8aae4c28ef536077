"""Epsilon-greedy, the simplest exploring baseline (Sutton and Barto 2018, §2.2-2.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from baselines.bandit_scheduler import BanditScheduler, CountsAndSums, argmax_random_tie

# Share of rounds that explore uniformly; Sutton and Barto's (2018, §2.3) usual 0.1.
EPSILON = 0.1


class EpsilonGreedy(CountsAndSums):
    """With probability epsilon play a uniformly random arm, else the arm with the largest sample
    mean ``S_k / n_k`` of raw rewards (ties to the rng; an unplayed arm's mean is +inf).

    Update after arm a with reward r: ``n_a += 1``, ``S_a += r``. Sample means are invariant to
    the reward scale, so raw rewards are used, unlike the UCB family and EXP3.
    """

    select_keys = ("probs",)

    def __init__(self, n_arms: int, epsilon: float = EPSILON, *, rng: np.random.Generator) -> None:
        if n_arms < 1 or not 0.0 <= epsilon <= 1.0:
            raise ValueError(
                f"EpsilonGreedy: need n_arms >= 1 and epsilon in [0, 1], got {n_arms}, {epsilon}"
            )
        super().__init__(n_arms, rng)
        self.epsilon = float(epsilon)

    def means(self) -> np.ndarray:
        seen = self.counts > 0
        out = np.full(self.n_arms, np.inf)
        out[seen] = self.sums[seen] / self.counts[seen]
        return out

    def select(self) -> tuple[int, dict[str, np.ndarray]]:
        """One uniform draw decides explore or exploit, then one more draws the arm (or breaks a
        tie). The traced ``probs`` are each arm's probability of being chosen this round."""
        means = self.means()
        greedy = means == means.max()
        probs = self.epsilon / self.n_arms + (1.0 - self.epsilon) * greedy / greedy.sum()
        if self.rng.random() < self.epsilon:
            arm = int(self.rng.integers(self.n_arms))
        else:
            arm = argmax_random_tie(means, self.rng)
        return arm, {"probs": probs}

    def update(self, arm: int, reward: float) -> None:
        self.counts[arm] += 1.0
        self.sums[arm] += float(reward)

    def statistics(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts, "means": self.means()}

    def _config(self) -> dict[str, Any]:
        return {"n_arms": self.n_arms, "epsilon": self.epsilon}


class EpsilonGreedyScheduler(BanditScheduler):
    """Epsilon-greedy after OPTIMA's warm-up; ``options`` are BanditScheduler's."""

    name = "epsilon-greedy"

    def __init__(
        self, modules: Sequence[str], seed: int, *, epsilon: float = EPSILON, **options: Any
    ) -> None:
        super().__init__(
            modules, seed, lambda k, rng: EpsilonGreedy(k, epsilon, rng=rng), **options
        )
