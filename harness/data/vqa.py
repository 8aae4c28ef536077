"""The one reader of the VQA v2 release format, for the real data and the synthetic world alike.

A data root is laid out as the official archives unpack::

    <root>/v2_OpenEnded_mscoco_<split>_questions.json
    <root>/v2_mscoco_<split>_annotations.json            (absent for test-dev2015 / test2015)
    <root>/<image split>/COCO_<image split>_<image_id:012d>.jpg   (or .png: the synthetic world)

test-dev2015 questions point at test2015 images, as in the official release. Everything the
format promises is checked up front, so a bad file fails here, naming file, record and field,
and not deep inside training.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.images import ImageFolders, keep_decodable
from harness.data.json_fields import (
    check_fields,
    first_seen,
    gc_paused,
    kind_ok,
    load_json,
    valid,
)
from harness.data.skips import skip_or_raise
from harness.errors import DataError
from harness.tasks.vqa_eval import reference_forms

QUESTIONS_FILE = "v2_OpenEnded_mscoco_{split}_questions.json"
ANNOTATIONS_FILE = "v2_mscoco_{split}_annotations.json"
IMAGE_SUFFIXES = (".jpg", ".png")
ANSWERS_PER_QUESTION = 10
_IMAGE_SPLIT = {"test-dev2015": "test2015"}

# Top-level fields of each file, with their JSON types, as the official release has them.
_QUESTIONS_TOP = {
    "info": dict,
    "task_type": str,
    "data_type": str,
    "license": dict,
    "data_subtype": str,
    "questions": list,
}
_ANNOTATIONS_TOP = {"info": dict, "license": dict, "data_subtype": str, "annotations": list}
_QUESTION_FIELDS = {"image_id": int, "question": str, "question_id": int}
_ANNOTATION_FIELDS = {
    "question_type": str,
    "multiple_choice_answer": str,
    "answers": list,
    "image_id": int,
    "answer_type": str,
    "question_id": int,
}
_ANSWER_FIELDS = {"answer": str, "answer_confidence": str, "answer_id": int}


@dataclass(frozen=True)
class VqaQuestion:
    """One question; the answer fields are None where the split has no annotations."""

    question_id: int
    image_id: int
    question: str
    image_path: Path
    answers: tuple[str, ...] | None
    answer_type: str | None
    question_type: str | None
    multiple_choice_answer: str | None


@dataclass(frozen=True)
class VqaSplit:
    """A read split: its questions in file order, the sha256 of each file read (keyed by its
    path relative to the root, for run provenance), and the raw documents for the evaluator."""

    split: str
    root: Path
    files: dict[str, str]
    questions: list[VqaQuestion]
    questions_json: dict[str, Any]
    annotations_json: dict[str, Any] | None

    @property
    def annotated(self) -> bool:
        return self.annotations_json is not None


def questions_path(root: Path, split: str) -> Path:
    return Path(root) / QUESTIONS_FILE.format(split=split)


def annotations_path(root: Path, split: str) -> Path:
    return Path(root) / ANNOTATIONS_FILE.format(split=split)


def image_path(root: Path, split: str, image_id: int, suffix: str = ".jpg") -> Path:
    """Where the COCO naming rule puts an image of ``split``."""
    image_split = _IMAGE_SPLIT.get(split, split)
    return Path(root) / image_split / f"COCO_{image_split}_{image_id:012d}{suffix}"


def read_vqa(root: Path, split: str, *, check_images: bool = True) -> VqaSplit:
    """Read and validate one split. Without annotations on disk, questions only.

    With ``check_images=False`` a missing image is not an error and its path is the ``.jpg`` one.
    """
    with gc_paused():
        return _read(Path(root), split, check_images)


def _read(root: Path, split: str, check_images: bool) -> VqaSplit:
    q_path = questions_path(root, split)
    if not os.path.lexists(q_path):  # a FIFO or a symlink loop is named by the read
        raise DataError(q_path, f"questions file of split {split!r} not found under {root}")
    questions_json, q_sha = load_json(q_path)
    files = {q_path.name: q_sha}
    q_records = _top(questions_json, _QUESTIONS_TOP, q_path)["questions"]
    if not q_records:
        raise DataError(q_path, "the split has no questions", field="questions")
    by_id = _index(q_records, "questions", _QUESTION_FIELDS, q_path)

    a_path = annotations_path(root, split)
    annotations_json = None
    anns: dict[int, dict[str, Any]] = {}
    if os.path.lexists(a_path):
        annotations_json, files[a_path.name] = load_json(a_path)
        a_records = _top(annotations_json, _ANNOTATIONS_TOP, a_path)["annotations"]
        anns = _index(a_records, "annotations", _ANNOTATION_FIELDS, a_path)
        good = _check_annotations(anns, by_id, q_path, a_path)
        anns = {qid: ann for qid, ann in anns.items() if qid in good}
        by_id = {qid: rec for qid, rec in by_id.items() if qid in good}

    find_image = _image_finder(root, split)
    out = []
    for qid, rec in by_id.items():
        path, problem = find_image(rec["image_id"])
        if check_images and problem is not None:
            skip_or_raise(DataError(q_path, problem, record=_rec(qid), field="image_id"))
            continue
        ann = anns.get(qid)
        out.append(
            VqaQuestion(
                question_id=qid,
                image_id=rec["image_id"],
                question=rec["question"],
                image_path=path,
                answers=tuple(a["answer"] for a in ann["answers"]) if ann else None,
                answer_type=ann["answer_type"] if ann else None,
                question_type=ann["question_type"] if ann else None,
                multiple_choice_answer=ann["multiple_choice_answer"] if ann else None,
            )
        )
    if not out:
        raise DataError(q_path, "no question of the split is usable", field="questions")
    if len(out) < len(q_records):  # bad records skipped: the evaluator sees the same questions
        kept = {q.question_id for q in out}
        questions_json = _keep(questions_json, "questions", kept)
        if annotations_json is not None:
            annotations_json = _keep(annotations_json, "annotations", kept)
    return VqaSplit(split, root, files, out, questions_json, annotations_json)


def _keep(doc: dict[str, Any], key: str, question_ids: set[int]) -> dict[str, Any]:
    """The document with the records of `question_ids` only, each once (the first, as read)."""
    records, seen = [], set()
    for r in doc[key]:
        qid = r.get("question_id") if isinstance(r, dict) else None
        # A skipped record's id may be anything, a list (unhashable) included.
        if kind_ok(qid, int) and qid in question_ids and qid not in seen:
            records.append(r)
            seen.add(qid)
    return {**doc, key: records}


def answer_vocab(split: VqaSplit, top_k: int) -> list[str]:
    """The ``top_k`` most frequent answers over all human answers of ``split`` (the train split).

    Answers are counted in the form the official evaluator compares them (``reference_forms``:
    normalised, except unanimous ones, which it leaves verbatim), so every vocabulary entry is
    a string that can earn credit. Ties break alphabetically, for the same vocabulary everywhere.
    """
    if top_k < 1:
        raise ValueError(f"answer_vocab: top_k must be >= 1, got {top_k}")
    if not split.annotated:
        raise DataError(
            annotations_path(split.root, split.split),
            "an answer vocabulary needs an annotated split; this file is absent",
        )
    counts: Counter[str] = Counter()
    for q in split.questions:
        assert q.answers is not None  # annotated split: every question has answers
        counts.update(reference_forms(q.answers)[0])
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [answer for answer, _ in ranked[:top_k]]


def check(root: Path, split: str, *, progress: bool = False) -> dict[str, Any]:
    """The JSON summary printed by ``optima-repro data check vqa``; every image is decoded."""
    data = read_vqa(root, split, check_images=True)
    q_path = questions_path(data.root, split)
    questions = keep_decodable(
        data.questions,
        lambda q: ((q.image_path, _rec(q.question_id), "image_id"),),
        q_path,
        split=split,
        what="question",
        progress=progress,
    )
    annotated = [q for q in questions if q.answers is not None]
    forms: Counter[str] = Counter()
    for q in annotated:
        forms.update(reference_forms(q.answers)[0])
    return {
        "dataset": "vqa_v2",
        "split": split,
        "root": str(data.root),
        "questions": len(questions),
        "images": len({q.image_id for q in questions}),
        "annotated_questions": len(annotated),
        "answers": sum(len(q.answers) for q in annotated),
        "distinct_answers": len(forms),
        "answer_types": dict(sorted(Counter(q.answer_type for q in annotated).items())),
        "sha256": data.files,
    }


# --- validation -------------------------------------------------------------------------------


def _rec(qid: int) -> str:
    return f"question_id {qid}"


def _top(doc: Any, spec: Mapping[str, type], file: Path) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise DataError(file, f"expected a JSON object at top level, got {type(doc).__name__}")
    check_fields(doc, spec, file, None)
    return doc


def _index(
    records: list[Any], key: str, spec: Mapping[str, type], file: Path
) -> dict[int, dict[str, Any]]:
    """Records by question id, each checked against ``spec``; duplicates refused."""
    by_id: dict[int, dict[str, Any]] = {}
    position: dict[int, str] = {}
    for i, rec in enumerate(records):
        qid = rec.get("question_id") if isinstance(rec, dict) else None
        try:
            if not valid(rec, spec):  # the record's name is built only for an error
                check_fields(rec, spec, file, _rec(qid) if kind_ok(qid, int) else f"{key}[{i}]")
            if qid in position:
                where = f"{key}[{i}] ({_rec(qid)})"
                what = "question id"
                first_seen(position, qid, "", file, what=what, record=where, field="question_id")
        except DataError as err:
            skip_or_raise(err)
            continue
        by_id[qid] = rec
        position[qid] = f"{key}[{i}]"
    return by_id


def _check_annotations(
    anns: Mapping[int, dict[str, Any]],
    questions: Mapping[int, dict[str, Any]],
    q_path: Path,
    a_path: Path,
) -> set[int]:
    """The question ids whose question and annotation agree (all of them, unless bad records
    are being skipped)."""
    good = set()
    for qid, ann in anns.items():
        try:
            _check_annotation(qid, ann, questions.get(qid), q_path, a_path)
        except DataError as err:
            skip_or_raise(err)
            continue
        good.add(qid)
    for qid in questions:
        if qid not in anns:
            skip_or_raise(
                DataError(
                    q_path,
                    f"no annotation for this question in {a_path.name}",
                    record=_rec(qid),
                    field="question_id",
                )
            )
    return good


def _check_annotation(
    qid: int, ann: dict[str, Any], question: dict[str, Any] | None, q_path: Path, a_path: Path
) -> None:
    answers = ann["answers"]
    if len(answers) != ANSWERS_PER_QUESTION:
        raise DataError(
            a_path,
            f"expected {ANSWERS_PER_QUESTION} human answers, got {len(answers)}",
            record=_rec(qid),
            field="answers",
        )
    for j, answer in enumerate(answers):
        if not valid(answer, _ANSWER_FIELDS):
            check_fields(answer, _ANSWER_FIELDS, a_path, f"{_rec(qid)}, answers[{j}]")
    # The official leave-one-out drops answers equal to the held-out one: ids must differ.
    if len({answer["answer_id"] for answer in answers}) < len(answers):
        first: dict[int, str] = {}
        for j, answer in enumerate(answers):
            answer_id = answer["answer_id"]
            where = f"{_rec(qid)}, answers[{j}]"
            what = f"answer_id {answer_id} within the question"
            first_seen(
                first,
                answer_id,
                f"answers[{j}]",
                a_path,
                what=what,
                record=where,
                field="answer_id",
            )
    if question is None:
        raise DataError(
            a_path,
            f"no question with this id in {q_path.name}",
            record=_rec(qid),
            field="question_id",
        )
    if question["image_id"] != ann["image_id"]:
        raise DataError(
            a_path,
            f"image_id {ann['image_id']} differs from {question['image_id']} in {q_path.name}",
            record=_rec(qid),
            field="image_id",
        )


def _image_finder(root: Path, split: str) -> Callable[[int], tuple[Path, str | None]]:
    """Image lookup by id against one listing of the split's folder (a stat, or even a new Path,
    per question costs seconds on the 443k questions of train2014). Gives the path and why it
    cannot be read (None: a regular file); a missing image gets its ``.jpg`` path."""
    folder = image_path(root, split, 0).parent
    folders = ImageFolders()
    names = folders.listing(folder)
    prefix = f"COCO_{folder.name}_"

    @functools.cache
    def find(image_id: int) -> tuple[Path, str | None]:
        for suffix in IMAGE_SUFFIXES:
            name = f"{prefix}{image_id:012d}{suffix}"
            if name in names:
                return folder / name, None if names[name] else folders.problem(folder / name)
        path = folder / f"{prefix}{image_id:012d}{IMAGE_SUFFIXES[0]}"
        return path, f"image not found: {path.with_suffix('.{jpg,png}')}"

    return find
