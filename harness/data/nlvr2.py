"""The one reader of the NLVR2 release format, for the real data and the synthetic world alike.

A data root holds the JSON lines of lil-lab/nlvr ``nlvr2/data`` and the unpacked image
archives::

    <root>/{train,dev,test1}.json
    <root>/images/train/<directory>/<split>-<set_id>-<pair_id>-img{0,1}.png
    <root>/{dev,test1}/<split>-<set_id>-<pair_id>-img{0,1}.png

An identifier is ``split-set_id-pair_id-sentence_id``; its images are named by the identifier
without the sentence id (the release README), and train images sit in the 100 numbered folders
that each record's ``directory`` names. Everything is checked up front, so a bad line fails
here, naming file, line and field, and not deep inside training.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.files import read_bytes
from harness.data.images import ImageFolders, keep_decodable
from harness.data.json_fields import check_text, expected, first_seen, parse_json, show
from harness.data.skips import skip_or_raise
from harness.errors import DataError
from harness.tasks.nlvr2_eval import consistency_key

SPLITS: tuple[str, ...] = ("train", "dev", "test1", "test2")
_IDENTIFIER = re.compile(r"([A-Za-z0-9]+)-(\d+)-(\d+)-(\d+)", re.ASCII)  # no "²", "٣"
_LABELS = {"True": True, "False": False}


@dataclass(frozen=True)
class Nlvr2Record:
    """One JSON line, validated; no image looked up (the metric needs none)."""

    identifier: str
    sentence: str
    label: bool | None
    directory: int | None
    line: int


@dataclass(frozen=True)
class Nlvr2Example:
    identifier: str
    sentence: str
    label: bool | None  # None: an unlabelled split
    left_path: Path
    right_path: Path


@dataclass(frozen=True)
class Nlvr2Split:
    """A read split: its examples in file order and the sha256 of each file read (keyed by its
    path relative to the root, for run provenance)."""

    split: str
    root: Path
    files: dict[str, str]
    examples: list[Nlvr2Example]

    @property
    def labelled(self) -> bool:
        return all(e.label is not None for e in self.examples)


def data_path(root: Path, split: str) -> Path:
    return Path(root) / f"{split}.json"


def pair_name(identifier: str) -> str:
    """``dev-850-0-0`` -> ``dev-850-0``: the image pair, shared by the pair's sentences."""
    return identifier.rsplit("-", 1)[0]


def image_folder(root: Path, split: str, directory: int | None = None) -> Path:
    if split == "train":
        if directory is None:
            raise ValueError("image_folder: train images need the record's directory")
        return Path(root) / "images" / "train" / str(directory)
    return Path(root) / split


def image_paths(
    root: Path, split: str, identifier: str, directory: int | None = None
) -> tuple[Path, Path]:
    """Left and right image of an example, by the release's naming rule."""
    folder = image_folder(root, split, directory)
    pair = pair_name(identifier)
    return folder / f"{pair}-img0.png", folder / f"{pair}-img1.png"


def read_nlvr2(root: Path, split: str, *, check_images: bool = True) -> Nlvr2Split:
    """Read and validate one split; every example's two images must exist unless
    ``check_images`` is False."""
    if split not in SPLITS:
        raise DataError(data_path(root, split), f"unknown NLVR2 split {split!r}; expected {SPLITS}")
    root = Path(root)
    path = data_path(root, split)
    records, sha = load_records(path, split=split)
    folders = ImageFolders()
    examples = []
    for rec in records:
        left, right = image_paths(root, split, rec.identifier, rec.directory)
        problem = (folders.problem(left) or folders.problem(right)) if check_images else None
        if problem is not None:
            skip_or_raise(
                DataError(
                    path,
                    problem,
                    record=_where(rec.line, rec.identifier),
                    field=_image_field(split),
                )
            )
            continue
        examples.append(Nlvr2Example(rec.identifier, rec.sentence, rec.label, left, right))
    if not examples:
        raise DataError(path, "no example of the split has both its images")
    return Nlvr2Split(split, root, {path.name: sha}, examples)


def load_records(path: Path, *, split: str | None = None) -> tuple[list[Nlvr2Record], str]:
    """Parse and validate the JSON lines of ``path`` and hash the bytes parsed.

    With ``split``, identifiers must carry it and train lines need ``directory``. Blank lines
    are skipped; fields other than those read are tolerated, as the release has many.
    """
    path = Path(path)
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text: {err}") from err
    records: list[Nlvr2Record] = []
    first_line: dict[str, str] = {}
    labelled: bool | None = None  # set by the first line
    # Split on "\n" only: str.splitlines would also break at U+2028 inside a JSON string.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = _record(path, number, line, split, labelled=labelled)
            where = _where(number, rec.identifier)
            first_seen(
                first_line,
                rec.identifier,
                f"line {number}",
                path,
                what="identifier",
                record=where,
                field="identifier",
            )
        except DataError as err:
            skip_or_raise(err)
            continue
        labelled = rec.label is not None
        records.append(rec)
    if not records:
        raise DataError(path, "the split has no examples")
    return records, hashlib.sha256(raw).hexdigest()


