"""SNLI-VE accuracy: the share of image-hypothesis pairs whose predicted label is the gold one.

SNLI-VE has no official evaluation script; Xie et al. (2019) and OPTIMA (spec/optima.md §6)
report plain 3-way accuracy on dev and test over the records with a gold label. We add
per-label recall as sub-metrics, since the neutral class is where SNLI-VE's label noise sits
(necla-ml/SNLI-VE README, quality analysis).

Predictions must cover exactly the scored pairs: a missing or unknown pairID is an error, not
a silent zero or skip. Predictions for no-consensus (``-``) records are ignored, as those
records are not scored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.data.snli_ve import LABELS, NO_CONSENSUS, SnliVeExample, read_jsonl
from harness.errors import DataError
from harness.tasks.coverage import check_covered, check_known
from harness.tasks.predictions_csv import read_predictions_csv

PREDICTIONS_HEADER: tuple[str, str] = ("pairID", "prediction")


def evaluate(
    examples_or_records: Iterable[SnliVeExample | Mapping[str, Any]],
    predictions: Mapping[str, str],
    *,
    ignored: Collection[str] = (),
    data_file: str = "<data>",
    predictions_file: str = "<predictions>",
) -> dict[str, Any]:
    """Accuracy (a fraction in [0, 1]) of ``predictions`` {pairID: label}, and recall per gold
    label (None for a label the data lacks).

    Takes the reader's examples or raw SNLI records (dicts with ``pairID`` and ``gold_label``;
    ``-`` records are skipped). Predictions for pairIDs in ``ignored`` (the reader's skipped
    records) are dropped. The ``*_file`` names only label errors.
    """
    golds, skipped = _gold(examples_or_records, data_file)
    skip = skipped | set(ignored)
    preds = {pid: p for pid, p in predictions.items() if pid in golds or pid not in skip}
    ids = {"file": predictions_file, "field": "pairID", "reference": data_file}
    check_covered(golds, preds, noun="pair", **ids)
    check_known(preds, golds, noun="pairID", **ids)
    for pid, label in preds.items():
        if label not in LABELS:
            raise DataError(
                predictions_file,
                f"unknown label {label!r}; expected one of {list(LABELS)}",
                record=f"pairID {pid}",
                field="prediction",
            )
    hits = {label: [0, 0] for label in LABELS}  # label -> [correct, total]
    for pid, label in golds.items():
        hits[label][0] += preds[pid] == label
        hits[label][1] += 1
    correct = sum(c for c, _ in hits.values())
    return {
        "accuracy": correct / len(golds),
        "per_label": {label: (c / n if n else None) for label, (c, n) in hits.items()},
        "examples": len(golds),
    }


def read_predictions(path: Path) -> dict[str, str]:
    """``pairID,prediction`` rows (``predictions_csv``: an optional header, blank lines)."""
    labels = {label: label for label in LABELS}
    return read_predictions_csv(path, PREDICTIONS_HEADER, labels.get, f"one of {list(LABELS)}")


def evaluate_files(data_file: Path, predictions_file: Path) -> dict[str, Any]:
    """``optima-repro evaluate snli-ve``: score a predictions CSV against one SNLI-VE jsonl file
    (images are not needed)."""
    data = read_jsonl(Path(data_file))
    if data.examples[0].label is None:
        raise DataError(
            data_file, "the file has no gold labels to score against", field="gold_label"
        )
    return evaluate(
        data.examples,
        read_predictions(Path(predictions_file)),
        ignored=data.skipped,
        data_file=str(data_file),
        predictions_file=str(predictions_file),
    )


def _gold(
    items: Iterable[SnliVeExample | Mapping[str, Any]], file: str
) -> tuple[dict[str, str], set[str]]:
    """Gold label by pairID, and the pairIDs of no-consensus records."""
    labels: dict[str, str] = {}
    skipped: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, SnliVeExample):
            pid, label, where = item.pair_id, item.label, f"pairID {item.pair_id}"
        elif isinstance(item, Mapping):
            pid, label, where = item.get("pairID"), item.get("gold_label"), f"records[{i}]"
            if not isinstance(pid, str) or not pid:
                raise DataError(
                    file, f"expected a string, got {pid!r}", record=where, field="pairID"
                )
        else:
            raise DataError(
                file,
                f"expected an SnliVeExample or a record, got {type(item).__name__}",
                record=f"records[{i}]",
            )
        if pid in labels or pid in skipped:
            raise DataError(file, f"duplicate pairID {pid!r}", record=where, field="pairID")
        if label == NO_CONSENSUS:
            skipped.add(pid)
            continue
        if label not in LABELS:
            raise DataError(
                file,
                f"gold label {label!r} cannot be scored; expected one of {list(LABELS)}",
                record=where,
                field="gold_label",
            )
        labels[pid] = label
    if not labels:
        raise DataError(file, "no labelled pairs to score")
    return labels, skipped
