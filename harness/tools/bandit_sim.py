"""`optima-repro bandit-sim`: the module schedulers on synthetic non-stationary bandits.

Checks on cheap synthetic rewards what spec/optima.md §4 relies on: that discounting lets the
sampler follow a best module that changes. Arms are modules ``m0..m{K-1}``; each policy is the
very scheduler object the harness builds (``harness.schedulers.build_scheduler``), driven by
``choose``/``observe`` exactly as in the distillation rounds.

Reward processes, fully determined by (scenario, K, N, seed), with Gaussian noise ``NOISE_SD``:
- ``stationary``: means drawn once, uniform on ``MEAN_RANGE``.
- ``abrupt``: piecewise constant; ``ABRUPT_SEGMENTS`` equal segments, and at each boundary the
  means rotate among the arms by a random non-zero shift, so the best arm always changes.
- ``drift``: ``mu_k(t) = 0.5 + 0.3 sin(2 pi t / N + phi + 2 pi k / K)``, one slow cycle per run
  with a random phase phi; the best arm changes K times, smoothly.
- ``decaying``: the shape of OPTIMA's relative rewards (spec §4, measured on the embedded
  default): every arm's mean falls log-linearly from 0.79 (round 0) to 0.05 (round 5) to 0.001
  (last round), one arm drawn per seed is ``DECAY_ADVANTAGE`` better, and the noise is
  proportional to the mean (relative sd ``DECAY_NOISE``). A policy fed raw rewards learns
  mostly when an arm was played; this is the scenario that tells reward baselines apart.
Every arm's reward is drawn every round, so all policies face the same rewards for a seed.
Regret is pseudo-regret against the per-round best arm, ``sum_t max_k mu_k(t) - mu_{a_t}(t)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config import DistillConfig, apply_overrides, study_config
from harness.errors import ConfigError
from harness.schedulers import build_scheduler

SCENARIOS = ("stationary", "abrupt", "drift", "decaying")
POLICIES = (
    "optima",
    "thompson",
    "ucb1",
    "discounted-ucb",
    "sliding-window-ucb",
    "exp3",
    "epsilon-greedy",
    "random",
)
# The DistillConfig fields the registry's builders read, printed with every result.
SCHEDULER_OPTIONS = ("warmup", "arms", "posterior", "reward_baseline", "reward_skip_rounds")
MEAN_RANGE = (0.2, 0.8)
NOISE_SD = 0.1  # about OPTIMA's ratio of reward noise to module gaps (tests/test_schedulers.py)
ABRUPT_SEGMENTS = 4
DRIFT_AMPLITUDE = 0.3
DECAY_POINTS = ((0, 0.79), (5, 0.05), (-1, 0.001))  # (round, mean); -1: the last round
DECAY_ADVANTAGE = 0.3  # the better arm's mean is 30% above the others'
DECAY_NOISE = 0.3  # relative sd: the advantage is one noise sd, as gaps are in `stationary`
# Second word of the environment's seed sequence: apart from the scheduler stream (0x5C4ED).
ENVIRONMENT_STREAM_TAG = 0xB4D17


@dataclass(frozen=True)
class Environment:
    """Per-round arm means and the rewards every arm would pay, both of shape (rounds, arms)."""

    means: np.ndarray
    rewards: np.ndarray


def environment(
    scenario: str, arms: int, rounds: int, seed: int, scale: float = 1.0
) -> Environment:
    """The reward process of ``scenario`` for ``seed`` (module docstring); ``scale`` multiplies
    means and noise alike (e.g. 0.05 for the size of OPTIMA's relative loss decrements)."""
    if scenario not in SCENARIOS:
        raise ConfigError(f"bandit-sim: scenario must be one of {SCENARIOS}, got {scenario!r}")
    if arms < 2 or rounds < 1:
        raise ConfigError(f"bandit-sim: need arms >= 2 and rounds >= 1, got {arms}, {rounds}")
    rng = np.random.default_rng([int(seed), ENVIRONMENT_STREAM_TAG])
    low, high = MEAN_RANGE
    if scenario == "decaying":
        means = np.tile(decay_curve(rounds)[:, None], (1, arms))
        means[:, rng.integers(arms)] *= 1.0 + DECAY_ADVANTAGE
        rewards = means * (1.0 + rng.normal(0.0, DECAY_NOISE, (rounds, arms)))
        return Environment(scale * means, scale * rewards)
    if scenario == "drift":
        phase = rng.uniform(0.0, 2.0 * math.pi)
        t = np.arange(rounds)[:, None]
        k = np.arange(arms)[None, :]
        angle = 2.0 * math.pi * t / rounds + phase + 2.0 * math.pi * k / arms
        means = (low + high) / 2 + DRIFT_AMPLITUDE * np.sin(angle)
    else:
        base = rng.uniform(low, high, arms)
        means = np.tile(base, (rounds, 1))
        if scenario == "abrupt":
            bounds = [round(j * rounds / ABRUPT_SEGMENTS) for j in range(1, ABRUPT_SEGMENTS)]
            for start in bounds:
                means[start:] = np.roll(means[start], int(rng.integers(1, arms)))
    rewards = means + rng.normal(0.0, NOISE_SD, (rounds, arms))
    return Environment(scale * means, scale * rewards)


def decay_curve(rounds: int) -> np.ndarray:
    """Mean reward per round of ``decaying``: log-linear between the ``DECAY_POINTS``."""
    (t0, m0), (t1, m1), (_, m2) = DECAY_POINTS
    last = max(rounds - 1, t1 + 1)  # runs shorter than the knee end on its first slope
    return np.exp(np.interp(np.arange(rounds), [t0, t1, last], np.log([m0, m1, m2])))


def play(scheduler, env: Environment) -> np.ndarray:
    """Run ``scheduler`` through every round of ``env``; returns the arm index chosen per round."""
    rounds, arms = env.means.shape
    modules = [f"m{k}" for k in range(arms)]
    chosen = np.empty(rounds, dtype=int)
    for t in range(rounds):
        active = scheduler.choose(t)
        if len(active) != 1:
            raise ConfigError(
                f"bandit-sim: {scheduler.name} chose {sorted(active)} in round {t}; the simulator "
                "needs one module per round"
            )
        (module,) = active
        chosen[t] = modules.index(module)
        scheduler.observe(t, active, float(env.rewards[t, chosen[t]]))
    return chosen


def sim_config(
    rounds: int, gamma: float, warmup_rounds: int, overrides: Sequence[str] = ()
) -> DistillConfig:
    """The run configuration the registry builds schedulers from: one step per round, then
    ``overrides`` as `reproduce --set` reads them (``distill.reward_baseline=ratio``), so the
    sim compares the very readings a study would run."""
    distill = DistillConfig(
        student="bandit-sim", steps=rounds, rounds=rounds, warmup_rounds=warmup_rounds, gamma=gamma
    )
    for item in overrides:
        if not item.startswith("distill."):
            raise ConfigError(
                f"bandit-sim: --set {item!r}: only distill.* fields reach a scheduler"
            )
    study = dataclasses.replace(study_config("vqa", "smoke"), distill=distill)
    return apply_overrides(study, list(overrides)).distill


def simulate(
    policy: str,
    scenario: str,
    arms: int,
    rounds: int,
    seeds: int,
    gamma: float = 0.98,
    warmup_rounds: int = 10,
    scale: float = 1.0,
    overrides: Sequence[str] = (),
) -> dict:
    """Cumulative regret curves (seeds x rounds) and best-arm shares of ``policy``, seeds 0..S-1;
    ``overrides``: see ``sim_config``."""
    if seeds < 1:
        raise ConfigError(f"bandit-sim: --seeds must be >= 1, got {seeds}")
    if not 0.0 < gamma <= 1.0:
        raise ConfigError(f"bandit-sim: --gamma must lie in (0, 1], got {gamma}")
    if warmup_rounds < 0:
        raise ConfigError(f"bandit-sim: --warmup-rounds must be >= 0, got {warmup_rounds}")
    if policy not in POLICIES:
        raise ConfigError(f"bandit-sim: policy must be one of {POLICIES}, got {policy!r}")
    cfg = sim_config(rounds, gamma, warmup_rounds, overrides)
    modules = [f"m{k}" for k in range(arms)]
    curves, best_share = [], []
    for seed in range(seeds):
        env = environment(scenario, arms, rounds, seed, scale)
        chosen = play(build_scheduler(policy, modules, seed, cfg), env)
        got = env.means[np.arange(rounds), chosen]
        best = env.means.max(axis=1)
        curves.append(np.cumsum(best - got))
        best_share.append(float(np.mean(got == best)))
    return {"curves": np.array(curves), "best_arm_share": np.array(best_share), "config": cfg}


def summary(curves: np.ndarray) -> tuple[float, float]:
    """Mean final cumulative regret over seeds and its standard error (0 for one seed)."""
    final = curves[:, -1]
    stderr = final.std(ddof=1) / math.sqrt(len(final)) if len(final) > 1 else 0.0
    return float(final.mean()), float(stderr)


def plot(curves: np.ndarray, means: np.ndarray, title: str, path: Path) -> None:
    """Arm means of seed 0 above, cumulative regret (per seed, mean +- one standard error)
    below; a deterministic PNG written atomically."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    from harness.report.figures import save_figure

    fig = Figure(figsize=(7, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 2))
    rounds = np.arange(1, curves.shape[1] + 1)
    for k in range(means.shape[1]):
        top.plot(rounds, means[:, k], label=f"m{k}")
    top.set_ylabel("arm mean (seed 0)")
    top.legend(loc="best", fontsize="small", ncol=min(means.shape[1], 4))
    for c in curves:
        bottom.plot(rounds, c, color="0.8", linewidth=0.6)
    mean = curves.mean(axis=0)
    se = curves.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
    bottom.fill_between(rounds, mean - se, mean + se, color="C0", alpha=0.3, linewidth=0)
    bottom.plot(rounds, mean, color="C0", label=f"mean of {len(curves)} seeds")
    bottom.set_xlabel("round")
    bottom.set_ylabel("cumulative regret")
    bottom.legend(loc="upper left", fontsize="small")
    top.set_title(title)
    fig.tight_layout()
    save_figure(fig, Path(path))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, choices=POLICIES)
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--arms", type=int, default=3, help="K, modules m0..m{K-1} (default 3)")
    parser.add_argument("--rounds", type=int, default=100, help="N (default 100, the card's P)")
    parser.add_argument("--seeds", type=int, default=20, help="number of seeds, 0..S-1")
    parser.add_argument(
        "--gamma", type=float, default=0.98, help="discount of optima and discounted-ucb"
    )
    parser.add_argument(
        "--warmup-rounds", type=int, default=10, help="warm-up rounds (the card's T0 = 10)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies means and noise (default 1)"
    )
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the regret curves")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="distill.FIELD=VALUE",
        help="a scheduler option as `reproduce --set` takes it, e.g. distill.warmup=shuffled",
    )


def run(args: argparse.Namespace) -> int:
    result = simulate(
        args.policy,
        args.scenario,
        args.arms,
        args.rounds,
        args.seeds,
        args.gamma,
        args.warmup_rounds,
        args.scale,
        args.overrides,
    )
    mean, stderr = summary(result["curves"])
    cfg = result["config"]
    out = {
        "policy": args.policy,
        "scenario": args.scenario,
        "arms": args.arms,
        "rounds": args.rounds,
        "seeds": args.seeds,
        "mean_regret": mean,
        "stderr": stderr,
        "best_arm_share": float(result["best_arm_share"].mean()),
        "gamma": args.gamma,
        "warmup_rounds": args.warmup_rounds,
        "scale": args.scale,
        # decaying: noise proportional to the mean (relative sd); else an absolute sd
        "noise_sd": DECAY_NOISE if args.scenario == "decaying" else NOISE_SD * args.scale,
        "noise_relative": args.scenario == "decaying",
        "set": args.overrides,
        "options": {name: getattr(cfg, name) for name in SCHEDULER_OPTIONS},
        "regret_per_seed": result["curves"][:, -1].tolist(),
    }
    if args.plot is not None:
        env = environment(args.scenario, args.arms, args.rounds, 0, args.scale)
        title = f"{args.policy} on {args.scenario} (K={args.arms}, N={args.rounds})"
        plot(result["curves"], env.means, title, args.plot)
        out["plot"] = str(args.plot)
    print(json.dumps(out))
    return 0
