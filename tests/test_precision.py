"""`--set precision=bf16`: autocast in bfloat16 with float32 weights and optimizer state, the
teacher's outputs stored in bfloat16, recorded in each run and printed in the report."""

import json

import pytest
import torch

from harness.checkpoint import Checkpoints
from harness.cli import main
from harness.config import apply_overrides, study_config

# smoke preset, teacher untrained (its outputs only need to exist); the uniform row alone,
# one round of 8 steps
ARGV = ["reproduce", "vqa", "--preset", "smoke", "--seeds", "0", "--schedulers", "uniform"]
ARGV += ["--quiet", "--set", "pretrain.steps=0", "--set", "teacher.steps=0", "--max-steps", "8"]


def test_bf16_implies_a_bf16_teacher_cache_unless_set_and_is_its_own_study():
    smoke = study_config("vqa", "smoke")
    bf16 = apply_overrides(smoke, ["precision=bf16"])
    assert (bf16.precision, bf16.teacher_cache_dtype) == ("bf16", "bfloat16")
    kept = apply_overrides(smoke, ["teacher_cache_dtype=float32", "precision=bf16"])
    assert kept.teacher_cache_dtype == "float32"
    assert len({smoke.hash(), bf16.hash(), kept.hash()}) == 3
    # fp32 (the default) and the live view leave the hash of every earlier record as it was
    assert apply_overrides(smoke, ["precision=fp32", "tensorboard=true"]).hash() == smoke.hash()
    assert "precision" not in smoke.identity() and "precision" in smoke.to_dict()


def test_bf16_smoke_study_runs_end_to_end(tmp_path, capsys):
    work = tmp_path / "work"
    argv = [*ARGV, "--workdir", str(work), "--reports", str(tmp_path / "reports")]
    assert main([*argv, "--set", "precision=fp32"]) == 0
    assert main([*argv, "--set", "precision=bf16"]) == 0
    out = capsys.readouterr().out
    assert "MiB bfloat16, memory-mapped" in out  # the teacher's outputs, stored in bf16
    records = {}
    for path in work.glob("runs/vqa/*/uniform/seed-0/record.json"):
        r = json.loads(path.read_text())
        records[r["config"]["precision"]] = (r, path.parent)
    (fp32, _), (bf16, folder) = records["fp32"], records["bf16"]
    assert bf16["status"] == "complete" and bf16["config"]["teacher_cache_dtype"] == "bfloat16"
    assert 0 < bf16["metrics"]["primary"] <= 100
    losses = [r["train"]["loss"] for r in bf16["rounds"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    # autocast changed the arithmetic, not the training: round 0's loss within a few percent
    a, b = fp32["rounds"][0]["train"]["loss"], bf16["rounds"][0]["train"]["loss"]
    assert a != b and b == pytest.approx(a, rel=0.05)
    tensors, _ = Checkpoints(folder / "checkpoints", bf16["config_hash"]).latest()
    assert {t.dtype for t in tensors["student"].values() if t.is_floating_point()} == {
        torch.float32
    }
    state = tensors["optimizer"]["state"].values()
    assert {t.dtype for s in state for t in s.values()} == {torch.float32}
    report = (tmp_path / "reports" / "vqa.md").read_text()
    assert "Precision: bfloat16 autocast (float32 weights and optimizer state)." in report
