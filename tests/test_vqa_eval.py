"""Golden tests of the official VQA accuracy, every number worked out by hand in the comments.

Leave-one-out with n = 10 human answers of which m match the prediction: the m subsets that
drop a matching answer keep m-1 matches, the other 10-m keep m, and a subset scores
min(matches/3, 1). So score(m) = (m*min((m-1)/3, 1) + (10-m)*min(m/3, 1)) / 10.
"""

from __future__ import annotations

import pytest

from harness.errors import DataError
from harness.tasks.vqa_eval import (
    answer_score,
    evaluate,
    normalize_answer,
    reference_forms,
    rounded,
    soft_scores,
)

OTHERS = ["blue", "green", "black", "white", "pink", "grey", "brown", "tan", "gold", "teal"]


def gt(match: str, m: int) -> list[str]:
    """10 human answers, ``m`` of them ``match``, the rest distinct non-matching words."""
    return [match] * m + OTHERS[: 10 - m]


# --- the leave-one-out score ------------------------------------------------------------------


def test_no_match_scores_zero() -> None:
    assert answer_score("red", gt("red", 0)) == 0.0


def test_one_match() -> None:
    # m=1: the 1 subset dropping it has 0 matches (0); 9 subsets keep it (1/3).
    # (1*0 + 9*(1/3)) / 10 = 0.3
    assert answer_score("red", gt("red", 1)) == pytest.approx(0.3, abs=1e-12)


def test_two_matches() -> None:
    # m=2: 8 subsets keep both (2/3), 2 subsets keep one (1/3): (8*2/3 + 2*1/3)/10 = 0.6
    assert answer_score("red", gt("red", 2)) == pytest.approx(0.6, abs=1e-12)


def test_three_matches_is_not_yet_full_credit() -> None:
    # m=3: 7 subsets keep all three (min(3/3,1) = 1); 3 subsets keep two (2/3).
    # (7*1 + 3*2/3) / 10 = 0.9. The "min(#humans/3, 1)" rule alone would say 1.0.
    assert answer_score("red", gt("red", 3)) == pytest.approx(0.9, abs=1e-12)


@pytest.mark.parametrize("m", [4, 5, 9])
def test_four_or_more_matches_is_full_credit(m: int) -> None:
    # m=4: dropping a match still leaves 3 (1.0); dropping another leaves 4 (1.0) -> 1.0.
    assert answer_score("red", gt("red", m)) == 1.0


def test_unanimous_answers_give_full_credit() -> None:
    # 10 identical answers: every subset keeps 9 matches -> 1.0.
    assert answer_score("yes", ["yes"] * 10) == 1.0


# --- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),  # lower-cased, then number word -> digit
        ("none", "0"),  # "none" is a number word too
        ("eleven", "eleven"),  # only zero..ten are mapped
        ("the dog.", "dog"),  # period not before a digit removed; article removed
        ("a", ""),  # an article alone vanishes
        ("An Apple", "apple"),
        ("yes!", "yes"),  # "!" -> space, then words re-joined
        ("isnt", "isn't"),  # contraction restored
        ("Dont", "don't"),
        ("dog's", "dog's"),  # apostrophe is kept
        ("2:30", "2:30"),  # colon is kept (times)
        ("3.5", "3.5"),  # period before a digit is kept
        ("1,000", "1000"),  # digit-comma-digit: the comma is deleted, the number stays one word
        ("1,000 (approx)", "1000 approx"),  # ...and then every mark is deleted, not spaced
        ("red, white", "red white"),  # mark next to a space: deleted
        ("red,white", "red white"),  # mark between letters: replaced by a space
        ("t-shirt", "t shirt"),
        ("  two\tdogs\n", "2 dogs"),  # tabs/newlines are spaces, ends stripped
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_period_rule_removes_at_most_32_periods() -> None:
    # Upstream passes re.UNICODE (32) where ``sub`` expects its count: 40 periods lose 32.
    assert normalize_answer("." * 40 + "b") == "." * 8 + "b"


def test_number_word_matches_digit_when_humans_disagree() -> None:
    # Humans disagree, so everything is normalised: "Two" -> "2" matches the 3 "two"s and the
    # 2 "2"s -> 5 matches -> 1.0.
    humans = ["two", "two", "two", "2", "2", "3", "3", "3", "4", "4"]
    assert answer_score("Two", humans) == 1.0


