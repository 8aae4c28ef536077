"""The one reader of the SNLI-VE release format (Xie et al. 2019), real data and synthetic alike.

A data root is laid out as the release and Flickr30k unpack::

    <root>/snli_ve_{train,dev,test}.jsonl        one SNLI record per line
    <root>/flickr30k-images/<Flickr30K id>.jpg

Each record is an SNLI pair (``sentence1`` the Flickr30k caption, ``sentence2`` the hypothesis,
``gold_label``, ``pairID``, ``captionID``, parses, ``annotator_labels``) plus the image id,
which the current generator (necla-ml/SNLI-VE ``snli_ve_generator.py``) writes as
``Flickr30K_ID`` and older copies as ``Flikr30kID`` (sometimes with ``.jpg``): both are read.
In visual entailment the image is the premise; ``sentence1`` is kept but a model must not see
it, or the task turns back into text-only SNLI.

Records whose ``gold_label`` is ``-`` (no 3-of-5 annotator majority) are skipped and counted,
as the generator drops them. Everything else the format promises is checked up front, naming
file, line and field.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.files import open_regular
from harness.data.images import ImageFolders, keep_decodable, path_problem
from harness.data.json_fields import check_text, first_seen, parse_json, show
from harness.data.skips import skip_or_raise
from harness.errors import DataError

LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
SPLITS: tuple[str, ...] = ("train", "dev", "test")
NO_CONSENSUS = "-"
DATA_FILE = "snli_ve_{split}.jsonl"
IMAGE_DIR = "flickr30k-images"
IMAGE_SUFFIX = ".jpg"
# The current spelling first: it names the field in errors about a record that has neither.
IMAGE_ID_FIELDS: tuple[str, ...] = ("Flickr30K_ID", "Flikr30kID")
_TEXT_FIELDS: tuple[str, ...] = ("pairID", "sentence1", "sentence2")


@dataclass(frozen=True)
class SnliVeExample:
    """One image-hypothesis pair; ``label`` is None only in a split written without labels."""

    pair_id: str
    image_id: str
    image_path: Path
    premise: str  # the text caption (sentence1): provenance only, never a model input
    hypothesis: str
    label: str | None


@dataclass(frozen=True)
class SnliVeFile:
    """One validated jsonl file: its examples in file order, the sha256 of the bytes read, and
    the pairIDs of the skipped no-consensus records (an evaluator may see predictions for them).
    """

    path: Path
    sha256: str
    examples: list[SnliVeExample]
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class SnliVeSplit:
    """A read split; ``files`` maps each file read, relative to the root, to its sha256."""

    split: str
    root: Path
    files: dict[str, str]
    examples: list[SnliVeExample]
    skipped: tuple[str, ...]

    @property
    def labelled(self) -> bool:
        return self.examples[0].label is not None


def data_path(root: Path, split: str) -> Path:
    return Path(root) / DATA_FILE.format(split=split)


def image_path(root: Path, image_id: str) -> Path:
    return Path(root) / IMAGE_DIR / f"{image_id}{IMAGE_SUFFIX}"


def read_snli_ve(root: Path, split: str, *, check_images: bool = True) -> SnliVeSplit:
    """Read and validate one split; every example's image must exist unless ``check_images``
    is False."""
    root = Path(root)
    path = data_path(root, split)
    if not os.path.lexists(path):  # a FIFO or a symlink loop is named by the read
        raise DataError(path, f"data file of split {split!r} not found under {root}")
    read = read_jsonl(path, image_root=root, check_images=check_images)
    return SnliVeSplit(split, root, {path.name: read.sha256}, read.examples, read.skipped)


def read_jsonl(
    path: Path, *, image_root: Path | None = None, check_images: bool = False
) -> SnliVeFile:
    """Validate one SNLI-VE jsonl file. Images are looked up under ``image_root`` (default: the
    file's folder, as in the release layout) and, by default, not required: scoring predictions
    needs only the labels."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    images = _Images(root, check_images)
    digest = hashlib.sha256()
    examples: list[SnliVeExample] = []
    skipped: list[str] = []
    first_line: dict[str, str] = {}
    labelled: bool | None = None  # decided by the first record: a split is one or the other
    with open_regular(path) as f:
        for number, raw in enumerate(f, start=1):
            digest.update(raw)
            if not raw.strip():
                continue  # a blank line carries no record (a trailing one is common)
            try:
                rec = _parse_line(raw, path, number)
                where = f"line {number}"
                if labelled is None:
                    labelled = "gold_label" in rec
                label = _label(rec, path, where, labelled)
                pair_id = rec["pairID"]
                what = f"pairID {pair_id!r}"
                first_seen(
                    first_line, pair_id, where, path, what=what, record=where, field="pairID"
                )
                if label == NO_CONSENSUS:
                    skipped.append(pair_id)
                    continue
                image_id, id_field = _image_id(rec, path, where)
                example = SnliVeExample(
                    pair_id=pair_id,
                    image_id=image_id,
                    image_path=images.path(image_id, path, where, id_field),
                    premise=rec["sentence1"],
                    hypothesis=rec["sentence2"],
                    label=label,
                )
            except DataError as err:
                skip_or_raise(err)
                continue
            examples.append(example)
    if not examples:
        detail = f" ({len(skipped)} without annotator consensus skipped)" if skipped else ""
        raise DataError(path, f"the file holds no usable example{detail}")
    return SnliVeFile(path, digest.hexdigest(), examples, tuple(skipped))


def check(root: Path, split: str, *, progress: bool = False) -> dict[str, Any]:
    """The JSON summary printed by ``optima-repro data check snli-ve``; every image is
    decoded."""
    data = read_snli_ve(root, split, check_images=True)
    path = data_path(data.root, split)
    examples = keep_decodable(
        data.examples,
        lambda e: ((e.image_path, f"pairID {e.pair_id}", IMAGE_ID_FIELDS[0]),),
        path,
        split=split,
        what="example",
        progress=progress,
    )
    labels = Counter(e.label for e in examples if e.label is not None)
    return {
        "dataset": "snli_ve",
        "split": split,
        "root": str(data.root),
        "examples": len(examples),
        "images": len({e.image_id for e in examples}),
        "labels": {label: labels[label] for label in LABELS} if data.labelled else None,
        "skipped_no_consensus": len(data.skipped),
        "sha256": data.files,
    }


# --- validation -------------------------------------------------------------------------------


def _parse_line(raw: bytes, path: Path, number: int) -> dict[str, Any]:
    where = f"line {number}"
    rec = parse_json(raw, path, record=where)
    if not isinstance(rec, dict):
        raise DataError(path, f"expected a JSON object, got {type(rec).__name__}", record=where)
    for name in _TEXT_FIELDS:
        if name not in rec:
            raise DataError(path, "missing; expected a string", record=where, field=name)
        if not isinstance(rec[name], str):
            raise DataError(
                path, f"expected a string, got {show(rec[name])}", record=where, field=name
            )
        check_text(rec[name], path, record=where, field=name)
    if not rec["pairID"].strip():
        raise DataError(path, "empty pairID", record=where, field="pairID")
    return rec


def _label(rec: dict[str, Any], path: Path, where: str, labelled: bool) -> str | None:
    if not labelled:
        if "gold_label" in rec:
            raise DataError(
                path,
                "present, but the file's first record has none: a split is labelled "
                "throughout or not at all",
                record=where,
                field="gold_label",
            )
        return None
    if "gold_label" not in rec:
        raise DataError(
            path,
            f"missing, but the file's first record has one; expected one of {list(LABELS)} "
            f"or {NO_CONSENSUS!r}",
            record=where,
            field="gold_label",
        )
    label = rec["gold_label"]
    if label != NO_CONSENSUS and label not in LABELS:
        raise DataError(
            path,
            f"unknown label {show(label)}; expected one of {list(LABELS)} or {NO_CONSENSUS!r} "
            "(no annotator consensus)",
            record=where,
            field="gold_label",
        )
    return label


def _image_id(rec: dict[str, Any], path: Path, where: str) -> tuple[str, str]:
    """The Flickr30k id (without ``.jpg``) and the field it came from."""
    found = [(name, rec[name]) for name in IMAGE_ID_FIELDS if name in rec]
    if not found:
        raise DataError(
            path,
            f"missing; expected the Flickr30k image id (older copies spell it "
            f"{IMAGE_ID_FIELDS[1]!r})",
            record=where,
            field=IMAGE_ID_FIELDS[0],
        )
    ids = []
    for name, value in found:
        if not isinstance(value, str):
            raise DataError(path, f"expected a string, got {show(value)}", record=where, field=name)
        image_id = value.removesuffix(IMAGE_SUFFIX)
        # A bare file name: the one path rule (harness.data.images), and no folder in it.
        if path_problem(image_id) or "/" in image_id or "\\" in image_id or image_id == ".":
            raise DataError(
                path,
                f"expected a Flickr30k image id such as '1000092795', got {show(value)}",
                record=where,
                field=name,
            )
        ids.append(image_id)
    if len(set(ids)) > 1:
        raise DataError(
            path,
            f"{found[0][0]}={show(found[0][1])} and {found[1][0]}={show(found[1][1])} "
            "name different images",
            record=where,
            field=found[1][0],
        )
    return ids[0], found[0][0]


class _Images:
    """Image paths by id, built once per image (about 18 hypotheses share one) and checked
    against one listing of the folder, as a stat per record would cost more than the parse.
    Ids are bare names (``_image_id``), so no path leaves the folder."""

    def __init__(self, root: Path, check: bool) -> None:
        self.folder = Path(root) / IMAGE_DIR
        self.paths: dict[str, Path] = {}
        self.folders = ImageFolders() if check else None

    def path(self, image_id: str, source: Path, where: str, field: str) -> Path:
        found = self.paths.get(image_id)
        if found is None:
            found = self.folder / f"{image_id}{IMAGE_SUFFIX}"
            problem = self.folders.problem(found) if self.folders is not None else None
            if problem is not None:
                raise DataError(source, problem, record=where, field=field)
            self.paths[image_id] = found
        return found
