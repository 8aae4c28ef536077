"""`nox -s bench`: pytest-benchmark timings of the harness against its physical floor, written
to `reports/bench.md` when the module ends. Not part of the default suite (the file name does
not match `test_*.py`); targets are reported, never asserted as timings."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.config import COMPARED, DESCRIPTIVE_SEEDS, SEEDS, parse_seeds
from harness.models.coca import MODULES
from harness.tools import bench
from optima import OptimaScheduler

STEPS = 5  # training steps per benchmark round
RESULTS: dict = {"timings": {}, "rows": [], "notes": []}
REPORTS = Path(os.environ.get("BENCH_REPORTS", "reports"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(max(1, torch.get_num_threads()))
    b = bench.Bench.build(tmp_path_factory.mktemp("bench"))
    yield b
    RESULTS["machine"] = bench.machine()
    print(f"\nbench report: {bench.write(RESULTS, REPORTS)}")


def _median(benchmark) -> float:
    return benchmark.stats.stats.median


def _steps(step):
    def run():
        for _ in range(STEPS):
            step()

    return run


def test_harness_step_vs_bare(benchmark, setup):
    """Bare and harness steps on one student, interleaved within each round in alternating
    order, so that drift in the machine's speed (a shared VM's is several percent over a
    minute) and the place of the student's tensors in memory fall on both alike."""
    rounds = 12
    parts = setup.student()
    steps = {
        "bare": _steps(setup.bare_step(parts)),
        "harness": _steps(setup.harness_step("live", parts)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in steps}

    def both():
        names = list(steps) if len(seconds["bare"]) % 2 == 0 else list(steps)[::-1]
        for name in names:
            start = time.perf_counter()
            steps[name]()
            seconds[name].append((time.perf_counter() - start) / STEPS)

    benchmark.pedantic(both, rounds=rounds, warmup_rounds=1)
    bare, harness = (statistics.median(seconds[name][-rounds:]) for name in steps)
    RESULTS["timings"]["bare step (live teacher)"] = bare
    RESULTS["timings"]["harness step (live teacher)"] = harness
    RESULTS["rows"].append(
        ("harness step / bare hand-written step (live teacher)", f"{harness / bare:.3f}", "<= 1.05")
    )
    RESULTS["notes"].append(
        f"Step ratio: the bare and harness steps train one student, interleaved in alternating "
        f"order over {rounds} rounds of {STEPS} steps; the harness gathers a new batch each "
        "step, the bare loop reuses one."
    )


def test_cached_step_and_flops(benchmark, setup):
    benchmark.pedantic(_steps(setup.harness_step("cached")), rounds=5, warmup_rounds=1)
    t = RESULTS["timings"]["harness step (cached teacher)"] = _median(benchmark) / STEPS
    live = RESULTS["timings"]["harness step (live teacher)"]
    RESULTS["rows"].append(("step with cached / live teacher outputs", f"{t / live:.3f}", "–"))
    peak = bench.matmul_peak()
    achieved = setup.step_flops("cached") / t
    RESULTS["rows"].append(
        (
            "achieved FLOP/s of a training step / float32 matmul peak",
            f"{achieved / 1e9:.2f} / {peak / 1e9:.1f} GFLOP/s = {achieved / peak:.3f}",
            "report",
        )
    )


def test_data_pipeline(benchmark, setup):
    benchmark.pedantic(setup.batch_maker(), rounds=20, warmup_rounds=2)
    t = RESULTS["timings"]["one training batch gathered"] = _median(benchmark)
    step = RESULTS["timings"]["harness step (cached teacher)"]
    RESULTS["rows"].append(
        ("data pipeline throughput / training consumption (batches/s)", f"{step / t:.1f}x", ">= 5x")
    )


def test_bandit_round(benchmark):
    scheduler = OptimaScheduler(MODULES, 0, warmup_rounds=3)
    rounds = iter(range(10**9))

    def one_round():
        p = next(rounds)
        scheduler.observe(p, scheduler.choose(p), 0.01 * (p % 7))

    benchmark.pedantic(one_round, rounds=200, warmup_rounds=10)
    t = RESULTS["timings"]["bandit choose + observe"] = _median(benchmark)
    RESULTS["rows"].append(("bandit decision and update per round", f"{t * 1e3:.3f} ms", "< 1 ms"))


def test_round_overhead_and_cache_on_grid(setup):
    """Two runs of the default round shape (40 steps a round, fewer rounds), as the grid runs
    them, with the teacher live and with its outputs cached (cache build included)."""
    steps, rounds = 200, 5
    walls, finals = {}, {}
    for teacher in ("live", "cached"):
        wall = setup.cache_seconds if teacher == "cached" else 0.0
        finals[teacher] = []
        for name in ("optima", "uniform"):
            out = setup.run(name, teacher, steps, rounds)
            wall += out["wall_seconds"]
            finals[teacher].append(out["rounds"][-1]["objective_after"])
            if teacher == "cached" and name == "optima":
                t = out["timing"]
                share = t["round_overhead_seconds"] / out["wall_seconds"]
                RESULTS["rows"].append(
                    (
                        "share of a run outside training steps (reward set, scheduler, logging)",
                        f"{share:.1%}",
                        "< 3%",
                    )
                )
        walls[teacher] = wall
    RESULTS["timings"].update({f"grid of 2 runs, teacher {k}": v for k, v in walls.items()})
    gap = max(abs(a - b) / abs(b) for a, b in zip(finals["cached"], finals["live"], strict=True))
    RESULTS["rows"].append(
        (
            "grid wall time, teacher live / cached (2 runs, cache build included)",
            f"{walls['live'] / walls['cached']:.2f}x",
            ">= 1.5x",
        )
    )
    RESULTS["rows"].append(
        ("final reward-set objective, cached vs live (max relative gap)", f"{gap:.1e}", "< 1e-3")
    )
    assert gap < 1e-3  # same results, up to float rounding of batch composition


def test_bf16_vs_fp32_step(setup):
    """`precision=bf16` against float32 on CPU: the cached-teacher step of the default preset
    (its teacher outputs stored in bf16 too, as a bf16 run stores them), a run's numerics."""
    repeats, steps = 3, 10
    found: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    for i in range(repeats):
        for p in ("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32"):
            found[p].append(bench.precision_step(p, steps, setup.workdir))
    med = {
        p: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for p, runs in found.items()
    }
    for p, m in med.items():
        RESULTS["timings"][f"training step, {p}, 1 thread (cached teacher)"] = m["seconds"]
    fp32, bf16 = med["fp32"], med["bf16"]
    RESULTS["rows"].append(
        (
            "step time, bf16 autocast / fp32 (1 thread, cached teacher)",
            f"{bf16['seconds'] / fp32['seconds']:.2f}x "
            f"({bf16['seconds'] * 1e3:.0f} / {fp32['seconds'] * 1e3:.0f} ms)",
            "report",
        )
    )
    work = {p: m["rss_peak_mib"] - m["rss_before_mib"] for p, m in med.items()}
    RESULTS["rows"].append(
        (
            "peak memory of the steps above the process's resident set, bf16 / fp32",
            f"{work['bf16']:.0f} / {work['fp32']:.0f} MiB (resident before them "
            f"{bf16['rss_before_mib']:.0f} / {fp32['rss_before_mib']:.0f} MiB)",
            "report",
        )
    )
    RESULTS["notes"].append(
        f"bf16 vs fp32: medians of {repeats} fresh processes per precision, alternating, "
        f"{steps} steps each after 3 warm-up steps. Memory: the process's resident set after "
        "the warm-up (freed memory returned by malloc_trim), and its peak over the steps "
        "(VmHWM, reset first); the resident set holds the data and the teacher's outputs "
        f"(bf16 for a bf16 run). This CPU: "
        f"{', '.join(bench.bf16_support()) or 'no native bf16 instructions'}."
    )


def test_portable_vs_native_kernels(tmp_path):
    """The cost of portable numerics: one default-preset training step (cached teacher) in
    fresh processes, portable and native kernels alternating, at 1 and 2 threads."""
    steps, repeats = 20, 3
    for threads in (1, 2):
        seconds: dict[str, list[float]] = {"portable": [], "native": []}
        for i in range(repeats):
            for mode in ("portable", "native") if i % 2 == 0 else ("native", "portable"):
                seconds[mode].append(
                    bench.numerics_step_seconds(mode, threads, steps, tmp_path / "w")
                )
        portable, native = (statistics.median(seconds[m]) for m in ("portable", "native"))
        RESULTS["timings"][f"training step, portable kernels, {threads} thread(s)"] = portable
        RESULTS["timings"][f"training step, native kernels, {threads} thread(s)"] = native
        RESULTS["rows"].append(
            (
                f"step time, portable / native kernels ({threads} thread{'s' * (threads > 1)})",
                f"{portable / native:.2f}x ({portable * 1e3:.0f} / {native * 1e3:.0f} ms)",
                "report",
            )
        )
    RESULTS["notes"].append(
        f"Portable vs native: medians of {repeats} fresh processes per mode, alternating, "
        f"{steps} steps each after 3 warm-up steps."
    )


def test_reproduce_wall_time(tmp_path):
    argv = ["reproduce", "vqa", "--preset", "smoke", "--seeds", "0", "--quiet"]
    start = time.perf_counter()
    assert main([*argv, "--workdir", str(tmp_path / "w"), "--reports", str(tmp_path / "r")]) == 0
    smoke = time.perf_counter() - start
    RESULTS["rows"].append(
        ("`reproduce vqa --preset smoke --seeds 0`, cold", f"{smoke:.0f} s", "~1 min")
    )
    if os.environ.get("BENCH_QUICK"):
        RESULTS["notes"].append(
            "BENCH_QUICK=1: the default preset's wall time was not measured in this run."
        )
        return
    start = time.perf_counter()
    argv = ["reproduce", "vqa", "--quiet", "--workdir", str(tmp_path / "d")]
    assert main([*argv, "--reports", str(tmp_path / "rd")]) == 0
    full = time.perf_counter() - start
    seeds = parse_seeds(SEEDS["default"])
    grid = f"{', '.join(COMPARED)} x {len(seeds)} seeds, the other rows x {DESCRIPTIVE_SEEDS}"
    RESULTS["rows"].append(
        (
            f"`reproduce vqa` (default preset: {grid}), cold: pretraining included",
            f"{full / 60:.1f} min",
            "< 15 min",
        )
    )


RUNS_PHASE = "Runs phase: serial against 2 processes"


def test_runs_phase_serial_vs_processes(tmp_path):
    """The default VQA study's runs phase (2 runs) serially (1 and 2 threads a run) and through
    the `processes` executor (2 workers of 1 thread): the measurement behind the default
    executor on CPU (issue 15). Serial x 1 thread against processes x 1 thread is the
    executor's own gain on the same digits (threads are a run's config); serial x 2 threads is
    the other way to fill both cores. Alternating order, `repeats` times each; BENCH_RUN_STEPS
    caps the runs (default: the preset's schedule)."""
    repeats, prepare_steps = 2, 20
    run_steps = int(os.environ.get("BENCH_RUN_STEPS", "0"))
    layout = [("serial", 1), ("serial", 2), ("processes", 1)]
    layouts = [x for i in range(repeats) for x in (layout if i % 2 == 0 else layout[::-1])]
    load = os.getloadavg()[0]
    seconds = bench.runs_phase_seconds(tmp_path / "w", layouts, prepare_steps, run_steps)
    load_after = os.getloadavg()[0]
    by = {x: [s for y, s in zip(layouts, seconds, strict=True) if y == x] for x in layout}
    serial1, serial2, processes = (statistics.median(by[x]) for x in layout)
    for (name, threads), median in zip(layout, (serial1, serial2, processes), strict=True):
        label = f"{name} x {threads} thread{'s' * (threads > 1)}"
        RESULTS["timings"][f"runs phase, 2 runs, {label}"] = median
    rows = [
        (
            "default VQA runs phase (2 runs): serial x 1 thread / 2 processes x 1 thread",
            f"{serial1 / processes:.2f}x ({serial1:.0f} / {processes:.0f} s)",
            "> 1: `processes` the default on CPU (same digits)",
        ),
        (
            "default VQA runs phase (2 runs): serial x 2 threads / 2 processes x 1 thread",
            f"{serial2 / processes:.2f}x ({serial2:.0f} / {processes:.0f} s)",
            "informative: other digits (threads are a run's config)",
        ),
    ]
    RESULTS["rows"].extend(rows)
    steps = f"{run_steps} steps (BENCH_RUN_STEPS)" if run_steps else "the preset's schedule"
    section = [
        "| layout | runs phase, seconds (in the order measured) | median |",
        "|---|---|---|",
        *(
            f"| {name} x {threads} thread{'s' * (threads > 1)} | "
            f"{', '.join(f'{s:.1f}' for s in by[(name, threads)])} | "
            f"{statistics.median(by[(name, threads)]):.1f} |"
            for name, threads in layout
        ),
        "",
        f"Ratios: {rows[0][1]} at 1 thread a run, {rows[1][1]} against 2-thread serial runs. "
        f"The default VQA study's runs `optima` and `uniform` (seed 0) of {steps} each, after "
        f"`prepare` (pre-training and teacher capped at {prepare_steps} steps: a run's step "
        "time does not depend on the teacher's quality); the `processes` time includes "
        "starting the workers and their re-opening the prepared study. Order: "
        f"{', '.join(f'{n} x {t}' for n, t in layouts)}. Load average (1 min) {load:.2f} "
        f"before, {load_after:.2f} after, on {os.cpu_count()} cores; machine: "
        f"{bench.machine()}.",
    ]
    RESULTS.setdefault("sections", {})[RUNS_PHASE] = section
    RESULTS["machine"] = bench.machine()
    print(f"\nbench report: {bench.write(RESULTS, REPORTS)}")  # rows, timings and section
