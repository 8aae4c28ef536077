"""The discounted Thompson sampler against spec/optima.md §4: hand-worked statistics,
exploration of unseen arms, tie breaking, tracking a change, state round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from optima.bandit import DiscountedThompson


def _bandit(n_arms: int = 2, gamma: float = 0.98, posterior: str = "gaussian", seed: int = 0):
    return DiscountedThompson(n_arms, gamma, posterior, rng=np.random.default_rng(seed))


def test_update_matches_hand_worked_numbers() -> None:
    # gamma = 0.5; updates (arm 0, r=1.0), (arm 1, r=0.0), (arm 0, r=0.5).
    # after 1: N = [1, 0],        S = [1, 0],       W = 1,    M1 = 1,    M2 = 1
    # after 2: N = [0.5, 1],      S = [0.5, 0],     W = 1.5,  M1 = 0.5,  M2 = 0.5
    # after 3: N = [1.25, 0.5],   S = [0.75, 0],    W = 1.75, M1 = 0.75, M2 = 0.5
    # means = [0.75/1.25, 0/0.5] = [0.6, 0]
    # var = M2/W - (M1/W)^2 = 2/7 - (3/7)^2 = 5/49, sigma = sqrt(5)/7
    b = _bandit(gamma=0.5)
    for arm, r in [(0, 1.0), (1, 0.0), (0, 0.5)]:
        b.update(arm, r)
    np.testing.assert_allclose(b.counts, [1.25, 0.5])
    np.testing.assert_allclose(b.sums, [0.75, 0.0])
    np.testing.assert_allclose(b.means(), [0.6, 0.0])
    assert b.sigma() == pytest.approx(math.sqrt(5) / 7)

    # theta_k = S_k/N_k + sigma/sqrt(N_k) * z_k, with z drawn from the same stream.
    z = np.random.default_rng(0).standard_normal(2)  # the Gaussian update draws nothing
    _, theta = b.sample()
    expected = np.array([0.6, 0.0]) + math.sqrt(5) / 7 / np.sqrt([1.25, 0.5]) * z
    np.testing.assert_allclose(theta, expected)


def test_sigma_floor_when_rewards_agree() -> None:
    b = _bandit()
    assert b.sigma() == 1e-3  # no rewards yet
    b.update(0, 0.2)
    b.update(1, 0.2)
    assert b.sigma() == 1e-3  # zero variance is floored


def test_beta_update_hand_worked() -> None:
    # Rewards 1 (or above) always succeed and 0 (or below) always fail: rng.random() is in [0, 1).
    # gamma = 0.5; updates (0, 2.0 -> clipped 1), (1, -1.0 -> clipped 0), (0, 1.0):
    # alpha = [0.25 + 1, 0] = [1.25, 0], beta = [0, 0.5]
    # means of Beta(alpha+1, beta+1) = [2.25/3.25, 1/2.5]
    b = _bandit(gamma=0.5, posterior="beta")
    for arm, r in [(0, 2.0), (1, -1.0), (0, 1.0)]:
        b.update(arm, r)
    np.testing.assert_allclose(b.alpha, [1.25, 0.0])
    np.testing.assert_allclose(b.beta, [0.0, 0.5])
    np.testing.assert_allclose(b.means(), [2.25 / 3.25, 1 / 2.5])


def test_unseen_arms_are_explored_first() -> None:
    b = _bandit(n_arms=4)
    b.update(1, 100.0)  # a huge reward must not stop the others being tried
    assert np.isnan(b.means()[[0, 2, 3]]).all()
    picked = []
    for _ in range(3):
        arm, theta = b.sample()
        assert theta[arm] == np.inf
        picked.append(arm)
        b.update(arm, 0.0)
    assert sorted(picked) == [0, 2, 3]


def test_decayed_arm_counts_as_unseen_again() -> None:
    # gamma = 0.5: after 20 more rounds N_1 = 0.5**20 ~ 9.5e-7 < 1e-6, so arm 1 is +inf again.
    b = _bandit(gamma=0.5)
    b.update(1, 1.0)
    for _ in range(20):
        b.update(0, 1.0)
    arm, theta = b.sample()
    assert (arm, theta[1]) == (1, np.inf)


def test_ties_are_broken_by_the_rng() -> None:
    def first_picks(seed: int) -> list[int]:
        b = _bandit(n_arms=5, seed=seed)  # all unseen: five-way tie at +inf
        return [b.sample()[0] for _ in range(200)]

    picks = first_picks(0)
    assert picks == first_picks(0)  # reproducible
    assert picks != first_picks(1)  # but from the rng, not a fixed rule
    counts = np.bincount(picks, minlength=5)
    assert counts.min() > 20  # roughly uniform, not always the lowest index


def _follow_rate(gamma: float, seed: int) -> tuple[float, float]:
    """Two arms whose means swap at round 100 of 300; returns the share of rounds choosing the
    new best arm (1) over the last 100 rounds and over all 200 rounds after the switch."""
    b = _bandit(gamma=gamma, seed=seed)
    noise = np.random.default_rng(seed + 100).normal(0.0, 0.01, 300)
    picks = []
    for t in range(300):
        arm, _ = b.sample()
        means = (0.03, 0.01) if t < 100 else (0.01, 0.03)
        b.update(arm, means[arm] + noise[t])
        picks.append(arm)
    new_best = np.array(picks) == 1
    return float(new_best[200:].mean()), float(new_best[100:].mean())


def test_discounting_follows_an_abrupt_change() -> None:
    seeds = range(5)
    discounted = np.array([_follow_rate(0.98, s) for s in seeds])
    vanilla = np.array([_follow_rate(1.0, s) for s in seeds])
    assert discounted[:, 0].min() > 0.8  # the new best arm dominates the last 100 rounds
    assert discounted[:, 0].mean() > 0.9
    # after the switch, forgetting the old evidence catches up sooner than gamma = 1
    assert discounted[:, 1].mean() > vanilla[:, 1].mean() + 0.1


def test_beta_posterior_prefers_the_better_arm() -> None:
    b = _bandit(n_arms=3, posterior="beta", seed=3)
    noise = np.random.default_rng(4)
    means = (0.2, 0.8, 0.3)
    picks = []
    for _ in range(200):
        arm, theta = b.sample()
        assert ((theta >= 0) & (theta <= 1)).all()
        b.update(arm, means[arm] + noise.normal(0.0, 0.05))
        picks.append(arm)
    assert np.mean(np.array(picks[100:]) == 1) > 0.8
    assert np.nanargmax(b.means()) == 1


@pytest.mark.parametrize("posterior", ["gaussian", "beta"])
def test_state_dict_round_trip_continues_exactly(posterior: str) -> None:
    def reward(arm: int, t: int) -> float:
        return 0.1 * arm + 0.05 * math.sin(t)

    b = _bandit(n_arms=3, posterior=posterior, seed=11)
    for t in range(15):
        arm, _ = b.sample()
        b.update(arm, reward(arm, t))
    state = json.loads(json.dumps(b.state_dict(), allow_nan=False))

    resumed = _bandit(n_arms=3, posterior=posterior, seed=999)  # different rng, overwritten
    resumed.load_state_dict(state)
    for t in range(15, 40):
        arm, theta = b.sample()
        arm2, theta2 = resumed.sample()
        assert arm == arm2
        np.testing.assert_array_equal(theta, theta2)
        b.update(arm, reward(arm, t))
        resumed.update(arm2, reward(arm2, t))


def test_load_rejects_a_different_configuration() -> None:
    state = _bandit(gamma=0.98).state_dict()
    with pytest.raises(ValueError, match="gamma"):
        _bandit(gamma=0.9).load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_arms": 0}, {"gamma": 0.0}, {"gamma": 1.5}, {"posterior": "laplace"}],
)
def test_bad_options_are_rejected(kwargs: dict) -> None:
    args = {"n_arms": 2, "gamma": 0.98, "posterior": "gaussian"} | kwargs
    with pytest.raises(ValueError):
        DiscountedThompson(**args, rng=np.random.default_rng(0))


def test_non_finite_reward_is_rejected() -> None:
    with pytest.raises(ValueError, match="reward"):
        _bandit().update(0, float("nan"))
