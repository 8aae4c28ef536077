"""Schedulers against the contract of spec/harness.md §3 and the rules of spec/optima.md §4."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from bandit_play import picks, play, reward

import baselines.random_module
import optima.scheduler
from baselines import NoDistillScheduler, RandomScheduler, UniformScheduler
from optima import OptimaScheduler

MODULES = ("image", "text", "multimodal")
MEANS = {"image": 0.02, "text": 0.03, "multimodal": 0.01}

FACTORIES: dict[str, Callable[[int], object]] = {
    "optima": lambda seed: OptimaScheduler(MODULES, seed),
    "optima-subsets": lambda seed: OptimaScheduler(MODULES, seed, arms="subsets"),
    "optima-beta-random-warmup": lambda seed: OptimaScheduler(
        MODULES, seed, posterior="beta", warmup="random", warmup_rounds=4
    ),
    "optima-all-warmup": lambda seed: OptimaScheduler(MODULES, seed, warmup="all", warmup_rounds=3),
    "optima-ratio-shuffled-skip": lambda seed: OptimaScheduler(
        MODULES, seed, reward_baseline="ratio", warmup="shuffled", reward_skip_rounds=4
    ),
    "uniform": lambda seed: UniformScheduler(MODULES, seed),
    "random": lambda seed: RandomScheduler(MODULES, seed),
    "none": lambda seed: NoDistillScheduler(MODULES, seed),
}


NOISE = np.random.default_rng(2023).normal(0.0, 0.01, 60)


@pytest.mark.parametrize("kind", FACTORIES)
def test_every_scheduler_satisfies_the_contract(kind: str) -> None:
    global_state = np.random.get_state()[1].copy()
    scheduler = FACTORIES[kind](0)
    assert isinstance(scheduler.name, str) and scheduler.name
    for t in range(20):
        active = scheduler.choose(t)
        assert isinstance(active, frozenset) and active <= set(MODULES)
        json.dumps(scheduler.trace(), allow_nan=False)  # valid JSON for the run record
        assert scheduler.observe(t, active, reward(active, MEANS, NOISE[t])) is None
    state = json.loads(json.dumps(scheduler.state_dict(), allow_nan=False))
    fresh = FACTORIES[kind](1)
    assert fresh.load_state_dict(state) is None
    # the schedulers draw from their own generators, never numpy's global state
    np.testing.assert_array_equal(np.random.get_state()[1], global_state)


@pytest.mark.parametrize("kind", FACTORIES)
def test_state_dict_round_trip_gives_identical_remaining_choices(kind: str) -> None:
    original = FACTORIES[kind](5)
    play(original, range(25), MEANS, NOISE)
    state = json.loads(json.dumps(original.state_dict(), allow_nan=False))
    resumed = FACTORIES[kind](6)  # another seed: everything must come from the state
    resumed.load_state_dict(state)
    for t in range(25, 60):
        a, b = original.choose(t), resumed.choose(t)
        assert a == b
        assert original.trace() == resumed.trace()
        original.observe(t, a, reward(a, MEANS, NOISE[t]))
        resumed.observe(t, b, reward(b, MEANS, NOISE[t]))


def test_load_rejects_another_schedulers_state() -> None:
    with pytest.raises(ValueError, match="optima"):
        OptimaScheduler(MODULES, 0).load_state_dict(RandomScheduler(MODULES, 0).state_dict())
    with pytest.raises(ValueError, match="arms"):
        OptimaScheduler(MODULES, 0).load_state_dict(
            OptimaScheduler(MODULES, 0, arms="subsets").state_dict()
        )


# Golden arm sequence: seed 0, default options, rewards MEANS[arm] + NOISE[t]. The first 10
# rounds are the round-robin warm-up. Regenerate only for a deliberate change of the sampler
# (or of numpy's Generator streams), and say so in the commit.
GOLDEN_SEED_0 = [
    *["image", "text", "multimodal"] * 3,
    "image",
    "image", "text", "text", "image", "text", "text", "text", "text", "text", "text",
    "text", "text", "text", "text", "image", "text", "text", "text", "text", "text",
]  # fmt: skip


def _golden(seed: int) -> list[str]:
    return picks(OptimaScheduler(MODULES, seed), range(30), MEANS, NOISE)


def test_golden_arm_sequence() -> None:
    assert _golden(0) == GOLDEN_SEED_0
    other = _golden(1)
    assert other[:10] == GOLDEN_SEED_0[:10]  # round-robin warm-up does not depend on the seed
    assert other != GOLDEN_SEED_0


def test_optima_trace_reports_the_choice() -> None:
    s = OptimaScheduler(MODULES, 0, warmup_rounds=3)
    assert s.trace() == {}
    play(s, range(3), MEANS, NOISE)
    s.choose(3)
    trace = s.trace()
    assert trace["phase"] == "sample"
    assert trace["arm"] in MODULES
    assert set(trace["posterior_means"]) == set(trace["samples"]) == set(MODULES)
    assert all(isinstance(v, float) for v in trace["samples"].values())
    assert trace["counts"]["image"] == pytest.approx(0.98**2)

    fresh = OptimaScheduler(MODULES, 0)
    fresh.choose(0)
    warm = fresh.trace()
    assert warm["phase"] == "warmup" and warm["arm"] == "image"
    assert set(warm["posterior_means"].values()) == {None}  # nan becomes None
    assert set(warm["samples"].values()) == {None}  # no sample drawn in warm-up


def test_subset_arms_have_a_fixed_order_and_joined_names() -> None:
    s = OptimaScheduler(MODULES, 0, arms="subsets")
    assert s.arm_names == [
        "image",
        "text",
        "multimodal",
        "image+text",
        "image+multimodal",
        "text+multimodal",
        "image+text+multimodal",
    ]
    # round-robin warm-up visits every one of the 7 arms once before repeating
    assert [s.choose(t) for t in range(7)] == s.arms
    assert s.choose(7) == frozenset(["image"])


def test_random_warmup_draws_arms_from_the_scheduler_stream() -> None:
    def warmup(seed: int) -> list[frozenset[str]]:
        return play(OptimaScheduler(MODULES, seed, warmup="random"), range(10), MEANS, NOISE)

    assert warmup(0) == warmup(0)
    assert warmup(0) != warmup(1)
    assert warmup(0) != play(OptimaScheduler(MODULES, 0), range(10), MEANS, NOISE)


def test_all_warmup_distills_every_module_and_leaves_the_bandit_empty() -> None:
    s = OptimaScheduler(MODULES, 0, warmup="all", warmup_rounds=4)
    assert play(s, range(4), MEANS, NOISE) == [frozenset(MODULES)] * 4
    assert s.trace()["arm"] == "image+text+multimodal"
    assert not s.bandit.counts.any()  # warm-up rewards never reach the bandit
    # sampling then explores every unseen arm first, as after any warm-up
    assert {next(iter(a)) for a in play(s, range(4, 7), MEANS, NOISE)} == set(MODULES)


def test_optima_explores_unseen_arms_after_a_short_warmup() -> None:
    s = OptimaScheduler(MODULES, 0, warmup_rounds=1)  # warm-up tries only "image"
    chosen = play(s, range(3), MEANS, NOISE)
    assert set().union(*chosen) == set(MODULES)


def test_optima_beta_prefers_a_clearly_better_module() -> None:
    s = OptimaScheduler(MODULES, 0, posterior="beta")
    means = {"image": 0.2, "text": 0.8, "multimodal": 0.3}
    noise = np.random.default_rng(4).normal(0.0, 0.05, 200)
    assert picks(s, range(200), means, noise)[100:].count("text") > 80


def test_optima_rejects_a_reward_for_a_set_that_is_not_an_arm() -> None:
    with pytest.raises(ValueError, match="not an arm"):
        OptimaScheduler(MODULES, 0).observe(0, frozenset(MODULES), 0.1)


@pytest.mark.parametrize(
    "options",
    [
        {"warmup": "everything"},
        {"arms": "pairs"},
        {"posterior": "laplace"},
        {"warmup_rounds": -1},
        {"reward_baseline": "mean"},
        {"reward_skip_rounds": -1},
    ],
)
def test_optima_rejects_unknown_options(options: dict) -> None:
    (name,) = options
    with pytest.raises(ValueError, match=name):
        OptimaScheduler(MODULES, 0, **options)


# --- what the bandit is fed (issue 14: a reward that sees module effects) -----------------


def _fed(scheduler, rewards: list[float]) -> list[float | None]:
    """The trace's fed reward of each round, rewards given in order."""
    fed = []
    for t, r in enumerate(rewards):
        scheduler.observe(t, scheduler.choose(t), r)
        fed.append(scheduler.trace()["fed_reward"])
    return fed


