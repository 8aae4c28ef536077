"""A task is one card: registering a fifth one from here, and nothing else, gives it presets,
the CLI's sub-commands, a smoke study and a report."""

import dataclasses
import json

import pytest

from harness.cli import main
from harness.config import study_config
from harness.errors import ConfigError
from harness.pretrain import shared_tokenizer
from harness.tasks import Display, card, cards, get_task, register, unregister
from harness.tasks.vqa import VqaTask


class ToyTask(VqaTask):
    """VQA's data and metric under another name: what a fifth task's card points at."""


TOY = dataclasses.replace(
    card("vqa"),
    tokenizer_corpus=False,
    name="toy",
    position=9,
    implementation=f"{__name__}:ToyTask",
    teacher_steps=10,
    student_steps=40,
    display=Display("Toy questions", point="one toy point"),
)


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    unregister("toy")


BUILT_IN = ("vqa", "snli-ve", "nlvr2", "coco")


def test_built_in_cards_in_report_order():
    assert list(cards()) == list(BUILT_IN)
    assert card("coco").sources == ("tasks/coco.py", "tasks/coco_eval.py")
    assert [c.name for c in cards().values() if c.pretraining_corpus] == ["coco"]


def test_a_name_registered_twice_differently_is_refused(toy):
    register(toy)  # the same card again: fine
    with pytest.raises(ConfigError, match="registered twice"):
        register(dataclasses.replace(toy, context_length=99))


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown task 'toy'.*coco"):
        study_config("toy", "smoke")


def test_a_fifth_task_runs_a_smoke_study_through_the_cli(toy, tmp_path, capsys):
    assert get_task("toy") is ToyTask
    default = study_config("toy", "default")
    assert (default.teacher.steps, default.distill.steps) == (10, 40)
    argv = ["reproduce", "toy", "--preset", "smoke", "--seeds", "0", "--schedulers", "optima"]
    argv += ["--max-steps", "8", "--quiet", "--workdir", str(tmp_path / "work")]
    assert main([*argv, "--reports", str(tmp_path / "reports")]) == 0
    (record,) = (tmp_path / "work").glob("runs/toy/*/optima/seed-0/record.json")
    record = json.loads(record.read_text())
    assert record["task"] == "toy"
    report = (tmp_path / "reports" / "toy.md").read_text()
    assert report.startswith("# Toy questions: OPTIMA")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["evaluate", "toy", "--help"])
    assert "--annotations" in capsys.readouterr().out
    # the shared tokenizer (so every other study's digits) is the built-in tasks' alone
    unregister("toy")
    alone = shared_tokenizer(
        tmp_path / "work", "smoke", study_config("vqa", "smoke").vocab_size, False
    )
    assert record["provenance"]["data"]["tokenizer_sha256"] == alone.sha256
