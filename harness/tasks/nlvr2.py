"""NLVR2 as a distillation task: a statement about a pair of images, true or false. Each image
goes through CoCa with the statement; the head reads the two pooled features side by side
(spec/harness.md §4). Metrics: accuracy and consistency as the official script computes them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.data.nlvr2 import Nlvr2Split, read_nlvr2
from harness.data.synthetic.cache import ensure_world
from harness.data.synthetic.nlvr2 import nlvr2_world_spec, write_nlvr2_world
from harness.tasks import nlvr2_eval
from harness.tasks.common import LabelledExamples, SoftmaxTask


class Nlvr2Task(SoftmaxTask):
    name = "nlvr2"
    primary = "accuracy"
    metric_name = "NLVR2 accuracy (%)"
    labels = ("False", "True")
    views = 2
    evaluator = {"name": nlvr2_eval.EVALUATOR}

    @classmethod
    def from_train(cls, train: Nlvr2Split, cfg) -> Nlvr2Task:
        return cls()

    @staticmethod
    def ensure_world(cache_dir: Path, name: str, progress: bool = True) -> Path:
        spec = nlvr2_world_spec(name)
        return ensure_world(cache_dir, f"nlvr2-{name}", spec, write_nlvr2_world, progress=progress)

    @staticmethod
    def read(root: Path, split: str) -> Nlvr2Split:
        return read_nlvr2(root, split)

    @staticmethod
    def texts(split: Nlvr2Split) -> list[str]:
        return [e.sentence for e in split.examples]

    def examples(self, split: Nlvr2Split, tokenizer, image_size, context_length, progress=True):
        ex = split.examples
        return self.labelled_examples(
            split,
            [e.identifier for e in ex],
            [(e.left_path, e.right_path) for e in ex],
            self.texts(split),
            [None if e.label is None else int(e.label) for e in ex],
            tokenizer,
            image_size,
            context_length,
            progress,
        )

    def metrics(self, ex: LabelledExamples, predicted: list[str]) -> dict:
        truth = {i: p == "True" for i, p in zip(ex.ids, predicted, strict=True)}
        scores = nlvr2_eval.evaluate(ex.split.examples, truth)
        return {"primary": 100 * scores["accuracy"], **scores}

    def baseline(self, train: Nlvr2Split, ex: LabelledExamples) -> tuple[str, dict]:
        majority = Counter(e.label for e in train.examples).most_common(1)[0][0]
        return f"majority label ({majority})", self.metrics(ex, [str(majority)] * len(ex))
