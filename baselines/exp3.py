"""EXP3, the adversarial bandit baseline: Auer, Cesa-Bianchi, Freund and Schapire, "The
nonstochastic multiarmed bandit problem", SIAM J. Comput. 32 (2002).

It makes no stochastic assumption on the rewards, so it covers a module whose usefulness changes
arbitrarily during training; the price is slow learning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from baselines.bandit_scheduler import BanditScheduler, check_config, unit_reward

# Exploration rate gamma of Exp3 (not OPTIMA's discount). Their Corollary 3.2 gives
# min(1, sqrt(K ln K / ((e - 1) g))) for a total reward at most g: 0.14 for K = 3 modules and
# g = P = 100 rounds [card], 0.28 for K = 7 subsets; 0.1 is the round figure below both.
EXP3_GAMMA = 0.1


class EXP3:
    """Exp3 (Auer et al. 2002, Fig. 1) on rewards x = unit_reward(r) in [0, 1].

    Play arm a with probability ``p_a = (1 - gamma) w_a / sum_j w_j + gamma / K``, then
    ``w_a *= exp(gamma * x / (p_a * K))`` (the importance-weighted estimate x / p_a; other arms
    keep their weights). Weights are kept as logarithms so they cannot overflow.
    """

    select_keys = ("probs",)

    def __init__(self, n_arms: int, gamma: float = EXP3_GAMMA, *, rng: np.random.Generator) -> None:
        if n_arms < 1 or not 0.0 < gamma <= 1.0:
            raise ValueError(f"EXP3: need n_arms >= 1 and gamma in (0, 1], got {n_arms}, {gamma}")
        self.n_arms, self.gamma, self.rng = int(n_arms), float(gamma), rng
        self.log_weights = np.zeros(self.n_arms)
        self.counts = np.zeros(self.n_arms)  # plays per arm, for the trace only

    def probabilities(self) -> np.ndarray:
        w = np.exp(self.log_weights - self.log_weights.max())
        return (1.0 - self.gamma) * w / w.sum() + self.gamma / self.n_arms

    def select(self) -> tuple[int, dict[str, np.ndarray]]:
        p = self.probabilities()
        return int(self.rng.choice(self.n_arms, p=p)), {"probs": p}

    def update(self, arm: int, reward: float) -> None:
        # Weights change only here, so p_a is the probability the arm was drawn with.
        p = self.probabilities()[arm]
        self.log_weights[arm] += self.gamma * unit_reward(reward) / (p * self.n_arms)
        self.counts[arm] += 1.0

    def statistics(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts, "log_weights": self.log_weights}

    def _config(self) -> dict[str, Any]:
        return {"n_arms": self.n_arms, "gamma": self.gamma}

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._config(),
            "log_weights": self.log_weights.tolist(),
            "counts": self.counts.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_config(type(self).__name__, state, self._config())
        self.log_weights = np.asarray(state["log_weights"], dtype=float)
        self.counts = np.asarray(state["counts"], dtype=float)


class EXP3Scheduler(BanditScheduler):
    """Exp3 from the first round: no warm-up, because the importance weights x / p_a are unbiased
    only for arms Exp3 drew itself, and its gamma / K mixing already explores every arm."""

    name = "exp3"

    def __init__(
        self,
        modules: Sequence[str],
        seed: int,
        *,
        gamma: float = EXP3_GAMMA,
        arms: str = "modules",
        **reward: Any,
    ) -> None:
        """``reward``: BanditScheduler's reward options (baseline, skipped rounds)."""
        super().__init__(
            modules,
            seed,
            lambda k, rng: EXP3(k, gamma, rng=rng),
            warmup_rounds=0,
            arms=arms,
            **reward,
        )
