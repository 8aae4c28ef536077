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
import io
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch

from harness.atomic import atomic_dir, clear_stale_temps, set_aside

PREFIX = "round-"
NAME = re.compile(rf"{PREFIX}\d+")  # not `round-00003.damaged-1`, a checkpoint set aside


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


class Checkpoints:
    """`writer`: the process that saves (rank 0); only it removes or sets aside folders."""

    def __init__(self, folder: Path, config_hash: str, keep: int = 2, writer: bool = True) -> None:
        self.folder = folder
        self.config_hash = config_hash
        self.keep = keep
        self.writer = writer

    def _saved(self) -> list[Path]:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.iterdir() if NAME.fullmatch(p.name))

    def save(self, round_index: int, tensors: dict, state: dict) -> Path:
        final = self.folder / f"{PREFIX}{round_index:05d}"
        shutil.rmtree(final, ignore_errors=True)  # another config's: `latest` passed it over
        try:
            with atomic_dir(final) as tmp:
                torch.save(tensors, tmp / "state.pt")
                _fsync_file(tmp / "state.pt")
                digest = hashlib.sha256((tmp / "state.pt").read_bytes()).hexdigest()
                meta = {"config_hash": self.config_hash, "state_pt_sha256": digest, **state}
                (tmp / "state.json").write_text(json.dumps(meta))
                _fsync_file(tmp / "state.json")
        except RuntimeError as e:  # torch's zip writer on a full disk
            raise OSError(f"could not write checkpoint {final}: {e}") from e
        for old in self._saved()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def latest(self) -> tuple[dict, dict] | None:
        """The newest intact checkpoint of this config, or None. A damaged one (unreadable,
        bad checksum, refused by the safe load) is set aside and the one before it taken;
        temp folders a killed process left are removed (the caller holds the run's lock)."""
        if self.writer:
            clear_stale_temps(self.folder)
        for folder in reversed(self._saved()):
            try:
                meta = json.loads((folder / "state.json").read_bytes().decode("utf-8"))
                blob = (folder / "state.pt").read_bytes()
            except (OSError, ValueError) as e:
                self._set_aside(folder, f"unreadable ({e})")
                continue
            if not isinstance(meta, dict):
                self._set_aside(folder, "state.json holds no JSON object")
                continue
            if meta.get("config_hash") != self.config_hash:
                continue
            if hashlib.sha256(blob).hexdigest() != meta.get("state_pt_sha256"):
                self._set_aside(folder, "state.pt does not match its recorded sha256")
                continue
            try:
                tensors = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            except Exception as e:  # weights_only refuses what is not plain tensors and data
                self._set_aside(folder, f"state.pt fails its safe load ({e})")
                continue
            return tensors, meta
        return None

    def _set_aside(self, folder: Path, why: str) -> None:
        if self.writer and (aside := set_aside(folder)) is not None:
            print(f"checkpoint {folder}: {why}; kept as {aside.name}, resuming from the one before")

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
