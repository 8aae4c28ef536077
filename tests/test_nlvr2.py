"""NLVR2: the synthetic world in the release layout, the reader's checks, the official metrics."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from world_files import tree_hash

from harness.data.nlvr2 import (
    SPLITS,
    check,
    data_path,
    image_paths,
    load_records,
    pair_name,
    read_nlvr2,
)
from harness.data.synthetic import cache
from harness.data.synthetic.nlvr2 import (
    _CANDIDATES,
    TEMPLATES,
    Nlvr2WorldSpec,
    nlvr2_world_spec,
    write_nlvr2_world,
)
from harness.data.synthetic.nlvr2 import SPLITS as WORLD_SPLITS
from harness.data.synthetic.scenes import Scene, SceneObject
from harness.errors import ConfigError, DataError
from harness.tasks.nlvr2_eval import (
    consistency_key,
    evaluate,
    evaluate_files,
    read_predictions,
)

FIXTURES = Path(__file__).parent / "fixtures" / "nlvr2"
SMOKE = nlvr2_world_spec("smoke", templates=TEMPLATES)  # every template, not just the preset's
TINY = nlvr2_world_spec("smoke", n_train=30, n_dev=10, n_test1=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("nlvr2") / "world"
    return root, write_nlvr2_world(root, SMOKE)


# ---- the synthetic world -----------------------------------------------------------------------


def test_world_is_in_the_release_layout_and_reads_back(world: tuple[Path, dict]) -> None:
    root, summary = world
    assert sorted(p.name for p in root.glob("*.json")) == ["dev.json", "test1.json", "train.json"]
    for split in WORLD_SPLITS:
        data = read_nlvr2(root, split)
        assert len(data.examples) == summary["splits"][split]["examples"]
        assert data.labelled
        assert set(data.files) == {f"{split}.json"}
        lines = data_path(root, split).read_text().splitlines()
        first = json.loads(lines[0])
        assert {"identifier", "sentence", "label", "left_url", "right_url", "writer"} <= set(first)
        assert ("directory" in first) == (split == "train")
        ex = data.examples[0]
        pair = pair_name(ex.identifier)
        assert ex.left_path.name == f"{pair}-img0.png"
        assert ex.right_path.name == f"{pair}-img1.png"
        if split == "train":
            assert ex.left_path.parent == root / "images" / "train" / str(first["directory"])
        else:
            assert ex.left_path.parent == root / split
        with Image.open(ex.left_path) as img:
            assert (img.format, img.size, img.mode) == ("PNG", (48, 48), "RGB")
        report = check(root, split)
        assert report["examples"] == len(data.examples)
        assert report["images"] == 2 * report["pairs"]
        assert report["sentences"] == summary["splits"][split]["sentences"]
    train_dirs = {p.name for p in (root / "images" / "train").iterdir()}
    assert train_dirs <= {str(d) for d in range(100)} and len(train_dirs) > 50


def test_world_sizes_and_label_balance(world: tuple[Path, dict]) -> None:
    _, summary = world
    for split, wanted in (("train", 1000), ("dev", 200), ("test1", 200)):
        s = summary["splits"][split]
        assert wanted <= s["examples"] < wanted + 8  # whole sets, up to eight examples each
        assert 0.47 <= s["true_share"] <= 0.53
        assert set(s["templates"]) == set(TEMPLATES)
        for share in s["true_share_per_template"].values():
            assert 0.45 <= share <= 0.55
    # Labels cannot be read off the sentence: a text-only model stays at chance.
    for accuracy in summary["text_only_baseline"].values():
        assert 0.4 <= accuracy <= 0.6


def test_each_sentence_is_labelled_against_several_pairs_both_ways(
    world: tuple[Path, dict],
) -> None:
    root, _ = world
    for split in WORLD_SPLITS:
        groups: dict[str, list] = defaultdict(list)
        for ex in read_nlvr2(root, split).examples:
            groups[consistency_key(ex.identifier)].append(ex)
        for key, examples in groups.items():
            assert 2 <= len(examples) <= 4, key
            assert len({e.sentence for e in examples}) == 1, key
            assert {e.label for e in examples} == {True, False}, key


def test_world_is_deterministic(tmp_path: Path) -> None:
    write_nlvr2_world(tmp_path / "a", TINY)
    write_nlvr2_world(tmp_path / "b", TINY)
    write_nlvr2_world(tmp_path / "c", Nlvr2WorldSpec(**{**asdict(TINY), "seed": 1}))
    assert tree_hash(tmp_path / "a") == tree_hash(tmp_path / "b")
    assert tree_hash(tmp_path / "a") != tree_hash(tmp_path / "c")


def test_world_spec_presets_and_cache(tmp_path: Path) -> None:
    assert nlvr2_world_spec("default").n_train == 8000
    with pytest.raises(ConfigError, match="preset"):
        nlvr2_world_spec("huge")
    with pytest.raises(ConfigError, match="templates"):
        Nlvr2WorldSpec(templates=("side_has", "nope"))
    # A spec read back from a cache marker (lists) equals the original.
    assert Nlvr2WorldSpec(**json.loads(json.dumps(asdict(TINY)))) == TINY
    path = cache.ensure_world(tmp_path, "nlvr2", TINY, write_nlvr2_world, progress=False)
    assert cache.read_marker(path)["summary"]["splits"]["dev"]["examples"] >= 10
    assert read_nlvr2(path, "dev").examples


def _scene(*objects: tuple[str, str, int]) -> Scene:
    """Objects as (shape, color, cell)."""
    return Scene(
        grid=3,
        objects=tuple(
            SceneObject(shape=s, color=c, size="large", row=cell // 3, col=cell % 3)
            for s, c, cell in objects
        ),
    )


def test_statements_are_decided_by_the_pair() -> None:
    left = _scene(("circle", "red", 0), ("circle", "blue", 4))
    right = _scene(("triangle", "red", 2))
    by_text = {s.text: s for t in TEMPLATES for s in _CANDIDATES[t]}
    truths = {
        "The left image contains a red circle.": True,
        "The right image contains a red circle.": False,
        "Both images contain a red object.": True,
        "Both images contain a circle.": False,
        "Exactly one image has a blue object.": True,
        "Exactly one image has a red object.": False,
        "There are more circles in the left image than in the right image.": True,
        "There are more triangles in the left image than in the right image.": False,
        "There are two circles in total.": True,
        "There is one triangle in total.": True,
        "There are two red objects in total.": True,
        "There are three circles in total.": False,
    }
    for text, truth in truths.items():
        assert by_text[text].holds((left, right)) is truth, text
    # Swapping the images flips the side-specific statements: truth lies in the pair.
    assert by_text["The right image contains a red circle."].holds((right, left)) is True


# ---- the reader on the real format -------------------------------------------------------------


def _real_root(tmp_path: Path) -> Path:
    """The fixture lines with a tiny image for each side of each pair, in the release layout."""
    root = tmp_path / "nlvr2"
    root.mkdir()
    for split in ("dev", "train"):
        shutil.copy(FIXTURES / f"{split}.json", root / f"{split}.json")
        for rec in load_records(root / f"{split}.json", split=split)[0]:
            for path in image_paths(root, split, rec.identifier, rec.directory):
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (4, 4)).save(path)
    return root


def test_reader_on_real_format_sample(tmp_path: Path) -> None:
    root = _real_root(tmp_path)
    dev = read_nlvr2(root, "dev")
    assert [e.identifier for e in dev.examples] == [
        "dev-850-0-0",
        "dev-850-1-0",
        "dev-850-0-1",
        "dev-850-1-1",
    ]
    assert [e.label for e in dev.examples] == [True, False, False, True]
    assert dev.examples[2].left_path == root / "dev" / "dev-850-0-img0.png"
    assert dev.examples[2].right_path == root / "dev" / "dev-850-0-img1.png"
    sha = hashlib.sha256((FIXTURES / "dev.json").read_bytes()).hexdigest()
    assert dev.files == {"dev.json": sha}
    train = read_nlvr2(root, "train")
    assert train.examples[1].left_path == root / "images/train/12/train-10171-2-img0.png"
    assert train.examples[2].right_path == root / "images/train/0/train-3-1-img1.png"
    report = check(root, "dev")
    assert report | {"root": None} == {
        "dataset": "nlvr2",
        "split": "dev",
        "root": None,
        "examples": 4,
        "labelled_examples": 4,
        "true_share": 0.5,
        "sentences": 2,
        "distinct_sentence_texts": 2,
        "pairs": 2,
        "images": 4,
        "sha256": {"dev.json": sha},
    }


def _rewrite(root: Path, split: str, line: int, change) -> None:
    """Apply ``change`` to the parsed record on 1-based ``line`` (or to its raw text)."""
    path = root / f"{split}.json"
    lines = path.read_text().split("\n")
    lines[line - 1] = change(lines[line - 1])
    path.write_text("\n".join(lines))


def _field(name: str, value=None, *, drop: bool = False):
    def change(text: str) -> str:
        rec = json.loads(text)
        if drop:
            del rec[name]
        else:
            rec[name] = value
        return json.dumps(rec)

    return change


@pytest.mark.parametrize(
    ("split", "line", "change", "field", "message"),
    [
        ("dev", 2, lambda t: t[:-5], None, "malformed JSON"),
        ("dev", 2, lambda t: "[1, 2]", None, "expected a JSON object"),
        ("dev", 3, _field("sentence", drop=True), "sentence", "missing"),
        ("dev", 3, _field("sentence", 7), "sentence", "expected a non-empty string, got 7"),
        ("dev", 2, _field("identifier", drop=True), "identifier", "missing"),
        ("dev", 2, _field("identifier", "dev-850-1"), "identifier", "malformed identifier"),
        ("dev", 2, _field("identifier", "train-850-1-0"), "identifier", "split 'train'"),
        ("dev", 2, _field("identifier", "dev-850-0-0"), "identifier", "duplicate identifier"),
        ("dev", 4, _field("label", "true"), "label", 'expected the string "True" or "False"'),
        ("dev", 4, _field("label", True), "label", "got true"),
        ("dev", 3, _field("label", drop=True), "label", "missing, while earlier lines"),
        ("train", 2, _field("directory", drop=True), "directory", "missing"),
        ("train", 2, _field("directory", -1), "directory", "expected an integer"),
        ("train", 2, _field("directory", 13), "directory", "image not found"),
        ("dev", 4, _field("identifier", "dev-851-1-1"), "identifier", "image not found"),
    ],
)
def test_reader_errors_name_file_line_and_field(
    tmp_path: Path, split: str, line: int, change, field: str | None, message: str
) -> None:
    root = _real_root(tmp_path)
    _rewrite(root, split, line, change)
    with pytest.raises(DataError) as err:
        read_nlvr2(root, split)
    text = str(err.value)
    assert f"{split}.json" in text and f"line {line}" in text and message in text, text
    assert err.value.field == field and err.value.record.startswith(f"line {line}")


def test_reader_errors_on_whole_files(tmp_path: Path) -> None:
    root = _real_root(tmp_path)
    (root / "dev.json").write_text("\n\n")
    with pytest.raises(DataError, match="dev.json: the split has no examples"):
        read_nlvr2(root, "dev")
    with pytest.raises(DataError, match="test1.json: file not found"):
        read_nlvr2(root, "test1")
    with pytest.raises(DataError, match="unknown NLVR2 split"):
        read_nlvr2(root, "val")


def test_unlabelled_split_reads_with_labels_none(tmp_path: Path) -> None:
    root = _real_root(tmp_path)
    for line in range(1, 5):
        _rewrite(root, "dev", line, _field("label", drop=True))
    data = read_nlvr2(root, "dev")
    assert not data.labelled and {e.label for e in data.examples} == {None}
    with pytest.raises(DataError, match="unlabelled example"):
        evaluate(data.examples, {e.identifier: True for e in data.examples})
    _rewrite(root, "dev", 4, _field("label", "True"))
    with pytest.raises(DataError, match=r"line 4 \(dev-850-1-1\), field 'label': present, while"):
        read_nlvr2(root, "dev")


def test_line_separator_inside_a_sentence_is_not_a_line_break(tmp_path: Path) -> None:
    root = _real_root(tmp_path)
    # JSON allows a raw U+2028 in a string; str.splitlines would break the line there.
    _rewrite(root, "dev", 1, lambda t: t.replace("exactly two", "exactly\u2028two"))
    assert "\u2028" in (root / "dev.json").read_text()
    assert (
        read_nlvr2(root, "dev").examples[0].sentence
        == "The left image contains exactly\u2028two dogs."
    )


# ---- the official metrics ----------------------------------------------------------------------


def test_consistency_key_blanks_the_pair_id_as_metrics_py_does() -> None:
    assert consistency_key("dev-850-0-0") == "dev-850--0"
    assert consistency_key("dev-850-3-0") == "dev-850--0"
    assert consistency_key("dev-850-0-1") == "dev-850--1"


def test_metrics_golden_case(tmp_path: Path) -> None:
    # The fixture: 2 sentences x 2 pairs.
    #   dev-850-0-0  True   predicted True   right   sentence dev-850--0
    #   dev-850-1-0  False  predicted False  right   sentence dev-850--0
    #   dev-850-0-1  False  predicted True   wrong   sentence dev-850--1
    #   dev-850-1-1  True   predicted True   right   sentence dev-850--1
    # accuracy = 3/4 = 0.75; consistency = 1 sentence all right / 2 sentences = 0.5.
    predictions = tmp_path / "p.csv"
    predictions.write_text(
        "dev-850-0-0,True\ndev-850-1-0,False\ndev-850-0-1,True\ndev-850-1-1,True\n"
    )
    expected = {"accuracy": 0.75, "consistency": 0.5}
    assert evaluate_files(FIXTURES / "dev.json", predictions) == expected
    examples, _ = load_records(FIXTURES / "dev.json")
    assert evaluate(examples, read_predictions(predictions)) == expected
    all_right = {e.identifier: np.bool_(e.label) for e in examples}
    assert evaluate(examples, all_right) == {"accuracy": 1.0, "consistency": 1.0}
    with pytest.raises(DataError, match=r"record dev-850-0-0, field 'prediction'"):
        evaluate(examples, {**all_right, "dev-850-0-0": 1})


def test_predictions_csv_accepts_what_the_official_script_accepts(tmp_path: Path) -> None:
    # Any case (it compares lower-cased), CRLF, a header, blank lines, fields past the second.
    path = tmp_path / "p.csv"
    path.write_bytes(
        b"identifier,prediction\r\ndev-850-0-0,true\r\n\r\ndev-850-1-0,FALSE,0.93\r\n"
        b"dev-850-0-1,False\r\ndev-850-1-1,tRuE\r\n"
    )
    assert read_predictions(path) == {
        "dev-850-0-0": True,
        "dev-850-1-0": False,
        "dev-850-0-1": False,
        "dev-850-1-1": True,
    }
    assert evaluate_files(FIXTURES / "dev.json", path) == {"accuracy": 1.0, "consistency": 1.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dev-850-0-0,1\n", r"line 1 \(dev-850-0-0\), field 'prediction': expected \"True\""),
        ("dev-850-0-0, True\n", r"field 'prediction'.*got ' True'"),
        ("dev-850-0-0\n", r"line 1: expected 'identifier,prediction'"),
        ("dev-850-0-0,True\ndev-850-0-0,False\n", r"line 2, field 'identifier': duplicate"),
        (",True\n", r"line 1, field 'identifier': empty identifier"),
        ("\n", r"no predictions"),
    ],
)
def test_predictions_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_predictions(path)


def test_missing_and_extra_predictions_are_named(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("dev-850-0-0,True\ndev-850-1-0,False\ndev-850-0-1,True\n")
    missing = r"no prediction for 1 example\(s\) of dev.json: 'dev-850-1-1'"
    with pytest.raises(DataError, match=missing):
        evaluate_files(FIXTURES / "dev.json", path)
    path.write_text(path.read_text() + "dev-850-1-1,True\ndev-9-0-0,True\n")
    with pytest.raises(DataError, match=r"1 identifier\(s\) not in dev.json: 'dev-9"):
        evaluate_files(FIXTURES / "dev.json", path)
    with pytest.raises(DataError, match="file not found"):
        evaluate_files(FIXTURES / "dev.json", tmp_path / "absent.csv")


def test_reader_splits_cover_the_world() -> None:
    assert set(WORLD_SPLITS) <= set(SPLITS)
