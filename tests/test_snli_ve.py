"""SNLI-VE: the synthetic world, the reader on a hand-written real-format sample, the metric.

``fixtures/snli_ve/snli_ve_dev.jsonl`` is written by hand in the release format: full SNLI
records (parses, annotator labels), both spellings of the image id field, one record without
annotator consensus. The tests copy it into a temporary root beside tiny JPEGs.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from world_files import tree_hash

from harness.data.snli_ve import LABELS, SnliVeExample, check, read_jsonl, read_snli_ve
from harness.data.synthetic import cache
from harness.data.synthetic.scenes import (
    COLORS,
    RELATIONS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    matching,
    sample_scene,
)
from harness.data.synthetic.snli_ve import (
    SPLITS,
    TextBalance,
    caption,
    hypotheses_for,
    snli_ve_world_spec,
    write_snli_ve_world,
)
from harness.errors import ConfigError, DataError
from harness.tasks.snli_ve_eval import evaluate, evaluate_files, read_predictions

FIXTURES = Path(__file__).parent / "fixtures" / "snli_ve"
DEV = "snli_ve_dev.jsonl"
FIXTURE_IMAGES = ("3416050480", "2248275918")
SMOKE = snli_ve_world_spec("smoke")
TINY = snli_ve_world_spec("smoke", n_train_images=20, n_dev_images=6, n_test_images=6)


# --- the synthetic world ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("snli_ve") / "world"
    return root, write_snli_ve_world(root, SMOKE)


def test_world_is_read_back_in_the_real_layout(world: tuple[Path, dict]) -> None:
    root, summary = world
    seen_images: set[str] = set()
    for split in SPLITS:
        path = root / f"snli_ve_{split}.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert {"Flickr30K_ID", "captionID", "gold_label", "pairID", "sentence1", "sentence2"} <= (
            set(records[0])
        )
        data = read_snli_ve(root, split)
        assert data.files == {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
        assert len(data.examples) + len(data.skipped) == len(records)
        assert len(data.skipped) == summary["splits"][split]["no_consensus"]
        images = {e.image_id for e in data.examples}
        assert len(images) == summary["splits"][split]["images"] == SMOKE.split_sizes[split]
        assert not images & seen_images, "an image in two splits"
        seen_images |= images
        first = data.examples[0]
        assert first.image_path == root / "flickr30k-images" / f"{first.image_id}.jpg"
        assert first.image_id.isdigit() and first.pair_id.startswith(f"{first.image_id}.jpg#")
    with Image.open(first.image_path) as img:
        assert img.format == "JPEG" and img.size == (48, 48)


def test_labels_are_balanced_and_a_few_lack_consensus(world: tuple[Path, dict]) -> None:
    root, summary = world
    for split in SPLITS:
        labels = check(root, split)["labels"]
        assert labels == summary["splits"][split]["labels"]
        assert len(set(labels.values())) == 1, labels  # one hypothesis per label per image
    assert 0 < summary["splits"]["train"]["no_consensus"] < 0.05 * SMOKE.n_train_images


def test_text_alone_does_not_tell_entailed_from_contradicted(world: tuple[Path, dict]) -> None:
    """Same templates for both labels, each text given to both about equally often: a lookup
    from hypothesis text to its train label is at chance on dev for the pair."""
    root, summary = world
    by_text: dict[str, Counter[str]] = defaultdict(Counter)
    for e in read_snli_ve(root, "train").examples:
        by_text[e.hypothesis][e.label] += 1
    hits = [
        max(("entailment", "contradiction"), key=lambda lab: by_text[e.hypothesis][lab]) == e.label
        for e in read_snli_ve(root, "dev").examples
        if e.label != "neutral"
    ]
    assert 0.4 < sum(hits) / len(hits) < 0.6
    assert all(0.6 < v < 0.73 for v in summary["text_only_baseline"].values())  # neutral + chance


def test_world_is_deterministic(tmp_path: Path) -> None:
    write_snli_ve_world(tmp_path / "a", TINY)
    write_snli_ve_world(tmp_path / "b", TINY)
    write_snli_ve_world(tmp_path / "c", snli_ve_world_spec("smoke", **{**_tiny(), "seed": 1}))
    assert tree_hash(tmp_path / "a") == tree_hash(tmp_path / "b")
    assert tree_hash(tmp_path / "a") != tree_hash(tmp_path / "c")


def _tiny() -> dict[str, int]:
    return {"n_train_images": 20, "n_dev_images": 6, "n_test_images": 6}


def test_cached_world_reads(tmp_path: Path) -> None:
    path = cache.ensure_world(tmp_path, "snli_ve", TINY, write_snli_ve_world, progress=False)
    assert cache.is_complete(path)
    assert read_snli_ve(path, "test").examples


def test_spec_errors() -> None:
    with pytest.raises(ConfigError, match="unknown SNLI-VE world preset"):
        snli_ve_world_spec("huge")
    with pytest.raises(ConfigError, match="unknown templates"):
        snli_ve_world_spec("smoke", template_weights=(("colour", 1.0),))
    with pytest.raises(ConfigError, match="no_consensus_rate"):
        snli_ve_world_spec("smoke", no_consensus_rate=1.5)


# An independent reading of the hypotheses: parse the text, decide it on the symbolic scene.
_WORDS = {**{s: "size" for s in SIZES}, **{c: "color" for c in COLORS}}
_WORDS.update({s: "shape" for s in SHAPES})


def _named(scene: Scene, noun_phrase: str) -> list[Any]:
    values = {}
    for word in noun_phrase.split():
        word = word.removesuffix("s") if word.removesuffix("s") in SHAPES else word
        if word in _WORDS:
            values[_WORDS[word]] = word
        else:
            assert word in ("object", "objects"), noun_phrase
    return matching(scene, **values)


def _truth(scene: Scene, text: str) -> bool:
    if m := re.fullmatch(r"there is a (\w+ \w+)\.", text):
        return bool(_named(scene, m[1]))
    if m := re.fullmatch(r"there (?:is|are) exactly (one|two|three) (.+)\.", text):
        return len(_named(scene, m[2])) == ("one", "two", "three").index(m[1]) + 1
    if m := re.fullmatch(r"the (.+) is (\w+)\.", text):
        (obj,) = _named(scene, m[1])  # a colour claim names exactly one object
        return obj.color == m[2]
    m = re.fullmatch(r"a (.+) is (left of|right of|above|below) a (.+)\.", text)
    assert m, text
    test = RELATIONS[m[2].replace(" ", "_")]
    return any(x is not y and test(x, y) for x in _named(scene, m[1]) for y in _named(scene, m[3]))


def test_entailed_hypotheses_hold_and_contradicted_ones_fail() -> None:
    spec = SMOKE.scene
    balance = TextBalance()
    templates: Counter[str] = Counter()
    for i in range(300):
        rng = np.random.default_rng([7, i])
        scene = sample_scene(rng, spec)
        hyps = hypotheses_for(scene, rng, balance=balance)
        assert sorted(h.label for h in hyps) == sorted(LABELS)
        for h in hyps:
            templates[h.template] += 1
            if h.label == "neutral":
                subject = re.match(r"(the|a) (.+?) (is|was|were) ", h.text)
                assert subject, h.text
                if subject[2] != "shapes":  # a neutral claim names an object that is there
                    named = _named(scene, subject[2])
                    assert len(named) == 1 if subject[1] == "the" else named, h.text
            else:
                assert _truth(scene, h.text) == (h.label == "entailment"), (h, scene)
    assert set(templates) == {
        "exists",
        "color",
        "count",
        "relation",
        "material",
        "property",
        "drawn",
    }


def test_caption_lists_every_object() -> None:
    rng = np.random.default_rng(3)
    objects = (
        SceneObject("square", "green", "large", 0, 0),
        SceneObject("circle", "red", "small", 0, 2),
        SceneObject("square", "green", "large", 1, 1),
    )
    text = caption(Scene(grid=3, objects=objects), rng)
    assert re.fullmatch(
        r"two large green squares and a small red circle (on|against) a dark background\.", text
    )


# --- the reader on the hand-written sample ----------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "snli_ve"
    shutil.copytree(FIXTURES, data)
    (data / "flickr30k-images").mkdir()
    for image_id in FIXTURE_IMAGES:
        Image.new("RGB", (10, 8), (120, 60, 30)).save(data / "flickr30k-images" / f"{image_id}.jpg")
    return data


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / DEV).read_text().splitlines()]


def _write(root: Path, lines: list[Any]) -> Path:
    """Rewrite the dev file: dicts as JSON, strings verbatim."""
    path = root / DEV
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_reads_the_real_format_with_both_id_spellings(root: Path) -> None:
    data = read_snli_ve(root, "dev")
    assert [e.pair_id for e in data.examples] == [
        "3416050480.jpg#4r1e",
        "3416050480.jpg#4r1n",  # Flikr30kID with ".jpg"
        "2248275918.jpg#0r1c",
        "2248275918.jpg#0r1e",  # both spellings, agreeing
    ]
    assert [e.image_id for e in data.examples] == ["3416050480"] * 2 + ["2248275918"] * 2
    assert [e.label for e in data.examples] == ["entailment", "neutral", "contradiction"] + [
        "entailment"
    ]
    assert data.skipped == ("3416050480.jpg#4r1c",)
    first = data.examples[0]
    assert first.image_path == root / "flickr30k-images" / "3416050480.jpg"
    assert first.premise.startswith("A brown dog") and first.hypothesis == "An animal is outside."
    assert data.files == {DEV: hashlib.sha256((root / DEV).read_bytes()).hexdigest()}


def test_check_summary(root: Path) -> None:
    summary = check(root, "dev")
    assert summary["examples"] == 4 and summary["images"] == 2
    assert summary["labels"] == {"entailment": 2, "neutral": 1, "contradiction": 1}
    assert summary["skipped_no_consensus"] == 1
    assert set(summary["sha256"]) == {DEV}
    json.dumps(summary)


def test_unlabelled_split_reads_with_no_labels(root: Path) -> None:
    recs = [{k: v for k, v in r.items() if k != "gold_label"} for r in _records()]
    _write(root, recs)
    data = read_snli_ve(root, "dev")
    assert not data.labelled and len(data.examples) == 5


def _fixture_with(change: dict[int, Any]) -> list[Any]:
    """The fixture's records, with line n (1-based) replaced or edited."""
    recs: list[Any] = _records()
    for line, value in change.items():
        recs[line - 1] = value(recs[line - 1]) if callable(value) else value
    return recs


