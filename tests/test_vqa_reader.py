"""The VQA v2 reader on a hand-written sample in the official format, and image handling.

The JSON files under ``fixtures/vqa`` are written by hand in the release format; the tests copy
them into a temporary data root beside tiny images named by the COCO rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.data.images import ImageFolders, load_image, path_problem
from harness.data.vqa import answer_vocab, check, image_path, read_vqa
from harness.errors import DataError
from harness.tasks.vqa_eval import evaluate

FIXTURES = Path(__file__).parent / "fixtures" / "vqa"
TRAIN_Q = "v2_OpenEnded_mscoco_train2014_questions.json"
TRAIN_A = "v2_mscoco_train2014_annotations.json"
IMAGES = {  # image file -> colour; image 25 is PNG, as the synthetic world writes
    "train2014/COCO_train2014_000000000009.jpg": (200, 30, 30),
    "train2014/COCO_train2014_000000000025.png": (30, 200, 30),
    "train2014/COCO_train2014_000000000030.jpg": (30, 30, 200),
    "test2015/COCO_test2015_000000000001.jpg": (90, 90, 90),
}
IMAGES_FIRST = next(iter(IMAGES))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "vqa"
    shutil.copytree(FIXTURES, data)
    for name, colour in IMAGES.items():
        (data / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (8, 6), colour).save(data / name)
    return data


def edit(root: Path, name: str, change: Callable[[dict], object]) -> None:
    path = root / name
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=1))


# --- reading ----------------------------------------------------------------------------------


def test_reads_questions_and_answers(root: Path) -> None:
    split = read_vqa(root, "train2014")
    assert split.split == "train2014" and split.annotated
    assert [q.question_id for q in split.questions] == [9000, 9001, 25000, 30000]
    q = split.questions[0]
    assert (q.image_id, q.question) == (9, "What color is the bus?")
    assert q.answers is not None and len(q.answers) == 10
    assert q.answers[-1] == "Red"  # raw, as written: normalisation is the evaluator's job
    assert (q.answer_type, q.question_type, q.multiple_choice_answer) == (
        "other",
        "what color is the",
        "red",
    )
    assert split.questions_json["data_subtype"] == "train2014"
    assert split.annotations_json is not None and len(split.annotations_json["annotations"]) == 4


def test_files_read_are_hashed(root: Path) -> None:
    split = read_vqa(root, "train2014")
    assert split.files == {
        name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in (TRAIN_Q, TRAIN_A)
    }


def test_images_found_by_coco_naming_rule(root: Path) -> None:
    paths = {q.image_id: q.image_path for q in read_vqa(root, "train2014").questions}
    assert paths[9] == root / "train2014" / "COCO_train2014_000000000009.jpg"
    assert paths[25] == root / "train2014" / "COCO_train2014_000000000025.png"
    assert image_path(root, "val2014", 42) == root / "val2014/COCO_val2014_000000000042.jpg"


def test_questions_only_split_uses_test2015_images(root: Path) -> None:
    split = read_vqa(root, "test-dev2015")
    assert not split.annotated and split.annotations_json is None
    assert list(split.files) == ["v2_OpenEnded_mscoco_test-dev2015_questions.json"]
    assert all(q.answers is None and q.answer_type is None for q in split.questions)
    assert split.questions[0].image_path == root / "test2015/COCO_test2015_000000000001.jpg"


def test_unchecked_images_may_be_missing(root: Path) -> None:
    shutil.rmtree(root / "train2014")
    split = read_vqa(root, "train2014", check_images=False)
    assert split.questions[2].image_path == root / "train2014/COCO_train2014_000000000025.jpg"


def test_answer_vocab_order(root: Path) -> None:
    # Counted over all 10 answers per question, in evaluator form:
    # yes 10 (unanimous), umbrella 9 ("an/the umbrella" lose their article), 2 8 ("two" -> 2),
    # red 8 ("Red" lower-cased), 3 2, then dark red, kite, maroon 1 each.
    # Ties (2/red, and the three singletons) break alphabetically.
    split = read_vqa(root, "train2014")
    assert answer_vocab(split, 5) == ["yes", "umbrella", "2", "red", "3"]
    assert answer_vocab(split, 100) == [
        "yes",
        "umbrella",
        "2",
        "red",
        "3",
        "dark red",
        "kite",
        "maroon",
    ]


def test_answer_vocab_needs_annotations(root: Path) -> None:
    with pytest.raises(DataError, match="v2_mscoco_test-dev2015_annotations.json"):
        answer_vocab(read_vqa(root, "test-dev2015"), 10)


def test_check_summary(root: Path) -> None:
    summary = check(root, "train2014")
    assert summary["questions"] == 4
    assert summary["images"] == 3
    assert summary["annotated_questions"] == 4
    assert summary["answers"] == 40
    assert summary["distinct_answers"] == 8
    assert summary["answer_types"] == {"number": 1, "other": 2, "yes/no": 1}
    assert set(summary["sha256"]) == {TRAIN_Q, TRAIN_A}
    json.dumps(summary)  # printable as JSON


def test_read_split_feeds_the_official_evaluator(root: Path) -> None:
    split = read_vqa(root, "train2014")
    results = [
        {"question_id": q.question_id, "answer": q.multiple_choice_answer} for q in split.questions
    ]
    # red: 8 matches, 2: 8, yes: 10, umbrella: 9 -> all 1.0 -> 100
    assert evaluate(split.questions_json, split.annotations_json, results)["overall"] == 100.0


# --- one test per failure kind: the error names file, record and field ------------------------


def _questions(doc: dict) -> list[dict]:
    return doc["questions"]


def _annotations(doc: dict) -> list[dict]:
    return doc["annotations"]


def _extra_annotation(doc: dict) -> None:
    extra = json.loads(json.dumps(doc["annotations"][0]))
    extra["question_id"] = 12345
    doc["annotations"].append(extra)


FAILURES = {
    # id: (file, change, expected file, record, field, message fragment)
    "question missing field": (
        TRAIN_Q,
        lambda d: _questions(d)[1].pop("question"),
        TRAIN_Q,
        "question_id 9001",
        "question",
        "missing",
    ),
    "question id mistyped": (
        TRAIN_Q,
        lambda d: _questions(d)[1].update(question_id="9001"),
        TRAIN_Q,
        "questions[1]",
        "question_id",
        "expected an integer",
    ),
    "image id mistyped": (
        TRAIN_Q,
        lambda d: _questions(d)[0].update(image_id="9"),
        TRAIN_Q,
        "question_id 9000",
        "image_id",
        "expected an integer",
    ),
    "boolean is not an id": (
        TRAIN_Q,
        lambda d: _questions(d)[0].update(image_id=True),
        TRAIN_Q,
        "question_id 9000",
        "image_id",
        "got true",
    ),
    "answers count": (
        TRAIN_A,
        lambda d: _annotations(d)[0]["answers"].pop(),
        TRAIN_A,
        "question_id 9000",
        "answers",
        "expected 10 human answers, got 9",
    ),
    "answer missing field": (
        TRAIN_A,
        lambda d: _annotations(d)[1]["answers"][3].pop("answer_confidence"),
        TRAIN_A,
        "question_id 9001, answers[3]",
        "answer_confidence",
        "missing",
    ),
    "answer mistyped": (
        TRAIN_A,
        lambda d: _annotations(d)[1]["answers"][2].update(answer=2),
        TRAIN_A,
        "question_id 9001, answers[2]",
        "answer",
        "expected a string",
    ),
    "duplicate answer id": (
        TRAIN_A,
        lambda d: _annotations(d)[2]["answers"][9].update(answer_id=1),
        TRAIN_A,
        "question_id 25000, answers[9]",
        "answer_id",
        "duplicate",
    ),
    "annotation field missing": (
        TRAIN_A,
        lambda d: _annotations(d)[3].pop("answer_type"),
        TRAIN_A,
        "question_id 30000",
        "answer_type",
        "missing",
    ),
    "duplicate question id": (
        TRAIN_Q,
        lambda d: _questions(d)[3].update(question_id=9000, image_id=9),
        TRAIN_Q,
        "questions[3] (question_id 9000)",
        "question_id",
        "duplicate question id (first at questions[0])",
    ),
    "duplicate annotation id": (
        TRAIN_A,
        lambda d: _annotations(d).append(_annotations(d)[1]),
        TRAIN_A,
        "annotations[4] (question_id 9001)",
        "question_id",
        "duplicate",
    ),
    "annotation without question": (
        TRAIN_A,
        _extra_annotation,
        TRAIN_A,
        "question_id 12345",
        "question_id",
        f"no question with this id in {TRAIN_Q}",
    ),
    "question without annotation": (
        TRAIN_Q,
        lambda d: _questions(d).append({"image_id": 9, "question": "Why?", "question_id": 9002}),
        TRAIN_Q,
        "question_id 9002",
        "question_id",
        f"no annotation for this question in {TRAIN_A}",
    ),
    "image id differs between files": (
        TRAIN_A,
        lambda d: _annotations(d)[3].update(image_id=25),
        TRAIN_A,
        "question_id 30000",
        "image_id",
        "differs from 30",
    ),
}


@pytest.mark.parametrize("kind", list(FAILURES))
def test_invalid_records_are_named(root: Path, kind: str) -> None:
    name, change, file, record, field, fragment = FAILURES[kind]
    edit(root, name, change)
    with pytest.raises(DataError) as err:
        read_vqa(root, "train2014")
    message = str(err.value)
    assert file in message
    assert f"record {record}, field {field!r}" in message
    assert fragment in message


def test_missing_image_is_named(root: Path) -> None:
    (root / "train2014/COCO_train2014_000000000025.png").unlink()
    with pytest.raises(DataError) as err:
        read_vqa(root, "train2014")
    message = str(err.value)
    assert f"{TRAIN_Q}, record question_id 25000, field 'image_id'" in message
    assert "COCO_train2014_000000000025.{jpg,png}" in message


def test_malformed_json_gives_line_and_column(root: Path) -> None:
    text = (root / TRAIN_A).read_text().splitlines()
    text[2] = text[2].rstrip(",")  # line 3 loses its comma: the parser stops at line 4
    (root / TRAIN_A).write_text("\n".join(text))
    with pytest.raises(DataError, match=rf"{TRAIN_A}: malformed JSON at line 4, column \d+"):
        read_vqa(root, "train2014")


def test_top_level_must_be_an_object(root: Path) -> None:
    (root / TRAIN_Q).write_text("[]")
    with pytest.raises(DataError, match=rf"{TRAIN_Q}: expected a JSON object at top level"):
        read_vqa(root, "train2014")


def test_top_level_field_missing(root: Path) -> None:
    edit(root, TRAIN_Q, lambda d: d.pop("questions"))
    with pytest.raises(DataError, match=rf"{TRAIN_Q}, field 'questions': missing"):
        read_vqa(root, "train2014")


def test_empty_split(root: Path) -> None:
    edit(root, TRAIN_Q, lambda d: d.update(questions=[]))
    with pytest.raises(DataError, match=rf"{TRAIN_Q}, field 'questions': the split has no"):
        read_vqa(root, "train2014")


def test_missing_questions_file(root: Path) -> None:
    with pytest.raises(DataError, match="v2_OpenEnded_mscoco_val2014_questions.json.*not found"):
        read_vqa(root, "val2014")


# --- images -----------------------------------------------------------------------------------


def test_image_path_inside_root(root: Path) -> None:
    relative = "train2014/COCO_train2014_000000000009.jpg"
    assert path_problem(relative) is None
    assert ImageFolders().problem(root / relative) is None


@pytest.mark.parametrize(
    ("relative", "fragment"),
    [
        ("../outside.jpg", "climbs out"),
        ("train2014/../../outside.jpg", "climbs out"),
        ("train2014\\..\\..\\outside.jpg", "climbs out"),
        ("/etc/hostname", "absolute"),
        ("C:\\images\\x.jpg", "absolute"),
        ("", "empty"),
        ("x\0.jpg", "NUL"),
    ],
)
def test_image_path_refused_as_written(relative: str, fragment: str) -> None:
    assert fragment in path_problem(relative)


def test_image_folders_name_what_is_wrong(root: Path) -> None:
    folders = ImageFolders()
    missing = root / "train2014/COCO_train2014_000000000099.jpg"
    assert folders.problem(missing) == f"image not found: {missing}"
    assert "is a folder" in folders.problem(root / "train2014")
    assert folders.problem(root / "nowhere" / "x.jpg") == f"image not found: {root}/nowhere/x.jpg"


def test_image_symlinked_out_of_the_root_is_followed(root: Path) -> None:
    # The path as written must stay under the root; where the user's symlink leads is theirs.
    outside = root.parent / "outside.jpg"
    Image.new("RGB", (4, 4)).save(outside)
    os.symlink(outside, root / "train2014" / "link.jpg")
    os.symlink(root / IMAGES_FIRST, root / "train2014" / "inner.jpg")
    folders = ImageFolders()
    assert folders.problem(root / "train2014/link.jpg") is None
    assert folders.problem(root / "train2014/inner.jpg") is None


def test_load_image_resizes_bicubic(root: Path) -> None:
    path = root / IMAGES_FIRST
    pixels = load_image(path, 16)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    with Image.open(path) as img:
        expected = np.asarray(img.convert("RGB").resize((16, 16), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(pixels, expected)


def test_load_image_keeps_size_and_converts_to_rgb(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("L", (5, 5), 77).save(grey)
    pixels = load_image(grey, 5)
    assert pixels.shape == (5, 5, 3)
    assert (pixels == 77).all()  # no resampling at the native size
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (5, 5), (1, 2, 3, 0)).save(rgba)
    assert load_image(rgba, 5)[0, 0].tolist() == [1, 2, 3]


def test_load_image_undecodable_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "COCO_train2014_000000000001.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"COCO_train2014_000000000001\.jpg: cannot decode"):
        load_image(bad, 8)
    good = tmp_path / "good.jpg"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match=r"truncated\.jpg: cannot decode"):
        load_image(truncated, 8)
    with pytest.raises(DataError, match=r"missing\.jpg: image not found"):
        load_image(tmp_path / "missing.jpg", 8)
