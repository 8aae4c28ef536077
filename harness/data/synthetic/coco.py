"""A synthetic COCO captioning world written as Karpathy's split: ``dataset_coco.json`` + JPEGs.

Same scenes as the VQA world (``scenes``). Each image gets five captions drawn from varied
phrasings, object orders and levels of detail ("a red circle and a blue square.", "a blue square
to the right of a red circle.", "two shapes: a small red circle and a large blue square."), with
counts for repeated shapes; colours, shapes, counts and places all vary, so a caption model must
read the image. Images live where the real file puts them: train in ``train2014``, restval,
val and test in ``val2014``. The summary reports what a blind model (the most frequent training
caption) and a held-out human-like reference score, computed without Java: for these captions
the PTB tokenizer only lower-cases and drops punctuation, which ``caption_tokens`` reproduces.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from harness.data.coco import KARPATHY_FILE, KARPATHY_SPLITS
from harness.data.synthetic.scenes import (
    RELATIONS,
    Scene,
    SceneObject,
    WorldSpec,
    phrase,
    render,
    sample_scene,
)
from harness.errors import ConfigError

FOLDERS = {"train": "train2014", "restval": "val2014", "val": "val2014", "test": "val2014"}


@dataclass(frozen=True)
class CocoWorldSpec(WorldSpec):
    """The world's own fields (WorldSpec holds the seed and the scenes)."""

    # Real Karpathy: 82,783 train + 30,504 restval (73:27), 5,000 val, 5,000 test.
    n_train_images: int = 4400
    n_restval_images: int = 1600
    n_val_images: int = 500
    n_test_images: int = 500
    captions_per_image: int = 5
    jpeg_quality: int = 95

    def check(self) -> None:
        self._at_least(1, "n_train_images", "n_val_images", "n_test_images", "captions_per_image")
        self._at_least(0, "n_restval_images")
        if self.captions_per_image < 2:
            self._fail("captions_per_image", "at least 2 (one is held out)")
        if not 1 <= self.jpeg_quality <= 100:
            self._fail("jpeg_quality", "must be in [1, 100]")

    def n_images(self, split: str) -> int:
        return getattr(self, f"n_{split}_images")


def coco_world_spec(name: str, **overrides: Any) -> CocoWorldSpec:
    """Named presets: "smoke" for tests (about a second), "default" for the embedded study
    (about 6k train+restval images, the size of the VQA calibration world of spec/budget.md)."""
    presets = {
        "smoke": CocoWorldSpec(
            n_train_images=600, n_restval_images=200, n_val_images=100, n_test_images=100
        ),
        "default": CocoWorldSpec(),
    }
    if name not in presets:
        raise ConfigError(f"unknown COCO world preset {name!r}; expected one of {sorted(presets)}")
    return replace(presets[name], **overrides)


# ---- captions ---------------------------------------------------------------------------------

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Levels of detail an annotator picks: most name colour and shape, some add size, a few only
# count shapes ("two circles and a square").
_DETAILS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("color", "shape"), 0.45),
    (("size", "color", "shape"), 0.35),
    (("shape",), 0.2),
)
_PREFIXES = (
    "a picture of",
    "an image of",
    "a drawing of",
    "a dark background with",
    "a simple picture showing",
)
_REL_WORDS = {
    "left_of": "to the left of",
    "right_of": "to the right of",
    "above": "above",
    "below": "below",
}
# Place names by thirds of the canvas (row, column).
_PLACES = {
    (0, 0): "in the top left corner",
    (0, 1): "at the top",
    (0, 2): "in the top right corner",
    (1, 0): "on the left",
    (1, 1): "in the middle",
    (1, 2): "on the right",
    (2, 0): "in the bottom left corner",
    (2, 1): "at the bottom",
    (2, 2): "in the bottom right corner",
}


