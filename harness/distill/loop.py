"""One distillation run: P rounds of T' steps, the scheduler choosing the active modules
before each round and rewarded after it (spec/optima.md §3-§4).

Host reads (`.item()`) happen only at round boundaries; the active set enters the loss as a
mask tensor, so a round's choice changes values, never the computation. The backend
(`harness.backend`) ends each step (`torch_xla.sync()` on XLA) and, with data-parallel
ranks, shards each global batch and the reward set and all-reduces gradients and objectives.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from harness.backend import Backend
from harness.config import DistillConfig
from harness.data.order import BatchOrder, training_order
from harness.distill.adafactor import Adafactor
from harness.distill.losses import Projections, layer_losses, text_masks
from harness.live import LiveView
from harness.records import Eval, Round, parse_round


@dataclass
class DistillInputs:
    task: object  # a task object (harness.tasks)
    train: object  # the task's Examples for the train split
    teacher: Callable  # LiveTeacher or CachedTeacher
    modules: tuple[str, ...]
    pad_id: int
    device: torch.device


def training_weights(scheduler: object, cfg: DistillConfig) -> tuple[float, float, float]:
    """(a1, a2, a3) of the objective; a scheduler that says `task_only` (the reference row
    `none`) trains on the task alone (a1 = 1, a2 = a3 = 0)."""
    return (1.0, 0.0, 0.0) if getattr(scheduler, "task_only", False) else cfg.alpha


class Distiller:
    def __init__(
        self,
        inputs: DistillInputs,
        student: nn.Module,
        projections: Projections,
        backend: Backend | None = None,
        precision: str = "fp32",
    ):
        self.x = inputs
        self.student = student
        self.projections = projections
        self.backend = backend or Backend(inputs.device.type, inputs.device)
        self.params = [*student.parameters(), *projections.parameters()]
        self.precision = precision

    def mixed(self):
        """bf16: the forward passes (teacher, student, projections) under autocast in
        bfloat16; weights, gradients and optimizer state stay float32."""
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.x.device.type, dtype=torch.bfloat16)

    def terms(
        self, index: torch.Tensor, batch: dict, cfg: DistillConfig
    ) -> dict[str, torch.Tensor]:
        """The loss terms of a batch (`cfg`: tau, the layer loss's normalisation); computed in
        float32 whatever the precision of the forward passes (a reward is a small difference
        of two objectives)."""
        task = self.x.task
        with self.mixed():
            teacher_out = self.x.teacher(index, batch)
            out = task.forward(self.student, batch)
            masks = (
                text_masks(batch["text"], self.x.pad_id)
                if cfg.layer_loss_positions == "non-pad"
                else dict.fromkeys(self.projections)  # `all`: every position, pads included
            )
            layer = layer_losses(
                out["hidden"], teacher_out["hidden"], self.projections, masks, cfg.layer_loss_norm
            )
        logits, teacher_logits = out["task_logits"].float(), teacher_out["logits"].float()
        return {
            "task": task.task_loss(logits, batch),
            "pred": task.pred_loss(logits, teacher_logits, cfg.temperature, batch),
            "layer": layer,
        }

    def step(self, index: torch.Tensor, weights, mask: torch.Tensor, cfg: DistillConfig, state):
        """One training step on this rank's share of the global batch `index`; returns the
        detached loss terms [loss, task, pred, layer per module] (no host read)."""
        a1, a2, a3 = weights
        index = self.backend.shard(index)
        batch = self.x.task.batch(self.x.train, index, self.x.device)
        terms = self.terms(index, batch, cfg)
        loss = a1 * terms["task"] + a2 * terms["pred"] + a3 * (terms["layer"] * mask).sum()
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.backend.optimizer_step(state.optimizer, self.params)
        state.schedule.step()
        return torch.cat(
            [torch.stack([loss, terms["task"], terms["pred"]]), terms["layer"]]
        ).detach()

    @torch.no_grad()
    def objective_terms(self, index: torch.Tensor, cfg: DistillConfig, batch_size: int):
        """Mean loss terms over a fixed example set, in eval mode (the reward set); each
        rank sums its part and the sums are all-reduced, so every rank sees the same mean.
        The same parts every round: on XLA no round compiles a new graph."""
        self.student.eval()
        local = self.backend.split(index)
        sums: dict[str, torch.Tensor] = {}
        for start in range(0, len(local), batch_size):
            part = local[start : start + batch_size]
            batch = self.x.task.batch(self.x.train, part, self.x.device)
            terms = self.terms(part, batch, cfg)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0) + v * len(part)
            self.backend.sync()
        self.student.train()
        return {k: self.backend.all_reduce_sum(v) / len(index) for k, v in sums.items()}


def reward_objective(terms: dict, cfg: DistillConfig, active_mask: torch.Tensor) -> torch.Tensor:
    """R of spec §4: the distillation objective over ALL modules by default."""
    _, a2, a3 = cfg.alpha
    if cfg.reward_loss == "pred":
        return a2 * terms["pred"]
    if cfg.reward_loss == "module":
        return a3 * (terms["layer"] * active_mask).sum()
    return a2 * terms["pred"] + a3 * terms["layer"].sum()


class NumericalError(RuntimeError):
    """A non-finite loss: the run stops and is recorded as failed, with where it happened."""

    def __init__(self, round_index: int, step: int, terms: dict[str, float]) -> None:
        self.round_index, self.step = round_index, step
        self.terms = sorted(k for k, v in terms.items() if not np.isfinite(v))
        super().__init__(
            f"non-finite loss at step {step} (round {round_index}); non-finite terms over "
            f"the round: {self.terms}"
        )


# Test-only fault injection: the process kills itself (SIGKILL) when it reaches this step, so
# a test can interrupt a run at an exact point inside a round and check the resume.
KILL_AT_STEP = "OPTIMA_REPRO_KILL_AT_STEP"


@dataclass
class RunState:
    """Everything a round boundary must save for a resumed run to end bitwise identical."""

    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    order: BatchOrder
    scheduler: object
    rounds: list[Round]
    timing: dict[str, float]

    def tensors(self, student: nn.Module, projections: nn.Module) -> dict:
        return {
            "student": student.state_dict(),
            "projections": projections.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
        }

    def json(self) -> dict:
        return {
            "rounds_done": len(self.rounds),
            "rounds": [x.to_json() for x in self.rounds],
            "scheduler": self.scheduler.state_dict(),
            "order": self.order.state_dict(),
            "timing": self.timing,
        }

    def load(self, student, projections, tensors: dict, state: dict, where: Path) -> None:
        student.load_state_dict(tensors["student"])
        projections.load_state_dict(tensors["projections"])
        self.optimizer.load_state_dict(tensors["optimizer"])
        self.schedule.load_state_dict(tensors["schedule"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.order.load_state_dict(state["order"])
        rounds = enumerate(state["rounds"])
        self.rounds[:] = [parse_round(x, where, f"rounds[{i}]") for i, x in rounds]
        self.timing.update(state["timing"])


@dataclass
class Watch:
    """What watches a run without changing its numbers: the progress bar, the curve points
    (`evaluate` every `eval_every_rounds` rounds), the round checkpoints and the live view."""

    label: str = ""  # the progress bar's, e.g. "optima seed 0"
    progress: bool = True
    evaluate: Callable[[], dict] | None = None
    eval_every_rounds: int = 0
    checkpoints: object = None  # a harness.checkpoint.Checkpoints
    live: LiveView | None = None


def run_rounds(
    x: DistillInputs,
    student: nn.Module,
    projections: Projections,
    scheduler,
    cfg: DistillConfig,
    seed: int,
    eval_batch_size: int,
    watch: Watch | None = None,
    max_steps: int = 0,
    backend: Backend | None = None,
    precision: str = "fp32",
) -> dict:
    """Train `student` and `projections` in place; returns the round traces and timing.

    `watch.evaluate` (the task metric on the evaluation split) runs every
    `watch.eval_every_rounds` rounds before the last, for metric-against-steps curves; it reads
    the model only. `watch.checkpoints` saves the state after every round and resumes from the
    latest saved round; only the main rank saves. `watch.live` gets each round's curves, read
    from the device at the round's end. `max_steps` > 0 stops training after that many steps
    (the round under way ends early), for smoke-checking a preset: the schedule (T, P,
    learning-rate decay) stays the configured one. `backend` defaults to one process on
    `x.device`. `precision` "bf16": see `Distiller.mixed`."""
    watch = watch or Watch()
    progress, evaluate, live = watch.progress, watch.evaluate, watch.live
    eval_every_rounds, checkpoints = watch.eval_every_rounds, watch.checkpoints
    distiller = Distiller(x, student, projections, backend, precision)
    backend = distiller.backend
    backend.check_batch(cfg.batch_size)
    reward_index, pool = training_order(len(x.train), cfg.reward_set_size, seed)
    reward_index = torch.from_numpy(reward_index)
    a1, a2, a3 = training_weights(scheduler, cfg)
    params = [*student.parameters(), *projections.parameters()]
    optimizer = Adafactor(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = RunState(
        optimizer=optimizer,
        schedule=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / cfg.steps),
        order=BatchOrder(pool, cfg.batch_size, seed),
        scheduler=scheduler,
        rounds=[],
        timing={"train_seconds": 0.0, "curve_eval_seconds": 0.0, "round_overhead_seconds": 0.0},
    )
    if checkpoints is not None:
        saved = checkpoints.latest()
        if saved is not None:
            state.load(student, projections, *saved, where=checkpoints.folder)
    names = ["loss", "task", "pred", *(f"layer/{m}" for m in x.modules)]
    kill_at = int(os.environ.get(KILL_AT_STEP, "-1"))

    def objective(terms: dict) -> dict[str, float]:
        values = [terms["task"], terms["pred"], *terms["layer"]]
        return dict(zip(names[1:], torch.stack(values).tolist(), strict=True))

    total = min(cfg.steps, max_steps) if max_steps else cfg.steps
    first = len(state.rounds)
    if live is not None:
        live.start(min(first * cfg.round_steps, total), total)
    student.train()
    before = distiller.objective_terms(reward_index, cfg, eval_batch_size)
    bar = tqdm(
        total=total,
        initial=first * cfg.round_steps,
        desc=watch.label,
        disable=not progress,
    )
    for p in range(first, -(-total // cfg.round_steps)):
        round_steps = min(cfg.round_steps, total - p * cfg.round_steps)
        active = scheduler.choose(p)
        mask = torch.tensor([float(m in active) for m in x.modules], device=x.device)
        backend.check_same(mask, f"the active modules of round {p}")
        sums = torch.zeros(len(names), device=x.device)
        first_bad = torch.tensor(-1, device=x.device)
        step_values = []  # the live view's per-step terms, read at the round's end
        t0 = time.perf_counter()
        with backend.training_steps(round_steps):
            for i in range(round_steps):
                step = p * cfg.round_steps + i
                if step == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                values = distiller.step(next(state.order), (a1, a2, a3), mask, cfg, state)
                sums += values
                if live is not None:
                    step_values.append(values)
                # no host read per step: the first non-finite step is kept on the device
                bad = ~torch.isfinite(values).all() & (first_bad < 0)
                first_bad = torch.where(bad, torch.tensor(step, device=x.device), first_bad)
                # the step ends after the round's running sums: a step's graph then does not
                # depend on its place in the round (measured: P = 8 compiled graphs P = 4
                # did not)
                backend.sync()
                bar.update(1)
        t1 = time.perf_counter()
        state.timing["train_seconds"] += t1 - t0
        sums = backend.all_reduce_mean(sums)
        first_bad = backend.all_reduce_max(first_bad)
        train_means = dict(zip(names, (sums / round_steps).tolist(), strict=True))
        if first_bad.item() >= 0:
            raise NumericalError(p, int(first_bad.item()), train_means)
        after = distiller.objective_terms(reward_index, cfg, eval_batch_size)
        r_before = reward_objective(before, cfg, mask).item()
        r_after = reward_objective(after, cfg, mask).item()
        reward = r_before - r_after
        if cfg.reward == "relative":
            reward /= r_before
        scheduler.observe(p, active, reward)
        decision = scheduler.trace()  # the choice, and the reward the policy was fed
        state.rounds.append(
            Round(
                index=p,
                active=tuple(sorted(active)),
                reward=reward,
                objective_before=r_before,
                objective_after=r_after,
                train=train_means,
                reward_set=objective(after),
                lr=state.schedule.get_last_lr()[0],
                scheduler=decision,
            )
        )
        if (
            evaluate
            and eval_every_rounds
            and (p + 1) % eval_every_rounds == 0
            and p + 1 < cfg.rounds
        ):
            t2 = time.perf_counter()
            primary = evaluate()["primary"]
            point = Eval((p + 1) * cfg.round_steps, primary)
            state.rounds[-1] = replace(state.rounds[-1], eval=point)
            state.timing["curve_eval_seconds"] += time.perf_counter() - t2
        if live is not None:
            steps = torch.stack(step_values).tolist()
            live.round(p * cfg.round_steps, names, steps, state.rounds[-1], x.modules, t1 - t0)
        state.timing["round_overhead_seconds"] += time.perf_counter() - t1
        if checkpoints is not None and backend.is_main:
            checkpoints.save(p, state.tensors(student, projections), state.json())
        before = after
    bar.close()
    timing = dict(state.timing)
    timing["steps_per_second"] = (
        total / timing["train_seconds"] if timing["train_seconds"] else None
    )
    return {
        "rounds": state.rounds,
        "reward_set_size": len(reward_index),
        "resumed_from_round": first if first else None,
        "timing": timing,
    }
