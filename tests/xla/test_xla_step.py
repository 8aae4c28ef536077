"""The device-side Adafactor and bf16 autocast on XLA (the CPU PJRT device): the accelerator
path of the optimizer (float32 scalars, a plain multiply-add) follows torch's Adafactor on
CPU to float rounding, reads nothing back inside its steps, and autocast runs the forward in
bfloat16 with float32 weights."""

import copy
import os

import pytest
import torch

pytestmark = pytest.mark.skipif(
    os.environ.get("PJRT_DEVICE") != "CPU", reason="runs on the CPU PJRT device (nox -s xla)"
)


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 64, (4, 12), generator=g)


def _loss(model, images, text):
    out = model(images, text)
    hidden = sum(h.float().pow(2).mean() for hs in out["hidden"].values() for h in hs)
    return out["logits"].float().logsumexp(-1).mean() + hidden, out


def test_device_adafactor_on_xla_follows_torchs_without_host_reads():
    import torch_xla
    import torch_xla.debug.metrics as met

    from harness.distill.adafactor import Adafactor
    from harness.models.coca import CoCa
    from harness.models.presets import preset

    dev = torch_xla.device()
    cpu = CoCa(preset("tiny-student"), seed=0)
    initial = copy.deepcopy(cpu)
    xla = copy.deepcopy(cpu).to(dev)
    opt_cpu = torch.optim.Adafactor(cpu.parameters(), lr=1e-2, weight_decay=0.01)
    opt_xla = Adafactor(xla.parameters(), lr=1e-2, weight_decay=0.01)
    (images, text), reads = _batch(), []
    for step in range(3):
        for model, opt, d in ((cpu, opt_cpu, "cpu"), (xla, opt_xla, dev)):
            for group in opt.param_groups:
                group["lr"] = 1e-2 * (1 - step / 10)  # the loop's linear decay
            before = met.metric_data("TransferFromDeviceTime")
            opt.zero_grad(set_to_none=True)
            _loss(model, images.to(d), text.to(d))[0].backward()
            opt.step()
            if d == dev:
                torch_xla.sync()
                after = met.metric_data("TransferFromDeviceTime")
                reads.append((after[0] if after else 0) - (before[0] if before else 0))
    assert reads == [0, 0, 0]
    for (name, a), b in zip(cpu.named_parameters(), xla.parameters(), strict=True):
        torch.testing.assert_close(b.cpu(), a.detach(), rtol=1e-4, atol=1e-5, msg=name)
    assert not torch.equal(cpu.visual.conv1.weight, initial.visual.conv1.weight)  # it trained


def test_the_counter_sees_torchs_host_reads():
    """The control: torch's own Adafactor on XLA reads norms back, and the counter the run
    records (`TransferFromDeviceTime`) counts them."""
    import torch_xla
    import torch_xla.debug.metrics as met

    from harness.models.coca import CoCa
    from harness.models.presets import preset

    dev = torch_xla.device()
    model = CoCa(preset("tiny-student"), seed=0).to(dev)
    opt = torch.optim.Adafactor(model.parameters(), lr=1e-2, weight_decay=0.01)
    images, text = _batch()
    _loss(model, images.to(dev), text.to(dev))[0].backward()
    torch_xla.sync()
    before = met.metric_data("TransferFromDeviceTime")
    opt.step()
    torch_xla.sync()
    after = met.metric_data("TransferFromDeviceTime")
    reads = after[0] - (before[0] if before else 0)
    stepped = [p for p in model.parameters() if p.grad is not None]
    assert reads >= 2 * len(stepped)  # a parameter's norm and its update's, each


def test_bf16_autocast_on_xla_keeps_float32_weights():
    import torch_xla

    from harness.distill.adafactor import Adafactor
    from harness.models.coca import CoCa
    from harness.models.presets import preset

    dev = torch_xla.device()
    model = CoCa(preset("tiny-student"), seed=0).to(dev)
    opt = Adafactor(model.parameters(), lr=1e-2, weight_decay=0.01)
    images, text = _batch()
    with torch.autocast("xla", dtype=torch.bfloat16):
        loss, out = _loss(model, images.to(dev), text.to(dev))
    assert out["logits"].dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    opt.step()
    torch_xla.sync()
    assert torch.isfinite(loss.cpu())
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {p.grad.dtype for p in model.parameters() if p.grad is not None} == {torch.float32}


@pytest.mark.parametrize(("rank", "size"), [(0, 1), (0, 2)])
def test_a_world_torchrun_did_not_start_is_refused(monkeypatch, rank, size):
    """What `xla://` made of torchrun's rank 1 of 2 on the CPU PJRT device (docs/tpu.md):
    rank 0 of 1 (without CPU_NUM_DEVICES), or rank 0 of 2 (with it)."""
    import torch.distributed as dist

    from harness.backend import _check_xla_world
    from harness.errors import ConfigError

    monkeypatch.setattr(dist, "get_rank", lambda: rank)
    monkeypatch.setattr(dist, "get_world_size", lambda: size)
    with pytest.raises(ConfigError, match=f"rank 1 of 2 processes.*rank {rank} of {size}"):
        _check_xla_world(2, 1)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    _check_xla_world(2, 1)  # the world torchrun started
