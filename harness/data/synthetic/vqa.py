"""A synthetic VQA v2 world written in the official release's layout, names and JSON formats.

The readers and the official metric then run unchanged on it. Questions mix attribute lookup,
counting, spatial relations and comparisons, so a model must read image and question jointly,
and each has ten human-like answers with realistic disagreement so that soft scores matter.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from harness.data.synthetic.scenes import (
    COLORS,
    RELATIONS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    WorldSpec,
    count,
    phrase,
    referring_phrases,
    related,
    render,
    sample_scene,
)
from harness.errors import ConfigError

SPLITS: tuple[str, ...] = ("train2014", "val2014")

# (template, relative weight). Roughly 45% "other", 20% "number", 35% "yes/no", near VQA v2's
# 50/12/38 but with more counting, as counting and relations are where models differ.
# All templates; the named presets ask the five a tiny CoCa learns on 2 CPU cores in minutes
# (spec/budget.md's calibration world). The relational rest stays available for harder worlds.
ALL_TEMPLATE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("color_of", 1.0),
    ("shape_of", 1.0),
    ("size_of", 0.6),
    ("what_rel", 1.0),
    ("color_rel", 0.8),
    ("count_attr", 1.2),
    ("count_rel", 1.0),
    ("exists", 0.8),
    ("rel_yn", 1.4),
    ("more", 0.7),
    ("same_attr", 0.7),
)
DEFAULT_TEMPLATE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("color_of", 1.0),
    ("shape_of", 1.0),
    ("count_attr", 1.0),
    ("exists", 1.0),
    ("what_rel", 1.0),
)


@dataclass(frozen=True)
class VqaWorldSpec(WorldSpec):
    """The world's own fields (WorldSpec holds the seed and the scenes)."""

    n_train_images: int = 6000
    n_val_images: int = 3000
    questions_per_image: float = 3.4  # mean; each image gets floor or ceil of it
    variant_rate: float = 0.1  # share of correct human answers in a surface variant ("two", "Yes")
    template_weights: tuple[tuple[str, float], ...] = DEFAULT_TEMPLATE_WEIGHTS

    def check(self) -> None:
        self._template_weights(TEMPLATES)
        self._at_least(1, "questions_per_image")


def vqa_world_spec(name: str, **overrides: Any) -> VqaWorldSpec:
    """Named presets: "smoke" for tests (about a second), "default" for the embedded study.

    "default" has the train split of spec/budget.md's calibration world (about 20k questions on
    6k images) with more relational questions, and a val split five times its 600 images: on
    2k questions the eval sample alone put ~0.8 points of standard error on a paired
    optima - uniform difference (README, "Sizing the studies").
    """
    presets = {
        "smoke": VqaWorldSpec(n_train_images=800, n_val_images=150),
        "default": VqaWorldSpec(),
    }
    if name not in presets:
        raise ConfigError(f"unknown VQA world preset {name!r}; expected one of {sorted(presets)}")
    return replace(presets[name], **overrides)


# ---- questions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Question:
    template: str
    question_type: str  # VQA-style question prefix, one per template
    answer_type: str
    text: str
    answer: str


