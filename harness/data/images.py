"""Image lookup and decoding shared by every reader.

Paths inside dataset files are data, not trusted: ``resolve_image`` keeps them under the data
root. ``load_image`` gives every model the same RGB uint8 array whatever the file's mode.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image

from harness.errors import DataError


def resolve_image(
    root: Path,
    relative: str,
    *,
    source: str | Path | None = None,
    record: str | int | None = None,
    field: str | None = None,
) -> Path:
    """``root / relative``, refusing any path that leaves ``root`` (``..``, absolute, or a symlink
    pointing outside) or does not exist. ``source``/``record``/``field`` name the dataset entry
    that holds ``relative``, so the error points at it; by default the error names the image."""
    root = Path(root)
    candidate = root / relative
    file = source if source is not None else candidate
    where = {"record": record, "field": field}
    if not relative or not relative.strip():
        raise DataError(file, "empty image path", **where)
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise DataError(
            file, f"image path {relative!r} is absolute; expected one under {root}", **where
        )
    if ".." in posix.parts or ".." in windows.parts:
        raise DataError(file, f"image path {relative!r} climbs out of {root} with '..'", **where)
    if not candidate.resolve().is_relative_to(root.resolve()):
        raise DataError(
            file,
            f"image path {relative!r} resolves to {candidate.resolve()}, outside {root}",
            **where,
        )
    if not candidate.exists():
        raise DataError(file, f"image not found: {candidate}", **where)
    return candidate


def load_image(path: Path, size: int) -> np.ndarray:
    """The image at ``path`` as a ``[size, size, 3]`` uint8 RGB array.

    Resized straight to a square with bicubic filtering (as BLIP/ALBEF do for VQA) only when its
    size differs; grey, palette and alpha images are converted to RGB.
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"load_image: size must be a positive integer, got {size!r}")
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")  # forces a full decode, so truncated files fail here
    except FileNotFoundError as err:
        raise DataError(path, "image not found") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(path, f"cannot decode image: {err}") from err
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8).copy()
