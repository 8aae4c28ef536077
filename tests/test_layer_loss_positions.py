"""`distill.layer_loss_positions` (spec/optima.md §3 [ours]): the layer loss is the MSE over
the text positions that hold tokens (`non-pad`, the default) or over every position, pads
included (`all`). A stand-in student, teacher and task whose hidden states differ by 1 at real
positions and by 3 at pads, so each reading gives a known loss through the loop's own
`Distiller` (the reward-set objective and a training step)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from harness.config import DistillConfig
from harness.distill.loop import Distiller, DistillInputs
from harness.distill.losses import Projections

MODULES = ("visual", "text", "text_decoder")
WIDTH = 4
PAD = 0
# two examples of four tokens: 2 and 1 real tokens, then pads
TEXT = torch.tensor([[5, 6, PAD, PAD], [7, PAD, PAD, PAD]])
# per module: mean squared error (student 0, teacher 1 at real positions and CLS, 3 at pads)
NON_PAD = [1.0, 1.0, 1.0]  # every counted position is off by 1
# text: 5 real/CLS positions of 10 (1 each), 5 pads (9 each) -> 5; decoder: 3 of 8 -> 6
ALL = [1.0, 5.0, 6.0]


class Task:
    @staticmethod
    def batch(train, index: torch.Tensor, device) -> dict:
        return {"text": train[index]}

    @staticmethod
    def forward(model: nn.Module, batch: dict) -> dict:
        return model(batch["text"])

    @staticmethod
    def task_loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return logits.sum() * 0

    @staticmethod
    def pred_loss(student, teacher, tau, batch=None) -> torch.Tensor:
        return (student - teacher).pow(2).mean()


class Student(nn.Module):
    """Hidden states all equal to one trainable scalar (0), one block per module."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, text: torch.Tensor) -> dict:
        b, n = text.shape
        zeros = {"visual": (b, 3, WIDTH), "text": (b, n + 1, WIDTH), "text_decoder": (b, n, WIDTH)}
        hidden = {m: [torch.zeros(shape) + self.w] for m, shape in zeros.items()}
        return {"hidden": hidden, "task_logits": torch.zeros(b, 2) + self.w}


def teacher(index: torch.Tensor, batch: dict) -> dict:
    text = batch["text"]
    b, n = text.shape
    tokens = torch.where(text == PAD, 3.0, 1.0)[..., None].expand(b, n, WIDTH)
    with_cls = torch.cat([tokens, torch.ones(b, 1, WIDTH)], dim=1)  # CLS last, never a pad
    hidden = {"visual": [torch.ones(b, 3, WIDTH)], "text": [with_cls], "text_decoder": [tokens]}
    return {"hidden": hidden, "logits": torch.zeros(b, 2)}


def _distiller() -> Distiller:
    inputs = DistillInputs(Task(), TEXT, teacher, MODULES, PAD, torch.device("cpu"))
    widths = dict.fromkeys(MODULES, WIDTH)
    return Distiller(inputs, Student(), Projections(widths, widths))


def _cfg(positions: str) -> DistillConfig:
    """Unnormalised MSE: the stand-in teacher's states are constant (zero variance)."""
    return DistillConfig(
        student="s",
        steps=2,
        rounds=1,
        warmup_rounds=0,
        layer_loss_positions=positions,
        layer_loss_norm="none",
    )


def _objective(positions: str) -> list[float]:
    terms = _distiller().objective_terms(torch.arange(len(TEXT)), _cfg(positions), batch_size=2)
    return terms["layer"].tolist()


def _step(positions: str) -> list[float]:
    d = _distiller()
    optimizer = torch.optim.SGD(d.params, lr=0.0)
    state = SimpleNamespace(
        optimizer=optimizer, schedule=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    )
    out = d.step(torch.arange(len(TEXT)), (0.0, 1.0, 0.01), torch.ones(3), _cfg(positions), state)
    return out[3:].tolist()  # [loss, task, pred, layer per module]


def test_non_pad_counts_only_the_tokens():
    assert _objective("non-pad") == pytest.approx(NON_PAD)
    assert _step("non-pad") == pytest.approx(NON_PAD)
    assert DistillConfig(student="s", steps=2, rounds=1, warmup_rounds=0).layer_loss_positions == (
        "non-pad"
    )


def test_all_counts_the_pads_in_the_reward_objective():
    assert _objective("all") == pytest.approx(ALL)


def test_all_counts_the_pads_in_a_training_step():
    assert _step("all") == pytest.approx(ALL)
