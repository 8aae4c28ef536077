"""Bad data stops `reproduce` before any training: exit code 2, a message naming the file and
the record, and no run record written (each reader's own tests cover every failure kind)."""

import json
import shutil

import pytest

from harness.cli import main
from harness.tasks import get_task

BROKEN_FILE = {
    "vqa": "v2_mscoco_train2014_annotations.json",
    "snli-ve": "snli_ve_train.jsonl",
    "nlvr2": "train.json",
    "coco": "dataset_coco.json",
}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    cache = tmp_path_factory.mktemp("worlds")
    return {t: get_task(t).ensure_world(cache, "smoke", progress=False) for t in BROKEN_FILE}


def _copy(worlds, task, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(worlds[task], root)
    return root


def _reproduce(task, root, tmp_path):
    argv = ["reproduce", task, "--preset", "smoke", "--seeds", "0", "--quiet"]
    return main([*argv, "--data-root", str(root), "--workdir", str(tmp_path / "work")])


@pytest.mark.parametrize("task", sorted(BROKEN_FILE))
def test_malformed_file_exits_2_naming_file_and_line(task, worlds, tmp_path, capsys):
    root = _copy(worlds, task, tmp_path)
    path = root / BROKEN_FILE[task]
    lines = path.read_text().splitlines(keepends=True)
    lines[0] = lines[0][: len(lines[0]) // 2] + "\n"  # a record cut in half
    path.write_text("".join(lines))
    assert _reproduce(task, root, tmp_path) == 2
    err = capsys.readouterr().err
    assert BROKEN_FILE[task] in err and ("line" in err or "record" in err)
    assert not list((tmp_path / "work").glob("runs/**/record.json"))


@pytest.mark.parametrize("task", sorted(BROKEN_FILE))
def test_missing_image_exits_2_naming_the_record(task, worlds, tmp_path, capsys):
    root = _copy(worlds, task, tmp_path)
    image = sorted(p for p in root.rglob("*") if p.suffix in (".png", ".jpg"))[0]
    image.unlink()
    assert _reproduce(task, root, tmp_path) == 2
    err = capsys.readouterr().err
    assert "record" in err and "image" in err.lower()
    assert not list((tmp_path / "work").glob("runs/**/record.json"))


def test_vqa_answer_count_names_field(worlds, tmp_path, capsys):
    root = _copy(worlds, "vqa", tmp_path)
    path = root / BROKEN_FILE["vqa"]
    doc = json.loads(path.read_text())
    doc["annotations"][3]["answers"] = doc["annotations"][3]["answers"][:9]
    path.write_text(json.dumps(doc))
    assert _reproduce("vqa", root, tmp_path) == 2
    err = capsys.readouterr().err
    assert "answers" in err and str(doc["annotations"][3]["question_id"]) in err


# --skip-bad-records: one broken record per reader is left out, counted and named.
SPLIT = {"vqa": "train2014", "snli-ve": "train", "nlvr2": "train", "coco": "train"}
COUNT = {"vqa": "questions", "snli-ve": "examples", "nlvr2": "examples", "coco": "images"}


def _break_one_record(task, root) -> str:
    """Corrupt one train record in place; returns a string its error message must name."""
    path = root / BROKEN_FILE[task]
    if task in ("snli-ve", "nlvr2"):
        lines = path.read_text().splitlines(keepends=True)
        rec = json.loads(lines[1])
        rec["gold_label" if task == "snli-ve" else "label"] = "maybe"
        lines[1] = json.dumps(rec) + "\n"
        path.write_text("".join(lines))
        return "line 2"
    doc = json.loads(path.read_text())
    if task == "vqa":
        ann = doc["annotations"][3]
        ann["answers"] = ann["answers"][:9]
        path.write_text(json.dumps(doc))
        return str(ann["question_id"])
    image = next(im for im in doc["images"] if im["split"] in ("train", "restval"))
    image["sentences"] = []
    path.write_text(json.dumps(doc))
    return f"cocoid {image['cocoid']}"


def _check(task, root, *extra):
    return main(["data", "check", task, "--root", str(root), "--split", SPLIT[task], *extra])


@pytest.mark.parametrize("task", sorted(BROKEN_FILE))
def test_data_check_skips_and_names_bad_records(task, worlds, tmp_path, capsys):
    assert _check(task, worlds[task]) == 0
    clean = json.loads(capsys.readouterr().out)
    root = _copy(worlds, task, tmp_path)
    named = _break_one_record(task, root)
    assert _check(task, root) == 2  # without the flag, the reader stops as before
    assert named in capsys.readouterr().err
    assert _check(task, root, "--skip-bad-records") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary[COUNT[task]] == clean[COUNT[task]] - 1
    (skipped,) = summary["skipped_records"]
    assert BROKEN_FILE[task] in skipped and named in skipped


def test_reproduce_skipping_bad_records_lists_them_in_record_and_report(worlds, tmp_path):
    root = _copy(worlds, "vqa", tmp_path)
    named = _break_one_record("vqa", root)
    argv = ["reproduce", "vqa", "--preset", "smoke", "--seeds", "0", "--quiet"]
    argv += ["--schedulers", "none", "--data-root", str(root), "--skip-bad-records"]
    argv += ["--workdir", str(tmp_path / "work"), "--reports", str(tmp_path / "reports")]
    assert main(argv) == 0
    (path,) = (tmp_path / "work").glob("runs/**/record.json")
    (skipped,) = json.loads(path.read_text())["provenance"]["data"]["skipped_records"]
    assert named in skipped
    report = (tmp_path / "reports" / "vqa.md").read_text()
    assert "bad records skipped (`--skip-bad-records`): 1" in report and named in report
