"""Runs and records under faults (issue 16, items 3, 4, 11): a damaged record, state.json or
checkpoint does not block the grid (set aside, resumed from the last intact checkpoint); a
full disk gives a clear error and leaves no temp files; a hand-edited non-finite metric is
refused; files are written readable by the team (0644 under umask 022).

One smoke study (`uniform`, seed 0, every training loop capped at two rounds' steps) is shared
by the module; each test leaves its run complete again, which costs a resume from the last
checkpoint, not a new run."""

import dataclasses
import errno
import json
import os
import shutil

import pytest
import torch

import harness.atomic
import harness.checkpoint
from harness.cli import main

ROUNDS = 2  # of 8 steps each: `--max-steps 16`


def _reproduce(work, *extra):
    argv = ["reproduce", "vqa", "--preset", "smoke", "--schedulers", "uniform", "--quiet"]
    argv += ["--max-steps", str(8 * ROUNDS)]
    return main([*argv, "--workdir", str(work), "--reports", str(work / "reports"), *extra])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    work = tmp_path_factory.mktemp("faults") / "work"
    umask = os.umask(0o022)
    try:
        assert _reproduce(work, "--seeds", "0") == 0
    finally:
        os.umask(umask)
    (run,) = work.glob("runs/vqa/*/uniform/seed-0")
    return work, run, json.loads((run / "record.json").read_text())


def _record(run):
    return json.loads((run / "record.json").read_text())


def _temps(folder):
    return sorted(p.name for p in folder.rglob("*.tmp"))


def test_files_are_readable_by_the_team(study):
    work, run, _ = study
    files = [run / "record.json", *work.glob("teachers/*/teacher.json")]
    files += [*work.glob("pretrained/*/coca.json"), *run.glob("checkpoints/round-*/state.*")]
    assert len(files) >= 5
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {
        f.name: "0o644" for f in files
    }


def test_a_damaged_record_is_listed_then_set_aside_and_the_run_redone(study, tmp_path, capsys):
    work, run, original = study
    (run / "record.json").write_bytes(b"\xff\xfe")

    argv = ["report", "--runs", str(work / "runs"), "--reports", str(tmp_path)]
    assert main(argv) == 0
    text = (tmp_path / "vqa.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| uniform | 0 | missing |"))
    assert "record damaged (not UTF-8 text (byte 0))" in row
    assert (run / "record.json").read_bytes() == b"\xff\xfe"  # report only reads

    capsys.readouterr()
    assert _reproduce(work, "--seeds", "0") == 0
    assert "damaged (" in capsys.readouterr().out
    aside = sorted(run.glob("record.json.damaged-*"))
    assert [p.read_bytes() for p in aside][-1] == b"\xff\xfe"
    again = _record(run)
    assert again["status"] == "complete" and again["resumed_from_round"] == ROUNDS  # no training
    assert again["metrics"] == original["metrics"]


def test_a_complete_record_the_reader_refuses_is_set_aside_and_the_run_redone(study, capsys):
    work, run, original = study
    (run / "record.json").write_text(json.dumps({**original, "seed": "zero"}))

    capsys.readouterr()
    assert _reproduce(work, "--seeds", "0") == 0
    out = capsys.readouterr().out
    assert "damaged (field 'seed': expected an integer, got 'zero')" in out
    (aside,) = [p for p in run.glob("record.json.damaged-*") if b'"zero"' in p.read_bytes()]
    assert _record(run)["seed"] == 0 and _record(run)["metrics"] == original["metrics"]


class Payload:
    """Not plain tensors and data: `torch.load(weights_only=True)` refuses to unpickle it."""


def _garbage_state_json(folder):
    (folder / "state.json").write_bytes(b"\xff\xfe")


def _unsafe_state_pt(folder):
    torch.save({"student": Payload()}, folder / "state.pt")
    meta = json.loads((folder / "state.json").read_text())
    meta["state_pt_sha256"] = harness.checkpoint.hashlib.sha256(
        (folder / "state.pt").read_bytes()
    ).hexdigest()  # the checksum matches: only the safe load can tell
    (folder / "state.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [_garbage_state_json, _unsafe_state_pt])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(study, damage):
    work, run, original = study
    checkpoints = run / "checkpoints"
    damage(checkpoints / "round-00001")
    stale = checkpoints / ".round-00001.4242.tmp"  # a killed writer's
    stale.mkdir()
    (stale / "state.pt").write_bytes(b"half")
    (run / "record.json").unlink()
    before = {p.name for p in checkpoints.iterdir()}

    assert _reproduce(work, "--seeds", "0") == 0
    again = _record(run)
    assert again["resumed_from_round"] == 1  # from round-00000, the last intact one
    assert again["metrics"] == original["metrics"] and again["rounds"] == original["rounds"]
    after = {p.name for p in checkpoints.iterdir()}
    (aside,) = after - before
    assert aside.startswith("round-00001.damaged-")
    assert before - after == {stale.name}
    assert {"round-00000", "round-00001"} <= after and not _temps(run)


def test_a_full_disk_while_checkpointing_fails_the_run_cleanly(study, monkeypatch):
    work, _, _ = study

    def full(obj, f):
        f.write_bytes(b"partial")  # some bytes made it, then the disk filled
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))

    monkeypatch.setattr(harness.checkpoint.torch, "save", full)
    assert _reproduce(work, "--seeds", "1") == 1  # a failed run, recorded; report written
    (run,) = work.glob("runs/vqa/*/uniform/seed-1")
    failed = _record(run)
    assert failed["status"] == "failed"
    message = failed["error"]["message"]
    assert "round-00000: No space left on device while writing it" in message
    assert not list((run / "checkpoints").iterdir())  # no half checkpoint, no temp folder
    assert "No space left on device" in (work / "reports" / "vqa.md").read_text()
    shutil.rmtree(run)


