"""The bandit simulator (`optima-repro bandit-sim`): reward processes, regret, the real scheduler
objects, and the claim of spec/optima.md §4 that discounting follows a best module that changes."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from baselines import SingleModuleScheduler
from harness.cli import main
from harness.errors import ConfigError
from harness.schedulers import REGISTRY
from harness.tools import bandit_sim
from harness.tools.bandit_sim import (
    ABRUPT_SEGMENTS,
    DECAY_ADVANTAGE,
    DECAY_NOISE,
    NOISE_SD,
    POLICIES,
    SCENARIOS,
    environment,
    play,
    simulate,
    summary,
)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bandit_sim.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_environment_is_determined_by_the_seed(scenario: str) -> None:
    a, b = environment(scenario, 3, 50, 7), environment(scenario, 3, 50, 7)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert a.means.shape == a.rewards.shape == (50, 3)
    assert not np.array_equal(a.rewards, environment(scenario, 3, 50, 8).rewards)
    noise = a.rewards / a.means - 1 if scenario == "decaying" else a.rewards - a.means
    sd = DECAY_NOISE if scenario == "decaying" else NOISE_SD  # relative, or absolute
    assert 0.8 * sd < np.std(noise) < 1.2 * sd
    scaled = environment(scenario, 3, 50, 7, scale=0.05)
    np.testing.assert_allclose(scaled.rewards, 0.05 * a.rewards)


def test_stationary_means_are_constant() -> None:
    env = environment("stationary", 4, 30, 0)
    assert (env.means == env.means[0]).all()
    assert ((env.means >= 0.2) & (env.means <= 0.8)).all()


def test_abrupt_means_are_piecewise_constant_and_the_best_arm_changes() -> None:
    rounds = 100
    for seed in range(10):
        env = environment("abrupt", 3, rounds, seed)
        changes = np.flatnonzero((np.diff(env.means, axis=0) != 0).any(axis=1)) + 1
        assert changes.tolist() == [25, 50, 75]  # ABRUPT_SEGMENTS = 4 equal segments
        best = env.means.argmax(axis=1)
        assert all(best[c] != best[c - 1] for c in changes)
        # a rotation: every segment holds the same set of means
        np.testing.assert_allclose(
            np.sort(env.means, axis=1), np.sort(env.means[:1], axis=1)[[0] * rounds]
        )
    assert ABRUPT_SEGMENTS == 4


def test_drift_means_move_slowly_and_the_best_arm_changes() -> None:
    env = environment("drift", 3, 200, 0)
    assert np.abs(np.diff(env.means, axis=0)).max() < 2 * math.pi * 0.3 / 200 + 1e-12
    assert len(set(env.means.argmax(axis=1).tolist())) == 3


def test_decaying_means_have_the_measured_shape_and_a_better_arm_per_seed() -> None:
    best = set()
    for seed in range(10):
        env = environment("decaying", 3, 100, seed)
        common = np.sort(env.means, axis=1)[:, 0]
        assert common[[0, 5, 99]] == pytest.approx([0.79, 0.05, 0.001])
        assert (np.diff(common) < 0).all()  # log-linear pieces: falls every round
        (k,) = set(env.means.argmax(axis=1).tolist())  # one better arm, every round
        np.testing.assert_allclose(env.means[:, k], (1 + DECAY_ADVANTAGE) * common)
        best.add(k)
    assert len(best) > 1  # drawn per seed, not always arm 0


def test_ratio_baseline_and_shuffled_warmup_beat_random_on_decaying() -> None:
    # The evidence for the defaults (README "Ablations"): 200 seeds, the card's P, T0, gamma.
    def run(policy: str, *overrides: str) -> tuple[float, float]:
        result = simulate(policy, "decaying", 3, 100, 200, overrides=overrides)
        return summary(result["curves"])[0], float(result["best_arm_share"].mean())

    random_regret, _ = run("random")
    regret, share = run("optima")  # the defaults: ratio baseline, shuffled warm-up
    assert regret < random_regret and share > 0.5
    _, raw_share = run("optima", "distill.reward_baseline=none", "distill.warmup=round-robin")
    assert raw_share < 0.45  # raw rewards mostly measure when an arm was played


def test_cli_runs_decaying_with_scheduler_options(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bandit-sim", "--policy", "optima", "--scenario", "decaying", "--rounds", "30"]
    argv += [
        "--seeds",
        "4",
        "--set",
        "distill.reward_baseline=none",
        "--set",
        "distill.warmup=random",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"mean_regret", "stderr", "best_arm_share"} <= set(out)
    assert out["options"]["reward_baseline"] == "none" and out["options"]["warmup"] == "random"
    assert out["noise_sd"] == DECAY_NOISE and out["noise_relative"] is True
    for bad, named in (
        ("distill.reward_baseline=mean", "distill.reward_baseline"),
        ("gamma=1", "distill."),
    ):
        assert main([*argv[:-4], "--set", bad]) == 2
        assert named in capsys.readouterr().err


def test_regret_of_a_fixed_module_by_hand() -> None:
    env = environment("abrupt", 3, 40, 3)
    chosen = play(SingleModuleScheduler(["m0", "m1", "m2"], 3, "m1"), env)
    assert (chosen == 1).all()
    curves = np.cumsum(env.means.max(axis=1) - env.means[:, 1])[None, :]
    mean, stderr = summary(curves)
    assert mean == pytest.approx(float(np.sum(env.means.max(axis=1) - env.means[:, 1])))
    assert stderr == 0.0


def test_summary_mean_and_standard_error() -> None:
    curves = np.array([[0.0, 1.0], [0.0, 3.0], [0.0, 5.0]])
    assert summary(curves) == pytest.approx((3.0, 2.0 / math.sqrt(3)))


def test_every_policy_runs_through_the_registry() -> None:
    assert set(POLICIES) <= set(REGISTRY)
    for policy in POLICIES:
        result = simulate(policy, "stationary", 3, 30, 2)
        assert result["curves"].shape == (2, 30)
        assert (np.diff(result["curves"], axis=1) >= 0).all()  # regret never decreases
        assert simulate(policy, "stationary", 3, 30, 2)["curves"].tolist() == (
            result["curves"].tolist()
        )


def test_optima_beats_random_when_nothing_changes() -> None:
    optima = simulate("optima", "stationary", 3, 100, 10)["curves"][:, -1]
    random = simulate("random", "stationary", 3, 100, 10)["curves"][:, -1]
    assert optima.mean() < random.mean() / 3


# The reading the numbers below were measured on: the raw reward, round-robin warm-up.
RAW = ("distill.reward_baseline=none", "distill.warmup=round-robin")


def _paired(
    policy: str, baseline: str, rounds: int, seeds: int, overrides=RAW
) -> tuple[float, float, float]:
    """Mean regret difference baseline - policy over seeds, its paired and unpaired standard
    errors. Same seeds, so both face the same rewards (common random numbers)."""
    a = simulate(policy, "abrupt", 3, rounds, seeds, overrides=overrides)["curves"][:, -1]
    b = simulate(baseline, "abrupt", 3, rounds, seeds, overrides=overrides)["curves"][:, -1]
    d = b - a
    paired = d.std(ddof=1) / math.sqrt(seeds)
    unpaired = math.sqrt(a.var(ddof=1) / seeds + b.var(ddof=1) / seeds)
    return float(d.mean()), paired, unpaired


def test_discounting_beats_vanilla_thompson_on_abrupt_changes() -> None:
    # OPTIMA's setting, K = 3 modules, N = 100 rounds, 20 seeds: the paired difference in
    # regret exceeds 2 standard errors (it is ~4.8; 1.4 regret units out of 10).
    diff, paired, _ = _paired("optima", "thompson", 100, 20)
    assert diff > 2 * paired
    # 300 rounds (75-round segments): vanilla's old evidence weighs more, and the gap exceeds
    # 2 unpaired standard errors too (~2.6; 10.4 regret units out of 24).
    diff, paired, unpaired = _paired("optima", "thompson", 300, 20)
    assert diff > 2 * paired and diff > 2 * unpaired
    # the default reading (ratio baseline, shuffled warm-up): paired, ~4.8 (7.6 out of 25)
    diff, paired, _ = _paired("optima", "thompson", 300, 20, overrides=())
    assert diff > 2 * paired


def test_cli_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args("--policy", "ucb1", "--scenario", "drift", "--arms", "4", "--rounds", "20")
    args.seeds = 3
    assert bandit_sim.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"policy", "scenario", "arms", "rounds", "seeds", "mean_regret", "stderr"} <= set(out)
    assert (out["policy"], out["scenario"], out["arms"], out["rounds"], out["seeds"]) == (
        "ucb1",
        "drift",
        4,
        20,
        3,
    )
    assert out["mean_regret"] == pytest.approx(np.mean(out["regret_per_seed"]))
    assert out["stderr"] > 0


def test_plot_is_deterministic_and_written_atomically(tmp_path, capsys) -> None:
    pngs = []
    for name in ("a.png", "b.png"):
        path = tmp_path / "plots" / name
        argv = ["--policy", "optima", "--scenario", "abrupt", "--rounds", "30", "--seeds", "3"]
        assert bandit_sim.run(_args(*argv, "--plot", str(path))) == 0
        assert json.loads(capsys.readouterr().out)["plot"] == str(path)
        pngs.append(path.read_bytes())
    assert pngs[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert pngs[0] == pngs[1]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--arms", "1"],
        ["--seeds", "0"],
        ["--rounds", "0"],
        ["--gamma", "0"],
        ["--warmup-rounds", "-1"],
    ],
)
def test_bad_arguments_are_config_errors(argv: list[str]) -> None:
    args = _args("--policy", "optima", "--scenario", "abrupt", "--rounds", "10", *argv)
    with pytest.raises(ConfigError):
        bandit_sim.run(args)


def test_unknown_policy_or_scenario_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        _args("--policy", "ucb2", "--scenario", "abrupt")
    with pytest.raises(SystemExit):
        _args("--policy", "optima", "--scenario", "sudden")
