"""The synthetic VQA world: official layout, ten answers with disagreement, determinism, cache."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from world_files import tree_hash

from harness.data.synthetic import cache
from harness.data.synthetic.scenes import (
    Scene,
    SceneObject,
    SceneSpec,
    count,
    referring_phrases,
    related,
    render,
    sample_scene,
)
from harness.data.synthetic.vqa import (
    SPLITS,
    VqaWorldSpec,
    annotations_file_name,
    image_file_name,
    questions_file_name,
    vqa_world_spec,
    write_vqa_world,
)
from harness.errors import ConfigError

SMOKE = vqa_world_spec("smoke")
TINY = vqa_world_spec("smoke", n_train_images=12, n_val_images=6)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("vqa") / "world"
    return root, write_vqa_world(root, SMOKE)


def _load(root: Path, split: str) -> tuple[dict, dict]:
    questions = json.loads((root / questions_file_name(split)).read_text())
    annotations = json.loads((root / annotations_file_name(split)).read_text())
    return questions, annotations


def test_official_file_names_and_top_level_keys(world: tuple[Path, dict]) -> None:
    root, _ = world
    for split in SPLITS:
        assert (root / f"v2_OpenEnded_mscoco_{split}_questions.json").is_file()
        assert (root / f"v2_mscoco_{split}_annotations.json").is_file()
        questions, annotations = _load(root, split)
        assert {"info", "task_type", "data_type", "license", "data_subtype", "questions"} <= set(
            questions
        )
        assert questions["task_type"] == "Open-Ended" and questions["data_type"] == "mscoco"
        assert {"info", "license", "data_subtype", "annotations"} <= set(annotations)
        assert questions["data_subtype"] == annotations["data_subtype"] == split
        assert set(questions["questions"][0]) == {"image_id", "question", "question_id"}
        assert set(annotations["annotations"][0]) == {
            "question_type",
            "multiple_choice_answer",
            "answers",
            "image_id",
            "answer_type",
            "question_id",
        }


def test_every_question_has_ten_answers(world: tuple[Path, dict]) -> None:
    root, _ = world
    for split in SPLITS:
        questions, annotations = _load(root, split)
        by_id = {a["question_id"]: a for a in annotations["annotations"]}
        assert [q["question_id"] for q in questions["questions"]] == list(by_id)
        for q in questions["questions"]:
            ann = by_id[q["question_id"]]
            assert ann["image_id"] == q["image_id"]
            assert q["question"].endswith("?")
            assert [a["answer_id"] for a in ann["answers"]] == list(range(1, 11))
            assert {a["answer_confidence"] for a in ann["answers"]} <= {"yes", "maybe", "no"}
            assert ann["answer_type"] in {"yes/no", "number", "other"}
            assert ann["multiple_choice_answer"]


def test_images_decode_with_spec_size(world: tuple[Path, dict]) -> None:
    root, _ = world
    for split in SPLITS:
        questions, _ = _load(root, split)
        image_ids = {q["image_id"] for q in questions["questions"]}
        files = sorted((root / split).iterdir())
        assert {p.name for p in files} >= {image_file_name(split, i) for i in image_ids}
        assert files[0].name.startswith(f"COCO_{split}_") and len(files[0].stem) == len(
            f"COCO_{split}_" + "0" * 12
        )
        for path in files[:50]:
            with Image.open(path) as image:
                assert image.size == (SMOKE.image_size, SMOKE.image_size)
                assert image.mode == "RGB"


def test_same_spec_writes_byte_identical_files(world: tuple[Path, dict], tmp_path: Path) -> None:
    root, summary = world
    assert write_vqa_world(tmp_path / "again", SMOKE) == summary
    assert tree_hash(tmp_path / "again") == tree_hash(root)


def test_answer_types_and_yes_no_balance(world: tuple[Path, dict]) -> None:
    root, summary = world
    for split in SPLITS:
        _, annotations = _load(root, split)
        types = Counter(a["answer_type"] for a in annotations["annotations"])
        assert set(types) == {"yes/no", "number", "other"}
        yes_no = [a for a in annotations["annotations"] if a["answer_type"] == "yes/no"]
        share = sum(a["multiple_choice_answer"] == "yes" for a in yes_no) / len(yes_no)
        assert 0.4 <= share <= 0.6, f"{split}: yes share {share:.2f}"
    # A language-only prior (majority answer per template) must stay far from solving it.
    assert summary["majority_baseline"]["vqa_accuracy"] < 0.55


def test_answers_disagree_for_a_reasonable_share(world: tuple[Path, dict]) -> None:
    root, _ = world
    _, annotations = _load(root, "train2014")
    anns = annotations["annotations"]
    disagree = sum(len({a["answer"] for a in ann["answers"]}) > 1 for ann in anns) / len(anns)
    assert 0.2 <= disagree <= 0.95
    # ... yet the most frequent answer is the answer of most annotators, as in the release.
    for ann in anns:
        top = Counter(a["answer"] for a in ann["answers"]).most_common(1)[0][1]
        assert top >= 2


def test_splits_share_no_image_or_question_id(world: tuple[Path, dict]) -> None:
    root, _ = world
    ids = {}
    for split in SPLITS:
        questions, _ = _load(root, split)
        ids[split] = (
            {q["image_id"] for q in questions["questions"]},
            {q["question_id"] for q in questions["questions"]},
        )
        assert len(ids[split][1]) == len(questions["questions"])
    (train_images, train_questions), (val_images, val_questions) = ids.values()
    assert not train_images & val_images
    assert not train_questions & val_questions


def test_presets_and_spec_validation() -> None:
    assert vqa_world_spec("default").n_train_images > SMOKE.n_train_images
    with pytest.raises(ConfigError, match="preset"):
        vqa_world_spec("huge")
    with pytest.raises(ConfigError, match="template"):
        VqaWorldSpec(template_weights=(("no_such_template", 1.0),))
    # A spec read back from a marker file equals the original, so its cache key is stable.
    again = VqaWorldSpec(**json.loads(json.dumps(asdict(SMOKE))))
    assert again == SMOKE and cache.spec_hash(again) == cache.spec_hash(SMOKE)


def _entries(folder: Path) -> list[str]:
    """What a world cache holds besides its lock files."""
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock")


class _CountingWriter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, root: Path, spec: VqaWorldSpec, *, progress: bool) -> dict:
        self.calls += 1
        return write_vqa_world(root, spec, progress=progress)


def test_ensure_world_reuses_a_complete_world(tmp_path: Path, capsys) -> None:
    writer = _CountingWriter()
    first = cache.ensure_world(tmp_path, "vqa-tiny", TINY, writer, progress=False)
    assert cache.is_complete(first) and first.parent == tmp_path
    assert cache.read_marker(first)["summary"]["splits"]["val2014"]["images"] == 6
    again = cache.ensure_world(tmp_path, "vqa-tiny", TINY, writer, progress=False)
    assert again == first and writer.calls == 1
    assert _entries(tmp_path) == [first.name]  # no temporary folder left
    assert capsys.readouterr().err == ""  # progress=False is quiet
    other = cache.ensure_world(tmp_path, "vqa-tiny", replace(TINY, seed=1), writer, progress=False)
    assert other != first and writer.calls == 2


def test_ensure_world_rebuilds_a_world_without_marker(tmp_path: Path) -> None:
    writer = _CountingWriter()
    first = cache.ensure_world(tmp_path, "vqa-tiny", TINY, writer, progress=False)
    digest = tree_hash(first)
    (first / cache.MARKER).unlink()
    (first / "stray.txt").write_text("left by a crash")
    again = cache.ensure_world(tmp_path, "vqa-tiny", TINY, writer, progress=True)
    assert again == first and writer.calls == 2
    assert cache.is_complete(again) and not (again / "stray.txt").exists()
    assert tree_hash(again) == digest
    assert _entries(tmp_path) == [first.name]


def test_ensure_world_survives_a_race(tmp_path: Path) -> None:
    writer = _CountingWriter()
    with ThreadPoolExecutor(2) as pool:
        paths = list(
            pool.map(
                lambda _: cache.ensure_world(tmp_path, "vqa-tiny", TINY, writer, progress=False),
                range(2),
            )
        )
    assert paths[0] == paths[1] and cache.is_complete(paths[0])
    assert _entries(tmp_path) == [paths[0].name]


def test_scene_relations_counts_and_referring_phrases() -> None:
    a = SceneObject("circle", "red", "large", row=0, col=0)
    b = SceneObject("circle", "blue", "small", row=0, col=2)
    c = SceneObject("square", "red", "small", row=2, col=1)
    scene = Scene(grid=3, objects=(a, b, c))
    assert related(scene, "left_of", b) == [a, c]
    assert related(scene, "below", a) == [c]
    assert count(scene, shape="circle") == 2 and count(scene, color="red", size="small") == 1
    assert "circle" not in referring_phrases(scene, a)  # two circles: not unique
    assert "square" in referring_phrases(scene, c)
    assert all("red" not in p for p in referring_phrases(scene, a, exclude=("color",)))


def test_scenes_are_seeded_and_render_at_size() -> None:
    spec = SceneSpec(grid=3, min_objects=1, max_objects=5)
    first = [sample_scene(np.random.default_rng(7), spec) for _ in range(2)]
    assert first[0] == first[1]
    scene = first[0]
    assert 1 <= len(scene.objects) <= 5
    assert len({(o.row, o.col) for o in scene.objects}) == len(scene.objects)
    image = render(scene, 48)
    assert image.size == (48, 48)
    colours = {tuple(px) for px in np.asarray(image).reshape(-1, 3).tolist()}
    assert len(colours) > 2  # background plus at least one shape