def _fill_disk(monkeypatch, when):
    """`harness.atomic.write_text` writes part of the text, then the disk is full."""
    write_text = harness.atomic.write_text

    def full(path, text):
        if not when(path, text):
            return write_text(path, text)
        with harness.atomic.atomic_path(path) as tmp:
            tmp.write_text(text[:100])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    monkeypatch.setattr(harness.atomic, "write_text", full)


def test_a_full_disk_while_writing_the_record(study, monkeypatch, capsys):
    work, run, original = study
    (run / "record.json").unlink()

    # the complete record does not fit; the failed-run record saying why does
    _fill_disk(monkeypatch, lambda path, text: '"status": "complete"' in text)
    assert _reproduce(work, "--seeds", "0") == 1
    failed = _record(run)
    assert failed["status"] == "failed" and failed["metrics"] == {}
    message = failed["error"]["message"]
    assert message.startswith("its record record.json could not be written: ")
    assert f"{run / 'record.json'}: No space left on device" in message
    assert not _temps(run)

    # nothing fits: one clear line, exit 2, the failed record kept as it was
    _fill_disk(monkeypatch, lambda path, text: path.name == "record.json")
    capsys.readouterr()
    assert _reproduce(work, "--seeds", "0") == 2
    err = capsys.readouterr().err
    assert err.startswith("optima-repro: error: run uniform seed 0: its record record.json ")
    assert "a failed-run record could not be written either" in err and "Traceback" not in err
    assert _record(run) == failed and not _temps(run)

    monkeypatch.undo()
    assert _reproduce(work, "--seeds", "0") == 0
    assert _record(run)["metrics"] == original["metrics"]


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("metrics.primary", "NaN", "NaN"),
        ("metrics.primary", "Infinity", "Infinity"),
        ("rounds[1].reward", "-Infinity", "-Infinity"),
        ("metrics.perAnswerType.number", "1e999", "Infinity"),
    ],
)
def test_report_refuses_a_non_finite_number_naming_file_and_field(
    study, tmp_path, capsys, field, value, shown
):
    _, run, original = study
    record = json.loads(json.dumps(original))
    *parents, last = field.replace("[", ".").replace("]", "").split(".")
    target = record
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[last] = "@"
    copy = tmp_path / "runs" / run.relative_to(run.parents[3]) / "record.json"
    copy.parent.mkdir(parents=True)
    copy.write_text(json.dumps(record).replace('"@"', value))  # as a hand edit would

    assert main(["report", "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{copy}, field '{field}': expected a finite number, got {shown}" in err
    assert not (tmp_path / "vqa.md").exists()


def test_a_damaged_record_joins_the_study_of_the_records_beside_it(study, tmp_path):
    _, run, _ = study
    runs = tmp_path / "runs"
    mine = runs / run.relative_to(run.parents[3])
    shutil.copytree(run, mine, ignore=shutil.ignore_patterns("checkpoints"))
    (mine.parent / "seed-1").mkdir()
    (mine.parent / "seed-1" / "record.json").write_text('{"schema_version": 1, "sta')
    elsewhere = runs / "vqa" / "smoke-0123456789abcdef" / "optima" / "seed-3"
    elsewhere.mkdir(parents=True)
    (elsewhere / "record.json").write_bytes(b"")

    assert main(["report", "--runs", str(runs), "--reports", str(tmp_path)]) == 0
    text = (tmp_path / "vqa.md").read_text()
    assert "| uniform | 1 | missing | record damaged (malformed JSON at line 1: " in text
    assert "- a damaged record of optima seed 3: malformed JSON at line 1: " in text
    assert "1 complete, 0 failed, 1 missing" in text


def _typed(record: dict, path):
    from harness.records import parse_record

    return parse_record(record, path)


def test_a_written_record_reads_back_as_the_same_json(study, tmp_path):
    from harness.runs import write_record

    written = write_record(_typed(study[2], tmp_path / "record.json"))
    assert json.loads((tmp_path / "record.json").read_text()) == study[2] == written.to_json()


def test_a_record_json_cannot_hold_is_replaced_by_a_failed_run_record(study, tmp_path):
    from harness.runs import write_record

    record = dataclasses.replace(
        _typed(study[2], tmp_path / "record.json"), metrics={"primary": float("nan")}
    )
    written = write_record(record)
    assert json.loads((tmp_path / "record.json").read_text()) == written.to_json()
    assert written.status == "failed" and written.metrics == {} and written.rounds == ()
    assert written.error.message == (
        "its record record.json could not be written: Out of range float values are not JSON "
        "compliant: nan"
    )
    assert not _temps(tmp_path)


def test_a_record_the_report_would_refuse_is_a_harness_bug(study, tmp_path):
    from harness.runs import write_record

    record = dataclasses.replace(_typed(study[2], tmp_path / "record.json"), seed="zero")
    with pytest.raises(RuntimeError, match="harness bug.*field 'seed'"):
        write_record(record)


def test_a_pretraining_batch_larger_than_its_corpus_stops_naming_the_field(study, capsys):
    work, _, _ = study
    assert _reproduce(work, "--seeds", "0", "--set", "pretrain.batch_size=100000") == 2
    err = capsys.readouterr().err
    assert "pretrain.batch_size 100000 is larger than the" in err
    assert "examples of the pre-training corpus" in err