class _Facts:
    """A scene with its referring phrases memoised: every template asks for them."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.objects = scene.objects
        self._refs: dict[tuple[int, tuple[str, ...]], list[str]] = {}

    def refs(self, index: int, exclude: tuple[str, ...] = ()) -> list[str]:
        key = (index, exclude)
        if key not in self._refs:
            self._refs[key] = referring_phrases(self.scene, self.objects[index], exclude)
        return self._refs[key]


_REL_WORDS = {
    "left_of": ("left of", "to the left of"),
    "right_of": ("right of", "to the right of"),
    "above": ("above",),
    "below": ("below",),
}
_REL_WHAT = {
    "left_of": "to the left of",
    "right_of": "to the right of",
    "above": "above",
    "below": "below",
}
_POOLS = {"color": COLORS, "shape": SHAPES, "size": SIZES}

# (scene facts, rng, wanted yes/no answer or "") -> a question, or None where it cannot be asked.
Template = Callable[[_Facts, np.random.Generator, str], _Question | None]


def _pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def _pick_by_answer(rng: np.random.Generator, options: dict[int, list[Any]]) -> tuple[int, Any]:
    """Draw a count first (uniformly over those the scene offers, 0 at half weight), then an
    option with it: otherwise "1" and "0" dominate and a language-only prior scores well."""
    counts = sorted(options)
    weights = np.array([0.5 if c == 0 else 1.0 for c in counts])
    n = counts[int(rng.choice(len(counts), p=weights / weights.sum()))]
    return n, _pick(rng, options[n])


def _referent(
    facts: _Facts, rng: np.random.Generator, exclude: tuple[str, ...] = ()
) -> tuple[SceneObject, str] | None:
    for i in rng.permutation(len(facts.objects)):
        refs = facts.refs(int(i), exclude)
        if refs:
            return facts.objects[int(i)], _pick(rng, refs)
    return None


def _attribute_question(
    template: str, attribute: str, facts: _Facts, rng: np.random.Generator
) -> _Question | None:
    found = _referent(facts, rng, exclude=(attribute,))
    if found is None:
        return None
    obj, ref = found
    prefix = f"what {attribute} is the"
    return _Question(template, prefix, "other", f"{prefix} {ref}?", obj.attribute(attribute))


def _color_of(facts: _Facts, rng: np.random.Generator, _: str) -> _Question | None:
    return _attribute_question("color_of", "color", facts, rng)


def _shape_of(facts: _Facts, rng: np.random.Generator, _: str) -> _Question | None:
    return _attribute_question("shape_of", "shape", facts, rng)


def _size_of(facts: _Facts, rng: np.random.Generator, _: str) -> _Question | None:
    return _attribute_question("size_of", "size", facts, rng)


def _single_related(facts: _Facts, rng: np.random.Generator) -> tuple[SceneObject, str, str] | None:
    """(object, relation, anchor phrase) such that exactly one object stands in the relation."""
    pairs = [(i, r) for i in range(len(facts.objects)) for r in RELATIONS]
    for k in rng.permutation(len(pairs)):
        i, relation = pairs[int(k)]
        hits = related(facts.scene, relation, facts.objects[i])
        if len(hits) == 1 and facts.refs(i):
            return hits[0], relation, _pick(rng, facts.refs(i))
    return None


def _what_rel(facts: _Facts, rng: np.random.Generator, _: str) -> _Question | None:
    found = _single_related(facts, rng)
    if found is None:
        return None
    obj, relation, ref = found
    text = f"what is {_REL_WHAT[relation]} the {ref}?"
    return _Question("what_rel", "what is", "other", text, obj.shape)


def _color_rel(facts: _Facts, rng: np.random.Generator, _: str) -> _Question | None:
    found = _single_related(facts, rng)
    if found is None:
        return None
    obj, relation, ref = found
    text = f"what color is the object {_REL_WHAT[relation]} the {ref}?"
    return _Question("color_rel", "what color is the object", "other", text, obj.color)


_COUNT_KINDS: tuple[tuple[str, ...], ...] = (
    ("color",),
    ("shape",),
    ("color", "shape"),
    ("size", "shape"),
    ("size",),
)
_COUNT_ENDINGS = ("are there?", "are there?", "are there?", "are in the picture?", "can you see?")


def _count_attr(facts: _Facts, rng: np.random.Generator, _: str) -> _Question | None:
    options: dict[int, list[dict[str, str]]] = defaultdict(list)
    for kind in _COUNT_KINDS:
        for combo in itertools.product(*(_POOLS[a] for a in kind)):
            values = dict(zip(kind, combo, strict=True))
            options[count(facts.scene, **values)].append(values)
    n, values = _pick_by_answer(rng, options)
    text = f"how many {phrase(values, plural=True)} {_pick(rng, _COUNT_ENDINGS)}"
    return _Question("count_attr", "how many", "number", text, str(n))


def _count_rel(facts: _Facts, rng: np.random.Generator, _: str) -> _Question | None:
    if len(facts.objects) < 2:
        return None
    options: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for i, anchor in enumerate(facts.objects):
        if facts.refs(i):
            for relation in RELATIONS:
                options[len(related(facts.scene, relation, anchor))].append((i, relation))
    if not options:
        return None
    n, (i, relation) = _pick_by_answer(rng, options)
    text = f"how many objects are {_REL_WHAT[relation]} the {_pick(rng, facts.refs(i))}?"
    return _Question("count_rel", "how many objects are", "number", text, str(n))


_EXISTS_KINDS: tuple[tuple[str, ...], ...] = (
    ("color", "shape"),
    ("color", "shape"),
    ("size", "shape"),
    ("size", "color", "shape"),
)


def _exists(facts: _Facts, rng: np.random.Generator, want: str) -> _Question | None:
    kind = _pick(rng, _EXISTS_KINDS)
    if want == "yes":
        source = _pick(rng, facts.objects)
        values = {a: source.attribute(a) for a in kind}
    else:
        absent = [
            dict(zip(kind, combo, strict=True))
            for combo in itertools.product(*(_POOLS[a] for a in kind))
            if count(facts.scene, **dict(zip(kind, combo, strict=True))) == 0
        ]
        values = _pick(rng, absent)
    return _Question("exists", "is there a", "yes/no", f"is there a {phrase(values)}?", want)


def _rel_yn(facts: _Facts, rng: np.random.Generator, want: str) -> _Question | None:
    truth = want == "yes"
    named = [i for i in range(len(facts.objects)) if facts.refs(i)]
    options = [
        (i, j, r)
        for i in named
        for j in named
        for r, test in RELATIONS.items()
        if i != j and test(facts.objects[i], facts.objects[j]) == truth
    ]
    if not options:
        return None
    i, j, relation = _pick(rng, options)
    words = _pick(rng, _REL_WORDS[relation])
    text = f"is the {_pick(rng, facts.refs(i))} {words} the {_pick(rng, facts.refs(j))}?"
    return _Question("rel_yn", "is the", "yes/no", text, want)


def _more(facts: _Facts, rng: np.random.Generator, want: str) -> _Question | None:
    attribute = _pick(rng, ("shape", "color"))
    values = _POOLS[attribute]
    counts = {v: count(facts.scene, **{attribute: v}) for v in values}
    truth = want == "yes"
    options = [
        (x, y)
        for x in values
        for y in values
        if x != y and counts[x] + counts[y] > 0 and (counts[x] > counts[y]) == truth
    ]
    if not options:
        return None
    x, y = _pick(rng, options)
    px, py = phrase({attribute: x}, plural=True), phrase({attribute: y}, plural=True)
    return _Question("more", "are there more", "yes/no", f"are there more {px} than {py}?", want)


def _same_attr(facts: _Facts, rng: np.random.Generator, want: str) -> _Question | None:
    attribute = _pick(rng, ("color", "shape"))
    exclude = (attribute,)
    truth = want == "yes"
    named = [i for i in range(len(facts.objects)) if facts.refs(i, exclude)]
    options = [
        (i, j)
        for i in named
        for j in named
        if i != j
        and (facts.objects[i].attribute(attribute) == facts.objects[j].attribute(attribute))
        == truth
    ]
    if not options:
        return None
    i, j = _pick(rng, options)
    ra, rb = _pick(rng, facts.refs(i, exclude)), _pick(rng, facts.refs(j, exclude))
    text = f"does the {ra} have the same {attribute} as the {rb}?"
    return _Question("same_attr", "does the", "yes/no", text, want)


TEMPLATES: dict[str, Template] = {
    "color_of": _color_of,
    "shape_of": _shape_of,
    "size_of": _size_of,
    "what_rel": _what_rel,
    "color_rel": _color_rel,
    "count_attr": _count_attr,
    "count_rel": _count_rel,
    "exists": _exists,
    "rel_yn": _rel_yn,
    "more": _more,
    "same_attr": _same_attr,
}
_YES_NO = frozenset({"exists", "rel_yn", "more", "same_attr"})

# Share of questions whose annotators are in a "low accuracy" mode, by template difficulty:
# attribute lookups are easy, counting and comparisons medium, spatial relations hard.
_DIFFICULTY = {
    "color_of": 0,
    "shape_of": 0,
    "size_of": 0,
    "exists": 0,
    "count_attr": 1,
    "more": 1,
    "same_attr": 1,
    "count_rel": 2,
    "what_rel": 2,
    "color_rel": 2,
    "rel_yn": 2,
}
_LOW_MODE = (0.05, 0.12, 0.2)
_HIGH_BETA = ((40.0, 1.0), (25.0, 1.2), (18.0, 1.4))  # mean accuracy 0.98, 0.95, 0.93
_LOW_BETA = (4.0, 2.0)  # mean 0.67: an ambiguous-looking image or careless workers
# Number words the official normalisation maps to digits (its manualMap stops at ten).
_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
]


def surface_variants(answer: str) -> tuple[str, ...]:
    """Spellings that the official VQA answer normalisation folds into `answer`.

    Punctuation, case, articles and number words (processPunctuation + processDigitArticle).
    """
    if answer.isdigit():
        if int(answer) >= len(_NUMBER_WORDS):
            return (f"{answer}.",)
        word = _NUMBER_WORDS[int(answer)]
        return (word, word.capitalize(), f"{answer}.") + (("none",) if answer == "0" else ())
    if answer in SHAPES:
        return (f"a {answer}", f"the {answer}", answer.capitalize(), f"{answer}.")
    return (answer.capitalize(), f"{answer}.")


def _wrong_answer(question: _Question, rng: np.random.Generator) -> str:
    """A plausible mistake: a neighbouring count, another colour or shape, the opposite yes/no."""
    truth = question.answer
    if question.answer_type == "yes/no":
        return "no" if truth == "yes" else "yes"
    if question.answer_type == "number":
        n = int(truth)
        step = _pick(rng, (1, 1, 1, 2)) * _pick(rng, (-1, 1))
        return str(n + step if n + step >= 0 else n + abs(step))
    pool = next(p for p in (COLORS, SHAPES, SIZES) if truth in p)
    return _pick(rng, [v for v in pool if v != truth])


def _human_answers(
    question: _Question, rng: np.random.Generator, variant_rate: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Ten answers as in the release, and their canonical forms (kept for statistics only)."""
    level = _DIFFICULTY[question.template]
    a, b = _LOW_BETA if rng.random() < _LOW_MODE[level] else _HIGH_BETA[level]
    accuracy = rng.beta(a, b)
    confusion = _wrong_answer(question, rng)  # annotators tend to make the same mistake
    correct_u, confusion_u, variant_u, confidence_u = rng.random((4, 10)).tolist()
    answers, canonical = [], []
    for k in range(10):
        correct = correct_u[k] < accuracy
        if correct:
            value = question.answer
        else:
            value = confusion if confusion_u[k] < 0.7 else _wrong_answer(question, rng)
        text = _pick(rng, surface_variants(value)) if variant_u[k] < variant_rate else value
        # Unsure annotators say "maybe" or "no" more often when they are wrong.
        yes_up_to, maybe_up_to = (0.9, 0.98) if correct else (0.5, 0.85)
        u = confidence_u[k]
        confidence = "yes" if u < yes_up_to else "maybe" if u < maybe_up_to else "no"
        answers.append({"answer": text, "answer_confidence": confidence, "answer_id": k + 1})
        canonical.append(value)
    return answers, canonical


