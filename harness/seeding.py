"""Named random streams: one seed, independent streams for data order, reward set and model
initialisation, so changing one consumer (e.g. the scheduler) changes nothing else."""

from __future__ import annotations

import contextlib
import zlib

import numpy as np
import torch


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for `stream`, fixed by (seed, stream name) across runs and platforms."""
    state = np.random.SeedSequence([seed, zlib.crc32(stream.encode())]).generate_state(2)
    return int((int(state[0]) << 32 | int(state[1])) & ((1 << 63) - 1))


@contextlib.contextmanager
def torch_seeded(seed: int, stream: str):
    """Module initialisation uses torch's global generator; fork it so nothing leaks out."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(seed, stream))
        yield