def _edit(**fields: Any):
    def apply(rec: dict[str, Any]) -> dict[str, Any]:
        out = {**rec, **fields}
        return {k: v for k, v in out.items() if v is not _DROP}

    return apply


_DROP = object()

FAILURES = {
    "malformed JSON": ({2: '{"pairID": "x",'}, 2, None, "malformed JSON"),
    "not an object": ({2: "[1, 2]"}, 2, None, "expected a JSON object"),
    "missing hypothesis": ({3: _edit(sentence2=_DROP)}, 3, "sentence2", "missing"),
    "mistyped pairID": ({4: _edit(pairID=17)}, 4, "pairID", "expected a string"),
    "unknown label": ({4: _edit(gold_label="contradicts")}, 4, "gold_label", "unknown label"),
    "labels stop": ({5: _edit(gold_label=_DROP)}, 5, "gold_label", "missing"),
    "duplicate pairID": ({4: _edit(pairID="3416050480.jpg#4r1e")}, 4, "pairID", "first at line 1"),
    "no image id": ({4: _edit(Flikr30kID=_DROP)}, 4, "Flickr30K_ID", "missing"),
    "mistyped image id": ({1: _edit(Flickr30K_ID=3416050480)}, 1, "Flickr30K_ID", "a string"),
    "image id is a path": ({1: _edit(Flickr30K_ID="../x")}, 1, "Flickr30K_ID", "image id"),
    "spellings disagree": ({5: _edit(Flikr30kID="1.jpg")}, 5, "Flikr30kID", "different images"),
    "missing image": (
        {4: _edit(Flikr30kID="999.jpg"), 5: _edit(Flickr30K_ID="999", Flikr30kID="999.jpg")},
        4,
        "Flikr30kID",
        "image not found",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES), ids=list(FAILURES))