def _most_frequent(values: list[str]) -> str:
    """Most frequent canonical answer; ties go to the earliest annotator, for determinism."""
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


# ---- writing ----------------------------------------------------------------------------------


@dataclass
class _Item:
    question: _Question
    image_id: int
    question_id: int
    answers: list[dict[str, Any]]
    canonical: list[str]
    multiple_choice_answer: str


def _questions_for(
    facts: _Facts,
    rng: np.random.Generator,
    spec: VqaWorldSpec,
    yes_no_balance: dict[str, Counter],
) -> list[_Question]:
    """Draw templates by weight until the image has its questions; an infeasible template
    (no unique referent, no option with the wanted answer) just yields to another draw."""
    names = [n for n, _ in spec.template_weights]
    cumulative = list(itertools.accumulate(w for _, w in spec.template_weights))
    base = int(spec.questions_per_image)
    wanted = base + int(rng.random() < spec.questions_per_image - base)
    out: list[_Question] = []
    for _ in range(wanted * 20):
        if len(out) == wanted:
            break
        name = names[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
        want = ""
        if name in _YES_NO:
            # Ask for whichever answer this template has given less often so far: yes/no is
            # then close to 50/50 per template, and a language-only prior gains nothing.
            balance = yes_no_balance[name]
            if balance["yes"] == balance["no"]:
                want = _pick(rng, ("yes", "no"))
            else:
                want = "yes" if balance["yes"] < balance["no"] else "no"
        question = TEMPLATES[name](facts, rng, want)
        if question is None or any(q.text == question.text for q in out):
            continue
        if want:
            yes_no_balance[name][want] += 1
        out.append(question)
    return out


def _generate_split(
    spec: VqaWorldSpec, split_index: int, image_ids: list[int]
) -> tuple[list[Scene], list[_Item]]:
    scenes: list[Scene] = []
    items: list[_Item] = []
    balance: dict[str, Counter] = defaultdict(Counter)
    for i, image_id in enumerate(image_ids):
        # One stream per image: scene i does not change when the split grows.
        rng = np.random.default_rng([spec.seed, split_index, i])
        scene = sample_scene(rng, spec.scene)
        scenes.append(scene)
        for k, question in enumerate(_questions_for(_Facts(scene), rng, spec, balance)):
            answers, canonical = _human_answers(question, rng, spec.variant_rate)
            items.append(
                _Item(
                    question=question,
                    image_id=image_id,
                    question_id=image_id * 1000 + k,
                    answers=answers,
                    canonical=canonical,
                    multiple_choice_answer=_most_frequent(canonical),
                )
            )
    return scenes, items


def _image_ids(spec: VqaWorldSpec) -> tuple[list[int], list[int]]:
    """Distinct, non-contiguous ids across both splits, as COCO's are (readers must not assume
    contiguity or 0-based ids)."""
    total = spec.n_train_images + spec.n_val_images
    rng = np.random.default_rng([spec.seed, 1_000_003])
    ids = (rng.choice(max(600_000, 4 * total), size=total, replace=False) + 1).tolist()
    return ids[: spec.n_train_images], ids[spec.n_train_images :]


def image_file_name(split: str, image_id: int) -> str:
    return f"COCO_{split}_{image_id:012d}.png"


def questions_file_name(split: str) -> str:
    return f"v2_OpenEnded_mscoco_{split}_questions.json"


def annotations_file_name(split: str) -> str:
    return f"v2_mscoco_{split}_annotations.json"


_LICENSE = {
    "url": "http://creativecommons.org/licenses/by/4.0/",
    "name": "Creative Commons Attribution 4.0 International License",
}


def _info(spec: VqaWorldSpec) -> dict[str, Any]:
    return {
        "description": "optima-repro synthetic shapes world in the VQA v2 format (not real VQA)",
        "version": "2.0",
        "contributor": "harness.data.synthetic.vqa",
        "spec": asdict(spec),
    }


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload), encoding="utf-8")  # dumps uses the C encoder


