"""The real study's path at CPU size, through the entry point nox calls: a CoCa checkpoint as
the teacher's start, `optima-repro teacher` once and `reproduce` reusing it, an already
fine-tuned teacher taken as it is, and the paper preset end to end on real-format files."""

from __future__ import annotations

import dataclasses
import json

import torch
from safetensors.torch import save_file

from harness.cli import main
from harness.config import study_config
from harness.models.coca import CoCa
from harness.models.presets import preset
from harness.pretrain import shared_tokenizer
from harness.tasks import get_task


def _teachers(work) -> set:
    return {p.parent for p in (work / "teachers").glob("vqa-tiny-*/teacher.json")}


def _meta(folder) -> dict:
    return json.loads((folder / "teacher.json").read_text())


def test_teacher_command_starts_from_the_checkpoint_and_reproduce_reuses_it(tmp_path, capsys):
    work = tmp_path / "work"
    vocab = shared_tokenizer(work, "smoke", study_config("vqa", "smoke").vocab_size, False)
    # open_clip's layout; a longer context than the study's 16 tokens, as open_clip's 76
    checkpoint = CoCa(preset("tiny", vocab_size=vocab.vocab_size, context_length=20), seed=7)
    path = tmp_path / "pretrained.safetensors"
    save_file(checkpoint.state_dict(), str(path))
    common = ["vqa", "--preset", "smoke", "--workdir", str(work), "--quiet", "--max-steps", "2"]

    assert main(["teacher", *common, "--set", f"teacher_checkpoint={path}"]) == 0
    out = capsys.readouterr().out
    assert "pre-trained CoCa" not in out  # the checkpoint replaces the embedded pre-training
    (folder,) = _teachers(work)
    tuned = torch.load(folder / "teacher.pt", weights_only=True)
    start = checkpoint.state_dict()
    # two AdamW steps at lr 2e-3 move no weight far from the checkpoint's
    assert (
        max((tuned[f"coca.{k}"] - start[k]).abs().max() for k in start if "positional" not in k)
        < 0.01
    )

    argv = [*common, "--seeds", "0", "--schedulers", "uniform", "--reports", str(tmp_path / "r")]
    assert main(["reproduce", *argv, "--set", f"teacher_checkpoint={path}"]) == 0
    assert f"teacher: reusing {folder}" in capsys.readouterr().out

    finetuned = folder / "teacher.pt"
    assert main(["teacher", *common, "--set", f"teacher_finetuned={finetuned}"]) == 0
    out = capsys.readouterr().out
    assert "teacher: reusing" not in out and "pre-trained CoCa" not in out
    (taken,) = _teachers(work) - {folder}
    assert _meta(taken)["seconds"] == 0.0  # not trained
    assert _meta(taken)["metrics"] == _meta(folder)["metrics"]  # the same weights, evaluated


def test_paper_preset_runs_end_to_end_on_real_format_files(tmp_path):
    """Tiny models; everything else as the paper preset says (T, P, T0, gamma, alphas, the
    [ours] options); `--max-steps 2` cuts it to one round of two steps."""
    root = get_task("vqa").ensure_world(tmp_path / "data", "smoke", False)  # VQA v2 layout
    shapes = ["--set", "teacher.model=tiny", "--set", "distill.student=tiny-student"]
    argv = ["reproduce", "vqa", "--preset", "paper", "--data-root", str(root), "--quiet"]
    argv += ["--workdir", str(tmp_path / "work"), "--reports", str(tmp_path / "reports")]
    assert main([*argv, "--seeds", "0", "--schedulers", "optima", "--max-steps", "2", *shapes]) == 0
    (path,) = (tmp_path / "work" / "runs" / "vqa").glob("paper-*/optima/seed-0/record.json")
    record = json.loads(path.read_text())
    paper = study_config("vqa", "paper")
    distill = dataclasses.replace(paper.distill, student="tiny-student")
    assert record["status"] == "complete" and record["config"]["max_steps"] == 2
    assert record["config"]["distill"] == json.loads(json.dumps(dataclasses.asdict(distill)))
    assert record["config"]["teacher"]["model"] == "tiny"
    assert record["config"]["context_length"] == paper.context_length
    (only,) = record["rounds"]
    assert only["scheduler"]["phase"] == "warmup" and len(only["active"]) == 1


def test_paper_preset_without_a_checkpoint_says_what_to_set(tmp_path, capsys):
    argv = ["teacher", "vqa", "--preset", "paper", "--workdir", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    assert "--set teacher_checkpoint=FILE" in capsys.readouterr().err


def test_a_missing_checkpoint_stops_before_any_data_is_read(tmp_path, capsys):
    argv = ["teacher", "vqa", "--preset", "smoke", "--workdir", str(tmp_path / "work")]
    assert main([*argv, "--set", f"teacher_checkpoint={tmp_path / 'absent.bin'}"]) == 2
    assert "absent.bin: teacher checkpoint: file not found" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
