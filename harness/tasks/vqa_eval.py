"""The official VQA v2 accuracy, as GT-Vision-Lab/VQA ``vqaEval.py`` computes it (fixed version).

Reimplemented, not copied, from the upstream evaluator as of commit a013f00 (its current
master, which lmms-eval cites as the official script). What the fix changed from the earlier
version (commit c4e6a0e), and what we follow:

- before: the prediction was always normalised (punctuation, then digits/articles/
  contractions) but human answers only got punctuation, and only when they disagreed, so a
  human "none" or "the dog" could never match (the prediction became "0" / "dog"; upstream
  issue #7). Now human answers get the same whitespace clean-up and full normalisation;
- now, when the (whitespace-cleaned) human answers of a question are all identical, neither
  they nor the prediction are normalised: the comparison is exact, case-sensitive. Upstream's
  reason (issue #14): unanimous answers are often text read from the image (OCR).

Accuracy of one question: for each of its n human answers, leave it out and score
``min(#matches among the other n-1 / 3, 1)``; average the n scores. So 1 match -> 0.3,
2 -> 0.6, 3 -> 0.9 and only 4 or more -> 1.0 (with n = 10).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.data.json_fields import check_text, first_seen, is_int, load_json, show
from harness.errors import DataError
from harness.tasks.coverage import check_covered, check_known

EVALUATOR = "GT-Vision-Lab/VQA vqaEval.py @ a013f00 (reimplemented)"

_NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})
# The official table, entry for entry (``wrong>right``), including its oddities: keys with
# capitals ("Im", "Ive", "Id've", "I'dve") can never match because words are lower-cased
# first, and "somebody'd" maps to "somebodyd".
_CONTRACTION_TABLE = """
    aint>ain't arent>aren't cant>can't couldve>could've couldnt>couldn't
    couldn'tve>couldn't've couldnt've>couldn't've didnt>didn't doesnt>doesn't dont>don't
    hadnt>hadn't hadnt've>hadn't've hadn'tve>hadn't've hasnt>hasn't havent>haven't hed>he'd
    hed've>he'd've he'dve>he'd've hes>he's howd>how'd howll>how'll hows>how's Id've>I'd've
    I'dve>I'd've Im>I'm Ive>I've isnt>isn't itd>it'd itd've>it'd've it'dve>it'd've itll>it'll
    let's>let's maam>ma'am mightnt>mightn't mightnt've>mightn't've mightn'tve>mightn't've
    mightve>might've mustnt>mustn't mustve>must've neednt>needn't notve>not've oclock>o'clock
    oughtnt>oughtn't ow's'at>'ow's'at 'ows'at>'ow's'at 'ow'sat>'ow's'at shant>shan't
    shed've>she'd've she'dve>she'd've she's>she's shouldve>should've shouldnt>shouldn't
    shouldnt've>shouldn't've shouldn'tve>shouldn't've somebody'd>somebodyd
    somebodyd've>somebody'd've somebody'dve>somebody'd've somebodyll>somebody'll
    somebodys>somebody's someoned>someone'd someoned've>someone'd've
    someone'dve>someone'd've someonell>someone'll someones>someone's somethingd>something'd
    somethingd've>something'd've something'dve>something'd've somethingll>something'll
    thats>that's thered>there'd thered've>there'd've there'dve>there'd've therere>there're
    theres>there's theyd>they'd theyd've>they'd've they'dve>they'd've theyll>they'll
    theyre>they're theyve>they've twas>'twas wasnt>wasn't wed've>we'd've we'dve>we'd've
    weve>we've werent>weren't whatll>what'll whatre>what're whats>what's whatve>what've
    whens>when's whered>where'd wheres>where's whereve>where've whod>who'd whod've>who'd've
    who'dve>who'd've wholl>who'll whos>who's whove>who've whyll>why'll whyre>why're
    whys>why's wont>won't wouldve>would've wouldnt>wouldn't wouldnt've>wouldn't've
    wouldn'tve>wouldn't've yall>y'all yall'll>y'all'll y'allll>y'all'll yall'd've>y'all'd've
    y'alld've>y'all'd've y'all'dve>y'all'd've youd>you'd youd've>you'd've you'dve>you'd've
    youll>you'll youre>you're youve>you've
