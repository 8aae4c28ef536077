"""What the tasks share: their files and model call (`Task`), batched inference, and the softmax
tasks' examples and loss terms."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.image_store import ImageStore, to_model_input
from harness.data.synthetic.cache import ensure_world
from harness.models.heads import ClassifierHead


class Task:
    """What every task does alike: it reads a split with the real data's reader, writes its
    synthetic world in that same format (cached by name), and calls the model on images and
    text."""

    name: str
    reader: Callable[[Path, str], Any]  # staticmethod(read_<task>)
    world: tuple[Callable[[str], Any], Callable[..., Any]]  # (a named world's spec, its writer)

    @classmethod
    def read(cls, root: Path, split: str):
        return cls.reader(root, split)

    @classmethod
    def ensure_world(cls, cache_dir: Path, name: str, progress: bool = True) -> Path:
        spec, write = cls.world
        return ensure_world(cache_dir, f"{cls.name}-{name}", spec(name), write, progress=progress)

    @staticmethod
    def forward(model: nn.Module, batch: dict) -> dict:
        return model(batch["images"], batch["text"])

    def evaluate(self, model: nn.Module, examples, device, batch_size: int) -> dict:
        """The official metric of the argmax predictions (a captioning task generates)."""
        logits = predict_logits(self, model, examples, device, batch_size)
        return self.metrics(examples, self.predictions(logits))


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


class SoftmaxTask(Task):
    """A classification task over `labels` from an image (or image pair) and a text: the
    shared examples, batch, loss terms, prediction and majority baseline; subclasses say where
    an example's id, images and label are (`columns`) and score predictions with their
    official metric."""

    labels: tuple[str, ...]
    views = 1

    @classmethod
    def from_train(cls, train, cfg) -> SoftmaxTask:
        return cls()

    @staticmethod
    def texts(split) -> list[str]:
        raise NotImplementedError

    @staticmethod
    def columns(split) -> tuple[list[str], list[tuple[Path, ...]], list[int | None]]:
        """Each example's id, image paths (`views` of them) and label index (None: none)."""
        raise NotImplementedError

    def build_head(self, width: int, seed: int) -> nn.Module:
        return ClassifierHead(width, len(self.labels), seed=seed)

    def examples(
        self, split, tokenizer, image_size: int, context_length: int, progress: bool = True
    ) -> LabelledExamples:
        ids, image_paths, labels = self.columns(split)
        unique = sorted({p for paths in image_paths for p in paths})
        slot = {p: i for i, p in enumerate(unique)}
        return LabelledExamples(
            split=split,
            ids=ids,
            images=ImageStore(unique, image_size, progress=progress, desc=f"{self.name} images"),
            image_index=torch.tensor([[slot[p] for p in paths] for paths in image_paths]),
            tokens=tokenizer.encode(self.texts(split), context_length),
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

    task_loss = staticmethod(softmax_task_loss)
    pred_loss = staticmethod(softmax_pred_loss)

    def predictions(self, logits: torch.Tensor) -> list[str]:
        return [self.labels[i] for i in logits.argmax(dim=1).tolist()]

    def baseline(self, train, ex: LabelledExamples) -> tuple[str, dict]:
        majority = self.labels[Counter(self.columns(train)[2]).most_common(1)[0][0]]
        return f"majority label ({majority})", self.metrics(ex, [majority] * len(ex))
