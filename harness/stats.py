"""Seed statistics for the reports: mean ± std, a 95% interval on paired differences, and
the power those seeds give.

Rows of a study share seeds (same data order, initialisation, reward set), so a row is
compared with `uniform` on differences d_s = row_s - uniform_s, one per seed both completed.
Below `BOOTSTRAP_FROM` (30) pairs the interval is Student's t on the differences: a percentile
bootstrap under-covers with few seeds (n = 3 gives only 10 distinct resamples; measured with
normal differences, 2,000 samples each: 90.4% at n = 10 and 94.1% at n = 30 where t gives
95.7%). From 30 pairs on it is an expanded percentile bootstrap with a fixed seed (Hesterberg,
"What teachers should know about the bootstrap", The American Statistician 69(4), 2015: the
percentile interval widened about the mean by sqrt(n/(n-1)) t_{n-1}/z, which removes the
percentile interval's small-sample narrowness; measured 95.4% at n = 30), which drops the
normality assumption and stays deterministic.

Power (`detectable_difference`, `seeds_needed`) is that of the two-sided paired t-test at
alpha = 0.05, computed exactly from the noncentral t distribution (not the normal
approximation), taking the measured sd of the differences as the true one. numpy only: no
scipy for a few quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BOOTSTRAP_FROM = 30
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
ALPHA = 0.05  # two-sided level of the test the power refers to
POWER = 0.80
MAX_SEEDS = 100_000  # seeds_needed answers None beyond this (the t quantile costs O(df))


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
    """P(|T| <= t) for Student's t with integer df (Abramowitz & Stegun 26.7.3, 26.7.4); the
    series' terms as one cumulative product, so a df in the millions (power) stays cheap."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        k = np.arange(2, df - 1, 2, dtype=float)
        return s * (1.0 + float(np.cumprod(c2 * (k - 1) / k).sum()))
    if df == 1:
        return 2 * theta / math.pi
    k = np.arange(3, df - 1, 2, dtype=float)
    first = math.cos(theta)
    return 2 / math.pi * (theta + s * first * (1.0 + float(np.cumprod(c2 * (k - 1) / k).sum())))


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def normal_quantile(p: float) -> float:
    """The p-quantile of the standard normal (0 < p < 1), by bisection on erfc."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if normal_cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15 * max(1.0, abs(hi)):
            break
    return (lo + hi) / 2


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t (p > 0.5), by bisection on the closed-form cdf; cached,
    as a report and a power search ask for the same few again and again."""
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
    """Expanded percentile interval of the mean over resampled seeds (pairs resampled
    together): the percentile interval's ends moved away from mean(d) by the factor
    sqrt(n/(n-1)) t_{(1+level)/2, n-1} / z_{(1+level)/2} (Hesterberg 2015, see the module)."""
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    n, m = d.size, float(d.mean())
    widen = math.sqrt(n / (n - 1)) * t_quantile(1 - tail, n - 1) / normal_quantile(1 - tail)
    return m + widen * (float(low) - m), m + widen * (float(high) - m)


def _differences(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, bool]:
    """a - b, and whether the differences are one constant: differences that agree to within
    the inputs' rounding (61.37 + 1.5 - 61.37 is not exactly 1.5) must not read as
    seed-to-seed spread."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = x - y
    limit = 16 * np.finfo(float).eps * max(1.0, np.abs(x).max(), np.abs(y).max())
    return d, bool(np.ptp(d) <= limit)


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
    d, constant = _differences(a, b)
    mean = float(d.mean())
    method = "t" if d.size < bootstrap_from else "bootstrap"
    if d.size == 1:
        return Interval(mean, None, None, 1, "none")
    if constant:
        return Interval(mean, mean, mean, d.size, method)
    if method == "t":
        return Interval(mean, *t_interval(d, level), d.size, method)
    return Interval(mean, *bootstrap_interval(d, level), d.size, method)


def describe_method(level: float = LEVEL, bootstrap_from: int = BOOTSTRAP_FROM) -> str:
    """One sentence naming the interval method, quoted under the report's tables."""
    return (
        f"{level:.0%} interval on the mean paired difference: Student's t on the per-seed "
        f"differences when fewer than {bootstrap_from} seeds pair up (marked t), else an "
        "expanded percentile bootstrap over seeds (Hesterberg 2015: the percentile interval "
        f"widened by sqrt(n/(n-1))·t/z, so it does not under-cover; {RESAMPLES:,} resamples, "
        f"generator seed {BOOTSTRAP_SEED}; marked bootstrap)"
    )


# -- power of the paired t-test


