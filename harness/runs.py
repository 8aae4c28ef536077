"""Run records (spec/harness.md §6, a contract): one `record.json` per run, written atomically.

The report reads these and nothing else, so a record carries everything a table or a
provenance footer quotes: resolved config, metrics, round traces, timing, provenance.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from harness.atomic import set_aside
from harness.config import OURS_OPTIONS, StudyConfig
from harness.records import RECORD, SCHEMA_VERSION

PACKAGES = ("optima-repro", "torch", "numpy", "transformers", "sentencepiece", "pillow")


def run_dir(study_dir: Path, scheduler: str, seed: int) -> Path:
    return study_dir / scheduler / f"seed-{seed}"


def read_record(path: Path) -> dict | None:
    """The record at `path`, or None when there is none. One that cannot be read back (bytes
    that are not UTF-8 JSON, an unreadable file) is set aside as `record.json.damaged-<n>` and
    counts as none: the run is done again, resuming from its last intact checkpoint."""
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        why = str(e)
    else:
        if isinstance(record, dict):
            return record
        why = "not a JSON object"
    if (aside := set_aside(path)) is not None:
        print(f"run record {path}: damaged ({why}); kept as {aside.name}, the run is done again")
    return None


def is_complete(folder: Path, config_hash: str) -> bool:
    record = read_record(folder / RECORD)
    return bool(
        record
        and record.get("status") == "complete"
        and record.get("config_hash") == config_hash
        and record.get("schema_version") == SCHEMA_VERSION
    )


def git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(
    cfg: StudyConfig, device: torch.device, data: dict, evaluator: dict, numerics: dict
) -> dict:
    """`numerics`: what `harness.numerics.settle` found in force for this run."""
    return {
        "git": git_commit(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "numerics": numerics,
        "data": data,
        "evaluator": evaluator,
        "ours_options": {k: getattr(cfg.distill, k) for k in OURS_OPTIONS},
        "optimizer": {
            "name": "harness.distill.adafactor.Adafactor",
            "note": "torch's Adafactor (bit for bit on CPU) with its scalars on the device; it "
            "keeps no first moment: the card's beta1 = 0.9 has no counterpart; its second "
            "moment decays as 1 - t^-0.8 (beta2_decay=-0.8)",
        },
    }
