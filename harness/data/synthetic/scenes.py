"""Seeded scenes of coloured shapes on a grid, shared by every synthetic task world.

A scene is symbolic (shape, colour, size, grid cell) so each task can derive exact labels from
it; the render adds seeded jitter of position, size and colour so that pixels are not a lookup
table, while every attribute stays readable by a human at 48x48 pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from harness.errors import ConfigError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "gray")
SIZES: tuple[str, ...] = ("small", "large")
ATTRIBUTES: tuple[str, ...] = ("size", "color", "shape")

RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 45, 45),
    "green": (45, 170, 65),
    "blue": (55, 95, 230),
    "yellow": (235, 205, 40),
    "gray": (150, 150, 150),
}
BACKGROUND: tuple[int, int, int] = (28, 28, 34)

# Radius as a share of the cell side: 0.42 vs 0.22 keeps "large" about twice "small" in width,
# which survives the +-6% size jitter below.
_RADIUS = {"small": 0.22, "large": 0.42}
_SCALE_JITTER = 0.06
_BRIGHTNESS_JITTER = 14
_HUE_JITTER = 5
_BACKGROUND_JITTER = 6
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class SceneObject:
    """One shape in one grid cell; the jitter fields only affect pixels, never labels."""

    shape: str
    color: str
    size: str
    row: int
    col: int
    offset: tuple[float, float] = (0.0, 0.0)  # (dx, dy) in [-1, 1] of the free room in the cell
    scale: float = 1.0
    tint: tuple[int, int, int] = (0, 0, 0)  # added to the colour's RGB

    def attribute(self, name: str) -> str:
        """The value of "shape", "color" or "size"."""
        return getattr(self, name)


@dataclass(frozen=True)
class Scene:
    grid: int
    objects: tuple[SceneObject, ...]
    background: tuple[int, int, int] = BACKGROUND


@dataclass(frozen=True)
class SceneSpec:
    grid: int = 3
    min_objects: int = 1
    max_objects: int = 5
    sizes: tuple[str, ...] = SIZES  # a world without size words may draw large shapes only

    def __post_init__(self) -> None:
        if not self.sizes or set(self.sizes) - set(SIZES):
            raise ValueError(
                f"SceneSpec: sizes must be a non-empty subset of {SIZES}, got {self.sizes}"
            )
        if not 1 <= self.min_objects <= self.max_objects <= self.grid * self.grid:
            raise ValueError(
                f"SceneSpec: need 1 <= min_objects <= max_objects <= grid**2, got "
                f"{self.min_objects}, {self.max_objects}, grid {self.grid}"
            )


@dataclass(frozen=True)
class WorldSpec:
    """What every synthetic world's spec shares: the seed and the scenes its images draw.
    A spec holds everything that shapes the written files; its hash names the cache folder.
    A world adds its own fields and checks them in `check`, before the scene is checked."""

    seed: int = 0
    image_size: int = 48
    grid: int = 3
    min_objects: int = 1
    max_objects: int = 4

    def __post_init__(self) -> None:
        self.check()
        try:
            self.scene  # noqa: B018 (validates grid and object counts)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def check(self) -> None:
        """The world's own fields; raises ConfigError naming `<Spec>.<field>`."""

    @property
    def scene(self) -> SceneSpec:
        return SceneSpec(grid=self.grid, min_objects=self.min_objects, max_objects=self.max_objects)

    def _fail(self, field: str, problem: str) -> None:
        raise ConfigError(f"{type(self).__name__}.{field}: {problem}")

    def _at_least(self, low: int, *fields: str) -> None:
        for name in fields:
            if getattr(self, name) < low:
                self._fail(name, f"must be at least {low}")

    def _template_weights(self, known: Iterable[str]) -> None:
        """`template_weights` as (name, weight) pairs of known templates (a spec read back
        from JSON has lists: kept hashable and equal to the original)."""
        weights = tuple((str(n), float(w)) for n, w in self.template_weights)
        object.__setattr__(self, "template_weights", weights)
        known = list(known)
        unknown = [name for name, _ in weights if name not in known]
        if unknown:
            self._fail(
                "template_weights", f"unknown templates {unknown}; expected names from {known}"
            )
        if any(w < 0 for _, w in weights) or sum(w for _, w in weights) <= 0:
            self._fail("template_weights", "weights must be >= 0, not all 0")


def sample_scene(rng: np.random.Generator, spec: SceneSpec) -> Scene:
    """Draw objects uniformly over attributes and distinct cells (at most one per cell)."""
    n = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    cells = rng.choice(spec.grid * spec.grid, size=n, replace=False)
    objects = []
    for cell in sorted(int(c) for c in cells):
        objects.append(
            SceneObject(
                shape=SHAPES[int(rng.integers(len(SHAPES)))],
                color=COLORS[int(rng.integers(len(COLORS)))],
                size=spec.sizes[int(rng.integers(len(spec.sizes)))],
                row=cell // spec.grid,
                col=cell % spec.grid,
                offset=(float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1))),
                scale=float(rng.uniform(1 - _SCALE_JITTER, 1 + _SCALE_JITTER)),
                tint=_tint(rng),
            )
        )
    background = tuple(
        int(c + d)
        for c, d in zip(
            BACKGROUND, rng.integers(-_BACKGROUND_JITTER, _BACKGROUND_JITTER + 1, 3), strict=True
        )
    )
    return Scene(grid=spec.grid, objects=tuple(objects), background=background)


