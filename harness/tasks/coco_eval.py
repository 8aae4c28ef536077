"""COCO caption metrics with pycocoevalcap 1.2, scorer by scorer, as ``COCOEvalCap.evaluate`` does.

Captions go through the PTB tokenizer (Stanford CoreNLP 3.4.1: lower-cased, punctuation
dropped), then BLEU-1..4 (``closest`` reference length), METEOR 1.5, ROUGE-L and CIDEr-D
(sigma 6). Scores keep pycocoevalcap's native scale: fractions in [0, 1], CIDEr unbounded
(about 0-10); papers, OPTIMA's tables included, print them times 100.

We do not call ``COCOEvalCap`` itself: it constructs SPICE, which downloads Stanford CoreNLP
3.6.0 on construction and so fails offline. SPICE is computed only where those jars are already
installed beside pycocoevalcap; otherwise it is reported as ``None`` with the reason under
``not_computed``. METEOR starts a JVM that takes seconds to load its paraphrase table, so one
instance serves the whole process.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.data.coco import parse_karpathy
from harness.data.json_fields import check_text, first_seen, is_int, load_json, show
from harness.errors import DataError
from harness.java import ensure_java_on_path
from harness.tasks.coverage import check_covered, some

EVALUATOR = "pycocoevalcap 1.2 (PTB tokenizer, Bleu(4), Meteor 1.5, Rouge-L, CIDEr-D)"
SCALE = "fractions as pycocoevalcap returns them (CIDEr about 0-10); papers print x100"
METRICS: tuple[str, ...] = (
    "Bleu_1",
    "Bleu_2",
    "Bleu_3",
    "Bleu_4",
    "METEOR",
    "ROUGE_L",
    "CIDEr",
    "SPICE",
)

_METEOR: Any = None
_METEOR_LOCK = threading.Lock()


def caption_metrics(
    gts: Mapping[Hashable, Sequence[str]], res: Mapping[Hashable, str]
) -> dict[str, Any]:
    """Corpus scores of one caption per image (``res``) against its references (``gts``).

    Both must cover the same images. Whitespace runs (newlines included) become one space
    first: the tokenizer reads one caption per line, and a stray ``\\r`` would shift every
    caption after it onto the wrong image.
    """
    _check_inputs(gts, res)
    _meteor()  # its JVM loads the paraphrase table while the tokenizer runs
    tokens_gts, tokens_res = tokenize(gts, res)
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    out: dict[str, Any] = {}
    bleu, _ = Bleu(4).compute_score(tokens_gts, tokens_res, verbose=0)
    out.update({f"Bleu_{n + 1}": float(b) for n, b in enumerate(bleu)})
    out["METEOR"] = meteor_score(tokens_gts, tokens_res)
    out["ROUGE_L"] = float(Rouge().compute_score(tokens_gts, tokens_res)[0])
    out["CIDEr"] = float(Cider().compute_score(tokens_gts, tokens_res)[0])
    missing = spice_missing()
    if missing is None:
        from pycocoevalcap.spice.spice import Spice

        ensure_java_on_path()
        out["SPICE"] = float(Spice().compute_score(tokens_gts, tokens_res)[0])
        out["not_computed"] = {}
    else:
        out["SPICE"] = None
        out["not_computed"] = {"SPICE": missing}
    return out


def tokenize(
    gts: Mapping[Hashable, Sequence[str]], res: Mapping[Hashable, str]
) -> tuple[dict[Hashable, list[str]], dict[Hashable, list[str]]]:
    """PTB-tokenised references and results, in the ``{id: [caption, ...]}`` form the scorers
    take. One tokenizer run serves both (``COCOEvalCap`` runs it twice): it reads line by
    line, so the result is the same."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    batch: dict[Hashable, list[dict[str, str]]] = {}
    for key, captions in gts.items():
        batch[(0, key)] = [{"caption": _one_line(c)} for c in captions]
    for key, caption in res.items():
        batch[(1, key)] = [{"caption": _one_line(caption)}]
    ensure_java_on_path()
    tokens = PTBTokenizer().tokenize(batch)
    if any(len(tokens.get(k, ())) != len(v) for k, v in batch.items()):
        raise RuntimeError("PTB tokenizer returned a different number of lines than it was given")
    return (
        {key: tokens[(0, key)] for key in gts},
        {key: tokens[(1, key)] for key in res},
    )


