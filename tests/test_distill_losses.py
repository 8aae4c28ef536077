"""Loss terms on fixed inputs, each value worked by hand (spec/optima.md §3-§4)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from baselines.fixed import NoDistillScheduler, UniformScheduler
from harness.config import LAYER_LOSS_NORMS, DistillConfig
from harness.data.order import BatchOrder, training_order
from harness.distill.loop import reward_objective, training_weights
from harness.distill.losses import (
    Projections,
    layer_losses,
    masked_mse,
    module_layer_loss,
    text_masks,
)
from harness.tasks.vqa import VqaTask


def test_masked_mse_by_hand():
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # [B=1, S=2, W=2]
    t = torch.tensor([[[0.0, 0.0], [3.0, 2.0]]])
    # position 0: (1 + 4) / 2 = 2.5; position 1: (0 + 4) / 2 = 2.0
    assert masked_mse(s, t, None).item() == pytest.approx(2.25)
    assert masked_mse(s, t, torch.tensor([[True, False]])).item() == pytest.approx(2.5)
    assert masked_mse(s, t, torch.tensor([[False, True]])).item() == pytest.approx(2.0)


def test_module_layer_loss_is_mean_over_student_blocks():
    zeros = torch.zeros(1, 1, 2)
    student = [zeros, zeros]
    teacher = [torch.ones(1, 1, 2), 3 * torch.ones(1, 1, 2)]  # MSE 1 and 9
    assert module_layer_loss(student, teacher, nn.Identity(), None).item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="mapped teacher blocks"):
        module_layer_loss(student, teacher[:1], nn.Identity(), None)


def test_teacher_variance_norm_by_hand():
    s = torch.zeros(1, 2, 2)
    t = torch.tensor([[[1.0, 3.0], [0.0, 4.0]]])  # feature variances 1 and 4; MSE 5 and 8
    assert masked_mse(s, t, None, "teacher-variance").item() == pytest.approx(6.5 / 2.5)
    only_first = torch.tensor([[True, False]])
    assert masked_mse(s, t, only_first, "teacher-variance").item() == pytest.approx(5.0)


@pytest.mark.parametrize("norm", [n for n in LAYER_LOSS_NORMS if n != "none"])
def test_normalised_layer_loss_ignores_a_common_scale(norm):
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g) + 0.5
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    base = masked_mse(s, t, mask, norm).item()
    for c in (0.5, 7.0, 300.0):  # layernorm: states well above its eps (1e-5)
        assert masked_mse(c * s, c * t, mask, norm).item() == pytest.approx(base, rel=1e-4)
    assert masked_mse(7.0 * s, 7.0 * t, mask).item() == pytest.approx(
        49.0 * masked_mse(s, t, mask).item(), rel=1e-5
    )


def test_normalised_modules_start_on_one_scale_and_the_teacher_gets_no_gradient():
    # the same states at scales 10 and 1 (visual ~98 vs text ~6.4 on NLVR2): unnormalised, the
    # terms differ 100-fold; normalised, a student that knows nothing scores the same on both
    p = Projections({"visual": 4, "text": 4}, {"visual": 4, "text": 4})
    x = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(1))
    teacher = {"visual": [10.0 * x], "text": [x.clone().requires_grad_()]}
    student = {m: [torch.zeros(3, 6, 4, requires_grad=True)] for m in p}
    masks = {"visual": None, "text": None}
    raw = layer_losses(student, teacher, p, masks)
    assert raw[0].item() == pytest.approx(100.0 * raw[1].item(), rel=1e-5)
    for norm in ("teacher-variance", "layernorm"):
        out = layer_losses(student, teacher, p, masks, norm)
        assert out[0].item() == pytest.approx(out[1].item(), rel=1e-4)
    out = layer_losses(student, teacher, p, masks, "teacher-variance")
    out.sum().backward()
    # d/dt of (s - t)^2 / var(t) with var(t) held fixed, at s = 0: -2 t / (n var(t))
    var = x.var(dim=-1, unbiased=False).mean()
    assert torch.allclose(teacher["text"][0].grad, 2 * x / (x.numel() * var), rtol=1e-4)


def test_projections_only_where_widths_differ():
    p = Projections({"visual": 4, "text": 8}, {"visual": 8, "text": 8})
    assert isinstance(p["visual"], nn.Linear) and p["visual"].in_features == 4
    assert isinstance(p["text"], nn.Identity)


def test_layer_losses_per_module_in_order():
    p = Projections({"visual": 2, "text": 2}, {"visual": 2, "text": 2})
    student = {"visual": [torch.zeros(1, 3, 2)], "text": [torch.zeros(1, 3, 2)]}
    teacher = {"visual": [torch.ones(1, 3, 2)], "text": [2 * torch.ones(1, 3, 2)]}
    out = layer_losses(student, teacher, p, {"visual": None, "text": None})
    assert out.tolist() == [1.0, 4.0]


def test_text_masks_cover_cls_position():
    text = torch.tensor([[5, 6, 3, 0]])
    masks = text_masks(text, pad_id=0)
    assert masks["visual"] is None
    assert masks["text_decoder"].tolist() == [[True, True, True, False]]
    assert masks["text"].tolist() == [[True, True, True, False, True]]


def test_vqa_task_loss_by_hand():
    logits = torch.tensor([[0.0, 0.0]])
    batch = {"target": torch.tensor([[1.0, 0.0]])}
    # BCE(0 logit, y) = log 2 for either y; summed over 2 answers
    assert VqaTask.task_loss(logits, batch).item() == pytest.approx(2 * math.log(2))


def test_vqa_pred_loss_by_hand():
    student = torch.tensor([[0.0]])
    teacher = torch.tensor([[math.log(3.0)]])  # sigmoid = 0.75
    # KL(Bernoulli(0.75) || Bernoulli(0.5)) = BCE - entropy = log 2 - H(0.75)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert VqaTask.pred_loss(student, teacher, 1.0).item() == pytest.approx(math.log(2) - h)
    # at its minimum the student copies the teacher: exactly 0 (the entropy is not counted)
    assert VqaTask.pred_loss(teacher, teacher, 1.0).item() == 0.0


def _bce(student, teacher, tau):
    """The former L_pred: BCE against the teacher's probabilities, summed over answers."""
    target = torch.sigmoid(teacher / tau)
    loss = nn.functional.binary_cross_entropy_with_logits(student / tau, target, reduction="none")
    return loss.sum(dim=1).mean() * tau**2


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_vqa_pred_loss_is_the_bernoulli_kl(tau):
    g = torch.Generator().manual_seed(0)
    teacher = 6 * torch.randn(16, 50, generator=g)
    teacher[0, :4] = torch.tensor([40.0, -40.0, 90.0, -90.0])  # saturated probabilities
    student = 6 * torch.randn(16, 50, generator=g)
    student[1] = teacher[1] + 1e-6  # a hair from the teacher: rounding must not go below 0
    loss = VqaTask.pred_loss(student, teacher, tau)
    assert loss.item() >= 0 and math.isfinite(loss.item())
    for row in range(3):  # per example too
        assert VqaTask.pred_loss(student[row : row + 1], teacher[row : row + 1], tau) >= 0
    assert VqaTask.pred_loss(teacher, teacher, tau).item() == 0.0
    # its value: the BCE minus the teacher's entropy, in float64 by the textbook formula
    s64, t64 = (student / tau).double(), (teacher / tau).double()
    p, q = torch.sigmoid(s64), torch.sigmoid(t64)
    log_p, log_1p = nn.functional.logsigmoid(s64), nn.functional.logsigmoid(-s64)
    log_q, log_1q = nn.functional.logsigmoid(t64), nn.functional.logsigmoid(-t64)
    kl = q * (log_q - log_p) + (1 - q) * (log_1q - log_1p)
    assert p.shape == kl.shape
    assert loss.item() == pytest.approx(kl.sum(dim=1).mean().item() * tau**2, rel=1e-5)
    # the gradient is the BCE's, bit for bit
    a = student.clone().requires_grad_()
    b = student.clone().requires_grad_()
    VqaTask.pred_loss(a, teacher, tau).backward()
    _bce(b, teacher, tau).backward()
    assert torch.equal(a.grad, b.grad)


