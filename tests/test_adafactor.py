"""The device-side Adafactor (harness/distill/adafactor.py) is torch's Adafactor bit for bit on
CPU, reads nothing back from the device in its step, and shares torch's checkpoints."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harness.distill.adafactor import Adafactor, fma
from harness.models.coca import CoCa
from harness.models.presets import preset


@pytest.fixture(scope="module")
def student() -> CoCa:
    """Built once (seconds): each test trains deep copies."""
    return CoCa(preset("tiny-student"), seed=0)


def _loss(model: CoCa, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(step)
    images = torch.randn(4, 3, 32, 32, generator=g)
    text = torch.randint(0, 64, (4, 12), generator=g)
    out = model(images, text)
    hidden = sum(h.pow(2).mean() for hs in out["hidden"].values() for h in hs)
    return out["logits"].logsumexp(-1).mean() + hidden + out["logit_scale"]


def _train(model, optimizer, steps: range, total: int = 40) -> None:
    """The loop's schedule: linear decay of lr to 0 over `total` steps."""
    start = steps.start
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - (start + s) / total)
    for step in steps:
        optimizer.zero_grad(set_to_none=True)
        _loss(model, step).backward()
        optimizer.step()
        schedule.step()


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_bitwise_torchs_adafactor_on_a_coca_student(student):
    """Matrices, vectors, a 4-d patch embedding; weight decay and the loop's lr decay."""
    ref, ours = copy.deepcopy(student), copy.deepcopy(student)
    opt_ref = torch.optim.Adafactor(ref.parameters(), lr=1e-2, weight_decay=0.01)
    opt_ours = Adafactor(ours.parameters(), lr=1e-2, weight_decay=0.01)
    _train(ref, opt_ref, range(8))
    _train(ours, opt_ours, range(8))
    _same(ref, ours)
    assert not torch.equal(student.visual.conv1.weight, ours.visual.conv1.weight)  # it trained
    for (name, p_ref), p_ours in zip(ref.named_parameters(), ours.parameters(), strict=True):
        s_ref, s_ours = opt_ref.state[p_ref], opt_ours.state[p_ours]
        if not s_ref:  # never stepped (no gradient): ours holds its state from the start
            assert s_ours["step"] == 0, name
            continue
        assert s_ref.keys() == s_ours.keys()
        for k in s_ref:
            assert torch.equal(s_ref[k], s_ours[k]), (name, k)


def test_a_torch_checkpoint_resumes_bitwise_and_back(student):
    """State dicts pass both ways: a run saved by torch's optimizer resumes under ours (its
    `step` loaded on the CPU, as torch keeps it) and ends as torch's own run ends."""
    ref, ours = copy.deepcopy(student), copy.deepcopy(student)
    opt_ref = torch.optim.Adafactor(ref.parameters(), lr=1e-2, weight_decay=0.01)
    _train(ref, opt_ref, range(5))
    ours.load_state_dict(ref.state_dict())
    opt_ours = Adafactor(ours.parameters(), lr=1e-2, weight_decay=0.01)
    opt_ours.load_state_dict(copy.deepcopy(opt_ref.state_dict()))
    _train(ref, opt_ref, range(5, 10))
    _train(ours, opt_ours, range(5, 10))
    _same(ref, ours)
    back = torch.optim.Adafactor(ref.parameters(), lr=1e-2, weight_decay=0.01)
    back.load_state_dict(copy.deepcopy(opt_ours.state_dict()))  # load_state_dict aliases
    _train(ref, back, range(10, 12))
    _train(ours, opt_ours, range(10, 12))
    _same(ref, ours)


def test_fma_rounds_once_as_atens_add_with_alpha():
    """The case that rounding twice gets wrong (a float64 sum on a float32 midpoint, the
    exact sum just off it), subnormal results, and random magnitudes."""
    one = 1 + 2**-23  # odd last bit: ties-to-even rounds a midpoint away from it
    p = torch.tensor([one, -one, 1.0, 2**-140, 0.0])
    u = torch.tensor([1 + 2**-23, 1 - 2**-23, 1 - 2**-23, 3.0, 2**-130])
    a = 2.0**-24 * (1 - 2**-23)
    want = p.clone().add_(u, alpha=a)
    fma([p], [u], torch.tensor([a]))
    assert p[0].item() == one  # the exact sum lies below 1 + 3 * 2**-24, a float32 midpoint
    assert torch.equal(p, want)
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(n, generator=g) * 10.0**e for n, e in ((1000, -3), (37, -38), (8, 2))]
    us = [torch.randn(x.shape, generator=g) for x in ps]
    scales = -torch.tensor([1e-3, 1e-40, 0.5])
    want = [x.clone().add_(u, alpha=s) for x, u, s in zip(ps, us, scales.tolist(), strict=True)]
    fma(ps, us, scales)
    for got, w in zip(ps, want, strict=True):
        assert torch.equal(got, w)


class _HostReads(TorchDispatchMode):
    """Counts the ops that copy a tensor's value to the host (`.item()`, `.tolist()`)."""

    def __init__(self):
        super().__init__()
        self.reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads += 1
        return func(*args, **(kwargs or {}))


def test_no_host_read_in_a_step(student):
    """torch's step reads the host a few times per parameter; ours never. On the meta device
    (the accelerator path: float32 scalars, no fused-add emulation) a read could not even
    run."""
    reads = {}
    for cls in (torch.optim.Adafactor, Adafactor):
        model = copy.deepcopy(student)
        _loss(model, 0).backward()
        params = [p for p in model.parameters() if p.grad is not None]
        before = [p.clone() for p in params]
        optimizer = cls(params, lr=1e-2, weight_decay=0.01)
        with _HostReads() as mode:
            optimizer.step()
        assert not any(torch.equal(a, b) for a, b in zip(before, params, strict=True))
        reads[cls] = mode.reads
    # torch's: the step count, the parameter's norm and the update's norm, per parameter
    assert reads == {torch.optim.Adafactor: 3 * len(params), Adafactor: 0}
    with torch.device("meta"):
        meta = CoCa(preset("tiny-student"), seed=0)
    for p in meta.parameters():
        p.grad = torch.empty_like(p)
    optimizer = Adafactor(meta.parameters(), lr=1e-2, weight_decay=0.01)
    optimizer.step()
    optimizer.step()
    assert all(s["step"].device.type == "meta" for s in optimizer.state.values())


def test_maximize_is_refused():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    with pytest.raises(NotImplementedError):
        Adafactor([p], maximize=True).step()
