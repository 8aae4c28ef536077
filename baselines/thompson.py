"""Vanilla Thompson sampling: OPTIMA's sampler without discounting (gamma = 1).

The same class as OPTIMA (optima.scheduler.OptimaScheduler), not a copy: with gamma = 1 the
statistics of spec/optima.md §4 are plain sums, ``N_k = N_k + [a=k]``, ``S_k = S_k + r*[a=k]``,
and ``theta_k ~ Normal(S_k/N_k, sigma^2/N_k)`` (Thompson 1933, with spec §4's Gaussian posterior).
It isolates what discounting buys OPTIMA when the best module changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optima.scheduler import OptimaScheduler


class ThompsonScheduler(OptimaScheduler):
    """OPTIMA with ``gamma = 1``: same warm-up, arms, posteriors, stream and trace."""

    name = "thompson"

    def __init__(self, modules: Sequence[str], seed: int, **options: Any) -> None:
        """``options``: OptimaScheduler's, but gamma."""
        super().__init__(modules, seed, gamma=1.0, **options)