def _write_split(
    root: Path,
    spec: VqaWorldSpec,
    split: str,
    scenes: list[Scene],
    image_ids: list[int],
    *,
    items: list[_Item],
    progress: bool,
) -> None:
    info = _info(spec)
    _write_json(
        root / questions_file_name(split),
        {
            "info": info,
            "task_type": "Open-Ended",
            "data_type": "mscoco",
            "license": _LICENSE,
            "data_subtype": split,
            "questions": [
                {
                    "image_id": it.image_id,
                    "question": it.question.text,
                    "question_id": it.question_id,
                }
                for it in items
            ],
        },
    )
    _write_json(
        root / annotations_file_name(split),
        {
            "info": info,
            "license": _LICENSE,
            "data_subtype": split,
            "data_type": "mscoco",
            "annotations": [
                {
                    "question_type": it.question.question_type,
                    "multiple_choice_answer": it.multiple_choice_answer,
                    "answers": it.answers,
                    "image_id": it.image_id,
                    "answer_type": it.question.answer_type,
                    "question_id": it.question_id,
                }
                for it in items
            ],
        },
    )
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(scenes), desc=f"VQA {split} images", unit="img", disable=not progress)
    with bar:
        for scene, image_id in zip(scenes, image_ids, strict=True):
            image = render(scene, spec.image_size)
            image.save(folder / image_file_name(split, image_id), format="PNG", compress_level=6)
            bar.update()


