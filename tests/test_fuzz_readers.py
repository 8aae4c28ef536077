"""Fuzzing every reader and every ``evaluate`` input (issue 16): a valid small file in its
release format is mutated (byte flips, truncation, inserted bytes, deep nesting, fields
deleted, retyped or given odd text, records duplicated) and the contract checked: the input is
accepted, or refused with a UserError (the CLI's exit 2) whose message names an input file;
never another exception. Each reader runs with and without ``--skip-bad-records``.

Derandomised, with no example database, so CI sees the same examples every run; a few
seconds per target.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reader_samples import CHECK, COCO_SAMPLE, FIXTURES, SPLITS, make_root

from harness.cli import main
from harness.data.skips import skipping_bad_records
from harness.errors import UserError
from harness.tasks import coco_eval

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_TEXT = [
    "",
    " ",
    "\ud800",
    "a\udfffb",
    "\x00",
    "a\x00b.jpg",
    "²",
    "٣",
    "../x",
    "/etc/passwd",
    "C:\\x",
    "True",
    "FALSE",
    "-",
    "entailment",
    "\u2028",
    "\ufeff",
    "dev-850-0-0",
    "train-3-1-0",
    "x" * 140_000,
]
SNIPPETS = [
    b"[" * 100_000,
    b"1" * 5_000,  # more digits than Python's int() converts
    b'"\\ud800"',
    b"\xed\xa0\x80",
    b"\x00",
    b"\xff\xfe",
    b'"',
    b"\n",
    b",",
    b"\r\n",
    b"{}",
    b"null",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(ODD_TEXT)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6) | st.sampled_from(ODD_TEXT[:8]), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def byte_mutation(draw: st.DrawFn, raw: bytes) -> bytes:
    op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "replace-all"]))
    pos = draw(st.integers(0, max(len(raw) - 1, 0)))
    if op == "flip":
        return raw[:pos] + bytes([raw[pos] ^ draw(st.integers(1, 255))]) + raw[pos + 1 :]
    if op == "truncate":
        return raw[:pos]
    if op == "insert":
        snippet = draw(st.sampled_from(SNIPPETS) | st.binary(min_size=1, max_size=8))
        return raw[:pos] + snippet + raw[pos:]
    if op == "delete":
        return raw[:pos] + raw[pos + draw(st.integers(1, 40)) :]
    return draw(st.sampled_from(SNIPPETS) | st.binary(max_size=16))


@st.composite
def tree_mutation(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one node, reached by a drawn path, deleted, replaced, duplicated or nested."""
    doc = copy.deepcopy(doc)
    holder: list[Any] = [doc]  # so the root can be replaced like any node
    parent: Any = holder
    key: Any = 0
    for _ in range(draw(st.integers(0, 6))):
        node = parent[key]
        if not isinstance(node, dict | list) or not node:
            break
        parent, key = (
            node,
            draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node)))),
        )
    op = draw(st.sampled_from(["replace", "delete", "duplicate", "nest"]))
    if op == "delete" and parent is not holder:
        del parent[key]
    elif op == "duplicate" and isinstance(parent, list) and parent is not holder:
        parent.insert(key, copy.deepcopy(parent[key]))
    elif op == "nest":
        parent[key] = draw(st.integers(1, 60)) * [None]
        node = doc_value = parent[key]
        for _ in range(len(doc_value) - 1):
            node[0] = [None]
            node = node[0]
    else:
        parent[key] = draw(json_values)
    return holder[0]


def dump(doc: Any, ascii_only: bool) -> bytes:
    # surrogatepass: a lone surrogate written as raw bytes, which json.loads also accepts
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, raw: bytes, kind: str) -> bytes:
    """A mutation of ``raw``, a file of ``kind`` (json, jsonl or csv)."""
    if kind == "csv" or draw(st.booleans()):
        text_level = kind == "csv" and draw(st.booleans())
        if not text_level:
            return draw(byte_mutation(raw))
        lines = raw.decode().split("\n")
        i = draw(st.integers(0, len(lines) - 1))
        cell = draw(st.sampled_from(ODD_TEXT) | st.text(max_size=10))
        lines[i] = draw(
            st.sampled_from(
                [
                    f"{cell},True",
                    f"{lines[i].split(',')[0]},{cell}",
                    f"{lines[i]},{cell}",
                    lines[i].upper(),
                    f'"{lines[i]}',
                    "",
                ]
            )
        )
        if draw(st.booleans()):
            lines.insert(i, lines[i])  # a duplicate row
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    ascii_only = draw(st.booleans())
    if kind == "json":
        return dump(draw(tree_mutation(json.loads(raw))), ascii_only)
    lines = raw.decode().split("\n")
    i = draw(st.integers(0, len([x for x in lines if x.strip()]) - 1))
    lines[i] = dump(draw(tree_mutation(json.loads(lines[i]))), ascii_only).decode(
        "utf-8", "surrogatepass"
    )
    return "\n".join(lines).encode("utf-8", "surrogatepass")


# --- targets: each reader, each evaluate input -------------------------------------------------


@dataclass
class Target:
    path: Path  # the file mutated
    kind: str  # json, jsonl, csv
    files: list[Path]  # the inputs a refusal may name
    run: Callable[[], object]  # returns the CLI's exit code, or raises
    readers: bool  # run with and without --skip-bad-records