def _tint(rng: np.random.Generator) -> tuple[int, int, int]:
    """Mostly a brightness shift: per-channel noise alone would turn gray greenish or pinkish."""
    shift = int(rng.integers(-_BRIGHTNESS_JITTER, _BRIGHTNESS_JITTER + 1))
    hue = rng.integers(-_HUE_JITTER, _HUE_JITTER + 1, 3)
    return (shift + int(hue[0]), shift + int(hue[1]), shift + int(hue[2]))


def render(scene: Scene, image_size: int) -> Image.Image:
    """Draw at 4x and box-downsample, so small shapes keep readable corners and edges."""
    side = image_size * _SUPERSAMPLE
    cell = side / scene.grid
    image = Image.new("RGB", (side, side), scene.background)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        radius = _RADIUS[obj.size] * obj.scale * cell
        room = max(0.0, cell / 2 - radius) * 0.7  # keep every shape inside its own cell
        cx = (obj.col + 0.5) * cell + obj.offset[0] * room
        cy = (obj.row + 0.5) * cell + obj.offset[1] * room
        fill = tuple(min(255, max(0, c + t)) for c, t in zip(RGB[obj.color], obj.tint, strict=True))
        if obj.shape == "circle":
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
        elif obj.shape == "square":
            half = radius * 0.86  # similar area to the circle, so size reads the same
            draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=fill)
        elif obj.shape == "triangle":
            # Equilateral, pointing up, its bounding box centred on (cx, cy).
            r = radius * 1.12
            cy += r / 4
            w = r * 0.8660254
            draw.polygon([(cx, cy - r), (cx - w, cy + r / 2), (cx + w, cy + r / 2)], fill=fill)
        else:
            raise ValueError(f"render: unknown shape {obj.shape!r}; expected one of {SHAPES}")
    return image.resize((image_size, image_size), Image.Resampling.BOX)


# Relations compare grid cells only, so the jitter never changes a label.
def left_of(a: SceneObject, b: SceneObject) -> bool:
    return a.col < b.col


def right_of(a: SceneObject, b: SceneObject) -> bool:
    return a.col > b.col


def above(a: SceneObject, b: SceneObject) -> bool:
    return a.row < b.row


def below(a: SceneObject, b: SceneObject) -> bool:
    return a.row > b.row


RELATIONS = {"left_of": left_of, "right_of": right_of, "above": above, "below": below}


def related(scene: Scene, relation: str, anchor: SceneObject) -> list[SceneObject]:
    """Objects that stand in `relation` to `anchor` (e.g. everything left of it)."""
    test = RELATIONS[relation]
    return [o for o in scene.objects if o is not anchor and test(o, anchor)]


def matching(
    scene: Scene, *, shape: str | None = None, color: str | None = None, size: str | None = None
) -> list[SceneObject]:
    return [
        o
        for o in scene.objects
        if (shape is None or o.shape == shape)
        and (color is None or o.color == color)
        and (size is None or o.size == size)
    ]


def count(
    scene: Scene, *, shape: str | None = None, color: str | None = None, size: str | None = None
) -> int:
    return len(matching(scene, shape=shape, color=color, size=size))


def phrase(values: Mapping[str, str], *, plural: bool = False) -> str:
    """Noun phrase from attribute values: {"size": "small", "color": "red"} -> "small red object".

    Attributes go in English adjective order (size, colour), the shape being the noun.
    """
    words = [values[a] for a in ("size", "color") if a in values]
    noun = values.get("shape", "object")
    words.append(noun + "s" if plural else noun)
    return " ".join(words)


_ATTRIBUTE_SETS: tuple[tuple[str, ...], ...] = (
    ("shape",),
    ("color",),
    ("size",),
    ("color", "shape"),
    ("size", "shape"),
    ("size", "color"),
    ("size", "color", "shape"),
)


def referring_phrases(scene: Scene, obj: SceneObject, exclude: Iterable[str] = ()) -> list[str]:
    """Every phrase that picks out `obj` alone, without naming the attributes in `exclude`.

    Questions and captions ask only about uniquely identified objects, so the answer is
    defined; excluding the asked attribute keeps the answer out of the question.
    """
    exclude = frozenset(exclude)
    out = []
    for attrs in _ATTRIBUTE_SETS:
        if any(a in exclude for a in attrs):
            continue
        key = [getattr(obj, a) for a in attrs]
        if sum([getattr(o, a) for a in attrs] == key for o in scene.objects) == 1:
            out.append(phrase(dict(zip(attrs, key, strict=True))))
    return out