def test_article_and_period_when_humans_disagree() -> None:
    # "the dog." -> "dog"; humans: "dog", "a dog", "Dog" -> "dog" (3 matches) -> 0.9.
    humans = ["dog", "a dog", "Dog", "cat", "cat", "cat", "cat", "cat", "puppy", "wolf"]
    assert answer_score("the dog.", humans) == pytest.approx(0.9, abs=1e-12)


def test_ground_truth_gets_digit_article_normalisation_too() -> None:
    # The fix (a013f00): human "none" becomes "0" just like the prediction (before the fix only
    # punctuation was applied to human answers and this scored 0; upstream issue #7).
    # 3 matches -> 0.9.
    assert answer_score("none", gt("none", 3)) == pytest.approx(0.9, abs=1e-12)


def test_unanimous_answers_are_compared_verbatim() -> None:
    # All 10 identical: neither humans nor prediction are normalised, so the comparison is exact.
    assert answer_score("the dog", ["the dog"] * 10) == 1.0
    assert answer_score("dog", ["the dog"] * 10) == 0.0
    assert answer_score("Yes", ["yes"] * 10) == 0.0
    assert answer_score("yes!", ["yes"] * 10) == 0.0
    # ...but whitespace is still cleaned on both sides.
    assert answer_score(" yes\n", ["yes"] * 9 + ["yes "]) == 1.0
    forms, normalised = reference_forms(["The Dog"] * 10)
    assert forms == ["The Dog"] * 10 and not normalised


# --- soft scores ------------------------------------------------------------------------------


def test_soft_scores() -> None:
    # Normalised forms: "2" x8 ("two" counts), "3" x2 -> score(8) = 1.0, score(2) = 0.6.
    humans = ["2", "2", "two", "3", "2", "2", "2", "3", "2", "2"]
    scores = soft_scores(humans)
    assert scores == {"2": 1.0, "3": pytest.approx(0.6, abs=1e-12)}
    for answer, score in scores.items():
        assert answer_score(answer, humans) == score


def test_soft_scores_of_unanimous_answers_keep_the_verbatim_form() -> None:
    assert soft_scores(["Yes"] * 10) == {"Yes": 1.0}


def test_soft_scores_match_answer_score_on_mixed_answers() -> None:
    humans = ["Red", "red", "dark red", "the red", "maroon", "red.", "RED", "red", "pink", "red"]
    scores = soft_scores(humans)
    # "red" x7 after normalisation -> 1.0; "dark red", "maroon", "pink" once each -> 0.3.
    assert scores == {
        "red": 1.0,
        "dark red": pytest.approx(0.3, abs=1e-12),
        "maroon": pytest.approx(0.3, abs=1e-12),
        "pink": pytest.approx(0.3, abs=1e-12),
    }
    for answer, score in scores.items():
        assert answer_score(answer, humans) == score


# --- evaluate() on a hand-written questions / annotations / results triple --------------------


def _answers(texts: list[str]) -> list[dict]:
    return [
        {"answer": t, "answer_confidence": "yes", "answer_id": i + 1} for i, t in enumerate(texts)
    ]


def _triple() -> tuple[dict, dict, list[dict]]:
    questions = {
        "info": {},
        "task_type": "Open-Ended",
        "data_type": "mscoco",
        "license": {},
        "data_subtype": "val2014",
        "questions": [
            {"image_id": 1, "question": "Is it a cat?", "question_id": 10},
            {"image_id": 1, "question": "How many cats?", "question_id": 11},
            {"image_id": 2, "question": "What color is the car?", "question_id": 20},
            {"image_id": 2, "question": "What color is the sky?", "question_id": 21},
        ],
    }

    def ann(qid: int, image_id: int, qtype: str, atype: str, texts: list[str]) -> dict:
        return {
            "question_type": qtype,
            "multiple_choice_answer": texts[0],
            "answers": _answers(texts),
            "image_id": image_id,
            "answer_type": atype,
            "question_id": qid,
        }

    annotations = {
        "info": {},
        "license": {},
        "data_subtype": "val2014",
        "annotations": [
            ann(10, 1, "is it a", "yes/no", ["yes"] * 10),
            ann(11, 1, "how many", "number", ["2", "2"] + ["3"] * 8),
            ann(20, 2, "what color is the", "other", ["red"] + ["blue"] * 9),
            ann(21, 2, "what color is the", "other", ["blue"] * 10),
        ],
    }
    results = [
        {"question_id": 10, "answer": "yes"},  # unanimous, exact -> 1.0
        {"question_id": 11, "answer": "two"},  # -> "2", 2 matches -> 0.6
        {"question_id": 20, "answer": "Red."},  # -> "red", 1 match -> 0.3
        {"question_id": 21, "answer": "Blue"},  # unanimous "blue", verbatim "Blue" -> 0.0
    ]
    return questions, annotations, results


