"""The further baselines (issue #9) against their papers' update rules, OPTIMA's conventions
(spec/optima.md §4) and the scheduler contract (spec/harness.md §3), plus the registry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from bandit_play import picks, play

from baselines import (
    EXP3,
    UCB1,
    DiscountedUCB,
    DiscountedUCBScheduler,
    EpsilonGreedy,
    EpsilonGreedyScheduler,
    EXP3Scheduler,
    SingleModuleScheduler,
    SlidingWindowUCB,
    SlidingWindowUCBScheduler,
    ThompsonScheduler,
    UCB1Scheduler,
    unit_reward,
)
from harness.config import DistillConfig
from harness.errors import ConfigError
from harness.schedulers import (
    FAMILIES,
    REGISTRY,
    build_scheduler,
    list_schedulers,
    parse_schedulers,
)
from optima import OptimaScheduler

MODULES = ("image", "text", "multimodal")
MEANS = {"image": 0.3, "text": 0.6, "multimodal": 0.1}
NOISE = np.random.default_rng(2023).normal(0.0, 0.1, 60)
# The three updates of every hand-worked example: (arm, reward r, mapped x = (r + 1) / 2).
UPDATES = [(0, 0.6, 0.8), (1, -0.2, 0.4), (0, 0.2, 0.6)]


def _policy_rng() -> np.random.Generator:
    return np.random.default_rng(0)


# --- the reward mapping -------------------------------------------------------------------


def test_unit_reward_is_affine_on_minus_one_to_one_and_clipped_outside() -> None:
    assert [unit_reward(r) for r in (-1.0, -0.2, 0.0, 0.6, 1.0)] == pytest.approx(
        [0.0, 0.4, 0.5, 0.8, 1.0]
    )
    assert unit_reward(-3.0) == 0.0  # the round quadrupled the objective
    assert unit_reward(2.0) == 1.0  # impossible for a relative decrement, clipped anyway


# --- hand-worked updates ------------------------------------------------------------------


def test_ucb1_hand_worked() -> None:
    # counts [2, 1], mapped sums [1.4, 0.4], n = 3 plays:
    # index = [0.7 + sqrt(2 ln 3 / 2), 0.4 + sqrt(2 ln 3 / 1)] = [1.748, 1.882] -> arm 1
    b = UCB1(2, rng=_policy_rng())
    for arm, r, _ in UPDATES:
        b.update(arm, r)
    np.testing.assert_allclose(b.counts, [2, 1])
    np.testing.assert_allclose(b.sums, [1.4, 0.4])
    expected = [0.7 + math.sqrt(math.log(3)), 0.4 + math.sqrt(2 * math.log(3))]
    np.testing.assert_allclose(b.index(), expected)
    assert b.select()[0] == 1


def test_ucb1_plays_unplayed_arms_first() -> None:
    b = UCB1(3, rng=_policy_rng())
    b.update(1, 1.0)
    assert b.index()[[0, 2]].tolist() == [np.inf, np.inf]
    assert b.select()[0] in (0, 2)


def test_discounted_ucb_hand_worked() -> None:
    # gamma = 0.5, the same recursion as OPTIMA's bandit (spec §4), on mapped rewards:
    # after 1: N = [1, 0],      S = [0.8, 0]
    # after 2: N = [0.5, 1],    S = [0.4, 0.4]
    # after 3: N = [1.25, 0.5], S = [0.8, 0.2], n = 1.75
    # index_k = S_k/N_k + 2 c sqrt(xi ln n / N_k) = [1.677, 2.039] -> arm 1
    b = DiscountedUCB(2, gamma=0.5, rng=_policy_rng())
    for arm, r, _ in UPDATES:
        b.update(arm, r)
    np.testing.assert_allclose(b.counts, [1.25, 0.5])
    np.testing.assert_allclose(b.sums, [0.8, 0.2])
    bonus = 2 * np.sqrt(0.6 * math.log(1.75) / np.array([1.25, 0.5]))
    np.testing.assert_allclose(b.index(), [0.64, 0.4] + bonus)
    assert b.select()[0] == 1


def test_discounted_ucb_with_gamma_one_is_ucb_with_its_own_bonus() -> None:
    b = DiscountedUCB(2, gamma=1.0, rng=_policy_rng())
    for arm, r, _ in UPDATES:
        b.update(arm, r)
    np.testing.assert_allclose(b.counts, [2, 1])
    np.testing.assert_allclose(b.sums, [1.4, 0.4])


def test_sliding_window_ucb_hand_worked() -> None:
    # window 2: the first play of arm 0 has left the window -> counts [1, 1], sums [0.6, 0.4];
    # t = 3 plays, ln min(3, 2) = ln 2; index = [0.6, 0.4] + sqrt(0.6 ln 2) -> arm 0
    b = SlidingWindowUCB(2, window=2, rng=_policy_rng())
    for arm, r, _ in UPDATES:
        b.update(arm, r)
    stats = b.statistics()
    np.testing.assert_allclose(stats["counts"], [1, 1])
    np.testing.assert_allclose(stats["means"], [0.6, 0.4])
    np.testing.assert_allclose(b.index(), np.array([0.6, 0.4]) + math.sqrt(0.6 * math.log(2)))
    assert b.select()[0] == 0
    b.update(0, 0.0)  # arm 1 leaves the window: unseen again, played next
    assert b.index()[1] == np.inf and b.select()[0] == 1


def test_exp3_hand_worked() -> None:
    # gamma = 0.5, K = 2. p = [0.5, 0.5]; update (0, x = 0.8): log w_0 += 0.5 * 0.8 / (0.5 * 2)
    # = 0.4. Then p_1 = 0.5 / (e^0.4 + 1) + 0.25 = 0.4507; update (1, r = 1, x = 1):
    # log w_1 += 0.5 * 1 / (p_1 * 2) = 0.5547.
    b = EXP3(2, gamma=0.5, rng=_policy_rng())
    np.testing.assert_allclose(b.probabilities(), [0.5, 0.5])
    b.update(0, 0.6)
    np.testing.assert_allclose(b.log_weights, [0.4, 0.0])
    p1 = 0.5 / (math.exp(0.4) + 1) + 0.25
    np.testing.assert_allclose(b.probabilities()[1], p1)
    b.update(1, 1.0)
    np.testing.assert_allclose(b.log_weights, [0.4, 0.25 / p1])
    w = np.exp([0.4, 0.25 / p1])
    np.testing.assert_allclose(b.probabilities(), 0.5 * w / w.sum() + 0.25)
    assert b.probabilities().sum() == pytest.approx(1.0)


def test_exp3_keeps_gamma_over_k_for_every_arm() -> None:
    b = EXP3(3, gamma=0.1, rng=_policy_rng())
    for _ in range(2000):
        b.update(0, 1.0)  # a huge log weight: no overflow, and every arm keeps gamma / K
    p = b.probabilities()
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[1:], [0.1 / 3, 0.1 / 3])


def test_epsilon_greedy_hand_worked() -> None:
    # raw rewards: means = [(0.6 + 0.2) / 2, -0.2] = [0.4, -0.2]; epsilon = 0.1, K = 2:
    # probs = [0.05 + 0.9, 0.05]; epsilon = 0 always plays the greedy arm.
    b = EpsilonGreedy(2, epsilon=0.1, rng=_policy_rng())
    for arm, r, _ in UPDATES:
        b.update(arm, r)
    np.testing.assert_allclose(b.means(), [0.4, -0.2])
    _, info = b.select()
    np.testing.assert_allclose(info["probs"], [0.95, 0.05])
    greedy = EpsilonGreedy(2, epsilon=0.0, rng=_policy_rng())
    for arm, r, _ in UPDATES:
        greedy.update(arm, r)
    assert {greedy.select()[0] for _ in range(50)} == {0}


def test_epsilon_greedy_explores_at_rate_epsilon() -> None:
    b = EpsilonGreedy(4, epsilon=0.2, rng=_policy_rng())
    b.update(0, 1.0)
    for k in (1, 2, 3):
        b.update(k, 0.0)
    picks = np.array([b.select()[0] for _ in range(4000)])
    assert np.mean(picks != 0) == pytest.approx(0.2 * 3 / 4, abs=0.02)


def test_thompson_is_optima_without_discounting() -> None:
    s = ThompsonScheduler(MODULES, 0, warmup_rounds=3)
    assert isinstance(s, OptimaScheduler) and s.name == "thompson" and s.bandit.gamma == 1.0
    chosen = play(s, range(30), MEANS, NOISE)
    counts = [sum(a == frozenset([m]) for a in chosen) for m in MODULES]
    np.testing.assert_allclose(s.bandit.counts, counts)  # plain counts: nothing decays


def test_thompson_and_optima_share_warmup_and_stream() -> None:
    # With gamma = 1 the first sampled round draws the same z as OPTIMA from the same stream;
    # only the statistics differ, and after three rounds of warm-up only by discounting.
    thompson = ThompsonScheduler(MODULES, 4, warmup_rounds=3)
    optima = OptimaScheduler(MODULES, 4, warmup_rounds=3)
    assert play(thompson, range(3), MEANS, NOISE) == play(optima, range(3), MEANS, NOISE)
    assert thompson.rng.bit_generator.state == optima.rng.bit_generator.state


def test_single_module_is_always_the_same_module() -> None:
    s = SingleModuleScheduler(MODULES, 0, "text")
    assert s.name == "single:text"
    assert play(s, range(5), MEANS, NOISE) == [frozenset(["text"])] * 5
    with pytest.raises(ValueError, match="visual"):
        SingleModuleScheduler(MODULES, 0, "visual")


# --- golden arm sequences -----------------------------------------------------------------

# Seed 0, warm-up 3 rounds (EXP3: none), rewards MEANS[arm] + NOISE[t]; i = image, t = text,
# m = multimodal. Regenerate only for a deliberate change of a policy (or of numpy's streams).
GOLDEN: dict[str, tuple[object, str]] = {
    "thompson": (
        lambda s: ThompsonScheduler(MODULES, s, warmup_rounds=3),
        "itmtttittttttttttttttttttttttt",
    ),
    "ucb1": (
        lambda s: UCB1Scheduler(MODULES, s, warmup_rounds=3),
        "itmtimtitmtimtitmtittmittimtit",
    ),
    "discounted-ucb": (
        lambda s: DiscountedUCBScheduler(MODULES, s, warmup_rounds=3),
        "itmtimtimtitmtitmitimtitmtitmt",
    ),
    "sliding-window-ucb": (
        lambda s: SlidingWindowUCBScheduler(MODULES, s, warmup_rounds=3, window=10),
        "itmtitmtitmitmtitmtitmitmtittt",
    ),
    "exp3": (lambda s: EXP3Scheduler(MODULES, s), "tttiimmmmmttmiiittiimitiiimmtm"),
    "epsilon-greedy": (
        lambda s: EpsilonGreedyScheduler(MODULES, s, warmup_rounds=3),
        "itmtttttttttttttttmttttttttttt",
    ),
}


def _letters(scheduler) -> str:
    return "".join(m[0] for m in picks(scheduler, range(30), MEANS, NOISE))


@pytest.mark.parametrize("kind", GOLDEN)
def test_golden_arm_sequence(kind: str) -> None:
    factory, golden = GOLDEN[kind]
    assert _letters(factory(0)) == golden
    other = _letters(factory(1))
    if kind != "exp3":
        assert other[:3] == "itm"  # round-robin warm-up does not depend on the seed
    assert _letters(factory(0)) == golden  # reproducible


def test_every_policy_prefers_the_best_module() -> None:
    # text is best by 0.3: within 30 rounds every policy but EXP3 plays it more than the worst
    # (multimodal). EXP3's steps gamma * x / (p K) on x = (r + 1) / 2 are small: it needs
    # hundreds of rounds, and then keeps only gamma / K = 1/30 on each other arm.
    for kind, (_, golden) in GOLDEN.items():
        if kind != "exp3":
            assert golden.count("t") > golden.count("m"), kind
    s = EXP3Scheduler(MODULES, 0)
    noise = np.random.default_rng(1).normal(0.0, 0.1, 1000)
    assert picks(s, range(1000), MEANS, noise)[500:].count("text") > 400


# --- warm-up, options, state --------------------------------------------------------------


def test_random_warmup_and_subset_arms() -> None:
    s = UCB1Scheduler(MODULES, 0, warmup_rounds=7, arms="subsets")
    assert play(s, range(7), MEANS, NOISE) == s.arms  # round-robin over all 7 subsets
    r = UCB1Scheduler(MODULES, 0, warmup="random")
    default = UCB1Scheduler(MODULES, 0)
    assert play(r, range(10), MEANS, NOISE) != play(default, range(10), MEANS, NOISE)


def test_trace_reports_per_arm_statistics() -> None:
    s = DiscountedUCBScheduler(MODULES, 0, warmup_rounds=3)
    assert s.trace() == {}
    s.choose(0)
    warm = s.trace()
    assert warm["phase"] == "warmup" and warm["arm"] == "image"
    assert set(warm["index"].values()) == {None}  # no index computed in warm-up
    assert set(warm["means"].values()) == {None}  # nan becomes None
    s.observe(0, frozenset(["image"]), 0.5)
    play(s, range(1, 3), MEANS, NOISE)
    s.choose(3)
    trace = s.trace()
    assert trace["phase"] == "select"
    assert set(trace["counts"]) == set(trace["means"]) == set(trace["index"]) == set(MODULES)
    assert trace["counts"]["image"] == pytest.approx(0.98**2)
    json.dumps(trace, allow_nan=False)


@pytest.mark.parametrize(
    "make",
    [
        lambda: UCB1Scheduler(MODULES, 0, c=-1.0),
        lambda: DiscountedUCBScheduler(MODULES, 0, gamma=0.0),
        lambda: SlidingWindowUCBScheduler(MODULES, 0, window=0),
        lambda: EXP3Scheduler(MODULES, 0, gamma=0.0),
        lambda: EpsilonGreedyScheduler(MODULES, 0, epsilon=1.5),
        lambda: UCB1Scheduler(MODULES, 0, warmup="everything"),
        lambda: UCB1Scheduler(MODULES, 0, arms="pairs"),
        lambda: UCB1Scheduler(MODULES, 0, warmup_rounds=-1),
        lambda: UCB1Scheduler((), 0),
    ],
)
def test_bad_options_are_rejected(make) -> None:
    with pytest.raises(ValueError):
        make()


def test_observe_rejects_non_arms_and_non_finite_rewards() -> None:
    s = EXP3Scheduler(MODULES, 0)
    with pytest.raises(ValueError, match="not an arm"):
        s.observe(0, frozenset(MODULES), 0.1)
    with pytest.raises(ValueError, match="reward"):
        s.observe(0, frozenset(["text"]), float("inf"))


def test_load_rejects_another_configuration() -> None:
    with pytest.raises(ValueError, match="window"):
        SlidingWindowUCBScheduler(MODULES, 0, window=5).load_state_dict(
            SlidingWindowUCBScheduler(MODULES, 0).state_dict()
        )
    with pytest.raises(ValueError, match="ucb1"):
        UCB1Scheduler(MODULES, 0).load_state_dict(EXP3Scheduler(MODULES, 0).state_dict())


# --- the registry -------------------------------------------------------------------------

CFG = DistillConfig(student="test", steps=60, rounds=60, warmup_rounds=3)
ALL_NAMES = [*REGISTRY, *(f"{family}:{MODULES[1]}" for family in FAMILIES)]


@pytest.mark.parametrize("arms", ["modules", "subsets"])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_registered_scheduler_builds_and_keeps_the_contract(name: str, arms: str) -> None:
    cfg = DistillConfig(student="test", steps=60, rounds=60, warmup_rounds=3, arms=arms)
    global_state = np.random.get_state()[1].copy()
    original = build_scheduler(name, MODULES, 5, cfg)
    assert original.name == name
    for t in range(25):
        active = original.choose(t)
        assert isinstance(active, frozenset) and active <= set(MODULES)
        json.dumps(original.trace(), allow_nan=False)
        reward = float(np.mean([MEANS[m] for m in active])) + NOISE[t] if active else 0.0
        assert original.observe(t, active, reward) is None
    state = json.loads(json.dumps(original.state_dict(), allow_nan=False))
    resumed = build_scheduler(name, MODULES, 6, cfg)  # another seed: all comes from the state
    assert resumed.load_state_dict(state) is None
    for t in range(25, 60):
        a, b = original.choose(t), resumed.choose(t)
        assert a == b
        assert original.trace() == resumed.trace()
        reward = float(np.mean([MEANS[m] for m in a])) + NOISE[t] if a else 0.0
        original.observe(t, a, reward)
        resumed.observe(t, b, reward)
    np.testing.assert_array_equal(np.random.get_state()[1], global_state)


def test_registry_passes_the_run_config() -> None:
    cfg = DistillConfig(student="test", steps=10, rounds=10, warmup_rounds=4, gamma=0.9)
    assert build_scheduler("discounted-ucb", MODULES, 0, cfg).policy.gamma == 0.9
    assert build_scheduler("optima", MODULES, 0, cfg).bandit.gamma == 0.9
    assert build_scheduler("thompson", MODULES, 0, cfg).bandit.gamma == 1.0
    assert build_scheduler("ucb1", MODULES, 0, cfg).warmup_rounds == 4
    assert build_scheduler("exp3", MODULES, 0, cfg).warmup_rounds == 0


def test_list_schedulers_names_every_scheduler_once() -> None:
    listed = list_schedulers()
    names = [n for n, _ in listed]
    assert names[: len(REGISTRY)] == list(REGISTRY)
    assert "single:<module>" in names and len(set(names)) == len(names)
    assert all(isinstance(d, str) and d and "\n" not in d for _, d in listed)
    new = {"thompson", "ucb1", "discounted-ucb", "sliding-window-ucb", "exp3", "epsilon-greedy"}
    assert new <= set(names)


def test_single_family_is_parsed_and_checked_against_the_modules() -> None:
    assert parse_schedulers("optima, single:text") == ["optima", "single:text"]
    assert parse_schedulers("single:text", MODULES) == ["single:text"]
    with pytest.raises(ConfigError, match="visual"):
        parse_schedulers("single:visual", MODULES)
    with pytest.raises(ConfigError, match="visual"):
        build_scheduler("single:visual", MODULES, 0, CFG)
    for bad in ("single:", "single", "ucb2", "", "optima:x"):
        with pytest.raises(ConfigError):
            parse_schedulers(bad)