def test_each_failure_names_file_line_and_field(root: Path, case: str) -> None:
    change, line, field, message = FAILURES[case]
    path = _write(root, _fixture_with(change))
    with pytest.raises(DataError, match=re.escape(message)) as err:
        read_snli_ve(root, "dev")
    assert err.value.file == str(path)
    assert err.value.record == f"line {line}"
    assert err.value.field == field
    assert f"{path}, record line {line}" in str(err.value)


def test_empty_split_and_missing_file(root: Path) -> None:
    path = _write(root, [r for r in _records() if r["gold_label"] == "-"] + [""])
    with pytest.raises(DataError, match="no usable example.*1 without annotator consensus"):
        read_snli_ve(root, "dev")
    with pytest.raises(DataError, match="split 'test' not found") as err:
        read_snli_ve(root, "test")
    assert err.value.file == str(root / "snli_ve_test.jsonl")
    path.write_text("\n\n")
    with pytest.raises(DataError, match="no usable example"):
        read_snli_ve(root, "dev")


def test_image_folder_may_be_a_symlink(root: Path, tmp_path: Path) -> None:
    """Real set-ups link a shared Flickr30k copy into the data root."""
    shared = tmp_path / "shared-flickr30k"
    (root / "flickr30k-images").rename(shared)
    (root / "flickr30k-images").symlink_to(shared, target_is_directory=True)
    assert len(read_snli_ve(root, "dev").examples) == 4


def test_images_are_optional_for_scoring(root: Path) -> None:
    shutil.rmtree(root / "flickr30k-images")
    assert len(read_snli_ve(root, "dev", check_images=False).examples) == 4
    assert len(read_jsonl(root / DEV).examples) == 4


# --- the metric -------------------------------------------------------------------------------


