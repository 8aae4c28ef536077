"""What the frozen teacher contributes to a distillation step: its mapped blocks' hidden
states and its task logits, computed live per batch or once per study and gathered.

The teacher is frozen and every run of a grid shows it the same examples, so computing its
outputs once per study (spec/budget.md: a distillation step costs ~2.3x a student step with
a live teacher) and reusing them across schedulers and seeds changes no number beyond float
rounding of batch composition. The outputs are stored in one file, keyed on what shapes them,
and memory-mapped: later processes (a resumed grid, an ablation, `-all`) read them from the
page cache instead of recomputing them, and parallel processes share one copy in memory. Its
sha256 is recorded beside it (`<key>.json`) and checked before each process reuses it
(harness/integrity.py): a damaged file is set aside and computed again.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from harness.atomic import atomic_path
from harness.backend import step_end
from harness.checkpoint import exclusive
from harness.config import config_hash
from harness.integrity import clear_temps, record, set_aside_damaged, verified

CACHE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

Batch = dict
TeacherBatch = dict  # {"hidden": {module: [mapped block outputs]}, "logits": Tensor}


def select_mapped(hidden: Mapping[str, Sequence[torch.Tensor]], maps: Mapping[str, list[int]]):
    return {m: [hidden[m][j] for j in idx] for m, idx in maps.items()}


class LiveTeacher:
    """Runs the teacher on each batch, without gradients."""

    def __init__(self, model: nn.Module, forward: Callable, maps: Mapping[str, list[int]]):
        self.model = model.eval()
        self.forward = forward
        self.maps = dict(maps)

    @torch.no_grad()
    def __call__(self, index: torch.Tensor, batch: Batch) -> TeacherBatch:
        out = self.forward(self.model, batch)
        return {"hidden": select_mapped(out["hidden"], self.maps), "logits": out["task_logits"]}


class CachedTeacher:
    """Teacher outputs for every example of a split, held in memory and gathered by index.

    The visual tower sees only the image, so its states are stored once per image rather than
    once per example (a VQA image carries several questions). An example with several views
    (NLVR2: two images, one text) is forwarded view-major ([V*B, ...]); its per-example
    states are stored example-major ([N, V, ...]) and gathered back into view-major order."""

    def __init__(self, visual, per_example, logits, views: int) -> None:
        self.visual = visual  # list of [N_images, S, W]
        self.per_example = per_example  # {module: list of [N_examples, V, S, W]}
        self.logits = logits  # [N_examples, ...]
        self.views = views

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        live: LiveTeacher,
        n_examples: int,
        make_batch: Callable[[torch.Tensor], Batch],
        batch_size: int,
        progress: bool = True,
    ) -> CachedTeacher:
        visual: dict[int, list[torch.Tensor]] = {}
        per_example: dict[str, list[list[torch.Tensor]]] = {}
        logits = []
        views = 1
        starts = range(0, n_examples, batch_size)
        for start in tqdm(starts, desc="teacher outputs", disable=not progress):
            index = torch.arange(start, min(start + batch_size, n_examples))
            batch = make_batch(index)
            views = len(batch["image_index"]) // len(index)
            out = live(index, batch)
            step_end(batch["text"].device)  # XLA: one graph for the batch, then transfers
            logits.append(out["logits"].cpu())
            for m, states in out["hidden"].items():
                states = [s.cpu() for s in states]  # one transfer a state (XLA: not a row)
                if m == "visual":
                    for row, image in enumerate(batch["image_index"].tolist()):
                        visual.setdefault(image, [s[row] for s in states])
                else:
                    per_example.setdefault(m, [[] for _ in states])
                    for j, s in enumerate(states):
                        per_example[m][j].append(s.cpu().unflatten(0, (views, -1)).transpose(0, 1))
        n_images = max(visual) + 1
        if sorted(visual) != list(range(n_images)):
            raise ValueError("teacher cache: image indices are not contiguous")
        stacked_visual = [
            torch.stack([visual[i][j] for i in range(n_images)]) for j in range(len(visual[0]))
        ]
        return cls(
            stacked_visual,
            {m: [torch.cat(parts) for parts in layers] for m, layers in per_example.items()},
            torch.cat(logits),
            views,
        )

    def __call__(self, index: torch.Tensor, batch: Batch) -> TeacherBatch:
        def out(t: torch.Tensor) -> torch.Tensor:  # stored in float16/bfloat16 or float32
            return t.to(device=batch["text"].device, dtype=torch.float32)

        hidden = {"visual": [out(v[batch["image_index"]]) for v in self.visual]}
        for m, layers in self.per_example.items():
            hidden[m] = [out(s[index].transpose(0, 1).flatten(0, 1)) for s in layers]
        return {"hidden": hidden, "logits": out(self.logits[index])}

    def tensors(self) -> list[torch.Tensor]:
        return [
            *self.visual,
            self.logits,
            *(s for layers in self.per_example.values() for s in layers),
        ]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def to(self, dtype: torch.dtype) -> CachedTeacher:
        return CachedTeacher(
            [v.to(dtype) for v in self.visual],
            {m: [s.to(dtype) for s in layers] for m, layers in self.per_example.items()},
            self.logits.to(dtype),
            self.views,
        )

    def save(self, path: Path) -> None:
        """Written atomically, into an open file: a full disk is then an OSError naming the
        file (harness.atomic.DiskFull), where torch's own file writer raises a RuntimeError."""
        state = {
            "visual": self.visual,
            "per_example": self.per_example,
            "logits": self.logits,
            "views": self.views,
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(state, f)

    @classmethod
    def load(cls, path: Path) -> CachedTeacher:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return cls(state["visual"], state["per_example"], state["logits"], state["views"])


def cache_key(teacher_key: str, maps: Mapping[str, list[int]], dtype: str, n: int) -> str:
    """Covers what shapes the stored outputs: the teacher (its key covers its config, data,
    tokenizer and code), the layer map, the storage dtype, the examples and this file."""
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return config_hash(
        {"teacher": teacher_key, "maps": dict(maps), "dtype": dtype, "n": n, "code": code}
    )


def ensure_cached(
    path: Path, build: Callable[[], CachedTeacher], dtype: str
) -> tuple[CachedTeacher, bool]:
    """The stored outputs at `path` (memory-mapped), built and stored first when absent or
    not matching the checksum recorded beside them; returns them and whether they were
    reused. One builder at a time; the lock held also clears what a stopped one left."""
    record_file = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path.with_name(path.name + ".lock"), wait=True):
        clear_temps(path.parent, path.name, record_file.name)
        if verified(path, record_file, "teacher outputs") is not None:
            try:
                return CachedTeacher.load(path), True
            except (RuntimeError, OSError, EOFError, KeyError, pickle.UnpicklingError) as err:
                set_aside_damaged(path, "teacher outputs", f"unreadable: {err}")
        build().to(CACHE_DTYPES[dtype]).save(path)
        record(path, record_file, {"dtype": dtype})
        return CachedTeacher.load(path), False
