"""`optima-repro evaluate vqa` and `optima-repro data check vqa` on the smoke world."""

import json

import pytest

from harness.cli import main
from harness.data.synthetic.cache import ensure_world
from harness.data.synthetic.vqa import vqa_world_spec, write_vqa_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cache = tmp_path_factory.mktemp("world")
    return ensure_world(
        cache, "vqa-smoke", vqa_world_spec("smoke"), write_vqa_world, progress=False
    )


def test_evaluate_prints_official_scores(world, tmp_path, capsys):
    questions = world / "v2_OpenEnded_mscoco_val2014_questions.json"
    annotations = world / "v2_mscoco_val2014_annotations.json"
    anns = json.loads(annotations.read_text())["annotations"]
    results = [{"question_id": a["question_id"], "answer": "yes"} for a in anns]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    argv = ["evaluate", "vqa", "--questions", str(questions), "--annotations", str(annotations)]
    assert main([*argv, "--results", str(path)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["perAnswerType"]["number"] == 0.0
    assert 0.0 < scores["overall"] < scores["perAnswerType"]["yes/no"] < 100.0

    path.write_text(json.dumps(results[1:]))  # one question unanswered
    assert main([*argv, "--results", str(path)]) == 2
    assert str(anns[0]["question_id"]) in capsys.readouterr().err


def test_data_check_summarises_and_rejects(world, tmp_path, capsys):
    assert main(["data", "check", "vqa", "--root", str(world), "--split", "train2014"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["questions"] > 1000

    bad = tmp_path / "bad"
    bad.mkdir()
    for f in world.glob("*val2014*.json"):
        (bad / f.name).write_text(f.read_text())
    (bad / "val2014").mkdir()  # the images are missing
    assert main(["data", "check", "vqa", "--root", str(bad), "--split", "val2014"]) == 2
    err = capsys.readouterr().err
    assert "v2_OpenEnded_mscoco_val2014_questions.json" in err and "image" in err
