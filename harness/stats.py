"""Seed statistics for the reports: mean ± std, and a 95% interval on paired differences.

Rows of a study share seeds (same data order, initialisation, reward set), so a row is
compared with `uniform` on differences d_s = row_s - uniform_s, one per seed both completed.
With the few seeds a study affords, a percentile bootstrap is too narrow (n = 3 seeds give
only 10 distinct resamples), so below `BOOTSTRAP_FROM` pairs the interval is Student's t on
the differences; from there on a paired percentile bootstrap with a fixed seed, which drops
the normality assumption and stays deterministic. numpy only: no scipy for one quantile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_FROM = 10
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """Mean paired difference with its interval; `low`/`high` are None when n < 2."""

    mean: float
    low: float | None
    high: float | None
    n: int
    method: str  # "t", "bootstrap", or "none" (a single pair has no spread to estimate)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample std (ddof = 1); std is None for one value, where it is undefined."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("mean_std of no values")
    return float(v.mean()), (_sample_std(v) if v.size > 1 else None)


def _sample_std(v: np.ndarray) -> float:
    # Identical values have no spread; computed, their std can be 1e-17 from rounding.
    return 0.0 if np.ptp(v) == 0 else float(v.std(ddof=1))


def t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df (Abramowitz & Stegun 26.7.3, 26.7.4)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term = total = 1.0
        for k in range(2, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term = total = math.cos(theta)
    for k in range(3, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return 2 / math.pi * (theta + s * total)


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t (p > 0.5), by bisection on the closed-form cdf."""
    if not 0.5 < p < 1:
        raise ValueError(f"p must be in (0.5, 1), got {p}")
    mass = 2 * p - 1
    lo, hi = 0.0, 1.0
    while t_cdf_two_sided(hi, df) < mass:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf_two_sided(mid, df) < mass:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * hi:
            break
    return (lo + hi) / 2


def t_interval(d: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """mean(d) ± t_{(1+level)/2, n-1} · sd(d)/√n."""
    half = t_quantile((1 + level) / 2, d.size - 1) * _sample_std(d) / math.sqrt(d.size)
    m = float(d.mean())
    return m - half, m + half


def bootstrap_interval(
    d: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile interval of the mean over resampled seeds (pairs resampled together)."""
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def paired_interval(
    a: Sequence[float],
    b: Sequence[float],
    level: float = LEVEL,
    bootstrap_from: int = BOOTSTRAP_FROM,
) -> Interval:
    """Interval on mean(a - b), a and b aligned by seed."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired_interval of no pairs")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = x - y
    mean = float(d.mean())
    method = "t" if d.size < bootstrap_from else "bootstrap"
    if d.size == 1:
        return Interval(mean, None, None, 1, "none")
    # Differences that agree to within the inputs' rounding are one constant difference:
    # 61.37 + 1.5 - 61.37 is not exactly 1.5, and that must not read as seed-to-seed spread.
    if np.ptp(d) <= 16 * np.finfo(float).eps * max(1.0, np.abs(x).max(), np.abs(y).max()):
        return Interval(mean, mean, mean, d.size, method)
    if method == "t":
        return Interval(mean, *t_interval(d, level), d.size, method)
    return Interval(mean, *bootstrap_interval(d, level), d.size, method)


def describe_method(level: float = LEVEL, bootstrap_from: int = BOOTSTRAP_FROM) -> str:
    """One sentence naming the interval method, quoted under the report's tables."""
    return (
        f"{level:.0%} interval on the mean paired difference: Student's t on the per-seed "
        f"differences when fewer than {bootstrap_from} seeds pair up (marked t), else a "
        f"paired percentile bootstrap over seeds ({RESAMPLES:,} resamples, generator seed "
        f"{BOOTSTRAP_SEED}; marked bootstrap)"
    )
