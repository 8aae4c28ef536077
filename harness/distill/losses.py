"""Layerwise distillation term `L_layer` (spec/optima.md §3) and its projections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# How each block's MSE is scaled [ours], one of harness.config.LAYER_LOSS_NORMS (spec §3 leaves it
# unnormalised: "none"). Block outputs are pre-LayerNorm, so their scales differ by module (NLVR2
# at the start: visual ~98, text_decoder ~38, text ~6.4) and the reward partly measures scale.
# "teacher-variance": the MSE over the teacher state's variance over features (masked mean over
# positions, per block), so every module's term starts near 1 for a student that knows nothing.
# "layernorm": the MSE between both states LayerNorm'd over features (no affine). Both ignore a
# common rescaling.


class Projections(nn.ModuleDict):
    """Per module, student width -> teacher width; identity where they agree. Trained with
    the student and dropped after distillation [ours: spec §3]."""

    def __init__(self, student_widths: Mapping[str, int], teacher_widths: Mapping[str, int]):
        super().__init__(
            {
                m: nn.Identity()
                if student_widths[m] == teacher_widths[m]
                else nn.Linear(student_widths[m], teacher_widths[m])
                for m in student_widths
            }
        )


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-position `values` [B, S] over the positions where `mask` is true."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def masked_mse(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None, norm: str = "none"
):
    """Mean squared error over features and the positions where `mask` [B, S] is true, in
    float32 (a no-op on float32 inputs; bfloat16 ones from autocast are widened first), scaled
    as `norm` says (LAYER_LOSS_NORMS)."""
    s, t = student.float(), teacher.float()
    if norm == "layernorm":
        s, t = F.layer_norm(s, s.shape[-1:]), F.layer_norm(t, t.shape[-1:])
    mse = masked_mean((s - t).pow(2).mean(dim=-1), mask)
    if norm == "teacher-variance":
        # a constant of the teacher: it scales the term and its gradient, never trains
        variance = masked_mean(t.detach().var(dim=-1, unbiased=False), mask)
        mse = mse / variance.clamp(min=torch.finfo(torch.float32).tiny)
    return mse


def module_layer_loss(
    student_hidden: Sequence[torch.Tensor],
    teacher_hidden: Sequence[torch.Tensor],
    projection: nn.Module,
    mask: torch.Tensor | None,
    norm: str = "none",
) -> torch.Tensor:
    """Mean over the student's blocks of the MSE to the mapped teacher block; `teacher_hidden`
    holds only the mapped teacher blocks, in student order."""
    if len(student_hidden) != len(teacher_hidden):
        raise ValueError(
            f"{len(student_hidden)} student blocks but {len(teacher_hidden)} mapped teacher blocks"
        )
    losses = [
        masked_mse(projection(s), t, mask, norm)
        for s, t in zip(student_hidden, teacher_hidden, strict=True)
    ]
    return torch.stack(losses).mean()


def layer_losses(
    student_hidden: Mapping[str, Sequence[torch.Tensor]],
    teacher_hidden: Mapping[str, Sequence[torch.Tensor]],
    projections: Projections,
    masks: Mapping[str, torch.Tensor | None],
    norm: str = "none",
) -> torch.Tensor:
    """[M] per-module losses, modules in the projections' order. All modules are computed
    every step and the active set enters as a mask, so switching modules between rounds
    changes no graph (XLA) and every module's distance is logged for free."""
    return torch.stack(
        [
            module_layer_loss(student_hidden[m], teacher_hidden[m], projections[m], masks[m], norm)
            for m in projections
        ]
    )


def text_masks(text: torch.Tensor, pad_id: int) -> dict[str, torch.Tensor | None]:
    """Valid positions per module for CoCa: the unimodal text tower appends a CLS position
    after the padded text; the decoder sees the text positions; images have no padding."""
    real = text != pad_id
    cls = torch.ones_like(real[:, :1])
    return {"visual": None, "text": torch.cat([real, cls], dim=1), "text_decoder": real}
