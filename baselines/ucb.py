"""Upper-confidence-bound baselines: UCB1, discounted UCB and sliding-window UCB.

All three play the arm with the largest index ``mean + bonus`` on rewards mapped to [0, 1] by
``unit_reward`` (their bonuses assume rewards in [0, B] with B = 1); an arm without (recent)
observations has index +inf and is played first, ties going to the scheduler's generator.

References: Auer, Cesa-Bianchi and Fischer, "Finite-time analysis of the multiarmed bandit
problem", Machine Learning 47 (2002); Garivier and Moulines, "On upper-confidence bound policies
for switching bandit problems", ALT 2011 (arXiv:0805.3415).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from baselines.bandit_scheduler import (
    BanditScheduler,
    CountsAndSums,
    argmax_random_tie,
    check_config,
    unit_reward,
)
from optima.bandit import UNSEEN_COUNT

# Multiplier of every bonus below: 1 keeps the published constants. Smaller values exploit more;
# on OPTIMA's rewards (a few hundredths) the published bonuses dwarf the gaps between modules.
UCB_C = 1.0
# xi of Garivier and Moulines' bonuses; their regret bounds need xi > 1/2.
UCB_XI = 0.6
# tau of SW-UCB: OPTIMA's effective memory 1 / (1 - gamma) at the card's gamma = 0.98, so that
# D-UCB, SW-UCB and OPTIMA forget at comparable rates.
SW_WINDOW = 50


def _means(counts: np.ndarray, sums: np.ndarray, seen: np.ndarray) -> np.ndarray:
    out = np.full(counts.shape, np.nan)
    out[seen] = sums[seen] / counts[seen]
    return out


def _index(counts, sums, seen, scale: float, numerator: float) -> np.ndarray:
    """``S_k/N_k + scale*sqrt(numerator / N_k)`` for seen arms, +inf (played first) for others."""
    out = np.full(counts.shape, np.inf)
    out[seen] = sums[seen] / counts[seen] + scale * np.sqrt(numerator / counts[seen])
    return out


class _IndexPolicy:
    """Plays the arm with the largest ``index()``, ties going to the generator."""

    select_keys = ("index",)

    def select(self) -> tuple[int, dict[str, np.ndarray]]:
        index = self.index()
        return argmax_random_tie(index, self.rng), {"index": index}


class UCB1(_IndexPolicy, CountsAndSums):
    """UCB1 (Auer, Cesa-Bianchi and Fischer 2002, Fig. 1).

    After arm k's ``n_k``-th play with mapped reward x: ``n_k += 1``, ``S_k += x``. Play
    ``argmax_k S_k/n_k + c*sqrt(2 ln n / n_k)``, n = plays so far.
    """

    def __init__(self, n_arms: int, c: float = UCB_C, *, rng: np.random.Generator) -> None:
        if n_arms < 1 or not c >= 0.0:
            raise ValueError(f"UCB1: need n_arms >= 1 and c >= 0, got {n_arms} and {c}")
        super().__init__(n_arms, rng)
        self.c = float(c)

    def index(self) -> np.ndarray:
        n = max(self.counts.sum(), 1.0)
        return _index(self.counts, self.sums, self.counts > 0, self.c, 2.0 * np.log(n))

    def update(self, arm: int, reward: float) -> None:
        self.counts[arm] += 1.0
        self.sums[arm] += unit_reward(reward)

    def statistics(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts, "means": _means(self.counts, self.sums, self.counts > 0)}

    def _config(self) -> dict[str, Any]:
        return {"n_arms": self.n_arms, "c": self.c}


class DiscountedUCB(_IndexPolicy, CountsAndSums):
    """D-UCB (Garivier and Moulines 2011).

    After every play, for every arm k: ``N_k = gamma*N_k + [a=k]``, ``S_k = gamma*S_k + x*[a=k]``
    (OPTIMA's discounted statistics, spec §4). Play ``argmax_k S_k/N_k + c*2B*sqrt(xi ln n / N_k)``
    with ``n = sum_k N_k`` and B = 1; arms with ``N_k`` below 1e-6 count as unseen.
    """

    def __init__(
        self,
        n_arms: int,
        gamma: float,
        c: float = UCB_C,
        xi: float = UCB_XI,
        *,
        rng: np.random.Generator,
    ) -> None:
        if n_arms < 1 or not 0.0 < gamma <= 1.0 or not c >= 0.0 or not xi > 0.0:
            raise ValueError(
                f"DiscountedUCB: need n_arms >= 1, gamma in (0, 1], c >= 0 and xi > 0, got "
                f"{n_arms}, {gamma}, {c}, {xi}"
            )
        super().__init__(n_arms, rng)
        self.gamma, self.c, self.xi = float(gamma), float(c), float(xi)

    def index(self) -> np.ndarray:
        seen = self.counts >= UNSEEN_COUNT
        log_n = max(float(np.log(max(self.counts.sum(), 1.0))), 0.0)
        return _index(self.counts, self.sums, seen, 2.0 * self.c, self.xi * log_n)

    def update(self, arm: int, reward: float) -> None:
        self.counts *= self.gamma
        self.sums *= self.gamma
        self.counts[arm] += 1.0
        self.sums[arm] += unit_reward(reward)

    def statistics(self) -> dict[str, np.ndarray]:
        seen = self.counts >= UNSEEN_COUNT
        return {"counts": self.counts, "means": _means(self.counts, self.sums, seen)}

    def _config(self) -> dict[str, Any]:
        return {"n_arms": self.n_arms, "gamma": self.gamma, "c": self.c, "xi": self.xi}


class SlidingWindowUCB(_IndexPolicy):
    """SW-UCB (Garivier and Moulines 2011).

    Statistics over the last ``window`` plays only: ``N_k`` plays of k and ``S_k`` their summed
    mapped rewards. Play ``argmax_k S_k/N_k + c*B*sqrt(xi ln min(t, window) / N_k)``, t = plays so
    far, B = 1; an arm absent from the window is unseen.
    """

    def __init__(
        self,
        n_arms: int,
        window: int = SW_WINDOW,
        c: float = UCB_C,
        xi: float = UCB_XI,
        *,
        rng: np.random.Generator,
    ) -> None:
        if n_arms < 1 or window < 1 or not c >= 0.0 or not xi > 0.0:
            raise ValueError(
                f"SlidingWindowUCB: need n_arms >= 1, window >= 1, c >= 0 and xi > 0, got "
                f"{n_arms}, {window}, {c}, {xi}"
            )
        self.n_arms, self.window, self.c, self.xi = int(n_arms), int(window), float(c), float(xi)
        self.rng = rng
        self.plays = 0  # t
        self.history: deque[tuple[int, float]] = deque(maxlen=self.window)  # (arm, x)

    def _window_stats(self) -> tuple[np.ndarray, np.ndarray]:
        arms = np.array([a for a, _ in self.history], dtype=int)
        xs = np.array([x for _, x in self.history], dtype=float)
        counts = np.bincount(arms, minlength=self.n_arms).astype(float)
        return counts, np.bincount(arms, weights=xs, minlength=self.n_arms)

    def index(self) -> np.ndarray:
        counts, sums = self._window_stats()
        log_t = float(np.log(max(min(self.plays, self.window), 1)))
        return _index(counts, sums, counts > 0, self.c, self.xi * log_t)

    def update(self, arm: int, reward: float) -> None:
        self.plays += 1
        self.history.append((int(arm), unit_reward(reward)))

    def statistics(self) -> dict[str, np.ndarray]:
        counts, sums = self._window_stats()
        return {"counts": counts, "means": _means(counts, sums, counts > 0)}

    def _config(self) -> dict[str, Any]:
        return {"n_arms": self.n_arms, "window": self.window, "c": self.c, "xi": self.xi}

    def state_dict(self) -> dict[str, Any]:
        return {**self._config(), "plays": self.plays, "history": [list(h) for h in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_config(type(self).__name__, state, self._config())
        self.plays = int(state["plays"])
        self.history = deque(((int(a), float(x)) for a, x in state["history"]), self.window)


class UCB1Scheduler(BanditScheduler):
    """UCB1 after OPTIMA's warm-up; ``options`` are BanditScheduler's (warm-up, arms)."""

    name = "ucb1"

    def __init__(
        self, modules: Sequence[str], seed: int, *, c: float = UCB_C, **options: Any
    ) -> None:
        super().__init__(modules, seed, lambda k, rng: UCB1(k, c, rng=rng), **options)


class DiscountedUCBScheduler(BanditScheduler):
    """D-UCB after OPTIMA's warm-up, discounting with OPTIMA's gamma [card: 0.98]."""

    name = "discounted-ucb"

    def __init__(
        self,
        modules: Sequence[str],
        seed: int,
        *,
        gamma: float = 0.98,
        c: float = UCB_C,
        xi: float = UCB_XI,
        **options: Any,
    ) -> None:
        super().__init__(
            modules, seed, lambda k, rng: DiscountedUCB(k, gamma, c, xi, rng=rng), **options
        )


class SlidingWindowUCBScheduler(BanditScheduler):
    """SW-UCB after OPTIMA's warm-up, over the last ``window`` rounds."""

    name = "sliding-window-ucb"

    def __init__(
        self,
        modules: Sequence[str],
        seed: int,
        *,
        window: int = SW_WINDOW,
        c: float = UCB_C,
        xi: float = UCB_XI,
        **options: Any,
    ) -> None:
        super().__init__(
            modules, seed, lambda k, rng: SlidingWindowUCB(k, window, c, xi, rng=rng), **options
        )
