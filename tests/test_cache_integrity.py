"""Every cached artefact is checked before reuse: a damaged one (same size, a block zeroed; or
truncated) is set aside as `<name>.damaged-<n>` with a line naming it and built again to the
same bytes; one without its checksum record is built again; temp files a stopped writer left
go with the next writer that takes the lock; a full disk is an error naming the file, leaving
no temp file. The issue's end-to-end case (a smoke study over a damaged teacher-output cache)
is in docs/faults.md; here each kind of artefact is damaged directly."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from harness.atomic import DiskFull
from harness.checkpoint import exclusive
from harness.cli import main
from harness.data.synthetic import cache
from harness.data.synthetic.vqa import vqa_world_spec, write_vqa_world
from harness.data.tokenizer import MODEL_FILE, RECORD_FILE, Tokenizer, ensure_tokenizer
from harness.distill.teacher_outputs import CachedTeacher, ensure_cached
from harness.errors import DataError, UserError
from harness.models.weights import read_state_dict

TINY_WORLD = vqa_world_spec("smoke", n_train_images=12, n_val_images=6)
TEXTS = ["what color is the circle?", "is there a red square left of the triangle?"] * 30


def _zero_middle(path: Path, n: int = 4096) -> None:
    """The issue's `dd conv=notrunc` damage: `n` zero bytes mid-file, the size kept."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + n] = bytes(min(n, len(data) - mid))
    path.write_bytes(bytes(data))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): _sha(p) for p in root.rglob("*") if p.is_file()}


# ---- teacher outputs (memory-mapped: a damaged file loads without complaint) -----------------


def _outputs() -> CachedTeacher:
    g = torch.Generator().manual_seed(0)
    visual = [torch.randn(20, 4, 8, generator=g)]
    hidden = {"text": [torch.randn(40, 1, 4, 8, generator=g)]}
    return CachedTeacher(visual, hidden, torch.randn(40, 256, generator=g), 1)


def _ensure(path: Path, builds: list) -> tuple[CachedTeacher, bool]:
    def build() -> CachedTeacher:
        builds.append(1)
        return _outputs()

    return ensure_cached(path, build, "float32")


