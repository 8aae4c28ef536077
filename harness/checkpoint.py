"""Round checkpoints: saved atomically after every round, the last two kept, loaded without
unpickling code (`torch.load(weights_only=True)` for tensors, JSON for the rest).

A checkpoint is a folder `round-<p>/` holding `state.pt` (student, projections, optimizer and
LR-schedule state) and `state.json` (round traces, scheduler and bandit state, data position,
timing, and the sha256 of `state.pt`). It is written under a temporary name, fsynced and
renamed, so a crash leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch

PREFIX = "round-"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


class Checkpoints:
    def __init__(self, folder: Path, config_hash: str, keep: int = 2) -> None:
        self.folder = folder
        self.config_hash = config_hash
        self.keep = keep

    def _saved(self) -> list[Path]:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.iterdir() if p.name.startswith(PREFIX))

    def save(self, round_index: int, tensors: dict, state: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{PREFIX}{round_index:05d}"
        tmp = self.folder / f".{final.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        torch.save(tensors, tmp / "state.pt")
        _fsync_file(tmp / "state.pt")
        digest = hashlib.sha256((tmp / "state.pt").read_bytes()).hexdigest()
        meta = {"config_hash": self.config_hash, "state_pt_sha256": digest, **state}
        (tmp / "state.json").write_text(json.dumps(meta))
        _fsync_file(tmp / "state.json")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in self._saved()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def latest(self) -> tuple[dict, dict] | None:
        """The newest intact checkpoint of this config, or None. A damaged one (bad checksum,
        unreadable) is skipped in favour of the one before it."""
        for folder in reversed(self._saved()):
            try:
                meta = json.loads((folder / "state.json").read_text())
                blob = (folder / "state.pt").read_bytes()
            except (OSError, json.JSONDecodeError):
                continue
            if meta.get("config_hash") != self.config_hash:
                continue
            if hashlib.sha256(blob).hexdigest() != meta.get("state_pt_sha256"):
                continue
            tensors = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
            return tensors, meta
        return None

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def exclusive(lock_file: Path, wait: bool):
    """An advisory lock on `lock_file`; yields False without waiting when another process
    holds it and `wait` is false. Released when the holder exits, even on SIGKILL."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
