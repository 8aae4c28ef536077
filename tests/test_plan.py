"""`optima-repro plan`: the paper preset's sizes and costs, in seconds, without weights."""

import json

from harness.cli import main


def _plan(capsys, *argv):
    assert main(["plan", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_paper_preset_matches_the_papers_sizes(capsys):
    p = _plan(capsys, "vqa", "--preset", "paper")
    teacher, student = p["parameters"]["teacher"], p["parameters"]["student"]
    assert abs(teacher["paper_accounting"] / 787e6 - 1) < 0.02  # CoCa-Large
    assert abs(teacher["visual"] / 303e6 - 1) < 0.02
    assert teacher["total"] == sum(teacher[m] for m in ("visual", "text", "text_decoder")) + 1
    assert student["visual"] < teacher["visual"] / 1.9  # `half`: 12 of 24 ViT layers
    assert p["layer_map"]["visual"] == list(range(1, 24, 2))
    s = p["schedule"]
    assert (s["steps"], s["rounds"], s["warmup_rounds"], s["steps_per_round"]) == (
        100_000,
        100,
        10,
        1000,
    )
    f = p["flops"]
    # no cache on the paper preset: a step is the teacher's forward plus the student's 3
    per_pair = f["teacher_forward_per_pair"] + 3 * f["student_forward_per_pair"]
    assert f["per_step"] == 64 * per_pair
    assert f["per_run"] == 100_000 * f["per_step"] + 100 * f["reward_per_round"]
    assert 0 < p["memory_gib"]["total_estimate"] < 1000
    chips = p["accelerators"]["chips"]  # CoCa-Large: chip-hours, not seconds
    assert chips["h100-sxm"]["hours_per_run"] < chips["a100"]["hours_per_run"]
    assert chips["tpu-v4"]["hours_per_run"] < chips["tpu-v5e"]["hours_per_run"]
    assert 1 < chips["tpu-v4"]["hours_per_run"] < chips["tpu-v4"]["hours_per_grid"]


def test_overrides_and_two_image_tasks_change_the_plan(capsys):
    half = _plan(capsys, "nlvr2")
    quarter = _plan(capsys, "nlvr2", "--set", "distill.student=quarter")
    assert quarter["parameters"]["student"]["total"] < half["parameters"]["student"]["total"]
    assert quarter["layer_map"]["text"] == [3, 7, 11]
    assert half["schedule"]["image_text_pairs_per_step"] == 128  # NLVR2: two images a pair
    small = _plan(capsys, "vqa", "--preset", "default")
    assert small["parameters"]["teacher"]["total"] < 5e6
    assert small["flops"]["teacher_outputs_cached"] is True


def test_paper_preset_cannot_train_without_a_checkpoint_loader(tmp_path, capsys):
    argv = ["reproduce", "vqa", "--preset", "paper", "--workdir", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    assert "optima-repro plan" in capsys.readouterr().err


def test_open_clip_architecture_is_planned_with_clips_vocabulary(capsys):
    """open_clip's coca_ViT-L-14 and its half-depth student; the tokenizer sets the vocabulary."""
    models = ["--set", "teacher.model=coca_ViT-L-14", "--set", "distill.student=coca_ViT-L-14-half"]
    clip = _plan(capsys, "vqa", *models, "--set", "tokenizer=open_clip")
    same = _plan(capsys, "vqa", *models, "--set", "vocab_size=49408")
    assert clip["parameters"] == same["parameters"]
    assert clip["parameters"] != _plan(capsys, "vqa", *models)["parameters"]  # 64k pieces
    assert clip["layer_map"]["visual"] == list(range(1, 24, 2))


def test_accelerator_hours_follow_the_flops_and_the_utilisation(capsys):
    """Hours per run and per grid for each named chip, from the run's FLOPs at the stated
    share of its bf16 peak; the grid is each row's runs (optima and uniform on every seed, the
    others on the first three) plus the teacher's fine-tuning once. The default preset: the
    arithmetic is the paper's, its models plan in a second."""
    p = _plan(capsys, "vqa", "--preset", "default", "--seeds", "0-5")
    f, acc = p["flops"], p["accelerators"]
    rows = {"optima": 6, "uniform": 6, "random": 3}
    assert acc["utilisation"] == 0.4 and acc["grid"] == {"seeds": rows, "runs": 15}
    assert set(acc["chips"]) == {"tpu-v4", "tpu-v5e", "a100", "h100-sxm"}
    assert f["teacher_finetune"] == 1000 * 64 * 3 * f["teacher_forward_per_pair"]
    for chip in acc["chips"].values():
        rate = chip["peak_bf16_flops_per_second"] * 0.4 * 3600
        assert chip["hours_per_run"] == round(f["per_run"] / rate, 2)
        assert chip["hours_per_grid"] == round(
            (15 * f["per_run"] + f["teacher_finetune"]) / rate, 2
        )
    faster = _plan(
        capsys, "vqa", "--preset", "default", "--utilisation", "0.8", "--seeds", "0",
        "--set", "teacher_finetuned=/ckpt/teacher.pt",
    )  # fmt: skip
    assert faster["accelerators"]["grid"]["runs"] == 3
    assert faster["flops"]["teacher_finetune"] == 0  # a teacher given is not fine-tuned
    for name, chip in faster["accelerators"]["chips"].items():
        rate = chip["peak_bf16_flops_per_second"] * 0.8 * 3600
        assert chip["hours_per_grid"] == round(3 * f["per_run"] / rate, 2), name


def test_utilisation_out_of_range_is_a_clear_error(capsys):
    assert main(["plan", "vqa", "--utilisation", "1.5"]) == 2
    assert "--utilisation must be in (0, 1]" in capsys.readouterr().err


def test_default_grid_takes_the_seeds_its_task_card_asks_for(capsys):
    """Each card sizes its default study (README, "Sizing the studies"): the compared rows on
    its seeds, `random` on the first three; `none` is not in the default grid."""
    expected = {"vqa": 5, "snli-ve": 6, "nlvr2": 5, "coco": 5}
    for task, n in expected.items():
        grid = _plan(capsys, task, "--preset", "default")["accelerators"]["grid"]
        assert grid["seeds"] == {"optima": n, "uniform": n, "random": 3}, task
    smoke = _plan(capsys, "nlvr2", "--preset", "smoke")["accelerators"]["grid"]
    assert smoke["runs"] == 9  # the card's seeds are the default preset's only