def test_damaged_teacher_outputs_are_set_aside_and_rebuilt(tmp_path, capsys):
    path, builds = tmp_path / "outputs" / "k.pt", []
    first, _ = _ensure(path, builds)
    want, logits = path.read_bytes(), first.logits.clone()

    _zero_middle(path)
    assert not torch.equal(CachedTeacher.load(path).logits, logits)  # the silent wrong result
    again, reused = _ensure(path, builds)
    out = capsys.readouterr().out
    assert (reused, len(builds)) == (False, 2)
    assert f"teacher outputs {path}: damaged (its sha256 differs" in out
    assert "kept as k.pt.damaged-1" in out and (path.parent / "k.pt.damaged-1").is_file()
    assert path.read_bytes() == want and torch.equal(again.logits, logits)
    assert _ensure(path, builds)[1] and len(builds) == 2  # intact now: reused

    path.write_bytes(want[: len(want) // 2])  # truncated: caught by its size
    assert not _ensure(path, builds)[1] and "bytes where" in capsys.readouterr().out
    assert path.read_bytes() == want and (path.parent / "k.pt.damaged-2").is_file()


def test_teacher_outputs_without_a_record_are_rebuilt(tmp_path, capsys):
    path, builds = tmp_path / "k.pt", []
    _ensure(path, builds)
    want = path.read_bytes()
    path.with_suffix(".json").unlink()  # the writer stopped between the file and its record
    assert not _ensure(path, builds)[1]
    assert "no checksum recorded" in capsys.readouterr().out
    assert path.read_bytes() == want and not list(tmp_path.glob("*.damaged-*"))

    path.with_suffix(".json").write_bytes(b"\xff\xfe")  # a damaged record: the file set aside
    assert not _ensure(path, builds)[1] and (tmp_path / "k.pt.damaged-1").is_file()
    assert json.loads(path.with_suffix(".json").read_text())["sha256"] == _sha(path)


def test_stale_temps_go_only_with_the_lock(tmp_path):
    path, builds = tmp_path / "k.pt", []
    stale = [tmp_path / n for n in (".k.pt.4242.tmp", ".k.pt.x1y2z3ab.tmp", ".k.json.q.tmp")]
    other = tmp_path / ".other.pt.4242.tmp"  # another key's writer may be live
    for p in [*stale, other]:
        p.write_bytes(b"partial")
    with exclusive(tmp_path / "k.pt.lock", wait=True):  # a live writer holds the lock
        worker = threading.Thread(target=_ensure, args=(path, builds))
        worker.start()
        time.sleep(0.3)
        assert all(p.exists() for p in stale) and not builds
    worker.join()
    assert not any(p.exists() for p in stale) and other.exists() and builds == [1]


def test_full_disk_names_the_file_and_leaves_no_temp(tmp_path, monkeypatch):
    save = torch.save

    def full(obj, f, *args, **kwargs):  # part written, then torch's own error on a full disk
        f.write(b"x" * 1000)
        with open("/dev/full", "wb") as disk:
            save(obj, disk, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full)
    path = tmp_path / "k.pt"
    with pytest.raises(DiskFull, match=f"{path}: No space left on device") as err:
        _ensure(path, [])
    assert isinstance(err.value, UserError) and isinstance(err.value, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pt.lock"]


# ---- tokenizer ------------------------------------------------------------------------------


def test_truncated_tokenizer_is_trained_again(tmp_path, capsys):
    folder = ensure_tokenizer(tmp_path, TEXTS, 64)
    model = folder / MODEL_FILE
    want = model.read_bytes()
    assert model.stat().st_mode & 0o044 == 0o044  # readable by a team (not mkstemp's 0600)
    model.write_bytes(want[:100])
    stale = tmp_path / f".{folder.name}.abcd1234.tmp"  # a writer stopped part-way
    stale.mkdir()
    assert ensure_tokenizer(tmp_path, TEXTS, 64) == folder
    assert f"tokenizer {folder}: damaged (100 bytes where" in capsys.readouterr().out
    assert model.read_bytes() == want and not stale.exists()
    aside = tmp_path / f"{folder.name}.damaged-1"  # the folder: transformers reads its names
    assert (aside / MODEL_FILE).read_bytes() == want[:100]
    assert sorted(p.name for p in folder.iterdir()) == sorted([MODEL_FILE, RECORD_FILE])
    assert Tokenizer(folder).vocab_size > 8

    (folder / RECORD_FILE).unlink()  # written before checksums were recorded: trained again
    ensure_tokenizer(tmp_path, TEXTS, 64)
    assert "no checksum recorded" in capsys.readouterr().out and model.read_bytes() == want


# ---- synthetic worlds -----------------------------------------------------------------------


def _world(tmp_path: Path) -> Path:
    return cache.ensure_world(tmp_path, "vqa-tiny", TINY_WORLD, write_vqa_world, progress=False)


def test_damaged_world_is_set_aside_and_written_again(tmp_path, capsys):
    root = _world(tmp_path)
    want = _tree(root)
    image = sorted(root.rglob("*.png"))[3]
    _zero_middle(image, 64)
    assert _world(tmp_path) == root
    rel = image.relative_to(root).as_posix()
    assert f"{rel}'s sha256 differs" in capsys.readouterr().out
    assert _tree(root) == want
    aside = tmp_path / f"{root.name}.damaged-1"
    assert _sha(aside / rel) != want[rel]  # kept as it was found

    (root / "stray.txt").write_text("not written with it")
    _world(tmp_path)
    assert "stray.txt was not written with it" in capsys.readouterr().out
    assert _tree(root) == want


def test_stale_world_temps_are_cleared_and_a_full_disk_is_named(tmp_path):
    final = cache.world_dir(tmp_path, "vqa-tiny", TINY_WORLD)
    old = tmp_path / f".tmp-{final.name}-k3j4h5g6"  # before harness.atomic
    new = tmp_path / f".{final.name}.a1b2c3d4.tmp"
    for p in (old, new):
        (p / "images").mkdir(parents=True)
    assert _world(tmp_path) == final and not old.exists() and not new.exists()

    def full(root, spec, *, progress):
        (root / "part.json").write_text("{")
        raise OSError(errno.ENOSPC, "No space left on device")

    other = vqa_world_spec("smoke", n_train_images=12, n_val_images=6, seed=1)
    with pytest.raises(DiskFull, match="No space left on device while writing"):
        cache.ensure_world(tmp_path, "vqa-tiny", other, full, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == [final.name]


# ---- pre-trained and fine-tuned teachers, through `optima-repro teacher` --------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Worlds, tokenizer, pre-trained CoCa and fine-tuned teacher of the smoke preset."""
    work = tmp_path_factory.mktemp("built") / "work"
    assert main(["teacher", "vqa", "--preset", "smoke", "--workdir", str(work), *QUICK]) == 0
    return work


QUICK = ["--quiet", "--max-steps", "2"]


def test_damaged_teachers_tokenizer_and_world_are_rebuilt_identically(built, tmp_path, capsys):
    work = tmp_path / "work"
    shutil.copytree(built, work)
    (coca,) = work.glob("pretrained/coca-*/coca.pt")
    (teacher,) = work.glob("teachers/vqa-*/teacher.pt")
    (model,) = work.glob("tokenizers/*/tokenizer.model")
    (world,) = (p for p in work.glob("data/coco-smoke-*") if p.is_dir())
    image = sorted(world.rglob("*.jpg"))[5]
    want = {p: _sha(p) for p in (coca, teacher, model, image)}
    for p in (coca, teacher, image):
        _zero_middle(p)
    model.write_bytes(model.read_bytes()[:200])  # the truncated tokenizer

    assert main(["teacher", "vqa", "--preset", "smoke", "--workdir", str(work), *QUICK]) == 0
    out = capsys.readouterr().out
    for p in (coca, teacher, model.parent):
        assert f" {p}: damaged (" in out and p.with_name(f"{p.name}.damaged-1").exists()
    assert f"{image.relative_to(world).as_posix()}'s sha256 differs" in out
    assert {p: _sha(p) for p in want} == want  # rebuilt to the same bytes
    assert "teacher: reusing" not in out


def test_damaged_user_supplied_checkpoint_is_an_error_naming_it(tmp_path):
    """A user's file has no recorded checksum to rebuild from: its damage is an error."""
    state = {"w": torch.randn(64, 64, generator=torch.Generator().manual_seed(0))}
    pt, st = tmp_path / "teacher.pt", tmp_path / "teacher.safetensors"
    torch.save(state, pt)
    save_file(state, str(st))
    for path in (pt, st):
        path.write_bytes(path.read_bytes()[:-5000])  # truncated
        with pytest.raises(DataError, match=f"^{path}: not a"):
            read_state_dict(path)
