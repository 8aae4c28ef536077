"""The report's statistics on inputs with known answers: quantiles from the t table, intervals
that must collapse or flip, the switch from t to bootstrap, coverage, and the power of the
paired t-test against published values."""

import math

import numpy as np
import pytest

from harness.stats import (
    ALPHA,
    BOOTSTRAP_FROM,
    MAX_SEEDS,
    Power,
    bootstrap_interval,
    detectable_difference,
    mean_std,
    normal_quantile,
    paired_interval,
    paired_power,
    seeds_needed,
    t_cdf_two_sided,
    t_quantile,
    t_test_power,
)

# t_{0.975, df}, as printed in any t table (scipy.stats.t.ppf(0.975, df))
T975 = {
    1: 12.706204736174707,
    2: 4.302652729749464,
    3: 3.182446305284263,
    4: 2.7764451051977987,
    9: 2.2621571627409915,
    29: 2.045229642132703,
    100: 1.9839715184496334,
}


@pytest.mark.parametrize("df", sorted(T975))
def test_t_quantile_matches_the_table(df):
    assert t_quantile(0.975, df) == pytest.approx(T975[df], rel=1e-9)


def test_t_cdf_known_points():
    assert t_cdf_two_sided(0.0, 5) == 0.0
    assert t_cdf_two_sided(1.0, 1) == pytest.approx(0.5)  # Cauchy: P(|T| <= 1) = 1/2
    assert t_cdf_two_sided(T975[3], 3) == pytest.approx(0.95, abs=1e-12)


