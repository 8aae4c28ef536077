"""Reading a CoCa checkpoint from disk: open_clip's files (`.pt`/`.bin`/`.safetensors`) and our
own, without unpickling code (`torch.load(weights_only=True)` or safetensors).

open_clip's `load_state_dict` accepts a bare state dict, one wrapped as {"state_dict": ...}
(its training checkpoints), and keys prefixed "module." (saved from DistributedDataParallel);
so does this reader. Keys are then compared with our CoCa's, which follow open_clip's names
(harness/models/coca.py), and any difference is reported by name with the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from harness.errors import DataError

SAFETENSORS = (".safetensors",)
PICKLED = (".pt", ".pth", ".bin")
SHOWN = 12  # keys listed per kind in an error; the rest are counted


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of `path`, unwrapped from {"state_dict": ...} and stripped of "module."."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint file not found")
    if path.suffix in SAFETENSORS:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except SafetensorError as e:  # truncated or damaged: no rebuild of a user's file
            raise DataError(path, f"not a readable safetensors file: {e}") from None
    elif path.suffix in PICKLED:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:  # OSError: cut short
            raise DataError(path, f"not a weights-only torch checkpoint: {e}") from None
    else:
        raise DataError(
            path, f"unknown checkpoint format {path.suffix!r}; expected {SAFETENSORS + PICKLED}"
        )
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "expected a state dict of tensors (or {'state_dict': ...})")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _listed(kind: str, keys: list[str]) -> str:
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return f"{len(keys)} {kind} ({', '.join(keys[:SHOWN])}{more})"


def check_keys(
    path: Path, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str
) -> None:
    """Missing keys, unexpected keys and shape mismatches of `state` against `expected`
    (`what`'s state dict), all in one error naming the file. The text tower's positional
    embedding may be longer than ours (a shorter context keeps its first rows)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = []
    for key in sorted(set(state) & set(expected)):
        have, want = tuple(state[key].shape), tuple(expected[key].shape)
        longer_context = key.endswith("text.positional_embedding") and have[1:] == want[1:]
        if have != want and not (longer_context and have[0] >= want[0]):
            shapes.append(f"{key} {have} != {want}")
    problems = [
        _listed(kind, keys)
        for kind, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches (file != model)", shapes),
        )
        if keys
    ]
    if problems:
        raise DataError(path, f"does not fit {what}: " + "; ".join(problems))
