"""The report's statistics on inputs with known answers: quantiles from the t table, intervals
that must collapse or flip, and the switch from t to bootstrap."""

import math

import pytest

from harness.stats import (
    BOOTSTRAP_FROM,
    mean_std,
    paired_interval,
    t_cdf_two_sided,
    t_quantile,
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