def test_t_interval_by_hand():
    # d = 1, 2, 3: mean 2, sd 1, half-width t_{.975,2} / sqrt(3)
    iv = paired_interval([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    half = T975[2] / math.sqrt(3)
    assert (iv.method, iv.n, iv.mean) == ("t", 3, 2.0)
    assert iv.low == pytest.approx(2 - half) and iv.high == pytest.approx(2 + half)


@pytest.mark.parametrize("n", [3, BOOTSTRAP_FROM + 2])
def test_constant_difference_gives_zero_width(n):
    base = [60.0 + 0.37 * s for s in range(n)]
    for step in (1.5, 0.1, -2.25):  # 60.37 + 0.1 - 60.37 is not exactly 0.1
        iv = paired_interval([x + step for x in base], base)
        assert iv.low == iv.mean == iv.high == pytest.approx(step)


@pytest.mark.parametrize("n", [4, BOOTSTRAP_FROM + 5])
def test_swapping_the_rows_flips_the_interval(n):
    a = [70.0 + ((s * 7) % 5) for s in range(n)]
    b = [69.0 + ((s * 3) % 4) for s in range(n)]
    fwd, back = paired_interval(a, b), paired_interval(b, a)
    assert fwd.method == back.method
    assert back.mean == pytest.approx(-fwd.mean)
    assert back.low == pytest.approx(-fwd.high) and back.high == pytest.approx(-fwd.low)
    assert fwd.low < fwd.mean < fwd.high


def test_method_switches_at_the_threshold():
    assert paired_interval([1.0], [0.0]).method == "none"
    assert paired_interval([1.0], [0.0]).low is None
    below = BOOTSTRAP_FROM - 1
    assert paired_interval([float(i) for i in range(below)], [0.0] * below).method == "t"
    n = BOOTSTRAP_FROM
    assert paired_interval([float(i) for i in range(n)], [0.0] * n).method == "bootstrap"


def test_bootstrap_is_deterministic_and_covers_the_mean():
    a = [float((i * 37) % 11) for i in range(20)]
    b = [0.0] * 20
    first, second = paired_interval(a, b), paired_interval(a, b)
    assert first == second
    assert first.low < first.mean < first.high


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([4.0]) == (4.0, None)
    assert mean_std([0.1, 0.1, 0.1])[1] == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        paired_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_interval([], [])
    with pytest.raises(ValueError):
        t_quantile(0.3, 2)


def test_normal_quantile():
    assert normal_quantile(0.975) == pytest.approx(1.959963984540054, rel=1e-12)
    assert normal_quantile(0.8) == pytest.approx(0.8416212335729143, rel=1e-12)
    assert normal_quantile(0.5) == pytest.approx(0.0, abs=1e-14)


# -- coverage: seeded simulations of normal differences, a few seconds in all


def _coverage(n: int, trials: int, interval) -> float:
    rng = np.random.default_rng(1234 + n)
    hits = 0
    for _ in range(trials):
        low, high = interval(rng.normal(0.3, 2.0, size=n))
        hits += low <= 0.3 <= high
    return hits / trials


@pytest.mark.parametrize("n", [3, 10, BOOTSTRAP_FROM - 1])
def test_intervals_below_the_switch_cover(n):
    # the percentile bootstrap this replaced covered 90.4% at n = 10; t holds 95% exactly
    def interval(d):
        iv = paired_interval(list(d), [0.0] * n)
        assert iv.method == "t"
        return iv.low, iv.high

    assert 0.94 <= _coverage(n, 4000, interval) <= 0.96


def test_bootstrap_from_the_switch_covers():
    # a guard against gross under-coverage (this seed: plain percentile 94.7%, expanded 95.2%;
    # the widening itself is pinned below)
    n = BOOTSTRAP_FROM
    coverage = _coverage(n, 1000, lambda d: bootstrap_interval(d, resamples=1000))
    assert coverage >= 0.94


def test_bootstrap_is_widened_beyond_the_percentile_interval():
    d = np.array([float((i * 37) % 11) for i in range(BOOTSTRAP_FROM)])
    low, high = bootstrap_interval(d)
    rng = np.random.default_rng(0)
    means = d[rng.integers(0, d.size, size=(10_000, d.size))].mean(axis=1)
    p_low, p_high = np.quantile(means, [0.025, 0.975])
    n = d.size
    widen = math.sqrt(n / (n - 1)) * t_quantile(0.975, n - 1) / normal_quantile(0.975)
    assert widen > 1
    assert low == pytest.approx(d.mean() + widen * (p_low - d.mean()), rel=1e-12)
    assert high == pytest.approx(d.mean() + widen * (p_high - d.mean()), rel=1e-12)


# -- power of the two-sided paired t-test (alpha = 0.05, 80% power)


@pytest.mark.parametrize("df", [1, 2, 5, 29, 300])
def test_power_at_no_effect_is_alpha(df):
    assert t_test_power(0.0, df) == pytest.approx(ALPHA, abs=1e-12)


def test_power_matches_gpower():
    # G*Power 3.1, "means: difference between two dependent means (matched pairs)",
    # dz = 0.5, n = 34: actual power 0.8077775 (one pair fewer falls below 80%)
    assert t_test_power(0.5 * math.sqrt(34), 33) == pytest.approx(0.8077775, abs=1e-6)
    assert t_test_power(0.5 * math.sqrt(33), 32) < 0.8


def test_power_matches_a_monte_carlo():
    # P(|(Z + ncp) / sqrt(V/df)| > c) by simulation, 400k draws: se 8e-4
    rng = np.random.default_rng(7)
    for df, ncp in ((2, 4.0), (9, 2.5)):
        t = (rng.standard_normal(400_000) + ncp) / np.sqrt(rng.chisquare(df, 400_000) / df)
        simulated = float(np.mean(np.abs(t) > t_quantile(0.975, df)))
        assert t_test_power(ncp, df) == pytest.approx(simulated, abs=4e-3)


def test_seeds_needed_known_values():
    # sd of the differences 2: 1.5 points is dz = 0.75 (16 pairs), 1 point dz = 0.5 (34);
    # the normal approximation would say 14 and 32
    assert seeds_needed(1.5, 2.0) == 16
    assert seeds_needed(1.0, 2.0) == 34
    assert seeds_needed(-1.0, 2.0) == 34
    assert seeds_needed(1.0, 0.0) == 2
    assert seeds_needed(1.0, 1e4) is None  # 7.8 million seeds: beyond MAX_SEEDS
    assert seeds_needed(1.0, math.sqrt(MAX_SEEDS / 8)) is not None
    with pytest.raises(ValueError):
        seeds_needed(0.0, 1.0)


def test_detectable_difference_inverts_seeds_needed():
    # at n = 34 pairs and sd 2, 80% power is reached a little below 1 point (power 0.808)
    mde = detectable_difference(2.0, 34)
    assert 0.95 < mde < 1.0
    assert t_test_power(mde / 2.0 * math.sqrt(34), 33) == pytest.approx(0.8, abs=1e-9)
    assert detectable_difference(4.0, 34) == pytest.approx(2 * mde, rel=1e-9)  # scales with sd
    assert detectable_difference(2.0, 3) > detectable_difference(2.0, 10)
    assert detectable_difference(2.0, 1) is None
    assert detectable_difference(0.0, 5) == 0.0


def test_paired_power_of_report_rows():
    # differences 1, 3, 2: sd 1, n = 3
    p = paired_power([61.0, 63.0, 62.0], [60.0, 60.0, 60.0])
    assert (p.n, p.sd) == (3, 1.0)
    assert p.detectable == pytest.approx(detectable_difference(1.0, 3))
    assert p.seeds_for_point == seeds_needed(1.0, 1.0) == 10
    constant = paired_power([61.87, 62.37, 60.12], [60.37, 60.87, 58.62])  # +1.5 each, rounded
    assert (constant.sd, constant.detectable, constant.seeds_for_point) == (0.0, 0.0, 2)
    assert paired_power([1.0], [0.0]) == Power(1, None, None, None)
    with pytest.raises(ValueError):
        paired_power([1.0, 2.0], [1.0])