def _vqa_accuracy(prediction: str, humans: list[str]) -> float:
    """The official leave-one-out soft accuracy on canonical answers."""
    scores = []
    for i in range(len(humans)):
        others = humans[:i] + humans[i + 1 :]
        scores.append(min(1.0, sum(h == prediction for h in others) / 3))
    return sum(scores) / len(scores)


def _split_summary(n_images: int, items: list[_Item]) -> dict[str, Any]:
    n = len(items)
    yes_no = [it for it in items if it.question.answer_type == "yes/no"]
    return {
        "images": n_images,
        "questions": n,
        "answer_types": dict(sorted(Counter(it.question.answer_type for it in items).items())),
        "templates": dict(sorted(Counter(it.question.template for it in items).items())),
        "yes_share": round(
            sum(it.question.answer == "yes" for it in yes_no) / max(1, len(yes_no)), 4
        ),
        # Raw strings, as the file holds them, and after folding surface variants.
        "all_ten_agree_raw": round(
            sum(len({a["answer"] for a in it.answers}) == 1 for it in items) / max(1, n), 4
        ),
        "all_ten_agree_normalised": round(
            sum(len(set(it.canonical)) == 1 for it in items) / max(1, n), 4
        ),
        "majority_is_truth": round(
            sum(it.multiple_choice_answer == it.question.answer for it in items) / max(1, n), 4
        ),
    }