# Composite Gauss-Legendre rule on [-1, 1]: 64 panels of 16 nodes, exact to ~1e-12 for the
# smooth integrands below (a single 1,024-node rule would need an eigensolve at import).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_PANELS = 64
_EDGES = np.linspace(-1.0, 1.0, _PANELS + 1)
_NODES = ((_EDGES[:-1, None] + _EDGES[1:, None]) / 2 + (_EDGES[1] - _EDGES[0]) / 2 * _GL_X).ravel()
_WEIGHTS = np.tile(_GL_W * (_EDGES[1] - _EDGES[0]) / 2, _PANELS)
_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _phi(x: np.ndarray) -> np.ndarray:
    return 0.5 * _ERFC(-x / math.sqrt(2)).astype(float)


def t_test_power(ncp: float, df: int, alpha: float = ALPHA) -> float:
    """P(|T'| > t_{1-alpha/2, df}) for T' noncentral t with df degrees of freedom and
    noncentrality ncp: the power of the two-sided t-test.

    T' = (Z + ncp) / S with S = sqrt(V/df), V ~ chi2(df), so the power is the expectation over
    S of P(Z > c S - ncp) + P(Z < -c S - ncp), integrated numerically (Gauss-Legendre over
    S's range, +-12/sqrt(df) about 1, i.e. beyond 16 sd)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    c = t_quantile(1 - alpha / 2, df)
    half = 12 / math.sqrt(df)
    lo, hi = max(0.0, 1 - half), 1 + half
    s = lo + (hi - lo) * (_NODES + 1) / 2
    w = _WEIGHTS * (hi - lo) / 2
    nu = df / 2
    log_density = (
        math.log(2) + nu * math.log(nu) - math.lgamma(nu) + (df - 1) * np.log(s) - nu * s * s
    )
    tails = _phi(ncp - c * s) + _phi(-c * s - ncp)
    return float(np.sum(w * np.exp(log_density) * tails))


def detectable_difference(
    sd: float, n: int, power: float = POWER, alpha: float = ALPHA
) -> float | None:
    """The smallest true mean difference that a two-sided paired t-test at `alpha` on `n`
    pairs detects with probability `power`, if the differences are normal with sd `sd`
    (noncentral t, exact). None for fewer than 2 pairs (no test)."""
    if n < 2:
        return None
    if sd == 0:
        return 0.0
    df = n - 1

    def short(ncp: float) -> bool:
        return t_test_power(ncp, df, alpha) < power

    lo, hi = 0.0, 1.0
    while short(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1e-10 * hi:
        mid = (lo + hi) / 2
        if short(mid):
            lo = mid
        else:
            hi = mid
    return hi * sd / math.sqrt(n)


def seeds_needed(
    difference: float, sd: float, power: float = POWER, alpha: float = ALPHA
) -> int | None:
    """The fewest pairs (>= 2) at which a two-sided paired t-test at `alpha` detects a true
    mean difference `difference` with probability `power`, differences normal with sd `sd`
    (noncentral t, exact). Starts from the normal approximation ((z_{1-alpha/2} + z_power)
    sd/difference)^2 (the t-test needs a few more) and steps down, then up, from there. None
    beyond `MAX_SEEDS`."""
    if difference == 0:
        raise ValueError("seeds_needed: a difference of 0 is never detected")
    effect = abs(difference) / sd if sd > 0 else math.inf
    if effect == math.inf:
        return 2
    z = normal_quantile(1 - alpha / 2) + normal_quantile(power)
    n = max(2, math.ceil((z / effect) ** 2))
    if n > MAX_SEEDS:
        return None

    def enough(k: int) -> bool:
        return t_test_power(effect * math.sqrt(k), k - 1, alpha) >= power

    while n > 2 and enough(n - 1):
        n -= 1
    while not enough(n):
        n += 1
        if n > MAX_SEEDS:
            return None
    return n


@dataclass(frozen=True)
class Power:
    """What n paired seeds can detect: sd of their differences (None below 2 pairs), the
    difference detectable at `POWER` (None below 2 pairs), and the seeds a difference of
    `point` would need (None below 2 pairs or beyond `MAX_SEEDS`)."""

    n: int
    sd: float | None
    detectable: float | None
    seeds_for_point: int | None
    point: float = 1.0


def paired_power(a: Sequence[float], b: Sequence[float], point: float = 1.0) -> Power:
    """The power of the paired t-test on mean(a - b), a and b aligned by seed."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired_power of no pairs")
    d, constant = _differences(a, b)
    if d.size < 2:
        return Power(int(d.size), None, None, None, point)
    sd = 0.0 if constant else _sample_std(d)
    return Power(d.size, sd, detectable_difference(sd, d.size), seeds_needed(point, sd), point)


def describe_power(power: float = POWER, alpha: float = ALPHA) -> str:
    """The sentence under a table that shows power columns."""
    return (
        f"detectable Δ is the smallest true mean difference a two-sided paired t-test at "
        f"alpha = {alpha:g} on these seeds would find {power:.0%} of the time, and seeds for "
        f"1 point the fewest seeds that would find a 1-point difference {power:.0%} of the "
        "time; both take the sd of the per-seed differences measured here as the true one and "
        "come from the noncentral t distribution (exact, not the normal approximation)"
    )