def test_ratio_baseline_by_hand() -> None:
    s = OptimaScheduler(MODULES, 0, reward_baseline="ratio", warmup_rounds=6)
    # K = 3: the first 3 rounds have no baseline; then b = mean, s = mean |r| of the last 3
    fed = _fed(s, [0.8, 0.4, 0.3, 0.25, -0.1, 0.2])
    assert fed[:3] == [None] * 3
    assert fed[3] == pytest.approx((0.25 - 0.5) / 0.5)  # same signs: (r - b) / |b|
    assert fed[4] == pytest.approx((-0.1 - 0.95 / 3) / (0.95 / 3))
    assert fed[5] == pytest.approx((0.2 - 0.45 / 3) / (0.65 / 3))  # signs differ: mean |r|
    # only fed rounds reach the bandit: round-robin gave rounds 3-5 to image, text, multimodal
    discount = np.array([0.98**2, 0.98, 1.0])
    assert s.bandit.sums.tolist() == pytest.approx(discount * fed[3:])
    assert s.bandit.counts.tolist() == pytest.approx(discount)


def test_none_baseline_feeds_the_raw_reward_and_skip_rounds_feed_nothing() -> None:
    s = OptimaScheduler(MODULES, 0, reward_skip_rounds=2, warmup_rounds=4)
    assert _fed(s, [0.5, 0.3, 0.2, 0.1]) == [None, None, 0.2, 0.1]
    assert s.bandit.counts.tolist() == pytest.approx([1.0, 0.0, 0.98])


