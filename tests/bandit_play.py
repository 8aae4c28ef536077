"""Playing a scheduler against fixed module means: the stand-in for a run's loss decrements."""

import numpy as np


def reward(active: frozenset[str], means: dict, noise: float) -> float:
    """The mean of the active modules' means, plus the round's noise."""
    return (float(np.mean([means[m] for m in active])) if active else 0.0) + noise


def play(scheduler, rounds: range, means: dict, noise: np.ndarray) -> list[frozenset[str]]:
    """The arms played in `rounds`, each round rewarded by `reward`."""
    chosen = []
    for t in rounds:
        active = scheduler.choose(t)
        scheduler.observe(t, active, reward(active, means, noise[t]))
        chosen.append(active)
    return chosen


def picks(scheduler, rounds: range, means: dict, noise: np.ndarray) -> list[str]:
    """`play` for single-module arms: the module played each round."""
    return [next(iter(active)) for active in play(scheduler, rounds, means, noise)]
