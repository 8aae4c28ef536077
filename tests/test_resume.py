"""Nothing lost: SIGKILL and resume, a NaN in a loss term, two grids on one work directory,
a corrupted teacher cache, damaged checkpoints (issue: resume after any crash)."""

import json
import random
import signal
import subprocess
import sys

import pytest
import torch
from cli_process import run_cli

from harness.checkpoint import Checkpoints
from harness.cli import main
from harness.distill.loop import KILL_AT_STEP
from harness.tasks.vqa import VqaTask

SMOKE = ["reproduce", "vqa", "--preset", "smoke", "--seeds", "0", "--quiet"]


def _cli(workdir, *extra, env=None):
    return run_cli([*SMOKE, *extra], workdir, env)


def _record(workdir, scheduler="optima", seed=0):
    (path,) = workdir.glob(f"runs/vqa/*/{scheduler}/seed-{seed}/record.json")
    return json.loads(path.read_text())


def _final_weights(workdir, scheduler="optima"):
    (run,) = workdir.glob(f"runs/vqa/*/{scheduler}/seed-0")
    tensors, meta = Checkpoints(
        run / "checkpoints", _record(workdir, scheduler)["config_hash"]
    ).latest()
    return tensors["student"], meta["rounds_done"]


def test_sigkill_at_random_steps_then_resume_is_bitwise_identical(tmp_path):
    whole = _cli(tmp_path / "whole", "--schedulers", "optima")
    assert whole.returncode == 0, whole.stderr

    steps = 48  # smoke: T = 48 in 6 rounds of 8
    kills = sorted(random.Random(7).sample(range(1, steps), 3))
    work = tmp_path / "killed"
    for step in kills:
        died = _cli(work, "--schedulers", "optima", env={KILL_AT_STEP: str(step)})
        assert died.returncode == -signal.SIGKILL, died.stderr
        assert not list(work.glob("runs/vqa/*/optima/seed-0/record.json"))
    resumed = _cli(work, "--schedulers", "optima")
    assert resumed.returncode == 0, resumed.stderr

    a, b = _record(tmp_path / "whole"), _record(work)
    assert b["resumed_from_round"] == kills[-1] // 8
    for key in ("metrics", "rounds", "teacher", "config_hash", "status"):
        assert a[key] == b[key], key
    (wa, ra), (wb, rb) = _final_weights(tmp_path / "whole"), _final_weights(work)
    assert ra == rb == 6
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_nan_in_a_loss_term_fails_the_run_and_the_grid_goes_on(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    pred_loss = VqaTask.pred_loss

    def poisoned(student, teacher, tau, batch=None):
        loss = pred_loss(student, teacher, tau, batch)
        if torch.is_grad_enabled():  # training steps only, not reward evaluations
            calls["n"] += 1
            if calls["n"] == 11:  # the 11th step of the first run: step 10, round 1
                return loss * float("nan")
        return loss

    monkeypatch.setattr(VqaTask, "pred_loss", staticmethod(poisoned))
    argv = [*SMOKE, "--schedulers", "optima,uniform", "--workdir", str(tmp_path)]
    assert main([*argv, "--reports", str(tmp_path / "reports")]) == 1
    failed, done = _record(tmp_path, "optima"), _record(tmp_path, "uniform")
    assert failed["status"] == "failed" and done["status"] == "complete"
    assert failed["error"]["step"] == 10 and failed["error"]["round"] == 1
    assert {"pred", "loss"} <= set(failed["error"]["terms"])
    report = (tmp_path / "reports" / "vqa.md").read_text()
    assert "non-finite loss at step 10" in report


def test_two_grids_on_one_workdir_run_each_run_once(tmp_path):
    rows = ("optima", "uniform", "random", "none")
    argv = [*SMOKE, "--seeds", "0,1", "--schedulers", ",".join(rows), "--workdir", str(tmp_path)]
    cmd = [sys.executable, "-m", "harness.cli", *argv, "--reports", str(tmp_path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    executed = [line for out in outs for line in out.splitlines() if " -> " in line]
    runs = sorted(line.split(":")[0] for line in executed)
    expected = sorted(f"run {s} seed {n}" for s in rows for n in (0, 1))
    assert runs == expected  # each of the 8 runs executed by exactly one of the two grids
    assert sum("teacher: VQA" in out for out in outs) == 1  # trained once, reused by the other


def test_corrupted_teacher_is_detected_and_rebuilt(tmp_path, capsys):
    argv = [*SMOKE, "--schedulers", "none", "--workdir", str(tmp_path), "--reports", str(tmp_path)]
    assert main(argv) == 0
    before = _record(tmp_path, "none")
    (weights,) = tmp_path.glob("teachers/*/teacher.pt")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated
    for run in tmp_path.glob("runs/vqa/*/none/seed-0"):
        (run / "record.json").unlink()
    capsys.readouterr()
    assert main(argv) == 0
    assert f"teacher {weights}: damaged (" in capsys.readouterr().out
    assert weights.with_name("teacher.pt.damaged-1").is_file()  # set aside, not deleted
    assert _record(tmp_path, "none")["teacher"] == before["teacher"]


def test_checkpoints_keep_two_and_skip_a_damaged_one(tmp_path):
    ck = Checkpoints(tmp_path, "cfg")
    for p in range(4):
        ck.save(p, {"w": torch.full((2,), float(p))}, {"rounds_done": p + 1})
    assert sorted(d.name for d in tmp_path.iterdir()) == ["round-00002", "round-00003"]
    tensors, meta = ck.latest()
    assert meta["rounds_done"] == 4 and tensors["w"].tolist() == [3.0, 3.0]
    (tmp_path / "round-00003" / "state.pt").write_bytes(b"garbage")
    tensors, meta = ck.latest()
    assert meta["rounds_done"] == 3
    assert Checkpoints(tmp_path, "another config").latest() is None


@pytest.mark.parametrize("bad", ["0,x", "1.5", ""])
def test_seeds_must_be_integers(tmp_path, capsys, bad):
    assert main([*SMOKE[:-3], "--seeds", bad, "--workdir", str(tmp_path)]) == 2
    assert "--seeds" in capsys.readouterr().err
