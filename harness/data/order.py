"""Which examples a run sees, and in what order: drawn from named seed streams only, so every
scheduler of a seed sees the same reward set and the same batches (spec/optima.md §4)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from harness.seeding import stream_seed


def training_order(n: int, reward_set_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reward set, training pool): the reward set is drawn from the train split by the seed
    and held out of training batches [ours: spec §4]. Same for every scheduler."""
    rng = np.random.default_rng(stream_seed(seed, "reward-set"))
    perm = rng.permutation(n)
    return np.sort(perm[:reward_set_size]), np.sort(perm[reward_set_size:])


class BatchOrder:
    """Full batches only (static shapes), reshuffled each pass, from the data stream alone.

    Its state is the generator's state at the start of the current pass plus the position in
    it, so a resumed run replays the same permutation without storing it."""

    def __init__(
        self, pool: np.ndarray, batch_size: int, seed: int, stream: str = "data-order"
    ) -> None:
        if len(pool) < batch_size:
            raise ValueError(f"{len(pool)} training examples cannot fill one batch of {batch_size}")
        self.pool, self.batch_size = pool, batch_size
        self.per_pass = len(pool) // batch_size
        self.rng = np.random.default_rng(stream_seed(seed, stream))
        self._new_pass()

    def _new_pass(self) -> None:
        self.pass_state = copy.deepcopy(self.rng.bit_generator.state)
        self.order = self.rng.permutation(self.pool)
        self.position = 0

    def __next__(self) -> torch.Tensor:
        if self.position == self.per_pass:
            self._new_pass()
        b = self.position
        self.position += 1
        return torch.from_numpy(self.order[b * self.batch_size : (b + 1) * self.batch_size])

    def __iter__(self) -> BatchOrder:
        return self

    def state_dict(self) -> dict:
        return {"pass_state": self.pass_state, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = copy.deepcopy(state["pass_state"])
        self._new_pass()
        self.position = state["position"]