def check(root: Path, split: str, *, progress: bool = False) -> dict[str, Any]:
    """The JSON summary printed by ``optima-repro data check nlvr2``; every image is decoded."""
    data = read_nlvr2(root, split, check_images=True)
    path = data_path(data.root, split)
    field = _image_field(split)
    examples = keep_decodable(
        data.examples,
        lambda e: ((image, e.identifier, field) for image in (e.left_path, e.right_path)),
        path,
        split=split,
        what="example",
        progress=progress,
    )
    labels = [e.label for e in examples if e.label is not None]
    return {
        "dataset": "nlvr2",
        "split": split,
        "root": str(data.root),
        "examples": len(examples),
        "labelled_examples": len(labels),
        "true_share": round(sum(labels) / len(labels), 4) if labels else None,
        # Sentences as the official consistency counts them; texts may repeat across sets.
        "sentences": len({consistency_key(e.identifier) for e in examples}),
        "distinct_sentence_texts": len({e.sentence for e in examples}),
        "pairs": len({pair_name(e.identifier) for e in examples}),
        "images": len({p for e in examples for p in (e.left_path, e.right_path)}),
        "sha256": data.files,
    }


# --- validation -------------------------------------------------------------------------------


def _where(line: int, identifier: str | None = None) -> str:
    return f"line {line}" + (f" ({identifier})" if identifier else "")


def _image_field(split: str) -> str:
    """The field an image is found by: train's numbered folder, else the identifier."""
    return "directory" if split == "train" else "identifier"


def _record(
    path: Path, number: int, line: str, split: str | None, *, labelled: bool | None
) -> Nlvr2Record:
    doc = parse_json(line, path, record=_where(number))
    if not isinstance(doc, dict):
        raise DataError(
            path, f"expected a JSON object, got {type(doc).__name__}", record=_where(number)
        )
    identifier = doc.get("identifier")
    if not isinstance(identifier, str):
        raise DataError(
            path,
            expected("a string", doc, "identifier"),
            record=_where(number),
            field="identifier",
        )
    where = _where(number, identifier)
    match = _IDENTIFIER.fullmatch(identifier)
    if match is None:
        raise DataError(
            path,
            "malformed identifier; expected split-set_id-pair_id-sentence_id, e.g. 'dev-850-0-0'",
            record=where,
            field="identifier",
        )
    if split is not None and match.group(1) != split:
        raise DataError(
            path,
            f"identifier of split {match.group(1)!r} in the {split!r} file",
            record=where,
            field="identifier",
        )
    sentence = doc.get("sentence")
    if not isinstance(sentence, str) or not sentence.strip():
        raise DataError(
            path, expected("a non-empty string", doc, "sentence"), record=where, field="sentence"
        )
    check_text(sentence, path, record=where, field="sentence")
    label = _label(path, doc, where, labelled)
    directory = _directory(path, doc, where) if split == "train" else None
    return Nlvr2Record(identifier, sentence, label, directory, number)


def _label(path: Path, doc: dict[str, Any], where: str, labelled: bool | None) -> bool | None:
    """A split is labelled throughout or not at all (hidden test inputs have no label)."""
    if "label" not in doc:
        if labelled:
            raise DataError(
                path,
                'missing, while earlier lines have one; expected "True" or "False"',
                record=where,
                field="label",
            )
        return None
    if labelled is False:
        raise DataError(path, "present, while earlier lines have none", record=where, field="label")
    value = doc["label"]
    if not isinstance(value, str) or value not in _LABELS:
        raise DataError(
            path,
            f'expected the string "True" or "False", got {show(value, 40)}',
            record=where,
            field="label",
        )
    return _LABELS[value]


def _directory(path: Path, doc: dict[str, Any], where: str) -> int:
    """Train images sit in ``images/train/<directory>/``; a number, or a string of digits."""
    value = doc.get("directory")
    # ASCII digits only ("²".isdigit() is true, int("²") fails), few enough for int().
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise DataError(
        path,
        expected("an integer >= 0 (the train image folder)", doc, "directory"),
        record=where,
        field="directory",
    )
