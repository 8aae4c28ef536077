"""Task registry: each task is one card (harness/tasks/builtin/<task>.py), read by the config,
the CLI, pre-training, the reports and nox. A card holds names and numbers only, so reading
the registry imports no model code; `get_task` imports a task's implementation when used."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

from harness.errors import ConfigError

ACCURACY_POINT = "one percentage point of accuracy"


@dataclass(frozen=True)
class Display:
    """What a task's report shows beside the primary metric: (label, path into `metrics`)."""

    title: str
    secondary: tuple[tuple[str, tuple[str, ...]], ...] = ()
    fractions: tuple[tuple[str, ...], ...] = ()  # secondary paths scored in [0, 1]: shown in %
    digits: int = 2
    point: str = "one unit of the primary metric"  # what "1 point" of a difference means


@dataclass(frozen=True)
class Option:
    """One file argument of `optima-repro evaluate <task>`: `--flag` passed as `name=`."""

    flag: str
    name: str
    help: str


@dataclass(frozen=True)
class TaskCard:
    """One task. Its code sits by convention where its name says (`snli-ve`: the class
    `SnliVeTask` in harness/tasks/snli_ve.py, `evaluate_files` in tasks/snli_ve_eval.py, the
    reader harness/data/snli_ve.py); a card names other places to move it."""

    name: str
    position: int  # order of the reports, and of the shared tokenizer's corpus (its bits)
    evaluate_help: str
    evaluate_options: tuple[Option, ...]
    eval_split: str
    context_length: int  # tokens, end token included
    teacher_steps: int  # the default preset's fine-tuning steps
    student_steps: int  # the default preset's distillation steps
    display: Display
    train_split: str = "train"
    extra_eval_splits: tuple[str, ...] = ()
    curve_every: int = 5  # the default preset's rounds between curve points
    seeds: str = ""  # the default preset's `--seeds`, where its pilot asked for more than 0-7
    pretraining_corpus: bool = False  # its train text pre-trains the shared teacher
    # its train text trains the synthetic worlds' shared tokenizer: adding a task to that set
    # changes every synthetic study's digits, so a task registered later stays out by default
    tokenizer_corpus: bool = False
    implementation: str = ""  # "module:Class": data to tensors, head, loss terms, metric
    reader: str = ""  # module with `check(root, split, progress) -> dict` (`data check`)
    evaluate: str = ""  # "module:function" scoring prediction files (`optima-repro evaluate`)
    sources: tuple[str, ...] = field(default=())  # files under harness/ shaping its teacher

    def __post_init__(self) -> None:
        module = self.name.replace("-", "_")
        cls = "".join(part.capitalize() for part in self.name.split("-")) + "Task"
        defaults = {
            "implementation": f"harness.tasks.{module}:{cls}",
            "reader": f"harness.data.{module}",
            "evaluate": f"harness.tasks.{module}_eval:evaluate_files",
        }
        for name, value in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        if not self.sources:
            modules = (self.implementation.split(":")[0], self.evaluate.split(":")[0])
            paths = tuple(m.removeprefix("harness.").replace(".", "/") + ".py" for m in modules)
            object.__setattr__(self, "sources", paths)


def csv_options(id_column: str) -> tuple[Option, ...]:
    """`evaluate`'s files for a task scored from a CSV of `<id_column>,prediction` rows."""
    return (
        Option("--data", "data_file", "the split's data file"),
        Option("--predictions", "predictions_file", f"CSV {id_column},prediction"),
    )


_CARDS: dict[str, TaskCard] = {}
_LOADED = False


def register(card: TaskCard) -> TaskCard:
    """Add a task (the built-in cards call this on import; a test or plug-in may too)."""
    if card.name in _CARDS and _CARDS[card.name] != card:
        raise ConfigError(f"task {card.name!r} is registered twice, differently")
    _CARDS[card.name] = card
    return card


def unregister(name: str) -> None:
    _CARDS.pop(name, None)


def cards() -> dict[str, TaskCard]:
    """Every registered task, in `position` order (the built-in cards loaded on first use)."""
    global _LOADED
    if not _LOADED:
        package = importlib.import_module("harness.tasks.builtin")
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
        _LOADED = True
    return dict(sorted(_CARDS.items(), key=lambda item: (item[1].position, item[0])))


def card(name: str) -> TaskCard:
    known = cards()
    if name not in known:
        raise ConfigError(f"unknown task {name!r}; expected one of {sorted(known)}")
    return known[name]


def get_task(name: str):
    """The task class; imported on demand, so a task's dependencies load only when used."""
    module, cls = card(name).implementation.split(":")
    return getattr(importlib.import_module(module), cls)
