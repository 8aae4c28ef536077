"""Images for a split, decoded once: in memory when they fit, from disk per batch when not.

The embedded default's few thousand 48 px images fit in a few MB and are preloaded, so the
training loop never waits on decoding; a real split at 288 px (tens of GB) is read per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from harness.data.images import load_image

# CLIP's normalisation, which open_clip's CoCa checkpoints were trained with.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


class ImageStore:
    def __init__(
        self,
        paths: Sequence[Path],
        size: int,
        *,
        preload_limit_bytes: int = 2 << 30,
        progress: bool = True,
        desc: str = "images",
    ) -> None:
        self.paths = list(paths)
        self.size = size
        self._pixels: torch.Tensor | None = None
        if len(self.paths) * size * size * 3 <= preload_limit_bytes:
            pixels = np.empty((len(self.paths), size, size, 3), dtype=np.uint8)
            for i, path in enumerate(tqdm(self.paths, desc=desc, disable=not progress)):
                pixels[i] = load_image(path, size)
            self._pixels = torch.from_numpy(pixels)

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W, 3] for the given image indices."""
        if self._pixels is not None:
            return self._pixels[index]
        return torch.from_numpy(
            np.stack([load_image(self.paths[i], self.size) for i in index.tolist()])
        )


def to_model_input(pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> normalised float [B, 3, H, W] on `device` (uint8 travels)."""
    x = pixels.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std