def _majority_baseline(train: list[_Item], val: list[_Item]) -> dict[str, Any]:
    """Val accuracy of answering each template with its most frequent train answer: what a
    model that ignores the image (and most of the question) scores."""
    by_template: dict[str, Counter] = defaultdict(Counter)
    for it in train:
        by_template[it.question.template][it.multiple_choice_answer] += 1
    per_template: dict[str, list[float]] = defaultdict(list)
    exact = []
    for it in val:
        guess = by_template[it.question.template].most_common(1)[0][0]
        per_template[it.question.template].append(_vqa_accuracy(guess, it.canonical))
        exact.append(guess == it.multiple_choice_answer)
    scores = [s for v in per_template.values() for s in v]
    return {
        "vqa_accuracy": round(sum(scores) / max(1, len(scores)), 4),
        "exact_match": round(sum(exact) / max(1, len(exact)), 4),
        "per_template": {k: round(sum(v) / len(v), 4) for k, v in sorted(per_template.items())},
    }


def write_vqa_world(root: Path, spec: VqaWorldSpec, *, progress: bool = False) -> dict[str, Any]:
    """Write both splits under `root` and return a summary (counts, shares, the baseline)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    train_ids, val_ids = _image_ids(spec)
    items: dict[str, list[_Item]] = {}
    summary: dict[str, Any] = {"splits": {}}
    for split_index, (split, ids) in enumerate(zip(SPLITS, (train_ids, val_ids), strict=True)):
        scenes, items[split] = _generate_split(spec, split_index, ids)
        _write_split(root, spec, split, scenes, ids, items=items[split], progress=progress)
        summary["splits"][split] = _split_summary(len(ids), items[split])
    summary["majority_baseline"] = _majority_baseline(items["train2014"], items["val2014"])
    return summary
