"""Executors (issue 15): one smoke grid run serially, then through worker processes, submitit's
local executor and a local Ray, gives the same records field for field (timing apart); a
killed worker's run resumes on re-run, and only runs without a complete record are submitted.

The submitit and Ray tests need their extras (`nox -s executors`) and skip without them."""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from harness import executors
from harness.cli import main
from harness.distill.loop import KILL_AT_STEP

# 32 steps: pre-training, teacher and runs (4 rounds of 8)
STUDY = ["--preset", "smoke", "--seeds", "0", "--max-steps", "32", "--quiet"]
GRID = [*STUDY, "--schedulers", "optima,uniform"]
ROWS = ("optima", "uniform")
VOLATILE = ("timing",)  # wall-clock seconds and the process's peak memory


def needs(module):
    """Skipped without the extra (before any fixture runs): `nox -s executors` installs it."""
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"{module} not installed (nox -s executors)")


def _argv(*extra):
    return ["reproduce", "vqa", *GRID, "--workdir", "work", "--reports", "reports", *extra]


def _records(base):
    found = sorted(base.glob("work/runs/vqa/*/*/seed-*/record.json"))
    return {p.parent.parent.name: json.loads(p.read_text()) for p in found}


def _same(a, b, also=()):
    """Two records equal field by field but for timing (and `also`)."""
    skip = (*VOLATILE, *also)
    assert a.keys() == b.keys()
    for key in a:
        if key not in skip:
            assert a[key] == b[key], (key, a[key], b[key])


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The grid in this process, with relative paths (so a copy elsewhere records the same)."""
    base = tmp_path_factory.mktemp("serial")
    cwd = os.getcwd()
    os.chdir(base)
    try:
        assert main(_argv("--executor", "serial")) == 0
    finally:
        os.chdir(cwd)
    records = _records(base)
    assert set(records) == set(ROWS)
    assert all(r["status"] == "complete" for r in records.values())
    return base, records


@pytest.fixture
def prepared(serial, tmp_path, monkeypatch):
    """A work directory holding the serial grid's shared steps (worlds, tokenizer, teacher,
    its outputs) and no runs; the test runs from its parent folder."""
    shutil.copytree(serial[0] / "work", tmp_path / "work", ignore=shutil.ignore_patterns("runs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_processes_give_the_serial_records(serial, prepared, capfd):
    assert main(_argv("--executor", "processes", "--workers", "2")) == 0
    out = capfd.readouterr().out
    assert "runs: 2 through the processes executor, 2 at once, 1 thread a run" in out
    got = _records(prepared)
    for name in ROWS:
        _same(serial[1][name], got[name])
    assert (prepared / "reports" / "vqa.md").is_file()


def test_a_killed_worker_resumes_and_only_incomplete_runs_are_submitted(
    serial, prepared, monkeypatch, capfd
):
    study = next((serial[0] / "work" / "runs" / "vqa").iterdir())
    target = prepared / "work" / "runs" / "vqa" / study.name / "uniform"
    shutil.copytree(study / "uniform", target)  # uniform complete; optima to run
    monkeypatch.setenv(KILL_AT_STEP, "20")  # the worker SIGKILLs itself in round 2 (8 steps)
    assert main(_argv("--executor", "processes")) == 1
    out = capfd.readouterr().out
    assert "run uniform seed 0: complete, skipped" in out
    assert "runs: 1 through the processes executor" in out
    assert "run optima seed 0: NOT FINISHED: a worker process died" in out
    assert "optima" not in _records(prepared)
    assert list(prepared.glob("work/runs/vqa/*/optima/seed-0/checkpoints/round-*"))

    monkeypatch.delenv(KILL_AT_STEP)
    assert main(_argv("--executor", "processes")) == 0
    out = capfd.readouterr().out
    assert "run uniform seed 0: complete, skipped" in out and "runs: 1 through" in out
    got = _records(prepared)
    assert got["optima"]["resumed_from_round"] == 2
    _same(serial[1]["optima"], got["optima"], also=("resumed_from_round",))
    _same(serial[1]["uniform"], got["uniform"])


def test_ablate_submits_its_variants_runs_that_are_not_complete(serial, prepared, capfd):
    shutil.copytree(serial[0] / "work" / "runs", prepared / "work" / "runs")  # optima: shared
    argv = ["ablate", "vqa", *STUDY, "--only", "reward-absolute", "--executor", "processes"]
    assert main([*argv, "--workdir", "work", "--reports", "reports"]) == 0
    out = capfd.readouterr().out
    assert "run optima seed 0: complete, skipped" in out and "runs: 1 through" in out
    (record,) = prepared.glob("work/ablations/vqa/reward-absolute-*/optima/seed-0/record.json")
    assert json.loads(record.read_text())["status"] == "complete"
    assert (prepared / "reports" / "ablations-vqa.md").is_file()


def test_options_of_another_executor_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(_argv("--executor", "processes", "--slurm-partition", "gpu")) == 2
    assert "--slurm-partition: only with --executor submitit" in capsys.readouterr().err
    assert main(_argv("--executor", "processes", "--workers", "0")) == 2
    assert "--workers 0: expected 1 or more" in capsys.readouterr().err
    assert main(_argv("--executor", "serial", "--workers", "2")) == 2
    assert "--workers 2: not with the serial executor" in capsys.readouterr().err


@pytest.mark.parametrize("executor, extra", [("submitit", "slurm"), ("ray", "ray")])
def test_a_missing_extra_names_its_install(tmp_path, monkeypatch, capsys, executor, extra):
    monkeypatch.setitem(sys.modules, executor, None)  # `import` raises ImportError
    monkeypatch.chdir(tmp_path)
    assert main(_argv("--executor", executor)) == 2
    assert f"pip install 'optima-repro[{extra}]'" in capsys.readouterr().err


def test_the_default_fills_the_cores_on_cpu_only(monkeypatch):
    from harness.config import apply_overrides, study_config

    cfg = study_config("vqa", "default")
    two = apply_overrides(cfg, ["numerics.threads=2"])
    monkeypatch.delenv(executors.DEFAULT_VARIABLE, raising=False)
    monkeypatch.setattr(executors, "cores", lambda: 2)
    assert executors.default_name(cfg, "cpu", distributed=False) == "processes"
    assert executors.default_name(two, "cpu", distributed=False) == "serial"
    assert executors.default_name(cfg, "cuda", distributed=False) == "serial"
    assert executors.default_name(cfg, "cpu", distributed=True) == "serial"
    monkeypatch.setenv(executors.DEFAULT_VARIABLE, "ray")
    assert executors.default_name(cfg, "cpu", distributed=False) == "ray"


def test_submitit_parameters_read_json_values():
    assert executors._parameter("mem_gb=64") == ("mem_gb", 64)
    assert executors._parameter("slurm_account=abc") == ("slurm_account", "abc")
    assert executors._parameter("slurm_exclusive=true") == ("slurm_exclusive", True)
    with pytest.raises(executors.ConfigError, match="expected KEY=VALUE"):
        executors._parameter("mem_gb")


# --- the extras (nox -s executors) ---


@needs("submitit")
def test_submitit_rejects_an_unknown_parameter(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(_argv("--executor", "submitit", "--submitit", "slurm_colour=blue")) == 2
    assert "slurm_colour" in capsys.readouterr().err


@needs("submitit")
def test_submitit_local_gives_the_serial_records_and_requeues_a_preempted_run(serial, prepared):
    """Two local submitit jobs; the optima one is pre-empted (submitit's USR2) after its first
    round checkpoint: submitit calls `checkpoint`, requeues the run, and it resumes from its
    last round to the serial run's record."""
    cli = [sys.executable, "-m", "harness.cli", *_argv("--executor", "submitit")]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        checkpoint = "work/runs/vqa/*/optima/seed-0/checkpoints/round-00000"
        while not list(prepared.glob(checkpoint)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.05)
        logs = {p: p.read_text() for p in prepared.glob("work/submitit/*_log.out")}
        ((log, text),) = [(p, t) for p, t in logs.items() if "run optima seed 0: on" in t]
        pid = int(re.search(r"run optima seed 0: on .*, pid (\d+)", text).group(1))
        os.kill(pid, signal.SIGUSR2)  # what Slurm sends before the time limit, or on pre-emption
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "run optima seed 0: submitit job" in out
    assert "this job is preempted" in log.with_name(log.name.replace("_out", "_err")).read_text()
    assert log.read_text().count("run optima seed 0: on") == 2  # started again: requeued
    got = _records(prepared)
    assert got["optima"]["resumed_from_round"] >= 1
    _same(serial[1]["optima"], got["optima"], also=("resumed_from_round",))
    _same(serial[1]["uniform"], got["uniform"])


@needs("ray")
def test_ray_local_gives_the_serial_records(serial, prepared, capfd):
    assert main(_argv("--executor", "ray", "--workers", "2")) == 0
    assert "runs: 2 through the ray executor" in capfd.readouterr().out
    got = _records(prepared)
    for name in ROWS:
        _same(serial[1][name], got[name])
