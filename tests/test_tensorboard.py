"""`--set tensorboard=true`: a run's live curves, and a resume that continues them with every
step once (TensorBoard's purge of what a killed process wrote past its last checkpoint)."""

import json
import shutil
import signal

import pytest
from cli_process import run_cli

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # noqa: E402

from harness.distill.loop import KILL_AT_STEP  # noqa: E402

# smoke preset (rounds of 8 steps), 3 rounds of it (--max-steps 24), a curve point after
# round 1, teacher untrained (its outputs only need to exist), OPTIMA alone, live view on;
# raw rewards, so that the posterior has means within three rounds (a ratio needs K before it)
ARGV = ["reproduce", "vqa", "--preset", "smoke", "--seeds", "0", "--schedulers", "optima"]
ARGV += ["--set", "distill.reward_baseline=none"]
ARGV += ["--quiet", "--set", "pretrain.steps=0", "--set", "teacher.steps=0"]
ARGV += ["--max-steps", "24", "--set", "eval_every_rounds=2", "--set", "tensorboard=true"]


def _cli(workdir, env=None):
    return run_cli(ARGV, workdir, env)


def _raw_steps(folder, tag):
    """Every event of `tag` in every file, as written (a purge hides some, deletes none)."""
    steps = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


def test_curves_survive_a_kill_and_resume_with_each_step_once(tmp_path):
    work = tmp_path / "work"
    # killed in round 2 (step 20), after rounds 0 and 1 wrote their curves and checkpoints ...
    died = _cli(work, env={KILL_AT_STEP: "20"})
    assert died.returncode == -signal.SIGKILL, died.stderr
    (run,) = work.glob("runs/vqa/*/optima/seed-0")
    # ... and as if round 1's checkpoint had not been saved when it died: the resume starts
    # at round 1, whose curve points the killed process had already written
    newest = sorted((run / "checkpoints").iterdir())[-1]
    assert newest.name.endswith("1")
    shutil.rmtree(newest)
    resumed = _cli(work)
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((run / "record.json").read_text())
    assert record["resumed_from_round"] == 1

    (folder,) = work.glob("tensorboard/vqa/*/optima/seed-0")
    assert folder.parent.parent.name == run.parent.parent.name  # the study's own folder name
    assert _raw_steps(folder, "train/loss").count(8) == 2  # round 1 was written twice
    curves = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    curves.Reload()
    assert [e.step for e in curves.Scalars("train/loss")] == list(range(24))
    for tag in ("train/task", "train/pred", "train/layer/visual"):
        assert [e.step for e in curves.Scalars(tag)] == list(range(24))

    rounds = record["rounds"]
    ends = [7, 15, 23]
    rewards = curves.Scalars("round/reward")
    assert [e.step for e in rewards] == ends
    assert [e.value for e in rewards] == pytest.approx([r["reward"] for r in rounds], rel=1e-6)
    for m in ("visual", "text", "text_decoder"):
        active = [e.value for e in curves.Scalars(f"active/{m}")]
        assert active == [float(m in r["active"]) for r in rounds]
    losses = [e.value for e in curves.Scalars("train/loss")]
    for r, end in zip(rounds, ends, strict=True):  # a round's mean of its steps' losses
        assert sum(losses[end - 7 : end + 1]) / 8 == pytest.approx(r["train"]["loss"], rel=1e-5)
    means = curves.Scalars("posterior_mean/visual")
    assert means and all(e.step in ends for e in means)
    evals = curves.Scalars("eval/primary")  # a curve point (every 2 rounds) and the end
    assert [e.step for e in evals] == [15, 24]
    assert evals[-1].value == pytest.approx(record["metrics"]["primary"], rel=1e-6)
    assert all(e.value > 0 for e in curves.Scalars("time/steps_per_second"))
    assert curves.Scalars("time/eta_minutes")[-1].value == 0