def _cli(*argv: str) -> Callable[[], int]:
    return lambda: main(list(argv))


def _targets(base: Path) -> dict[str, Target]:
    out: dict[str, Target] = {}
    for task, (split, name) in SPLITS.items():
        root = make_root(task, base / "readers" / task)
        files = sorted(p for p in root.iterdir() if p.is_file())
        kind = "jsonl" if task in ("snli-ve", "nlvr2") else "json"
        check = CHECK[task]
        run = lambda check=check, root=root, split=split: check(root, split)  # noqa: E731
        out[task] = Target(root / name, kind, files, run, True)
        if task == "vqa":
            annotations = root / "v2_mscoco_train2014_annotations.json"
            out["vqa-annotations"] = Target(annotations, "json", files, run, True)

    ev = base / "evaluate"
    ev.mkdir()
    vqa = FIXTURES / "vqa"
    questions, annotations = vqa / SPLITS["vqa"][1], vqa / "v2_mscoco_train2014_annotations.json"
    for name, source in (("questions.json", questions), ("annotations.json", annotations)):
        (ev / name).write_bytes(source.read_bytes())
    anns = json.loads(annotations.read_text())["annotations"]
    results = ev / "results.json"
    results.write_text(
        json.dumps([{"question_id": a["question_id"], "answer": "yes"} for a in anns])
    )
    vqa_files = [ev / "questions.json", ev / "annotations.json", results]
    vqa_cli = _cli(
        "evaluate",
        "vqa",
        "--questions",
        *map(str, vqa_files[:1]),
        "--annotations",
        str(vqa_files[1]),
        "--results",
        str(results),
    )
    out["evaluate-vqa-results"] = Target(results, "json", vqa_files, vqa_cli, False)
    out["evaluate-vqa-annotations"] = Target(vqa_files[1], "json", vqa_files, vqa_cli, False)

    for task, data_name, rows in (
        (
            "nlvr2",
            "dev.json",
            "identifier,prediction\ndev-850-0-0,True\ndev-850-1-0,False\n"
            "dev-850-0-1,True\ndev-850-1-1,True\n",
        ),
        (
            "snli-ve",
            SPLITS["snli-ve"][1],
            "3416050480.jpg#4r1e,entailment\n"
            "3416050480.jpg#4r1n,neutral\n2248275918.jpg#0r1c,contradiction\n"
            "2248275918.jpg#0r1e,neutral\n",
        ),
    ):
        data = ev / f"{task}-{data_name}"
        data.write_bytes((FIXTURES / task.replace("-", "_") / data_name).read_bytes())
        predictions = ev / f"{task}.csv"
        predictions.write_text(rows)
        run = _cli("evaluate", task, "--data", str(data), "--predictions", str(predictions))
        kind = "jsonl"
        out[f"evaluate-{task}-predictions"] = Target(
            predictions, "csv", [data, predictions], run, False
        )
        out[f"evaluate-{task}-data"] = Target(data, kind, [data, predictions], run, False)

    gt, res = ev / "coco-gt.json", ev / "coco-results.json"
    gt.write_text(json.dumps(COCO_SAMPLE))
    res.write_text(
        json.dumps([{"image_id": 391895, "caption": "a man"}, {"image_id": 73, "caption": "a bus"}])
    )
    run = lambda: coco_eval.read_inputs(gt, res)  # noqa: E731 (scoring needs Java: not fuzzed)
    out["evaluate-coco-gt"] = Target(gt, "json", [gt, res], run, False)
    out["evaluate-coco-results"] = Target(res, "json", [gt, res], run, False)
    return out


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Target]:
    return _targets(tmp_path_factory.mktemp("fuzz"))


def holds(target: Target) -> None:
    """The contract, for one input: accepted, or a UserError (exit 2) naming an input file."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = target.run()
        except UserError as refused:
            message = str(refused)
        else:
            if not isinstance(code, int) or code == 0:
                return
            assert code == 2, err.getvalue()
            message = err.getvalue()
    assert any(str(f) in message for f in target.files), message


NAMES = [
    "vqa",
    "vqa-annotations",
    "snli-ve",
    "nlvr2",
    "coco",
    "evaluate-vqa-results",
    "evaluate-vqa-annotations",
    "evaluate-snli-ve-predictions",
    "evaluate-snli-ve-data",
    "evaluate-nlvr2-predictions",
    "evaluate-nlvr2-data",
    "evaluate-coco-gt",
    "evaluate-coco-results",
]


def test_every_target_accepts_its_valid_file(targets: dict[str, Target]) -> None:
    assert sorted(targets) == sorted(NAMES)
    for name, target in targets.items():
        with contextlib.redirect_stdout(io.StringIO()):
            result = target.run()
        assert result == 0 or isinstance(result, dict | tuple), name  # exit 0, or what was read


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_mutated_input_is_accepted_or_refused_naming_the_file(
    targets: dict[str, Target], name: str, data: st.DataObject
) -> None:
    target = targets[name]
    original = target.path.read_bytes()
    target.path.write_bytes(data.draw(mutated(original, target.kind), label="file"))
    try:
        for skipping in (False, True) if target.readers else (False,):
            with skipping_bad_records(skipping):
                holds(target)
    finally:
        target.path.write_bytes(original)
