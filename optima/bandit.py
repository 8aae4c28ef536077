"""Discounted Thompson sampling, the bandit at the heart of OPTIMA (spec/optima.md §4).

Which module helps the student most changes during training, so old rewards must fade:
every statistic is multiplied by ``gamma`` after every round, for every arm, chosen or not
(discounted Thompson sampling; Raj and Kalyani 2017 for the Beta-Bernoulli variant).
"""

from __future__ import annotations

from typing import Any

import numpy as np

POSTERIORS = ("gaussian", "beta")
# Below this discounted count an arm counts as unseen: its sample is +inf (spec §4).
UNSEEN_COUNT = 1e-6


class DiscountedThompson:
    """Discounted Thompson sampler over ``n_arms`` arms.

    Statistics (spec §4), after every update with arm ``a`` and reward ``r``, for every arm k:
    ``N_k = gamma*N_k + [a=k]`` and ``S_k = gamma*S_k + r*[a=k]``. The Gaussian posterior's
    spread uses one pooled sigma: the discounted standard deviation of all rewards, from
    ``W = gamma*W + 1``, ``M1 = gamma*M1 + r``, ``M2 = gamma*M2 + r**2``. The Beta posterior
    keeps discounted success/failure counts instead.

    All randomness (samples, tie breaks, Bernoulli successes) comes from ``rng``, whose state is
    part of ``state_dict`` so a resumed bandit continues exactly.
    """

    def __init__(
        self,
        n_arms: int,
        gamma: float,
        posterior: str = "gaussian",
        sigma_floor: float = 1e-3,
        *,
        rng: np.random.Generator,
    ) -> None:
        if n_arms < 1:
            raise ValueError(f"DiscountedThompson: n_arms must be >= 1, got {n_arms}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"DiscountedThompson: gamma must be in (0, 1], got {gamma}")
        if posterior not in POSTERIORS:
            raise ValueError(
                f"DiscountedThompson: posterior must be one of {POSTERIORS}, got {posterior!r}"
            )
        if not sigma_floor > 0.0:
            raise ValueError(f"DiscountedThompson: sigma_floor must be > 0, got {sigma_floor}")
        self.n_arms = int(n_arms)
        self.gamma = float(gamma)
        self.posterior = posterior
        self.sigma_floor = float(sigma_floor)
        self.rng = rng
        self.counts = np.zeros(self.n_arms)  # N_k
        self.sums = np.zeros(self.n_arms)  # S_k
        self.w = 0.0  # discounted number of rewards
        self.m1 = 0.0  # discounted sum of rewards
        self.m2 = 0.0  # discounted sum of squared rewards
        self.alpha = np.zeros(self.n_arms)  # discounted successes (beta posterior)
        self.beta = np.zeros(self.n_arms)  # discounted failures (beta posterior)

    def sigma(self) -> float:
        """Pooled discounted standard deviation of all rewards, floored (spec §4)."""
        if self.w <= 0.0:
            return self.sigma_floor
        var = max(self.m2 / self.w - (self.m1 / self.w) ** 2, 0.0)
        return max(float(np.sqrt(var)), self.sigma_floor)

    def _seen(self) -> np.ndarray:
        return self.counts >= UNSEEN_COUNT

    def means(self) -> np.ndarray:
        """Posterior means per arm; nan for arms with no (undecayed) observations."""
        seen = self._seen()
        out = np.full(self.n_arms, np.nan)
        if self.posterior == "gaussian":
            out[seen] = self.sums[seen] / self.counts[seen]
        else:
            a, b = self.alpha[seen] + 1.0, self.beta[seen] + 1.0
            out[seen] = a / (a + b)
        return out

    def sample(self) -> tuple[int, np.ndarray]:
        """Draw one theta per arm and return ``(argmax arm, thetas)``; ties go to the rng.

        Gaussian: ``theta_k ~ Normal(S_k/N_k, sigma^2/N_k)``; an unseen arm gets +inf so it is
        explored first. Beta: ``theta_k ~ Beta(alpha_k+1, beta_k+1)``, whose uniform prior
        already explores unseen arms.
        """
        if self.posterior == "gaussian":
            z = self.rng.standard_normal(self.n_arms)  # one draw per arm, seen or not
            seen = self._seen()
            safe_n = np.where(seen, self.counts, 1.0)
            theta = self.sums / safe_n + self.sigma() / np.sqrt(safe_n) * z
            theta = np.where(seen, theta, np.inf)
        else:
            theta = self.rng.beta(self.alpha + 1.0, self.beta + 1.0)
        best = np.flatnonzero(theta == theta.max())
        arm = int(best[0]) if best.size == 1 else int(self.rng.choice(best))
        return arm, theta

    def update(self, arm: int, reward: float) -> None:
        """Discount every arm's statistics, then credit ``reward`` to ``arm`` (spec §4)."""
        if not 0 <= arm < self.n_arms:
            raise ValueError(f"DiscountedThompson.update: arm {arm} not in [0, {self.n_arms})")
        r = float(reward)
        if not np.isfinite(r):
            raise ValueError(f"DiscountedThompson.update: reward for arm {arm} is {reward!r}")
        g = self.gamma
        self.counts *= g
        self.sums *= g
        self.counts[arm] += 1.0
        self.sums[arm] += r
        self.w = g * self.w + 1.0
        self.m1 = g * self.m1 + r
        self.m2 = g * self.m2 + r * r
        # Beta-Bernoulli trick (Raj and Kalyani 2017): a reward in [0, 1] becomes a success
        # with probability r. Drawn only for this posterior so the Gaussian stream is untouched.
        self.alpha *= g
        self.beta *= g
        if self.posterior == "beta":
            success = self.rng.random() < min(max(r, 0.0), 1.0)
            if success:
                self.alpha[arm] += 1.0
            else:
                self.beta[arm] += 1.0

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, including the rng's bit-generator state."""
        return {
            "n_arms": self.n_arms,
            "gamma": self.gamma,
            "posterior": self.posterior,
            "sigma_floor": self.sigma_floor,
            "counts": self.counts.tolist(),
            "sums": self.sums.tolist(),
            "w": self.w,
            "m1": self.m1,
            "m2": self.m2,
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore statistics and rng state; the configuration must match this instance."""
        for key in ("n_arms", "gamma", "posterior", "sigma_floor"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"DiscountedThompson.load_state_dict: field {key!r} is {state[key]!r} in the "
                    f"state but {getattr(self, key)!r} in this bandit"
                )
        self.counts = np.asarray(state["counts"], dtype=float)
        self.sums = np.asarray(state["sums"], dtype=float)
        self.w = float(state["w"])
        self.m1 = float(state["m1"])
        self.m2 = float(state["m2"])
        self.alpha = np.asarray(state["alpha"], dtype=float)
        self.beta = np.asarray(state["beta"], dtype=float)
        self.rng.bit_generator.state = state["rng"]
