"""The device and process layer under the one training loop (spec/harness.md §8).

A `Backend` hides what differs between CPU, CUDA and XLA (placement, step synchronisation,
graph-compilation counts) and between one process and data-parallel ranks started by
`torchrun` (shards of a batch, gradient and metric all-reduces, one writer). With one
process every collective is the identity, so single-process numerics are those of a plain
loop. torch_xla is imported only when `--device xla` is asked: the CPU install lacks it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from harness.errors import ConfigError

DEVICES = ("cpu", "cuda", "xla")


def step_end(device: torch.device) -> None:
    """End of a training step: XLA traces lazily and runs the step's graph here (without it
    the trace grows over steps until the next host read). A no-op elsewhere."""
    if device.type == "xla":
        import torch_xla

        torch_xla.sync()


@dataclass
class Backend:
    kind: str  # one of DEVICES
    device: torch.device
    rank: int = 0
    world_size: int = 1
    steps_counted: int = 0  # training steps inside `training_steps` (XLA only)
    reads_in_steps: int = 0  # their transfers from the device

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes records, checkpoints and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def sync(self) -> None:
        step_end(self.device)

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a global batch (the global batch size stays the
        config's; `check_batch` made it divisible)."""
        if not self.distributed:
            return index
        per = len(index) // self.world_size
        return index[self.rank * per : (self.rank + 1) * per]

    def split(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's part of an example set of any size (the reward set): parts differ
        by at most one example; callers sum and divide by the global size."""
        if not self.distributed:
            return index
        return torch.tensor_split(index, self.world_size)[self.rank]

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world_size:
            raise ConfigError(
                f"distill.batch_size {batch_size} does not split over {self.world_size} ranks"
            )

    def optimizer_step(self, optimizer: torch.optim.Optimizer, params: list) -> None:
        """Average the gradients over ranks (what DDP does), then step: every rank applies
        the same update, as one process would on the global batch. The optimizer reads
        nothing back (harness/distill/adafactor.py), so on XLA forward, backward and update
        trace into one graph, run at the step's end."""
        if self.distributed:
            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world_size
        optimizer.step()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            t = t.clone()
            dist.all_reduce(t)
        return t

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        return self.all_reduce_sum(t) / self.world_size if self.distributed else t

    def all_reduce_max(self, t: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            t = t.clone()
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t

    def check_same(self, t: torch.Tensor, what: str) -> None:
        """Raise unless every rank holds rank 0's value of `t` (a host read: call it at
        round boundaries only)."""
        if not self.distributed:
            return
        ref = t.clone()
        dist.broadcast(ref, src=0)
        if not torch.equal(ref.cpu(), t.cpu()):
            raise RuntimeError(
                f"rank {self.rank} disagrees with rank 0 on {what}: {t.tolist()} vs {ref.tolist()}"
            )

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision (e.g. skip a complete run), taken by every rank."""
        if not self.distributed:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    @contextmanager
    def training_steps(self, n: int):
        """Around `n` training steps: on XLA, counts the transfers from the device they make
        (torch-xla's own `TransferFromDeviceTime` samples; the target is none)."""
        before = _xla_metric("TransferFromDeviceTime") if self.kind == "xla" else None
        yield
        if before is not None:
            self.reads_in_steps += _xla_metric("TransferFromDeviceTime")[0] - before[0]
            self.steps_counted += n

    def compile_stats(self) -> dict | None:
        """XLA counters so far (None off XLA): graph compilations and their total seconds,
        and the host reads made inside training steps (`training_steps`)."""
        if self.kind != "xla":
            return None
        count, total_ns = _xla_metric("CompileTime")
        return {
            "compilations": count,
            "compile_seconds": total_ns / 1e9,
            "training_steps": self.steps_counted,
            "host_reads_in_steps": self.reads_in_steps,
        }

    def xla_since(self, before: dict | None) -> dict | None:
        """What a run added to `compile_stats()` (taken before it): a graph count that grows
        with rounds means a round recompiles; `host_reads_per_step` inside the rounds' steps
        (0: the device never waits on the host there). None off XLA."""
        after = self.compile_stats()
        if before is None or after is None:
            return None
        d = {k: after[k] - before[k] for k in after}
        steps, reads = d.pop("training_steps"), d.pop("host_reads_in_steps")
        d["host_reads_per_step"] = reads / steps if steps else None
        return d


def _xla_metric(name: str) -> tuple[int, float]:
    """torch-xla's (sample count, total) of one of its metrics, (0, 0.0) before any sample."""
    import torch_xla.debug.metrics as met

    data = met.metric_data(name)
    return (int(data[0]), float(data[1])) if data else (0, 0.0)


def make_backend(device: str) -> Backend:
    """The backend for `--device`, joining the process group when `torchrun` (or torch-xla's
    launcher) set WORLD_SIZE > 1: gloo on CPU, NCCL on CUDA, torch-xla's `xla://` on XLA."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "xla":
        import torch_xla

        if world > 1:  # before the device: its rendezvous sets up the multi-process runtime
            import torch_xla.distributed.xla_backend  # noqa: F401  registers "xla"

            dist.init_process_group("xla", init_method="xla://")
            _check_xla_world(world, int(os.environ.get("RANK", local)))
        dev = torch_xla.device()
    elif device == "cuda":
        dev = torch.device("cuda", local) if world > 1 else torch.device("cuda")
        if world > 1:
            torch.cuda.set_device(dev)
            dist.init_process_group("nccl")
    else:
        dev = torch.device("cpu")
        if world > 1:
            dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    return Backend(device, dev, rank, dist.get_world_size() if world > 1 else 1)


def _check_xla_world(world: int, rank: int) -> None:
    """torch-xla's `xla://` rendezvous takes its world from the PJRT runtime, not from
    torchrun: on the CPU PJRT device (torch-xla 2.9) every process came out rank 0, of a
    world of 1 (each would then run and write the whole study) or of 2 (its collectives then
    wait for a second device in the same process and abort). docs/tpu.md."""
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise ConfigError(
            f"torchrun started rank {rank} of {world} processes, but torch-xla's xla:// "
            f"rendezvous made it rank {dist.get_rank()} of {dist.get_world_size()}: this "
            "PJRT device does not run one world across processes (the CPU PJRT device does "
            "not; see docs/tpu.md)"
        )


def close(backend: Backend) -> None:
    if backend.distributed and dist.is_initialized():
        dist.destroy_process_group()