def test_evaluate_overall_and_breakdowns() -> None:
    questions, annotations, results = _triple()
    report = evaluate(questions, annotations, results)
    # overall: 100 * (1 + 0.6 + 0.3 + 0) / 4 = 47.5
    assert report["overall"] == pytest.approx(47.5, abs=1e-9)
    # per answer type: yes/no 100; number 60; other (0.3 + 0) / 2 = 15
    assert report["perAnswerType"] == {
        "yes/no": pytest.approx(100.0),
        "number": pytest.approx(60.0),
        "other": pytest.approx(15.0),
    }
    assert report["perQuestionType"] == {
        "is it a": pytest.approx(100.0),
        "how many": pytest.approx(60.0),
        "what color is the": pytest.approx(15.0),
    }


def test_evaluate_keeps_full_precision_and_rounded_matches_official_display() -> None:
    questions, annotations, results = _triple()
    results[1]["answer"] = "3"  # 8 matches -> 1.0
    results[2]["answer"] = "green"  # 0.0
    results[3]["answer"] = "blue"  # verbatim match of the unanimous answer -> 1.0
    report = evaluate(questions, annotations, results)
    # overall = 100 * (1 + 1 + 0 + 1) / 4 = 75; other = 100 * (0 + 1) / 2 = 50
    assert report["overall"] == 75.0
    assert report["perAnswerType"]["other"] == 50.0
    questions["questions"] = questions["questions"][:3]
    annotations["annotations"] = annotations["annotations"][:3]
    report = evaluate(questions, annotations, results[:3])
    # 100 * (1 + 1 + 0) / 3 = 66.666..., displayed officially as 66.67
    assert report["overall"] == pytest.approx(200 / 3, abs=1e-12)
    assert rounded(report)["overall"] == 66.67
    assert rounded(report)["perAnswerType"]["other"] == 0.0


def test_evaluate_does_not_modify_its_inputs() -> None:
    questions, annotations, results = _triple()
    before = repr((questions, annotations, results))
    evaluate(questions, annotations, results)
    assert repr((questions, annotations, results)) == before


def test_evaluate_missing_predictions_are_named() -> None:
    questions, annotations, results = _triple()
    with pytest.raises(DataError, match=r"R\.json, field 'question_id': no prediction .*11, 21"):
        evaluate(questions, annotations, results[::2], results_file="R.json")


def test_evaluate_extra_predictions_are_named() -> None:
    questions, annotations, results = _triple()
    results.append({"question_id": 99, "answer": "yes"})
    with pytest.raises(DataError, match=r"R\.json, field 'question_id': 1 question id.*: 99"):
        evaluate(questions, annotations, results, results_file="R.json")


def test_evaluate_duplicate_predictions_are_refused() -> None:
    questions, annotations, results = _triple()
    results.append({"question_id": 10, "answer": "no"})
    with pytest.raises(DataError, match=r"record results\[4\], field 'question_id': duplicate"):
        evaluate(questions, annotations, results)


def test_evaluate_bad_answer_type_is_named() -> None:
    questions, annotations, results = _triple()
    results[0]["answer"] = 1
    with pytest.raises(DataError, match=r"question_id 10\), field 'answer'"):
        evaluate(questions, annotations, results)


def test_evaluate_results_must_be_a_list() -> None:
    questions, annotations, _ = _triple()
    with pytest.raises(DataError, match="expected a JSON list"):
        evaluate(questions, annotations, {"question_id": 10, "answer": "yes"})  # type: ignore[arg-type]


def test_evaluate_questions_and_annotations_must_agree() -> None:
    questions, annotations, results = _triple()
    questions["questions"].pop()
    with pytest.raises(DataError, match=r"A\.json, field 'question_id': 1 annotation.*: 21"):
        evaluate(questions, annotations, results, annotations_file="A.json")
