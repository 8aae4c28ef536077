"""Issue 16, items 6, 8 (readers and evaluators), 9 and 10: crafted data, odd files and CSV
variants each end accepted, or refused with exit 2 naming the file, record and field; never a
traceback, never a hang."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from reader_samples import CHECK, COCO_SAMPLE, FIXTURES, READ, SPLITS, image_of_first_record
from reader_samples import make_root as _make_root

from harness.cli import main
from harness.data.images import load_image
from harness.data.skips import skipping_bad_records
from harness.errors import DataError
from harness.tasks import coco_eval, nlvr2_eval, snli_ve_eval

TASKS = sorted(SPLITS)
DEEP = "[" * 100_000 + "]" * 100_000


@contextlib.contextmanager
def no_hang(seconds: int = 20) -> Iterator[None]:
    """Fail, rather than hang the suite, if the block blocks (a FIFO opened for reading)."""

    def fail(*_: object) -> None:
        raise TimeoutError(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def make_root(task: str, tmp_path: Path) -> Path:
    return _make_root(task, tmp_path / "data")


def data_file(task: str, root: Path) -> Path:
    return root / SPLITS[task][1]


def read(task: str, root: Path):
    return READ[task](root, SPLITS[task][0])


def data_check(task: str, root: Path, *extra: str) -> int:
    split = SPLITS[task][0]
    return main(["data", "check", task, "--root", str(root), "--split", split, *extra])


def rewrite_lines(path: Path, line: int, change) -> None:
    lines = path.read_text().split("\n")
    rec = json.loads(lines[line - 1])
    change(rec)
    lines[line - 1] = json.dumps(rec)
    path.write_text("\n".join(lines))


def rewrite_doc(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


# --- item 6: crafted records -----------------------------------------------------------------


def test_nlvr2_directory_of_non_ascii_digits_is_refused(tmp_path: Path, capsys) -> None:
    root = make_root("nlvr2", tmp_path)
    rewrite_lines(root / "train.json", 1, lambda r: r.update(directory="²"))  # "²".isdigit()
    with pytest.raises(DataError, match="integer >= 0") as err:
        read("nlvr2", root)
    assert (err.value.record, err.value.field) == ("line 1 (train-10171-0-0)", "directory")
    with skipping_bad_records() as skipped:
        assert len(read("nlvr2", root).examples) == 2
    assert [e.field for e in skipped] == ["directory"]
    assert data_check("nlvr2", root, "--quiet") == 2
    assert (
        "train.json, record line 1 (train-10171-0-0), field 'directory'" in capsys.readouterr().err
    )


@pytest.mark.parametrize("field", ["filepath", "filename"])
def test_coco_path_with_a_nul_is_refused(tmp_path: Path, field: str, capsys) -> None:
    root = make_root("coco", tmp_path)
    rewrite_doc(root / "dataset_coco.json", lambda d: d["images"][0].update({field: "a\0b.jpg"}))
    for check_images in (True, False):
        with pytest.raises(DataError, match="NUL") as err:
            coco_read = READ["coco"]
            coco_read(root, "test", check_images=check_images)
        assert (err.value.record, err.value.field) == ("cocoid 391895", field)
    assert data_check("coco", root, "--quiet") == 2
    assert f"record cocoid 391895, field '{field}'" in capsys.readouterr().err
    assert data_check("coco", root, "--quiet", "--skip-bad-records") == 0
    assert json.loads(capsys.readouterr().out)["images"] == 1


@pytest.mark.parametrize("task", TASKS)
def test_image_that_is_a_symlink_loop_is_refused(task: str, tmp_path: Path) -> None:
    root = make_root(task, tmp_path)
    image = image_of_first_record(task, root)
    image.unlink()
    image.symlink_to(image)
    with pytest.raises(DataError, match="symlink loop") as err:
        read(task, root)
    assert err.value.file == str(data_file(task, root)) and err.value.record is not None
    with pytest.raises(DataError, match="symlink loop"):
        load_image(image, 4)


@pytest.mark.parametrize("task", TASKS)
def test_json_nested_100k_levels_is_refused(task: str, tmp_path: Path) -> None:
    root = make_root(task, tmp_path)
    path = data_file(task, root)
    if task in ("snli-ve", "nlvr2"):  # JSON lines: the one record is bad, and skippable
        lines = path.read_text().split("\n")
        lines[1] = DEEP
        path.write_text("\n".join(lines))
        with pytest.raises(DataError, match="nested too deeply") as err:
            read(task, root)
        assert err.value.record == "line 2"
        with skipping_bad_records():
            assert read(task, root)
    else:
        path.write_text(DEEP)
        with pytest.raises(DataError, match="nested too deeply") as err:
            read(task, root)
    assert err.value.file == str(path)


def test_evaluator_inputs_nested_100k_levels_are_refused(tmp_path: Path, capsys) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    vqa = FIXTURES / "vqa"
    q, a = vqa / SPLITS["vqa"][1], vqa / "v2_mscoco_train2014_annotations.json"
    argv = ["evaluate", "vqa", "--questions", str(q), "--annotations", str(a)]
    assert main([*argv, "--results", str(deep)]) == 2
    assert f"{deep}: JSON nested too deeply" in capsys.readouterr().err
    with pytest.raises(DataError, match="nested too deeply"):
        coco_eval.read_inputs(deep, deep)
    with pytest.raises(DataError, match="nested too deeply"):
        nlvr2_eval.evaluate_files(deep, deep)


LONE_SURROGATE = {  # task -> how to put "\ud800" into one text field of the first record
    "vqa": lambda root: rewrite_doc(
        root / SPLITS["vqa"][1], lambda d: d["questions"][0].update(question="Why \ud800?")
    ),
    "snli-ve": lambda root: rewrite_lines(
        root / SPLITS["snli-ve"][1], 1, lambda r: r.update(sentence2="A dog \ud800.")
    ),
    "nlvr2": lambda root: rewrite_lines(
        root / "train.json", 1, lambda r: r.update(sentence="A bird \ud800.")
    ),
    "coco": lambda root: rewrite_doc(
        root / "dataset_coco.json",
        lambda d: d["images"][0]["sentences"][0].update(raw="A man \ud800."),
    ),
}
TEXT_FIELD = {"vqa": "question", "snli-ve": "sentence2", "nlvr2": "sentence", "coco": "raw"}


@pytest.mark.parametrize("task", TASKS)
def test_lone_surrogate_in_text_is_refused_by_the_reader(task: str, tmp_path: Path, capsys):
    root = make_root(task, tmp_path)
    LONE_SURROGATE[task](root)  # json.dumps writes it as the escape "\ud800"
    with pytest.raises(DataError, match="lone surrogate") as err:
        read(task, root)
    assert err.value.field == TEXT_FIELD[task] and err.value.record is not None
    assert data_check(task, root, "--quiet") == 2
    assert f"field '{TEXT_FIELD[task]}': not valid Unicode" in capsys.readouterr().err
    with skipping_bad_records() as skipped:
        read(task, root)
    assert skipped[0].field == TEXT_FIELD[task]  # VQA then names the orphaned annotation too


def test_lone_surrogate_as_raw_bytes_is_refused(tmp_path: Path) -> None:
    # Python's json decodes bytes with "surrogatepass": UTF-8-encoded surrogates also pass it.
    root = make_root("vqa", tmp_path)
    path = root / SPLITS["vqa"][1]
    raw = path.read_bytes()
    first = json.loads(raw)["questions"][0]["question"].encode()
    path.write_bytes(raw.replace(first, first[:-1] + b"\xed\xa0\x80?", 1))
    with pytest.raises(DataError, match="lone surrogate") as err:
        read("vqa", root)
    assert err.value.field == "question"


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("through_symlink", [False, True], ids=["fifo", "symlink-to-fifo"])
def test_image_that_is_a_fifo_is_refused_without_hanging(
    task: str, through_symlink: bool, tmp_path: Path, capsys
) -> None:
    root = make_root(task, tmp_path)
    image = image_of_first_record(task, root)
    image.unlink()
    if through_symlink:
        os.mkfifo(tmp_path / "pipe")
        image.symlink_to(tmp_path / "pipe")
    else:
        os.mkfifo(image)
    with no_hang():
        with pytest.raises(DataError, match="FIFO") as err:
            read(task, root)
        assert err.value.file == str(data_file(task, root)) and err.value.record is not None
        with pytest.raises(DataError, match="FIFO"):
            load_image(image, 4)
        assert data_check(task, root, "--quiet") == 2
    assert "FIFO" in capsys.readouterr().err


def test_data_and_predictions_files_that_are_fifos_or_folders(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    dev = FIXTURES / "nlvr2" / "dev.json"
    snli = FIXTURES / "snli_ve" / SPLITS["snli-ve"][1]
    with no_hang():
        for task, data in (("nlvr2", dev), ("snli-ve", snli)):
            for odd, kind in ((fifo, "FIFO"), (folder, "folder")):
                argv = ["evaluate", task, "--data", str(data), "--predictions", str(odd)]
                assert main(argv) == 2
                assert f"{odd}: is a {kind}" in capsys.readouterr().err
                argv = ["evaluate", task, "--data", str(odd), "--predictions", str(odd)]
                assert main(argv) == 2
                assert f"{odd}: is a {kind}" in capsys.readouterr().err


@pytest.mark.parametrize("task", TASKS)
def test_images_symlinked_from_outside_the_root_are_read_by_every_reader(
    task: str, tmp_path: Path
) -> None:
    # The one rule (harness.data.images): a path as written stays under the root; the user's
    # symlinks may lead anywhere (images -> /mnt/big/coco), in every reader alike.
    root = make_root(task, tmp_path)
    image = image_of_first_record(task, root)
    folder = image.parent
    shared = tmp_path / "elsewhere" / folder.name
    shutil.move(folder, shared)
    folder.symlink_to(shared, target_is_directory=True)
    assert image_of_first_record(task, root) == image
    assert CHECK[task](root, SPLITS[task][0])
    # A path written with ".." is refused all the same.
    escaped = {"vqa": None, "snli-ve": "../x", "nlvr2": None, "coco": "../x.jpg"}[task]
    if escaped is not None:
        if task == "coco":
            rewrite_doc(data_file(task, root), lambda d: d["images"][0].update(filename=escaped))
        else:
            rewrite_lines(data_file(task, root), 1, lambda r: r.update(Flickr30K_ID=escaped))
        with pytest.raises(DataError):
            read(task, root)


# --- item 9: data check decodes every image --------------------------------------------------

COUNT = {"vqa": "questions", "snli-ve": "examples", "nlvr2": "examples", "coco": "images"}


@pytest.mark.parametrize("task", TASKS)
def test_data_check_decodes_every_image(task: str, tmp_path: Path, capsys) -> None:
    root = make_root(task, tmp_path)
    assert data_check(task, root) == 0
    out, err = capsys.readouterr()
    clean = json.loads(out)
    assert "images" in err and "100%" in err  # the progress bar, on stderr
    assert data_check(task, root, "--quiet") == 0
    assert capsys.readouterr().err == ""

    image = image_of_first_record(task, root)
    image.write_bytes(b"\x89PNG garbage")  # 12 bytes that are no image
    assert data_check(task, root, "--quiet") == 2
    err = capsys.readouterr().err
    assert str(data_file(task, root)) in err and ", record " in err
    assert f"image {image}: cannot decode image" in err

    assert data_check(task, root, "--quiet", "--skip-bad-records") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary[COUNT[task]] < clean[COUNT[task]]
    (skipped,) = summary["skipped_records"]
    assert str(image) in skipped and "cannot decode" in skipped


# --- items 8 and 10: predictions CSVs --------------------------------------------------------

NLVR2_ROWS = ["dev-850-0-0,True", "dev-850-1-0,False", "dev-850-0-1,True", "dev-850-1-1,True"]
SNLI_ROWS = [
    "3416050480.jpg#4r1e,entailment",
    "3416050480.jpg#4r1n,neutral",
    "2248275918.jpg#0r1c,contradiction",
    "2248275918.jpg#0r1e,neutral",
]
CSV_TASKS = {  # task -> (module, data file, header, rows)
    "nlvr2": (nlvr2_eval, FIXTURES / "nlvr2" / "dev.json", "identifier,prediction", NLVR2_ROWS),
    "snli-ve": (
        snli_ve_eval,
        FIXTURES / "snli_ve" / SPLITS["snli-ve"][1],
        "pairID,prediction",
        SNLI_ROWS,
    ),
}


@pytest.mark.parametrize("task", sorted(CSV_TASKS))
def test_predictions_csv_with_or_without_header_alike(task: str, tmp_path: Path, capsys) -> None:
    module, data, header, rows = CSV_TASKS[task]
    scores = []
    variants = {
        "bare": "\n".join(rows) + "\n",
        "header": header + "\n" + "\n".join(rows) + "\n",
        "header any case, BOM, CRLF, extra column": "\ufeff"
        + header.upper()
        + ",score\r\n"
        + "".join(f"{r},0.5\r\n" for r in rows),
        "quoted cells": "".join('"{}","{}"\n'.format(*r.split(",")) for r in rows),
    }
    for name, text in variants.items():
        path = tmp_path / f"{len(scores)}.csv"
        path.write_text(text, encoding="utf-8", newline="")
        argv = ["evaluate", task, "--data", str(data), "--predictions", str(path)]
        assert main(argv) == 0, (name, capsys.readouterr().err)
        scores.append(json.loads(capsys.readouterr().out))
    assert all(s == scores[0] for s in scores)
    assert scores[0]["accuracy"] == 0.75


@pytest.mark.parametrize("task", sorted(CSV_TASKS))
def test_predictions_directory_exits_2_naming_it(task: str, tmp_path: Path, capsys) -> None:
    _, data, _, _ = CSV_TASKS[task]
    argv = ["evaluate", task, "--data", str(data), "--predictions", str(tmp_path)]
    assert main(argv) == 2
    assert f"optima-repro: error: {tmp_path}: is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("task", sorted(CSV_TASKS))
def test_predictions_field_over_128_kib_exits_2_naming_file_and_line(
    task: str, tmp_path: Path, capsys
) -> None:
    _, data, _, rows = CSV_TASKS[task]
    path = tmp_path / "p.csv"
    for text in (  # an overlong cell, and a quote never closed that swallows the rest
        rows[0] + "\n" + rows[1].split(",")[0] + "," + "x" * 200_000 + "\n",
        rows[0] + '\n"' + rows[1] + "\n" + "\n".join(rows[2:] * 20_000) + "\n",
    ):
        path.write_text(text)
        argv = ["evaluate", task, "--data", str(data), "--predictions", str(path)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{path}, record line 2: a field longer than 131072 characters" in err


def test_coco_references_with_a_lone_surrogate_are_refused(tmp_path: Path) -> None:
    # The PTB tokenizer writes captions as UTF-8: refused here, not in a JVM pipe.
    gt, res = tmp_path / "gt.json", tmp_path / "res.json"
    gt.write_text(json.dumps(COCO_SAMPLE))
    res.write_text(
        json.dumps(
            [{"image_id": 391895, "caption": "x \ud800"}, {"image_id": 73, "caption": "bus"}]
        )
    )
    with pytest.raises(DataError, match="lone surrogate") as err:
        coco_eval.read_inputs(gt, res)
    assert (err.value.file, err.value.record, err.value.field) == (
        str(res),
        "results[0]",
        "caption",
    )