def caption_tokens(caption: str) -> list[str]:
    """Lower-cased words without punctuation: Karpathy's ``tokens``, and what the PTB tokenizer
    plus pycocoevalcap's punctuation filter make of these captions (no hyphens or quotes)."""
    return re.findall(r"[a-z0-9]+", caption.lower())


def _number(n: int) -> str:
    return _NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) else str(n)


def _noun_phrase(values: dict[str, str], n: int) -> str:
    words = phrase(values, plural=n > 1)
    if n > 1:
        return f"{_number(n)} {words}"
    return ("an " if words[0] in "aeiou" else "a ") + words


def _join(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _groups(objects: Sequence[SceneObject], attrs: tuple[str, ...]) -> list[str]:
    """Objects alike in ``attrs`` counted together, in order of first mention."""
    counts: Counter[tuple[str, ...]] = Counter(
        tuple(o.attribute(a) for a in attrs) for o in objects
    )
    seen = dict.fromkeys(tuple(o.attribute(a) for a in attrs) for o in objects)
    return [_noun_phrase(dict(zip(attrs, key, strict=True)), counts[key]) for key in seen]


def _place(obj: SceneObject, grid: int) -> str:
    return _PLACES[(obj.row * 3 // grid, obj.col * 3 // grid)]


@dataclass(frozen=True)
class _Draft:
    scene: Scene
    objects: tuple[SceneObject, ...]  # in the order this caption mentions them
    attrs: tuple[str, ...]
    rng: np.random.Generator


def _listing(d: _Draft) -> str:
    text = _join(_groups(d.objects, d.attrs))
    return text + (" on a dark background" if d.rng.random() < 0.15 else "")


def _there(d: _Draft) -> str:
    groups = _groups(d.objects, d.attrs)
    verb = "is" if groups[0].startswith(("a ", "an ")) else "are"
    return f"there {verb} {_join(groups)}"


def _picture(d: _Draft) -> str:
    return f"{_pick(d.rng, _PREFIXES)} {_join(_groups(d.objects, d.attrs))}"


def _count(d: _Draft) -> str:
    n = len(d.objects)
    return f"{_number(n)} {'shape' if n == 1 else 'shapes'}: {_join(_groups(d.objects, d.attrs))}"


def _relation(d: _Draft) -> str | None:
    pairs = [
        (a, b, rel)
        for a, b in itertools.permutations(d.objects, 2)
        for rel, test in RELATIONS.items()
        if test(a, b)
    ]
    if not pairs:
        return None
    a, b, rel = pairs[int(d.rng.integers(len(pairs)))]
    text = (
        f"{_noun_phrase({k: a.attribute(k) for k in d.attrs}, 1)} {_REL_WORDS[rel]} "
        f"{_noun_phrase({k: b.attribute(k) for k in d.attrs}, 1)}"
    )
    rest = [o for o in d.objects if o is not a and o is not b]
    if rest:
        text += f"{_pick(d.rng, (' and', ', and', ', with'))} {_join(_groups(rest, d.attrs))}"
    return text


def _placed(d: _Draft) -> str:
    return _join(
        [
            f"{_noun_phrase({k: o.attribute(k) for k in d.attrs}, 1)} {_place(o, d.scene.grid)}"
            for o in d.objects
        ]
    )


_TEMPLATES: tuple[tuple[str, Callable[[_Draft], str | None], float], ...] = (
    ("list", _listing, 1.0),
    ("there", _there, 0.6),
    ("picture", _picture, 0.6),
    ("count", _count, 0.8),
    ("relation", _relation, 1.0),
    ("place", _placed, 0.7),
)
_CUMULATIVE = list(itertools.accumulate(w for _, _, w in _TEMPLATES))


def _pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def _order(scene: Scene, rng: np.random.Generator) -> tuple[SceneObject, ...]:
    """Reading order, a shuffle, or large shapes first: annotators differ."""
    u = rng.random()
    if u < 0.5:
        return scene.objects
    if u < 0.8:
        return tuple(scene.objects[int(i)] for i in rng.permutation(len(scene.objects)))
    return tuple(sorted(scene.objects, key=lambda o: o.size != "large"))


def _surface(text: str, rng: np.random.Generator) -> str:
    """Capital, full stop and trailing space vary, as in COCO's raw captions."""
    if rng.random() < 0.6:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.7:
        text += "."
    return text + (" " if rng.random() < 0.1 else "")


def captions_for(scene: Scene, rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """``n`` (template, caption) pairs whose token sequences differ, where the scene allows."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    details = [d for d, _ in _DETAILS]
    detail_cum = list(itertools.accumulate(w for _, w in _DETAILS))
    for attempt in range(50 * n):
        if len(out) == n:
            break
        k = bisect.bisect_right(_CUMULATIVE, rng.random() * _CUMULATIVE[-1])
        name, template, _ = _TEMPLATES[k]
        attrs = details[bisect.bisect_right(detail_cum, rng.random() * detail_cum[-1])]
        text = template(_Draft(scene, _order(scene, rng), attrs, rng))
        if text is None:
            continue
        key = tuple(caption_tokens(text))
        if key in seen and attempt < 40 * n:  # tiny scenes may run out of distinct captions
            continue
        seen.add(key)
        out.append((name, _surface(text, rng)))
    return out


# ---- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Image:
    split: str
    cocoid: int
    scene: Scene
    captions: tuple[tuple[str, str], ...]  # (template, raw caption)

    @property
    def filepath(self) -> str:
        return FOLDERS[self.split]

    @property
    def filename(self) -> str:
        return image_file_name(self.filepath, self.cocoid)


def image_file_name(folder: str, cocoid: int) -> str:
    return f"COCO_{folder}_{cocoid:012d}.jpg"


def _cocoids(spec: CocoWorldSpec) -> dict[str, list[int]]:
    """Distinct, non-contiguous ids over all splits, as COCO's are."""
    total = sum(spec.n_images(s) for s in KARPATHY_SPLITS)
    rng = np.random.default_rng([spec.seed, 1_000_003])
    ids = (rng.choice(max(600_000, 4 * total), size=total, replace=False) + 1).tolist()
    out, start = {}, 0
    for split in KARPATHY_SPLITS:
        out[split] = ids[start : start + spec.n_images(split)]
        start += spec.n_images(split)
    return out


def _generate(spec: CocoWorldSpec) -> list[_Image]:
    images = []
    for split_index, (split, ids) in enumerate(_cocoids(spec).items()):
        for i, cocoid in enumerate(ids):
            # One stream per image: image i does not change when its split grows.
            rng = np.random.default_rng([spec.seed, split_index, i])
            scene = sample_scene(rng, spec.scene)
            captions = tuple(captions_for(scene, rng, spec.captions_per_image))
            images.append(_Image(split, cocoid, scene, captions))
    return images


def _karpathy_json(images: list[_Image], spec: CocoWorldSpec) -> dict[str, Any]:
    """The real file's records; listed in a seeded shuffle, as the real file mixes splits."""
    rng = np.random.default_rng([spec.seed, 2_000_003])
    order = [images[int(i)] for i in rng.permutation(len(images))]
    n_captions = sum(len(im.captions) for im in images)
    sentids = rng.choice(max(1_000_000, 4 * n_captions), size=n_captions, replace=False) + 1
    sentid = iter(sentids.tolist())
    records = []
    for imgid, im in enumerate(order):
        sentences = [
            {"tokens": caption_tokens(raw), "raw": raw, "imgid": imgid, "sentid": next(sentid)}
            for _, raw in im.captions
        ]
        records.append(
            {
                "filepath": im.filepath,
                "sentids": [s["sentid"] for s in sentences],
                "filename": im.filename,
                "imgid": imgid,
                "split": im.split,
                "sentences": sentences,
                "cocoid": im.cocoid,
            }
        )
    return {"images": records, "dataset": "coco"}


def _write_images(root: Path, images: list[_Image], spec: CocoWorldSpec, progress: bool) -> None:
    for folder in sorted(set(FOLDERS.values())):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for im in tqdm(images, desc="COCO images", unit="img", disable=not progress):
        # 4:4:4 chroma keeps the colour of a 7-pixel shape; no EXIF or timestamps: same bytes.
        render(im.scene, spec.image_size).save(
            root / im.filepath / im.filename,
            format="JPEG",
            quality=spec.jpeg_quality,
            subsampling=0,
        )


def _scores(gts: dict[int, list[str]], res: dict[int, str]) -> dict[str, float]:
    """BLEU-4 and CIDEr-D from pycocoevalcap's pure-Python scorers on ``caption_tokens``."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    tok_gts = {k: [" ".join(caption_tokens(c)) for c in v] for k, v in gts.items()}
    tok_res = {k: [" ".join(caption_tokens(v))] for k, v in res.items()}
    bleu, _ = Bleu(4).compute_score(tok_gts, tok_res, verbose=0)
    cider, _ = Cider().compute_score(tok_gts, tok_res)
    return {"Bleu_4": round(float(bleu[3]), 4), "CIDEr": round(float(cider), 4)}


def _baselines(images: list[_Image]) -> dict[str, Any]:
    """Test-split scores of a blind model and of a held-out reference.

    The blind model answers every image with the most frequent training caption (train +
    restval, compared as tokens); the held-out reference is each image's first caption scored
    against its other ones, as COCO's human-agreement protocol does, so a good captioner
    should land between the two (the blind model is also scored on those fewer references).
    """
    train = Counter(
        " ".join(caption_tokens(raw))
        for im in images
        if im.split in ("train", "restval")
        for _, raw in im.captions
    )
    blind = min(train.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    test = [im for im in images if im.split == "test"]
    all_refs = {im.cocoid: [raw for _, raw in im.captions] for im in test}
    others = {k: v[1:] for k, v in all_refs.items()}
    return {
        "split": "test",
        "tokenization": "lower-cased words, punctuation dropped (what PTB gives here)",
        "most_frequent_train_caption": {
            "caption": blind,
            "share_of_train_captions": round(train[blind] / sum(train.values()), 4),
            **_scores(all_refs, dict.fromkeys(all_refs, blind)),
        },
        "most_frequent_train_caption_vs_others": _scores(others, dict.fromkeys(others, blind)),
        "held_out_reference_vs_others": _scores(others, {k: v[0] for k, v in all_refs.items()}),
    }


def _summary(images: list[_Image], spec: CocoWorldSpec) -> dict[str, Any]:
    captions = [raw for im in images for _, raw in im.captions]
    words = [len(caption_tokens(c)) for c in captions]
    return {
        "splits": {
            split: {
                "images": spec.n_images(split),
                "folder": FOLDERS[split],
                "captions": sum(len(im.captions) for im in images if im.split == split),
            }
            for split in KARPATHY_SPLITS
        },
        "reader_splits": {
            "train": spec.n_train_images + spec.n_restval_images,
            "val": spec.n_val_images,
            "test": spec.n_test_images,
        },
        "mean_words_per_caption": round(sum(words) / len(words), 2),
        "vocabulary": len({w for c in captions for w in caption_tokens(c)}),
        "distinct_captions_share": round(len(set(captions)) / len(captions), 4),
        "templates": dict(sorted(Counter(t for im in images for t, _ in im.captions).items())),
        "baselines": _baselines(images),
    }


def write_coco_world(root: Path, spec: CocoWorldSpec, *, progress: bool = False) -> dict[str, Any]:
    """Write ``dataset_coco.json`` and the images under ``root``; return a summary (counts,
    caption statistics, the blind and held-out-reference scores)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    images = _generate(spec)
    doc = _karpathy_json(images, spec)
    (root / KARPATHY_FILE).write_text(json.dumps(doc), encoding="utf-8")
    _write_images(root, images, spec, progress)
    return _summary(images, spec)