def test_resume_with_a_baseline_mid_window_gives_identical_choices() -> None:
    def make(seed: int) -> OptimaScheduler:
        return OptimaScheduler(MODULES, seed, reward_baseline="ratio", warmup="shuffled")

    rewards = 0.8 * 0.9 ** np.arange(40) * (1 + NOISE[:40])
    original = make(3)
    _fed(original, rewards[:17].tolist())
    state = json.loads(json.dumps(original.state_dict(), allow_nan=False))
    assert len(state["recent_rewards"]) == 3
    resumed = make(4)  # another seed: the state must carry everything
    resumed.load_state_dict(state)
    for t in range(17, 40):
        a, b = original.choose(t), resumed.choose(t)
        assert a == b
        original.observe(t, a, float(rewards[t]))
        resumed.observe(t, b, float(rewards[t]))
        assert original.trace() == resumed.trace()


def test_shuffled_warmup_is_a_per_seed_permutation_of_the_arms() -> None:
    orders = set()
    for seed in range(10):
        s = OptimaScheduler(MODULES, seed, warmup="shuffled", warmup_rounds=6)
        warm = picks(s, range(6), MEANS, NOISE)
        assert sorted(warm[:3]) == sorted(MODULES) and warm[3:] == warm[:3]  # round-robin
        assert OptimaScheduler(MODULES, seed, warmup="shuffled").warmup_order == s.warmup_order
        orders.add(tuple(warm[:3]))
    assert len(orders) > 1  # not always the same first module
    # the draw is the scheduler stream's, and only "shuffled" makes it
    assert OptimaScheduler(MODULES, 0).warmup_order == [0, 1, 2]


def test_uniform_returns_all_modules_and_none_returns_nothing() -> None:
    uniform, none = UniformScheduler(MODULES, 0), NoDistillScheduler(MODULES, 0)
    assert none.name == "none"
    for t in range(5):
        assert uniform.choose(t) == frozenset(MODULES)
        assert none.choose(t) == frozenset()
        assert uniform.trace() == none.trace() == {}


def test_random_is_reproducible_and_covers_all_modules() -> None:
    def picks(seed: int) -> list[frozenset[str]]:
        s = RandomScheduler(MODULES, seed)
        return [s.choose(t) for t in range(60)]

    assert picks(0) == picks(0)
    assert picks(0) != picks(1)
    assert all(len(a) == 1 for a in picks(0))
    assert set().union(*picks(0)) == set(MODULES)


def test_schedulers_share_one_stream_tag() -> None:
    assert baselines.random_module.SCHEDULER_STREAM_TAG == optima.scheduler.SCHEDULER_STREAM_TAG
