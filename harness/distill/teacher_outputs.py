"""What the frozen teacher contributes to a distillation step: its mapped blocks' hidden
states and its task logits, computed live per batch or once per study and gathered.

The teacher is frozen and every run of a grid shows it the same examples, so computing its
outputs once per study (spec/budget.md: a distillation step costs ~2.3x a student step with
a live teacher) and reusing them across schedulers and seeds changes no number beyond float
rounding of batch composition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from tqdm import tqdm

from harness.backend import step_end

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
        device = batch["text"].device
        image = batch["image_index"]
        hidden = {"visual": [v[image].to(device) for v in self.visual]}
        for m, layers in self.per_example.items():
            hidden[m] = [s[index].transpose(0, 1).flatten(0, 1).to(device) for s in layers]
        return {"hidden": hidden, "logits": self.logits[index].to(device)}

    def nbytes(self) -> int:
        tensors = [*self.visual, self.logits]
        tensors += [s for layers in self.per_example.values() for s in layers]
        return sum(t.numel() * t.element_size() for t in tensors)