def meteor_score(gts: Mapping[Hashable, list[str]], res: Mapping[Hashable, list[str]]) -> float:
    """METEOR 1.5 on tokenised captions, from the process's one METEOR JVM."""
    global _METEOR
    meteor = _meteor()
    try:
        return float(meteor.compute_score(gts, res)[0])
    except (ValueError, OSError) as err:  # the JVM died: readline gave b"" or a pipe broke
        with _METEOR_LOCK:
            if _METEOR is meteor:
                _METEOR = None
        raise RuntimeError(f"METEOR (java -jar meteor-1.5.jar) failed: {_drain(meteor)}") from err


def _meteor() -> Any:
    """The process's METEOR, started on first use and again if its JVM has exited."""
    global _METEOR
    with _METEOR_LOCK:
        if _METEOR is None or _METEOR.meteor_p.poll() is not None:
            from pycocoevalcap.meteor.meteor import Meteor

            ensure_java_on_path()
            _METEOR = Meteor()
        return _METEOR


def spice_missing() -> str | None:
    """Why SPICE cannot run here, or None where its CoreNLP jars are installed."""
    spec = importlib.util.find_spec("pycocoevalcap.spice.spice")
    if spec is None or spec.origin is None:
        return "pycocoevalcap.spice is not installed"
    lib = Path(spec.origin).parent / "lib"
    jars = [lib / f"stanford-corenlp-3.6.0{s}.jar" for s in ("", "-models")]
    absent = [str(j) for j in jars if not j.is_file()]
    if absent:
        return (
            "SPICE needs Stanford CoreNLP 3.6.0, which pycocoevalcap would download when SPICE "
            f"is constructed; not attempted, so runs stay offline. Absent: {', '.join(absent)}"
        )
    return None


def evaluate_files(gt_file: str | Path, results_file: str | Path) -> dict[str, Any]:
    """``optima-repro evaluate coco``: score a COCO results file against references.

    References: COCO captions format (``{"annotations": [{"image_id", "caption"}], "images":
    [{"id"}]}``, e.g. LAVIS's ``coco_karpathy_test_gt.json``), or Karpathy's
    ``dataset_coco.json``, whose test split is then used. Results: ``[{"image_id", "caption"}]``
    with exactly one caption for each reference image. Unlike the common
    ``params["image_id"] = results.getImgIds()`` recipe, images without a caption are an error,
    not silently left out.
    """
    gts, res, gt_format = read_inputs(gt_file, results_file)
    scores = caption_metrics(gts, res)
    return {
        **scores,
        "images": len(gts),
        "references": sum(len(v) for v in gts.values()),
        "gt_format": gt_format,
        "scale": SCALE,
        "evaluator": EVALUATOR,
    }


def read_inputs(
    gt_file: str | Path, results_file: str | Path
) -> tuple[dict[Hashable, list[str]], dict[Hashable, str], str]:
    """References and results of ``evaluate coco``, validated: what the metrics take, and the
    references' format."""
    gt_doc, _ = load_json(Path(gt_file))
    gts, gt_format = _references(gt_doc, str(gt_file))
    results, _ = load_json(Path(results_file))
    return gts, _results(results, str(results_file), gts, str(gt_file)), gt_format


# --- validation -------------------------------------------------------------------------------


def _one_line(caption: str) -> str:
    return " ".join(caption.split())


def _check_inputs(gts: Mapping[Hashable, Sequence[str]], res: Mapping[Hashable, str]) -> None:
    if not gts:
        raise ValueError("caption_metrics: no images to score")
    if gts.keys() != res.keys():
        extra = [k for k in res if k not in gts][:5]
        missing = [k for k in gts if k not in res][:5]
        raise ValueError(
            f"caption_metrics: res and gts differ in images (only in res: {extra}, "
            f"only in gts: {missing})"
        )
    for key, refs in gts.items():
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"caption_metrics: gts[{key!r}] must be a non-empty list of strings")
        if not isinstance(res[key], str):
            raise ValueError(f"caption_metrics: res[{key!r}] must be a string")


def _is_id(value: Any) -> bool:
    return is_int(value) or isinstance(value, str)


