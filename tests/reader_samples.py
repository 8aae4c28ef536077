"""Small valid data roots of the four readers in their release formats (the hand-written
fixtures plus tiny images), for the fault and fuzz tests of the readers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from harness.data import coco, nlvr2, snli_ve, vqa

FIXTURES = Path(__file__).parent / "fixtures"
# task -> (split read, data file the split's records are in, relative to the root)
SPLITS = {
    "vqa": ("train2014", "v2_OpenEnded_mscoco_train2014_questions.json"),
    "snli-ve": ("dev", "snli_ve_dev.jsonl"),
    "nlvr2": ("train", "train.json"),
    "coco": ("test", "dataset_coco.json"),
}
READ = {
    "vqa": vqa.read_vqa,
    "snli-ve": snli_ve.read_snli_ve,
    "nlvr2": nlvr2.read_nlvr2,
    "coco": coco.read_coco,
}
CHECK = {"vqa": vqa.check, "snli-ve": snli_ve.check, "nlvr2": nlvr2.check, "coco": coco.check}

COCO_SAMPLE = {
    "images": [
        {
            "filepath": "val2014",
            "sentids": [0, 1],
            "filename": "COCO_val2014_000000391895.jpg",
            "imgid": 0,
            "split": "test",
            "sentences": [
                {"tokens": ["a", "man"], "raw": "A man on a bike.", "imgid": 0, "sentid": 0},
                {"tokens": ["a", "bike"], "raw": "A bike on a road.", "imgid": 0, "sentid": 1},
            ],
            "cocoid": 391895,
        },
        {
            "filepath": "val2014",
            "sentids": [2],
            "filename": "COCO_val2014_000000000073.jpg",
            "imgid": 1,
            "split": "test",
            "sentences": [{"tokens": ["a", "bus"], "raw": "A bus.", "imgid": 1, "sentid": 2}],
            "cocoid": 73,
        },
        {
            "filepath": "train2014",
            "sentids": [3],
            "filename": "COCO_train2014_000000000009.jpg",
            "imgid": 2,
            "split": "train",
            "sentences": [{"tokens": ["food"], "raw": "Food.", "imgid": 2, "sentid": 3}],
            "cocoid": 9,
        },
    ],
    "dataset": "coco",
}


def _image(path: Path, colour: tuple[int, int, int] = (120, 60, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), colour).save(path)


def make_root(task: str, base: Path) -> Path:
    """A valid data root of ``task`` under ``base``, every image of its sample split present."""
    root = base / task
    if task == "vqa":
        shutil.copytree(FIXTURES / "vqa", root)
        doc = json.loads((root / SPLITS["vqa"][1]).read_text())
        for q in doc["questions"]:
            _image(vqa.image_path(root, "train2014", q["image_id"]))
        for image_id in (1,):  # test-dev2015 questions point at test2015 images
            _image(vqa.image_path(root, "test-dev2015", image_id))
    elif task == "snli-ve":
        shutil.copytree(FIXTURES / "snli_ve", root)
        for line in (root / SPLITS["snli-ve"][1]).read_text().splitlines():
            rec = json.loads(line)
            image_id = rec.get("Flickr30K_ID") or rec["Flikr30kID"].removesuffix(".jpg")
            _image(snli_ve.image_path(root, image_id))
    elif task == "nlvr2":
        shutil.copytree(FIXTURES / "nlvr2", root)
        for split in ("train", "dev"):
            for line in (root / f"{split}.json").read_text().splitlines():
                rec = json.loads(line)
                directory = rec.get("directory") if split == "train" else None
                for path in nlvr2.image_paths(root, split, rec["identifier"], directory):
                    _image(path)
    elif task == "coco":
        root.mkdir(parents=True)
        (root / coco.KARPATHY_FILE).write_text(json.dumps(COCO_SAMPLE, indent=1))
        for rec in COCO_SAMPLE["images"]:
            _image(root / rec["filepath"] / rec["filename"])
    else:
        raise ValueError(task)
    return root


def image_of_first_record(task: str, root: Path) -> Path:
    """The image the first record of the sample split reads."""
    split = SPLITS[task][0]
    data = READ[task](root, split)
    if task == "vqa":
        return data.questions[0].image_path
    if task == "snli-ve":
        return data.examples[0].image_path
    if task == "nlvr2":
        return data.examples[0].left_path
    return data.images[0].path