"""
_CONTRACTIONS = dict(pair.split(">") for pair in _CONTRACTION_TABLE.split())
# Apostrophe, colon and period are not here: "dog's", "isn't" and "2:30" survive; periods
# have their own rule below.
_PUNCTUATION = ';/[]"{}()=+\\_-><@`,?!'
# A comma between two digits anywhere in the answer ("1,000") makes every punctuation mark be
# deleted instead of replaced by a space, so the number stays one word ("1000").
_DIGIT_COMMA = re.compile(r"\d,\d")
# Upstream writes ``(?!<=\d)(\.)(?!\d)``: the first group is a lookahead for the literal "<="
# (a typo for a lookbehind) that always succeeds before a ".", so only "not followed by a
# digit" counts: "dog." -> "dog", "3.5" stays.
_PERIOD = re.compile(r"\.(?!\d)")
# Upstream passes re.UNICODE (= 32) positionally to ``sub``, where it means count=32: at most
# the first 32 such periods are removed.
_PERIOD_COUNT = int(re.UNICODE)


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _process_punctuation(text: str) -> str:
    delete_all = _DIGIT_COMMA.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        # Decided on the input text, mark by mark, as upstream does.
        if delete_all or mark + " " in text or " " + mark in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_PERIOD_COUNT)


def _process_digit_article(text: str) -> str:
    words = []
    for word in text.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in _ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


@functools.lru_cache(maxsize=1 << 18)
def _normalise_cleaned(text: str) -> str:
    # Cached: the 2M human answers of a VQA split repeat a few hundred thousand strings.
    return _process_digit_article(_process_punctuation(text))


def normalize_answer(text: str) -> str:
    """The official normalisation of one answer: whitespace, punctuation, digits/articles,
    contractions. Applied only to questions whose human answers disagree (see module doc)."""
    return _normalise_cleaned(_clean_whitespace(text))


def reference_forms(gt_answers: Sequence[str]) -> tuple[list[str], bool]:
    """The human answers as the evaluator compares them, and whether predictions get normalised.

    Unanimous answers (after whitespace clean-up) stay verbatim and so must the prediction.
    """
    cleaned = [_clean_whitespace(a) for a in gt_answers]
    if len(set(cleaned)) > 1:
        return [_normalise_cleaned(a) for a in cleaned], True
    return cleaned, False


def _leave_one_out(forms: Sequence[str], answer: str) -> float:
    # Same float operations, in the same order, as upstream: bit-identical per-question scores.
    matches = sum(form == answer for form in forms)
    scores = [min(1, float(matches - (form == answer)) / 3) for form in forms]
    return float(sum(scores)) / len(scores)


def answer_score(answer: str, gt_answers: Sequence[str]) -> float:
    """Official accuracy in [0, 1] of one predicted answer against one question's human answers."""
    if not gt_answers:
        raise ValueError("answer_score: a question needs at least one human answer")
    forms, normalise = reference_forms(gt_answers)
    prediction = _clean_whitespace(answer)
    if normalise:
        prediction = _normalise_cleaned(prediction)
    return _leave_one_out(forms, prediction)


def soft_scores(gt_answers: Sequence[str]) -> dict[str, float]:
    """Soft training targets: for each distinct answer (as the evaluator compares it) the score
    predicting it earns, so maximising them maximises the official metric."""
    if not gt_answers:
        raise ValueError("soft_scores: a question needs at least one human answer")
    forms, _ = reference_forms(gt_answers)
    return {form: _leave_one_out(forms, form) for form in dict.fromkeys(forms)}


def rounded(report: Mapping[str, Any], ndigits: int = 2) -> dict[str, Any]:
    """The report as the official code displays it: it rounds ``100 * mean`` to 2 decimals for
    overall, per answer type and per question type (and per question). We keep full precision
    and round only for display."""
    return {
        key: {k: round(v, ndigits) for k, v in value.items()}
        if isinstance(value, Mapping)
        else round(value, ndigits)
        for key, value in report.items()
    }


