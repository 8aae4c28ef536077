"""What the classification tasks share: batched inference and the softmax loss terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def softmax_pred_loss(student: torch.Tensor, teacher: torch.Tensor, tau: float) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened outputs, times tau^2 (spec §3)."""
    log_p = F.log_softmax(student / tau, dim=-1)
    log_q = F.log_softmax(teacher / tau, dim=-1)
    return F.kl_div(log_p, log_q, log_target=True, reduction="batchmean") * tau**2
