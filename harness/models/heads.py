"""Task heads on CoCa's multimodal decoder output (spec/harness.md §4)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness.models.coca import CoCa, materialize


def pool_last_token(multimodal: torch.Tensor, text: torch.Tensor, pad_id: int) -> torch.Tensor:
    """[B, L, W] -> [B, W]: the decoder state at each row's last non-pad token. The question
    ends with an end token and the decoder is causal, so only that position has read the
    whole question (and, through cross-attention, the image). A row of pads yields position 0.
    """
    positions = torch.arange(text.shape[1], device=text.device)
    last = torch.where(text != pad_id, positions, 0).amax(dim=1)
    return multimodal[torch.arange(text.shape[0], device=text.device), last]


class ClassifierHead(nn.Module):
    """Class scores from pooled multimodal features: the answer vocabulary of VQA (read with a
    sigmoid: soft targets are not a distribution), SNLI-VE's 3 labels, NLVR2's 2 (read with a
    softmax). The MLP shape (Linear, GELU, LayerNorm, Linear with a 2x wider hidden layer) is
    the usual classifier of ALBEF/BLIP-style models."""

    def __init__(self, width: int, n_answers: int, *, seed: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = 2 * width if hidden is None else hidden
        with torch.device("meta"):
            self.fc1 = nn.Linear(width, hidden)
            self.act = nn.GELU()
            self.norm = nn.LayerNorm(hidden)
            self.fc2 = nn.Linear(hidden, n_answers)
        materialize(self, seed)

    def init_parameters(self, g: torch.Generator) -> None:
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, 0.0, fc.in_features**-0.5, generator=g)
            nn.init.zeros_(fc.bias)
        nn.init.ones_(self.norm.weight)
        nn.init.zeros_(self.norm.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.act(self.fc1(pooled))))


class TaskModel(nn.Module):
    """CoCa plus a task head on the last-token pooled decoder state. Parameters live under
    `coca.` and `head.`, so the CoCa part of a checkpoint is found by prefix.

    `views` images go with one text (NLVR2: 2): the inputs hold them view-major (all first
    images, then all second ones) and the head reads the views' pooled features side by side.
    Without a head (captioning) the task logits are the decoder's token logits."""

    def __init__(self, coca: CoCa, head: nn.Module | None, views: int = 1) -> None:
        super().__init__()
        self.coca = coca
        self.head = head
        self.views = views

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> dict[str, Any]:
        """CoCa's output dict plus `task_logits` ([B, n_outputs], or [B, L, V] tokens)."""
        out = self.coca(images, text)
        if self.head is None:
            return {**out, "task_logits": out["logits"]}
        pooled = pool_last_token(out["multimodal"], text, self.coca.config.pad_id)
        if self.views > 1:
            pooled = pooled.unflatten(0, (self.views, -1)).transpose(0, 1).flatten(1)
        return {**out, "task_logits": self.head(pooled)}