def evaluate(
    questions: Mapping[str, Any],
    annotations: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    questions_file: str = "<questions>",
    annotations_file: str = "<annotations>",
    results_file: str = "<results>",
) -> dict[str, Any]:
    """Official VQA accuracy (percent, full precision) of ``results`` on an annotated split.

    Takes the three official JSON documents. As upstream asserts, the results must answer
    exactly the annotated questions; we also refuse duplicate ids, which upstream silently
    resolves to the last one. The ``*_file`` names only label errors.
    """
    question_ids = set(
        _ids(_records(questions, "questions", questions_file), "questions", questions_file)
    )
    anns = _annotations(annotations, annotations_file)
    _same_ids(question_ids, anns, questions_file, annotations_file)
    predictions = _predictions(results, results_file)
    ids = {"file": results_file, "field": "question_id", "reference": annotations_file}
    check_covered(anns, predictions, noun="question", **ids)
    check_known(predictions, anns, noun="question id", **ids)

    overall: list[float] = []
    per_answer_type: dict[str, list[float]] = {}
    per_question_type: dict[str, list[float]] = {}
    for qid, ann in anns.items():  # annotation-file order, as upstream sums
        score = answer_score(predictions[qid], [a["answer"] for a in ann["answers"]])
        overall.append(score)
        per_answer_type.setdefault(ann["answer_type"], []).append(score)
        per_question_type.setdefault(ann["question_type"], []).append(score)
    return {
        "overall": _percent(overall),
        "perAnswerType": {k: _percent(v) for k, v in per_answer_type.items()},
        "perQuestionType": {k: _percent(v) for k, v in per_question_type.items()},
    }


def _percent(scores: list[float]) -> float:
    return 100 * float(sum(scores)) / len(scores)


def _records(doc: Any, key: str, file: str) -> list[Any]:
    if not isinstance(doc, Mapping):
        raise DataError(file, f"expected a JSON object, got {type(doc).__name__}")
    if not isinstance(doc.get(key), list):
        raise DataError(file, "missing or not a list", field=key)
    return doc[key]


def _ids(records: list[Any], key: str, file: str) -> list[int]:
    """Question ids of ``records``, checked to be unique integers."""
    seen: dict[int, str] = {}
    for i, rec in enumerate(records):
        where = f"{key}[{i}]"
        if not isinstance(rec, Mapping):
            raise DataError(file, f"expected an object, got {show(rec)}", record=where)
        qid = rec.get("question_id")
        if not is_int(qid):
            raise DataError(
                file, f"expected an integer, got {show(qid)}", record=where, field="question_id"
            )
        what = f"question id {qid}"
        first_seen(seen, qid, where, file, what=what, record=where, field="question_id")
    return list(seen)


def _annotations(doc: Any, file: str) -> dict[int, Mapping[str, Any]]:
    records = _records(doc, "annotations", file)
    _ids(records, "annotations", file)
    for rec in records:
        where = f"question_id {rec['question_id']}"
        for field in ("answer_type", "question_type"):
            if not isinstance(rec.get(field), str):
                raise DataError(file, "expected a string", record=where, field=field)
            check_text(rec[field], file, record=where, field=field)
        answers = rec.get("answers")
        if not isinstance(answers, list) or not answers:
            raise DataError(file, "expected a non-empty list", record=where, field="answers")
        for j, ans in enumerate(answers):
            field = f"answers[{j}].answer"
            if not (isinstance(ans, Mapping) and isinstance(ans.get("answer"), str)):
                raise DataError(file, "expected a string", record=where, field=field)
            check_text(ans["answer"], file, record=where, field=field)
    return {rec["question_id"]: rec for rec in records}


def _same_ids(
    question_ids: set[int], anns: Mapping[int, Any], questions_file: str, annotations_file: str
) -> None:
    check_known(
        anns,
        question_ids,
        file=annotations_file,
        field="question_id",
        noun="annotation",
        reference=questions_file,
    )
    check_covered(
        sorted(question_ids), anns, file=questions_file, field="question_id", noun="question",
        reference=annotations_file, what="annotation",
    )  # fmt: skip


def _predictions(results: Any, file: str) -> dict[int, str]:
    if not isinstance(results, list):
        raise DataError(file, f"expected a JSON list of objects, got {type(results).__name__}")
    _ids(results, "results", file)
    for i, rec in enumerate(results):
        where = f"results[{i}] (question_id {rec['question_id']})"
        if not isinstance(rec.get("answer"), str):
            raise DataError(
                file,
                f"expected a string, got {show(rec.get('answer'))}",
                record=where,
                field="answer",
            )
        check_text(rec["answer"], file, record=where, field="answer")
    return {rec["question_id"]: rec["answer"] for rec in results}


def evaluate_files(
    questions_file: str | Path, annotations_file: str | Path, results_file: str | Path
) -> dict[str, Any]:
    """``optima-repro evaluate vqa``: the three official JSON files."""
    return evaluate(
        load_json(questions_file)[0],
        load_json(annotations_file)[0],
        load_json(results_file)[0],
        questions_file=str(questions_file),
        annotations_file=str(annotations_file),
        results_file=str(results_file),
    )
