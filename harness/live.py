"""A live view of a run while it trains: TensorBoard event files (issue 18).

With `--set tensorboard=true` each run writes under
`<workdir>/tensorboard/<task>/<study>/<scheduler>/seed-<n>/` (the run folder's place under
`runs/`): every step's loss terms, and at the end of each round its reward, objectives,
active modules, the scheduler's posterior means, learning rate, steps per second and the
time left; the metric on the evaluation split at each curve point and at the end. The
device is read at round boundaries only: a round's per-step terms stay on the device until
its end. A resumed run opens its writer with `purge_step` at the first step it trains again,
so TensorBoard drops whatever the killed process wrote past its last checkpoint and each
curve has every step once. `tensorboard --logdir work/tensorboard` shows them. With
data-parallel ranks rank 0 writes, and a step's terms are those of its share of the batch
(the round values are every rank's).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.records import Round


def live_dir(run_folder: Path) -> Path:
    """`<workdir>/runs/<task>/<study>/<scheduler>/seed-<n>` -> the same under
    `<workdir>/tensorboard/`."""
    return run_folder.parents[4] / "tensorboard" / Path(*run_folder.parts[-4:])


class LiveView:
    """One run's event files; `start` opens them once the run knows where it resumes."""

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # torch's writer needs the tensorboard package
            raise ConfigError(
                f"tensorboard=true needs the tensorboard package ({e}); install it with "
                "pip install 'optima-repro[tensorboard]'"
            ) from None
        self.folder = folder
        self._writer_class = SummaryWriter
        self.writer = None

    def start(self, first_step: int, total_steps: int) -> None:
        """Before training step `first_step` (0, or a resumed run's first step) of
        `total_steps`: events of earlier processes from `first_step` on are purged
        (TensorBoard hides them)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer = self._writer_class(str(self.folder), purge_step=first_step)
        self.first_step, self.total_steps = first_step, total_steps
        self.started = time.perf_counter()

    def round(
        self,
        first: int,
        names: Sequence[str],
        steps: Sequence[Sequence[float]],
        record: Round,
        modules: Sequence[str],
        train_seconds: float,
    ) -> None:
        """A round that trained steps `first`.. (`steps`: per step, the terms `names`), with
        its record (harness.distill.loop). Round values sit at the round's last step."""
        w = self.writer
        for i, values in enumerate(steps):
            for name, value in zip(names, values, strict=True):
                w.add_scalar(f"train/{name}", value, first + i)
        end = first + len(steps) - 1
        w.add_scalar("round/reward", record.reward, end)
        w.add_scalar("round/objective_before", record.objective_before, end)
        w.add_scalar("round/objective_after", record.objective_after, end)
        w.add_scalar("round/lr", record.lr, end)
        for m in modules:
            w.add_scalar(f"active/{m}", float(m in record.active), end)
        for arm, mean in (record.bandit.posterior_means if record.bandit else {}).items():
            if mean is not None and math.isfinite(mean):
                w.add_scalar(f"posterior_mean/{arm}", mean, end)
        for name, value in record.reward_set.items():
            w.add_scalar(f"reward_set/{name}", value, end)
        if record.eval is not None:
            w.add_scalar("eval/primary", record.eval.primary, end)
        done = end + 1
        w.add_scalar("time/steps_per_second", len(steps) / train_seconds, end)
        per_step = (time.perf_counter() - self.started) / (done - self.first_step)
        w.add_scalar("time/eta_minutes", (self.total_steps - done) * per_step / 60, end)
        w.flush()

    def final(self, metrics: dict) -> None:
        """The metric on the evaluation split after training, at the last step count."""
        self.writer.add_scalar("eval/primary", metrics["primary"], self.total_steps)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
