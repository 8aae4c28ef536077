"""The official NLVR2 metrics, as lil-lab/nlvr ``nlvr2/eval/metrics.py`` computes them.

Reimplemented, not copied. What the official script does, and what we follow:

- predictions are CSV lines ``identifier,prediction``; each line is stripped, split on ","
  and the first two fields taken (further fields are ignored). We read them with the reader
  ``evaluate snli-ve`` uses (``predictions_csv``), which also takes a header row and quoting;
- a prediction is right when ``prediction.lower() == label.lower()``, so "True", "true" and
  "TRUE" all count. Anything else it silently scores as wrong; we refuse it instead (a "1"
  or " True" is a bug in the caller, not a prediction);
- accuracy (it prints "precision") is correct / number of labelled examples;
- consistency is the share of sentences whose every example is right, a sentence being the
  identifier ``split-set_id-pair_id-sentence_id`` with its third component, the pair id,
  blanked: ``dev-850-0-0`` -> ``dev-850--0``. The examples of one sentence written for one
  image set then share a key across that set's pairs;
- it stops when a prediction is missing. Extra predictions it tolerates, though its README says
  it refuses them; we refuse both, naming the identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from harness.errors import DataError
from harness.tasks.coverage import check_covered, check_known
from harness.tasks.predictions_csv import read_predictions_csv

EVALUATOR = "lil-lab/nlvr nlvr2/eval/metrics.py (reimplemented)"
_VALUES = {"true": True, "false": False}
_EXPECTED = '"True" or "False" (any case)'


class Labelled(Protocol):
    identifier: str
    label: bool | None


def consistency_key(identifier: str) -> str:
    """The official sentence key: the pair id (third component) blanked, as metrics.py does."""
    parts = identifier.split("-")
    if len(parts) < 3:
        raise ValueError(f"NLVR2 identifier {identifier!r} has no pair id component")
    parts[2] = ""
    return "-".join(parts)


def evaluate(
    examples: Sequence[Labelled],
    predictions: Mapping[str, bool],
    *,
    data_file: str | Path = "<examples>",
    predictions_file: str | Path = "<predictions>",
) -> dict[str, float]:
    """Accuracy and consistency, as fractions, of ``predictions`` (identifier -> True/False)."""
    if not examples:
        raise DataError(data_file, "no examples to evaluate")
    wanted = [e.identifier for e in examples]
    ids = {"file": predictions_file, "field": "identifier", "reference": Path(data_file).name}
    check_covered(wanted, predictions, noun="example", **ids)
    check_known(predictions, set(wanted), noun="identifier", **ids)
    correct = 0
    consistent: dict[str, bool] = {}
    for e in examples:
        if e.label is None:
            raise DataError(data_file, "unlabelled example", record=e.identifier, field="label")
        prediction = predictions[e.identifier]
        if not isinstance(prediction, bool | np.bool_):  # a model's argmax may be numpy's
            raise DataError(
                predictions_file,
                f"expected True or False, got {prediction!r}",
                record=e.identifier,
                field="prediction",
            )
        key = consistency_key(e.identifier)
        right = bool(prediction) == e.label
        correct += right
        consistent[key] = consistent.get(key, True) and right
    return {
        "accuracy": correct / len(examples),
        "consistency": sum(consistent.values()) / len(consistent),
    }


def read_predictions(path: Path) -> dict[str, bool]:
    """``identifier,prediction`` rows (``predictions_csv``: an optional header, blank lines).
    Values are read as the official script compares them: case-insensitively."""
    return read_predictions_csv(
        path, ("identifier", "prediction"), lambda v: _VALUES.get(v.lower()), _EXPECTED
    )


def evaluate_files(data_file: Path, predictions_file: Path) -> dict[str, float]:
    """``optima-repro evaluate nlvr2 --data dev.json --predictions P.csv``: the official
    script's two inputs. Images are not needed, so only the JSON lines are read."""
    from harness.data.nlvr2 import load_records

    records, _ = load_records(Path(data_file))
    predictions = read_predictions(Path(predictions_file))
    return evaluate(records, predictions, data_file=data_file, predictions_file=predictions_file)
