"""The one reader of Karpathy's COCO caption split, for the real data and the synthetic world alike.

A data root is laid out as the COCO 2014 archives and Karpathy's ``caption_datasets.zip`` unpack::

    <root>/dataset_coco.json
    <root>/<filepath>/<filename>    e.g. val2014/COCO_val2014_000000391895.jpg

``dataset_coco.json`` is ``{"images": [...], "dataset": "coco"}``; each image record carries
``filepath``, ``filename``, ``imgid``, ``split`` (train, restval, val or test), ``sentences``
(``tokens``, ``raw``, ``imgid``, ``sentid``), ``sentids`` and ``cocoid``. Restval (30,504 val2014
images) joins train, as in every captioning paper since Karpathy & Fei-Fei (2015): 113,287
train, 5,000 val, 5,000 test images. The whole file is validated, whatever split is asked for,
so a bad file fails here naming file, record and field, and not deep inside training; images are
looked up only for the split asked for (evaluating on test needs only val2014).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.images import ImageFolders, keep_decodable, path_problem
from harness.data.json_fields import (
    check_fields,
    first_seen,
    gc_paused,
    kind_ok,
    load_json,
    text_problem,
)
from harness.data.skips import skip_or_raise
from harness.errors import ConfigError, DataError

KARPATHY_FILE = "dataset_coco.json"
SPLITS: tuple[str, ...] = ("train", "val", "test")
KARPATHY_SPLITS: tuple[str, ...] = ("train", "restval", "val", "test")
_JOINS = {"train": ("train", "restval"), "val": ("val",), "test": ("test",)}

_TOP_FIELDS = {"images": list, "dataset": str}
_IMAGE_FIELDS = {
    "filepath": str,
    "filename": str,
    "imgid": int,
    "split": str,
    "sentences": list,
    "sentids": list,
    "cocoid": int,
}
_SENTENCE_FIELDS = {"tokens": list, "raw": str, "imgid": int, "sentid": int}


@dataclass(frozen=True)
class CocoImage:
    """One image and its reference captions, verbatim (``raw``; tokenising is the metric's job)."""

    cocoid: int
    path: Path
    captions: tuple[str, ...]


@dataclass(frozen=True)
class CocoSplit:
    """A read split: images in file order and the sha256 of each file read (keyed by its path
    relative to the root, for run provenance)."""

    split: str
    root: Path
    files: dict[str, str]
    images: list[CocoImage]


@dataclass(frozen=True)
class KarpathyRecord:
    """One validated image record of ``dataset_coco.json``; ``index`` is its place in the list."""

    index: int
    cocoid: int
    split: str
    filepath: str
    filename: str
    captions: tuple[str, ...]


def karpathy_path(root: Path) -> Path:
    return Path(root) / KARPATHY_FILE


def read_coco(root: Path, split: str, *, check_images: bool = True) -> CocoSplit:
    """Read and validate one split (train includes restval).

    With ``check_images=False`` images are not looked up: paths are ``root/filepath/filename``
    as written, unchecked, so use it only to read references (the evaluator does).
    """
    with gc_paused():
        return _read(Path(root), split, check_images)[0]


def _read(root: Path, split: str, check_images: bool) -> tuple[CocoSplit, list[KarpathyRecord]]:
    """The split and the records it came from (``check`` counts their Karpathy splits)."""
    if split not in SPLITS:
        raise ConfigError(f"unknown COCO Karpathy split {split!r}; expected one of {list(SPLITS)}")
    path = karpathy_path(root)
    if not os.path.lexists(path):  # a FIFO or a symlink loop is named by the read
        raise DataError(path, f"Karpathy split file not found under {root}")
    doc, sha = load_json(path)
    records = parse_karpathy(doc, path)
    del doc
    wanted = [r for r in records if r.split in _JOINS[split]]
    if not wanted:
        raise DataError(
            path, f"no image has split {' or '.join(map(repr, _JOINS[split]))}", field="split"
        )
    find = _image_finder(root, path) if check_images else None
    images, kept = [], []
    for r in wanted:
        try:
            image = find(r) if find else root / r.filepath / r.filename
        except DataError as err:
            skip_or_raise(err)
            continue
        images.append(CocoImage(cocoid=r.cocoid, path=image, captions=r.captions))
        kept.append(r)
    if not images:
        raise DataError(path, f"no image of split {split!r} was found under {root}")
    return CocoSplit(split=split, root=root, files={KARPATHY_FILE: sha}, images=images), kept


def check(root: Path, split: str, *, progress: bool = False) -> dict[str, Any]:
    """The JSON summary printed by ``optima-repro data check coco``; every image is decoded."""
    with gc_paused():
        data, records = _read(Path(root), split, check_images=True)
    path = karpathy_path(data.root)
    kept = keep_decodable(
        list(zip(data.images, records, strict=True)),
        lambda pair: ((pair[0].path, f"cocoid {pair[0].cocoid}", "filename"),),
        path,
        split=split,
        what="image",
        progress=progress,
    )
    images, records = [im for im, _ in kept], [r for _, r in kept]
    per_image = [len(im.captions) for im in images]
    karpathy = Counter(r.split for r in records)
    return {
        "dataset": "coco_karpathy",
        "split": split,
        "root": str(data.root),
        "images": len(images),
        "karpathy_splits": dict(sorted(karpathy.items())),
        "captions": sum(per_image),
        "captions_per_image": {
            "min": min(per_image),
            "max": max(per_image),
            "mean": round(sum(per_image) / len(per_image), 4),
        },
        "folders": dict(sorted(Counter(im.path.parent.name for im in images).items())),
        "sha256": data.files,
    }


# --- validation -------------------------------------------------------------------------------


def parse_karpathy(doc: Any, file: str | Path) -> list[KarpathyRecord]:
    """Every image record of a parsed ``dataset_coco.json``, checked against the format."""
    if not isinstance(doc, dict):
        raise DataError(file, f"expected a JSON object at top level, got {type(doc).__name__}")
    check_fields(doc, _TOP_FIELDS, file, None)
    out: list[KarpathyRecord] = []
    first: dict[int, str] = {}
    for i, rec in enumerate(doc["images"]):
        try:
            cocoid = rec.get("cocoid") if isinstance(rec, dict) else None
            where = f"cocoid {cocoid}" if kind_ok(cocoid, int) else f"images[{i}]"
            check_fields(rec, _IMAGE_FIELDS, file, where)
            if rec["split"] not in KARPATHY_SPLITS:
                raise DataError(
                    file,
                    f"unknown split {rec['split']!r}; expected one of {list(KARPATHY_SPLITS)}",
                    record=where,
                    field="split",
                )
            for name in ("filepath", "filename"):  # the one path rule, whatever the split
                problem = path_problem(rec[name])
                if problem is not None:
                    raise DataError(file, problem, record=where, field=name)
            first_seen(
                first,
                cocoid,
                f"images[{i}]",
                file,
                what="cocoid",
                record=f"images[{i}] ({where})",
                field="cocoid",
            )
            sentences = rec["sentences"]
            if not sentences:
                raise DataError(file, "the image has no captions", record=where, field="sentences")
            if not all(map(_valid_sentence, sentences)):  # name the record only when needed
                for j, sentence in enumerate(sentences):
                    check_fields(sentence, _SENTENCE_FIELDS, file, f"{where}, sentences[{j}]")
                    if not sentence["raw"].strip():
                        raise DataError(
                            file, "empty caption", record=f"{where}, sentences[{j}]", field="raw"
                        )
        except DataError as err:
            skip_or_raise(err)
            continue
        out.append(
            KarpathyRecord(
                index=i,
                cocoid=cocoid,
                split=rec["split"],
                filepath=rec["filepath"],
                filename=rec["filename"],
                captions=tuple(s["raw"] for s in sentences),
            )
        )
    return out


def _valid_sentence(s: Any) -> bool:
    """``valid(s, _SENTENCE_FIELDS)`` and a non-blank caption, unrolled: it runs 600k times."""
    return (
        type(s) is dict
        and type(s.get("tokens")) is list
        and type(raw := s.get("raw")) is str
        and type(imgid := s.get("imgid")) is int
        and type(sentid := s.get("sentid")) is int
        and imgid >= 0
        and sentid >= 0
        and not raw.isspace()
        and raw != ""
        and (raw.isascii() or text_problem(raw) is None)
    )


def _image_finder(root: Path, source: Path) -> Callable[[KarpathyRecord], Path]:
    """Image lookup against one listing per folder (a stat per image costs seconds over the
    113k train images); the paths were checked by ``parse_karpathy`` to stay under ``root``."""
    folders = ImageFolders()

    def find(rec: KarpathyRecord) -> Path:
        image = root / rec.filepath / rec.filename
        problem = folders.problem(image)
        if problem is not None:
            folder_bad = folders.folder_problem(root / rec.filepath) is not None
            field = "filepath" if folder_bad else "filename"
            raise DataError(source, problem, record=f"cocoid {rec.cocoid}", field=field)
        return image

    return find