def test_reward_objective_variants():
    cfg = DistillConfig(student="s", steps=10, rounds=2, warmup_rounds=1, alpha=(0.0, 1.0, 0.1))
    terms = {"pred": torch.tensor(2.0), "layer": torch.tensor([1.0, 2.0, 3.0])}
    mask = torch.tensor([0.0, 1.0, 0.0])
    assert reward_objective(terms, cfg, mask).item() == pytest.approx(2.0 + 0.1 * 6.0)
    pred = DistillConfig(**{**cfg.__dict__, "reward_loss": "pred"})
    assert reward_objective(terms, pred, mask).item() == pytest.approx(2.0)
    module = DistillConfig(**{**cfg.__dict__, "reward_loss": "module"})
    assert reward_objective(terms, module, mask).item() == pytest.approx(0.2)


def test_none_row_trains_on_task_alone():
    cfg = DistillConfig(student="s", steps=10, rounds=2, warmup_rounds=1)
    modules = ("visual", "text")
    assert training_weights(NoDistillScheduler(modules, 0), cfg) == (1.0, 0.0, 0.0)
    assert training_weights(UniformScheduler(modules, 0), cfg) == (0.0, 1.0, 1e-2)
    assert training_weights(object(), cfg) == (0.0, 1.0, 1e-2)  # a scheduler that says nothing


def test_reward_set_held_out_and_fixed_by_seed():
    reward, pool = training_order(100, 10, seed=3)
    assert len(reward) == 10 and len(pool) == 90
    assert not set(reward) & set(pool)
    again, _ = training_order(100, 10, seed=3)
    other, _ = training_order(100, 10, seed=4)
    assert np.array_equal(reward, again) and not np.array_equal(reward, other)


def test_batches_full_and_reshuffled_per_pass():
    pool = np.arange(10)

    def take(seed, n=5):
        order = BatchOrder(pool, 4, seed=seed)
        return [next(order).tolist() for _ in range(n)]

    batches = take(0)
    assert len(batches) == 5 and all(len(b) == 4 for b in batches)
    # 2 full batches per pass; each pass is a permutation of the pool
    first_pass = batches[0] + batches[1]
    assert len(set(first_pass)) == 8
    assert batches == take(0)
    assert batches != take(1)


def test_batch_order_resumes_mid_pass():
    pool = np.arange(10)
    order = BatchOrder(pool, 3, seed=0)
    for _ in range(4):  # into the second pass (3 batches per pass)
        next(order)
    state = order.state_dict()
    rest = [next(order).tolist() for _ in range(5)]
    again = BatchOrder(pool, 3, seed=0)
    again.load_state_dict(state)
    assert [next(again).tolist() for _ in range(5)] == rest