def _example(pair_id: str, label: str | None) -> SnliVeExample:
    return SnliVeExample(pair_id, "1", Path("1.jpg"), "p", "h", label)


GOLD = [
    _example("a", "entailment"),
    _example("b", "entailment"),
    _example("c", "neutral"),
    _example("d", "neutral"),
    _example("e", "contradiction"),
    _example("f", "contradiction"),
]


def test_accuracy_golden() -> None:
    # Right: a, c, d, f; wrong: b (said neutral), e (said entailment). 4/6.
    predictions = {
        "a": "entailment",
        "b": "neutral",
        "c": "neutral",
        "d": "neutral",
        "e": "entailment",
        "f": "contradiction",
    }
    scores = evaluate(GOLD, predictions)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["per_label"] == {"entailment": 0.5, "neutral": 1.0, "contradiction": 0.5}
    assert scores["examples"] == 6
    assert evaluate(GOLD, {e.pair_id: e.label for e in GOLD})["accuracy"] == 1.0
    assert evaluate(GOLD, dict.fromkeys("abcdef", "neutral"))["accuracy"] == pytest.approx(1 / 3)


def test_accuracy_on_raw_records_skips_no_consensus() -> None:
    records = [
        {"pairID": "x", "gold_label": "neutral"},
        {"pairID": "y", "gold_label": "-"},
        {"pairID": "z", "gold_label": "contradiction"},
    ]
    predictions = {"x": "neutral", "y": "entailment", "z": "entailment"}  # y is not scored
    scores = evaluate(records, predictions)
    assert scores["accuracy"] == 0.5 and scores["examples"] == 2
    assert scores["per_label"]["entailment"] is None


@pytest.mark.parametrize(
    ("predictions", "message", "field"),
    [
        ({"a": "entailment"}, "no prediction for 5 pair(s)", "pairID"),
        ({**dict.fromkeys("abcdef", "neutral"), "zz": "neutral"}, "1 pairID(s) not in", "pairID"),
        ({**dict.fromkeys("abcde", "neutral"), "f": "Neutral"}, "unknown label 'Neutral'", None),
    ],
    ids=["missing", "extra", "unknown label"],
)
def test_metric_errors(predictions: dict[str, str], message: str, field: str | None) -> None:
    with pytest.raises(DataError, match=re.escape(message)) as err:
        evaluate(GOLD, predictions, predictions_file="p.csv")
    assert err.value.file == "p.csv"
    assert err.value.field == (field or "prediction")


def test_metric_refuses_unscorable_gold() -> None:
    with pytest.raises(DataError, match="duplicate pairID 'a'"):
        evaluate([*GOLD, _example("a", "neutral")], {})
    with pytest.raises(DataError, match="cannot be scored"):
        evaluate([_example("a", None)], {"a": "neutral"})


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "predictions.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_evaluate_files_end_to_end(root: Path, tmp_path: Path) -> None:
    shutil.rmtree(root / "flickr30k-images")  # scoring needs no images
    path = _csv(
        tmp_path,
        "\ufeffpairID,prediction\n"  # a spreadsheet's BOM
        "3416050480.jpg#4r1e,entailment\n"
        "3416050480.jpg#4r1n,contradiction\n"
        "3416050480.jpg#4r1c,neutral\n"  # the no-consensus record: ignored
        "2248275918.jpg#0r1c,contradiction\n"
        "\n"
        "2248275918.jpg#0r1e,entailment\n",
    )
    scores = evaluate_files(root / DEV, path)
    assert scores["accuracy"] == pytest.approx(3 / 4) and scores["examples"] == 4


CSV_FAILURES = {
    "empty file": ("", None, "empty file"),
    "wrong header": ("pair_id,label\nx,neutral\n", "line 1 (pair_id)", "a header row must read"),
    "one column": ("pairID,prediction\nx\n", "line 2", "expected 'pairID,prediction'"),
    "unknown label": ("pairID,prediction\nx,neutral\ny,maybe\n", "line 3 (y)", "expected one of"),
    "duplicate": ("pairID,prediction\nx,neutral\nx,neutral\n", "line 3", "first at line 2"),
    "header only": ("pairID,prediction\n", None, "no predictions"),
    "unclosed quote": ('x,neutral\n"y,neutral\n' + "z,neutral\n" * 20000, "line 2", "quote"),
}


@pytest.mark.parametrize("case", list(CSV_FAILURES), ids=list(CSV_FAILURES))
def test_predictions_csv_errors(tmp_path: Path, case: str) -> None:
    text, record, message = CSV_FAILURES[case]
    path = _csv(tmp_path, text)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        read_predictions(path)
    assert err.value.file == str(path) and err.value.record == record


def test_predictions_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_predictions(tmp_path / "none.csv")
