"""Image lookup and decoding shared by every reader.

One rule for the image paths of every dataset. A path written in a dataset file is data, not
trusted: as written it must stay under the data root (relative, no ``..``, no NUL). The user's
own file system is trusted: a symlink may lead anywhere, because real datasets are symlinked
into place (``val2014 -> /mnt/big/coco/val2014``). Whatever the path leads to must be a regular
file (``harness.data.files``): a FIFO would block the reader forever, a device never end.

``load_image`` gives every model the same RGB uint8 array whatever the file's mode.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from harness.data.files import open_regular, os_problem, stat_problem
from harness.data.json_fields import text_problem
from harness.data.skips import skip_or_raise
from harness.errors import DataError

T = TypeVar("T")

_SEPARATORS = re.compile(r"[/\\]")


def path_problem(relative: str) -> str | None:
    """Why ``relative``, a path written in a dataset file, cannot name a file under the root."""
    if not relative or relative.isspace():
        return "empty image path"
    if "\0" in relative:
        return f"image path {relative!r} holds a NUL character"
    problem = text_problem(relative)
    if problem is not None:
        return f"image path {relative!r} is {problem}"
    if relative[0] in "/\\" or relative[1:2] == ":":  # /x, \x, \\server\x, C:\x, C:x
        return f"image path {relative!r} is absolute; expected one under the data root"
    if ".." in relative and ".." in _SEPARATORS.split(relative):
        return f"image path {relative!r} climbs out of the data root with '..'"
    return None


class ImageFolders:
    """Which images are there, by one listing per folder: a stat per image costs seconds over
    the 100k images of a real split. Only an entry that is not plainly a regular file (a
    symlink to a FIFO, a loop) costs a stat, to say what it is."""

    def __init__(self) -> None:
        self._listings: dict[Path, dict[str, bool] | str] = {}

    def listing(self, folder: Path) -> dict[str, bool]:
        """Names in ``folder``, each with whether it is a regular file (symlinks followed);
        empty if the folder cannot be listed."""
        found = self._list(folder)
        return found if isinstance(found, dict) else {}

    def folder_problem(self, folder: Path) -> str | None:
        """Why ``folder`` cannot be listed, or None."""
        found = self._list(folder)
        return found if isinstance(found, str) else None

    def problem(self, path: Path) -> str | None:
        """None if ``path`` is a regular file, else why not, naming it."""
        listing = self._list(path.parent)
        if listing == "not found":
            return f"image not found: {path}"
        if isinstance(listing, str):
            return f"image {path}: its folder {path.parent} {listing}"
        regular = listing.get(path.name)
        if regular:
            return None
        return f"image not found: {path}" if regular is None else _file_problem(path)

    def _list(self, folder: Path) -> dict[str, bool] | str:
        if folder not in self._listings:
            try:
                with os.scandir(folder) as entries:
                    self._listings[folder] = {e.name: _regular(e) for e in entries}
            except NotADirectoryError:
                self._listings[folder] = "is not a folder"
            except (OSError, ValueError) as err:
                self._listings[folder] = os_problem(err)
        return self._listings[folder]


def _regular(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # a stat only for a symlink
    except OSError:  # a symlink loop raises, where a broken link gives False
        return False


def _file_problem(path: Path) -> str | None:
    problem = stat_problem(path)
    if problem is None:
        return None
    return f"image not found: {path}" if problem == "not found" else f"image {path} {problem}"


def decode_image(path: Path) -> Image.Image:
    """The image at ``path``, fully decoded (a truncated file fails here), as RGB."""
    with open_regular(path, "image") as f:
        try:
            with Image.open(f) as img:
                return img.convert("RGB")  # grey, palette and alpha images alike
        except UnidentifiedImageError as err:  # its message shows the file object, not a cause
            raise DataError(path, "cannot decode image: not a format Pillow knows") from err
        except Exception as err:  # whatever a decoder raises on a damaged file
            raise DataError(path, f"cannot decode image: {err}") from err


def load_image(path: Path, size: int) -> np.ndarray:
    """The image at ``path`` as a ``[size, size, 3]`` uint8 RGB array.

    Resized straight to a square with bicubic filtering (as BLIP/ALBEF do for VQA) only when its
    size differs.
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"load_image: size must be a positive integer, got {size!r}")
    rgb = decode_image(path)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8).copy()


def keep_decodable(
    items: Sequence[T],
    refs: Callable[[T], Iterable[tuple[Path, str, str]]],
    data_file: Path,
    *,
    split: str,
    what: str,
    progress: bool,
) -> list[T]:
    """The items whose images all decode, as ``data check`` decodes them: every image once, on
    a few threads (decoders release the GIL). ``refs(item)`` gives (image, record, field) for
    each image of an item; a failure names the image and the first record referring to it in
    ``data_file``, and is raised or, with ``--skip-bad-records``, drops every item using it.
    No item left is an error."""
    images: dict[Path, tuple[str, str]] = {}
    for item in items:
        for image, record, field in refs(item):
            images.setdefault(image, (record, field))
    paths = list(images)

    def attempt(path: Path) -> str | None:
        try:
            decode_image(path).close()
        except DataError as err:
            return str(err).removeprefix(f"{path}: ")
        return None

    bad: set[Path] = set()
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        results = tqdm(
            pool.map(attempt, paths), total=len(paths), desc=f"{split} images", disable=not progress
        )
        for path, problem in zip(paths, results, strict=True):
            if problem is not None:
                record, field = images[path]
                err = DataError(data_file, f"image {path}: {problem}", record=record, field=field)
                skip_or_raise(err)
                bad.add(path)
    finally:
        pool.shutdown(cancel_futures=True)  # a raised error does not wait for the rest
    kept = [item for item in items if not any(image in bad for image, _, _ in refs(item))]
    if not kept:
        raise DataError(data_file, f"no {what} of split {split!r} has every image readable")
    return kept
