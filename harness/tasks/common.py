"""What the tasks share: batched inference, and the softmax tasks' examples and loss terms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.image_store import ImageStore, to_model_input
from harness.models.heads import ClassifierHead


@torch.no_grad()
def predict_logits(task, model: nn.Module, examples, device, batch_size: int) -> torch.Tensor:
    """Task logits for every example, in order, in eval mode."""
    model.eval()
    parts = []
    for start in range(0, len(examples), batch_size):
        index = torch.arange(start, min(start + batch_size, len(examples)))
        batch = task.batch(examples, index, device)
        parts.append(task.forward(model, batch)["task_logits"].cpu())
    model.train()
    return torch.cat(parts)


def softmax_task_loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
    return F.cross_entropy(logits, batch["label"])


def softmax_pred_loss(
    student: torch.Tensor, teacher: torch.Tensor, tau: float, batch: dict | None = None
) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened outputs, times tau^2 (spec §3)."""
    log_p = F.log_softmax(student / tau, dim=-1)
    log_q = F.log_softmax(teacher / tau, dim=-1)
    return F.kl_div(log_p, log_q, log_target=True, reduction="batchmean") * tau**2


@dataclass
class LabelledExamples:
    """A split as tensors for a softmax task; `views` images per example (NLVR2: 2)."""

    split: object
    ids: list[str]
    images: ImageStore
    image_index: torch.Tensor  # [N, V] into `images`
    tokens: torch.Tensor  # [N, L]
    label: torch.Tensor  # [N], -1 where the split has no labels

    def __len__(self) -> int:
        return self.tokens.shape[0]


class SoftmaxTask:
    """A classification task over `labels` from an image (or image pair) and a text: the
    shared batch, forward, loss terms and prediction; subclasses read their format and score
    predictions with their official metric."""

    labels: tuple[str, ...]
    views = 1

    def build_head(self, width: int, seed: int) -> nn.Module:
        return ClassifierHead(width, len(self.labels), seed=seed)

    def labelled_examples(
        self,
        split,
        ids: list[str],
        image_paths: list[tuple[Path, ...]],
        texts: list[str],
        labels: list[int | None],
        tokenizer,
        image_size: int,
        context_length: int,
        progress: bool,
    ) -> LabelledExamples:
        unique = sorted({p for paths in image_paths for p in paths})
        slot = {p: i for i, p in enumerate(unique)}
        return LabelledExamples(
            split=split,
            ids=ids,
            images=ImageStore(unique, image_size, progress=progress, desc=f"{self.name} images"),
            image_index=torch.tensor([[slot[p] for p in paths] for paths in image_paths]),
            tokens=tokenizer.encode(texts, context_length),
            label=torch.tensor([-1 if y is None else y for y in labels]),
        )

    def batch(self, ex: LabelledExamples, index: torch.Tensor, device) -> dict:
        """Views go view-major: all first images, then all second ones, each with the text."""
        image_index = ex.image_index[index].T.flatten()
        return {
            "images": to_model_input(ex.images.get(image_index), device),
            "image_index": image_index,
            "text": ex.tokens[index].repeat(self.views, 1).to(device),
            "label": ex.label[index].to(device),
        }

    @staticmethod
    def forward(model: nn.Module, batch: dict) -> dict:
        return model(batch["images"], batch["text"])

    task_loss = staticmethod(softmax_task_loss)
    pred_loss = staticmethod(softmax_pred_loss)

    def predictions(self, logits: torch.Tensor) -> list[str]:
        return [self.labels[i] for i in logits.argmax(dim=1).tolist()]

    def evaluate(self, model: nn.Module, ex: LabelledExamples, device, batch_size: int) -> dict:
        logits = predict_logits(self, model, ex, device, batch_size)
        return self.metrics(ex, self.predictions(logits))