def _references(doc: Any, file: str) -> tuple[dict[Hashable, list[str]], str]:
    if isinstance(doc, dict) and "annotations" in doc:
        return _coco_references(doc, file), "coco captions"
    if isinstance(doc, dict) and "images" in doc:
        records = [r for r in parse_karpathy(doc, file) if r.split == "test"]
        if not records:
            raise DataError(file, "no image has split 'test'", field="split")
        return {r.cocoid: list(r.captions) for r in records}, "karpathy dataset_coco.json (test)"
    raise DataError(
        file,
        'expected COCO captions {"annotations": [...], "images": [...]} or Karpathy\'s '
        '{"images": [{"sentences": ...}], "dataset": ...}',
    )


def _coco_references(doc: dict[str, Any], file: str) -> dict[Hashable, list[str]]:
    annotations = doc["annotations"]
    if not isinstance(annotations, list) or not annotations:
        raise DataError(file, "expected a non-empty list", field="annotations")
    gts: dict[Hashable, list[str]] = {}
    images = doc.get("images")
    if images is not None:
        if not isinstance(images, list):
            raise DataError(file, "expected a list", field="images")
        first: dict[Hashable, str] = {}
        for i, image in enumerate(images):
            where = f"images[{i}]"
            image_id = image.get("id") if isinstance(image, dict) else None
            if not _is_id(image_id):
                raise DataError(
                    file,
                    f"expected an integer or string, got {show(image_id)}",
                    record=where,
                    field="id",
                )
            first_seen(first, image_id, where, file, what="image id", record=where, field="id")
            gts[image_id] = []
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise DataError(file, f"expected an object, got {type(ann).__name__}", record=where)
        image_id, caption = ann.get("image_id"), ann.get("caption")
        if not _is_id(image_id):
            raise DataError(
                file,
                f"expected an integer or string, got {show(image_id)}",
                record=where,
                field="image_id",
            )
        if not isinstance(caption, str) or not caption.strip():
            raise DataError(
                file,
                f"expected a non-empty string, got {show(caption)}",
                record=where,
                field="caption",
            )
        check_text(caption, file, record=where, field="caption")
        if images is not None and image_id not in gts:
            raise DataError(
                file,
                f"image {image_id!r} is not in the images list",
                record=where,
                field="image_id",
            )
        gts.setdefault(image_id, []).append(caption)
    bare = [k for k, v in gts.items() if not v]
    if bare:
        raise DataError(
            file, f"{len(bare)} image(s) without a caption: {some(bare)}", field="images"
        )
    return gts


def _results(
    doc: Any, file: str, gts: Mapping[Hashable, list[str]], gt_file: str
) -> dict[Hashable, str]:
    if not isinstance(doc, list):
        raise DataError(file, f"expected a JSON list of objects, got {type(doc).__name__}")
    res: dict[Hashable, str] = {}
    first: dict[Hashable, int] = {}
    for i, rec in enumerate(doc):
        where = f"results[{i}]"
        if not isinstance(rec, dict):
            raise DataError(file, f"expected an object, got {type(rec).__name__}", record=where)
        image_id = rec.get("image_id")
        if not _is_id(image_id):
            raise DataError(
                file,
                f"expected an integer or string, got {show(image_id, 40)}",
                record=where,
                field="image_id",
            )
        if not isinstance(rec.get("caption"), str):
            raise DataError(
                file,
                f"expected a string, got {show(rec.get('caption'), 40)}",
                record=where,
                field="caption",
            )
        check_text(rec["caption"], file, record=where, field="caption")
        if image_id not in gts:
            raise DataError(
                file, f"image {image_id!r} is not in {gt_file}", record=where, field="image_id"
            )
        if image_id in first:
            raise DataError(
                file,
                f"second caption for image {image_id!r} (first at results[{first[image_id]}])",
                record=where,
                field="image_id",
            )
        first[image_id] = i
        res[image_id] = rec["caption"]
    check_covered(
        gts, res, file=file, field="image_id", noun="image", reference=gt_file, what="caption"
    )
    return res


def _drain(meteor: Any) -> str:
    """What the dead METEOR JVM printed; its lock is released so its ``__del__`` cannot hang."""
    if meteor.lock.locked():
        meteor.lock.release()
    meteor.meteor_p.kill()
    try:
        return meteor.meteor_p.stderr.read().decode(errors="replace")[-2000:] or "no message"
    except (OSError, ValueError):
        return "no message"
