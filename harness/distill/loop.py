"""One distillation run: P rounds of T' steps, the scheduler choosing the active modules
before each round and rewarded after it (spec/optima.md §3-§4).

Host reads (`.item()`) happen only at round boundaries; the active set enters the loss as a
mask tensor, so a round's choice changes values, never the computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from harness.config import DistillConfig
from harness.distill.losses import Projections, layer_losses, text_masks
from harness.seeding import stream_seed


@dataclass
class DistillInputs:
    task: object  # a task object (harness.tasks)
    train: object  # the task's Examples for the train split
    teacher: Callable  # LiveTeacher or CachedTeacher
    modules: tuple[str, ...]
    pad_id: int
    device: torch.device


def training_order(n: int, reward_set_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reward set, training pool): the reward set is drawn from the train split by the seed
    and held out of training batches [ours: spec §4]. Same for every scheduler."""
    rng = np.random.default_rng(stream_seed(seed, "reward-set"))
    perm = rng.permutation(n)
    return np.sort(perm[:reward_set_size]), np.sort(perm[reward_set_size:])


def batch_indices(
    pool: np.ndarray, batch_size: int, steps: int, seed: int, stream: str = "data-order"
):
    """Full batches only (static shapes), reshuffled each pass, from the data stream alone."""
    rng = np.random.default_rng(stream_seed(seed, stream))
    per_pass = len(pool) // batch_size
    if per_pass == 0:
        raise ValueError(f"{len(pool)} training examples cannot fill one batch of {batch_size}")
    step = 0
    while step < steps:
        order = rng.permutation(pool)
        for b in range(min(per_pass, steps - step)):
            yield torch.from_numpy(order[b * batch_size : (b + 1) * batch_size])
            step += 1


def training_weights(scheduler_name: str, cfg: DistillConfig) -> tuple[float, float, float]:
    """The reference row `none` trains on the task alone (a1 = 1, a2 = a3 = 0)."""
    return (1.0, 0.0, 0.0) if scheduler_name == "none" else cfg.alpha


class Distiller:
    def __init__(self, inputs: DistillInputs, student: nn.Module, projections: Projections):
        self.x = inputs
        self.student = student
        self.projections = projections

    def terms(self, batch: dict, teacher_out: dict, tau: float) -> dict[str, torch.Tensor]:
        task = self.x.task
        out = task.forward(self.student, batch)
        masks = text_masks(batch["text"], self.x.pad_id)
        return {
            "task": task.task_loss(out["task_logits"], batch),
            "pred": task.pred_loss(out["task_logits"], teacher_out["logits"], tau),
            "layer": layer_losses(out["hidden"], teacher_out["hidden"], self.projections, masks),
        }

    @torch.no_grad()
    def objective_terms(self, index: torch.Tensor, cfg: DistillConfig, batch_size: int):
        """Mean loss terms over a fixed example set, in eval mode (the reward set)."""
        self.student.eval()
        sums: dict[str, torch.Tensor] = {}
        for start in range(0, len(index), batch_size):
            part = index[start : start + batch_size]
            batch = self.x.task.batch(self.x.train, part, self.x.device)
            terms = self.terms(batch, self.x.teacher(part, batch), cfg.temperature)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0) + v * len(part)
        self.student.train()
        return {k: v / len(index) for k, v in sums.items()}


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
        self.round_index, self.step, self.terms = round_index, step, terms
        bad = sorted(k for k, v in terms.items() if not np.isfinite(v))
        super().__init__(f"non-finite loss in round {round_index} by step {step}: {bad}")


def run_rounds(
    x: DistillInputs,
    student: nn.Module,
    projections: Projections,
    scheduler,
    scheduler_name: str,
    cfg: DistillConfig,
    seed: int,
    eval_batch_size: int,
    progress: bool = True,
    evaluate: Callable[[], dict] | None = None,
    eval_every_rounds: int = 0,
) -> dict:
    """Train `student` and `projections` in place; returns the round traces and timing.

    `evaluate` (the task metric on the evaluation split) runs every `eval_every_rounds`
    rounds before the last, for metric-against-steps curves; it reads the model only."""
    reward_index, pool = training_order(len(x.train), cfg.reward_set_size, seed)
    reward_index = torch.from_numpy(reward_index)
    a1, a2, a3 = training_weights(scheduler_name, cfg)
    params = [*student.parameters(), *projections.parameters()]
    optimizer = torch.optim.Adafactor(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / cfg.steps)
    batches = batch_indices(pool, cfg.batch_size, cfg.steps, seed)
    distiller = Distiller(x, student, projections)
    names = ["loss", "task", "pred", *(f"layer/{m}" for m in x.modules)]

    def objective(terms: dict) -> dict[str, float]:
        values = [terms["task"], terms["pred"], *terms["layer"]]
        return dict(zip(names[1:], torch.stack(values).tolist(), strict=True))

    start = time.perf_counter()
    train_seconds = eval_seconds = 0.0
    student.train()
    before = distiller.objective_terms(reward_index, cfg, eval_batch_size)
    rounds = []
    bar = tqdm(total=cfg.steps, desc=f"{scheduler_name} seed {seed}", disable=not progress)
    for p in range(cfg.rounds):
        active = scheduler.choose(p)
        decision = scheduler.trace()
        mask = torch.tensor([float(m in active) for m in x.modules], device=x.device)
        sums = torch.zeros(len(names), device=x.device)
        t0 = time.perf_counter()
        for _ in range(cfg.round_steps):
            index = next(batches)
            batch = x.task.batch(x.train, index, x.device)
            terms = distiller.terms(batch, x.teacher(index, batch), cfg.temperature)
            loss = a1 * terms["task"] + a2 * terms["pred"] + a3 * (terms["layer"] * mask).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            sums += torch.cat([torch.stack([loss, terms["task"], terms["pred"]]), terms["layer"]])
            bar.update(1)
        train_seconds += time.perf_counter() - t0
        train_means = dict(zip(names, (sums / cfg.round_steps).tolist(), strict=True))
        if not all(np.isfinite(v) for v in train_means.values()):
            raise NumericalError(p, (p + 1) * cfg.round_steps, train_means)
        after = distiller.objective_terms(reward_index, cfg, eval_batch_size)
        r_before = reward_objective(before, cfg, mask).item()
        r_after = reward_objective(after, cfg, mask).item()
        reward = r_before - r_after
        if cfg.reward == "relative":
            reward /= r_before
        scheduler.observe(p, active, reward)
        rounds.append(
            {
                "round": p,
                "active": sorted(active),
                "reward": reward,
                "objective_before": r_before,
                "objective_after": r_after,
                "train": train_means,
                "reward_set": objective(after),
                "lr": schedule.get_last_lr()[0],
                "scheduler": decision,
            }
        )
        if (
            evaluate
            and eval_every_rounds
            and (p + 1) % eval_every_rounds == 0
            and p + 1 < cfg.rounds
        ):
            t0 = time.perf_counter()
            rounds[-1]["eval"] = {
                "step": (p + 1) * cfg.round_steps,
                "primary": evaluate()["primary"],
            }
            eval_seconds += time.perf_counter() - t0
        before = after
    bar.close()
    wall = time.perf_counter() - start
    return {
        "rounds": rounds,
        "reward_set_size": len(reward_index),
        "timing": {
            "distill_seconds": wall,
            "train_seconds": train_seconds,
            "curve_eval_seconds": eval_seconds,
            "steps_per_second": cfg.steps / train_seconds,
        },
    }
