"""SNLI-VE as a distillation task: the image is the premise, `sentence2` the hypothesis, a
3-way softmax over entailment / neutral / contradiction; metric: accuracy (spec/optima.md §6).
The text premise (`sentence1`) is never a model input: SNLI-VE replaces it by the image."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.data.snli_ve import LABELS, SnliVeSplit, read_snli_ve
from harness.data.synthetic.cache import ensure_world
from harness.data.synthetic.snli_ve import snli_ve_world_spec, write_snli_ve_world
from harness.tasks import snli_ve_eval
from harness.tasks.common import LabelledExamples, SoftmaxTask


class SnliVeTask(SoftmaxTask):
    name = "snli-ve"
    primary = "accuracy"
    metric_name = "SNLI-VE accuracy (%)"
    labels = LABELS
    evaluator = {"name": "accuracy (harness.tasks.snli_ve_eval)"}

    @classmethod
    def from_train(cls, train: SnliVeSplit, cfg) -> SnliVeTask:
        return cls()

    @staticmethod
    def ensure_world(cache_dir: Path, name: str, progress: bool = True) -> Path:
        spec = snli_ve_world_spec(name)
        return ensure_world(
            cache_dir, f"snli-ve-{name}", spec, write_snli_ve_world, progress=progress
        )

    @staticmethod
    def read(root: Path, split: str) -> SnliVeSplit:
        return read_snli_ve(root, split)

    @staticmethod
    def texts(split: SnliVeSplit) -> list[str]:
        return [e.hypothesis for e in split.examples]

    def examples(self, split: SnliVeSplit, tokenizer, image_size, context_length, progress=True):
        ex = split.examples
        return self.labelled_examples(
            split,
            [e.pair_id for e in ex],
            [(e.image_path,) for e in ex],
            self.texts(split),
            [None if e.label is None else LABELS.index(e.label) for e in ex],
            tokenizer,
            image_size,
            context_length,
            progress,
        )

    def metrics(self, ex: LabelledExamples, predicted: list[str]) -> dict:
        scores = snli_ve_eval.evaluate(
            ex.split.examples, dict(zip(ex.ids, predicted, strict=True)), ignored=ex.split.skipped
        )
        return {"primary": 100 * scores["accuracy"], **scores}

    def baseline(self, train: SnliVeSplit, ex: LabelledExamples) -> tuple[str, dict]:
        majority = Counter(e.label for e in train.examples).most_common(1)[0][0]
        return f"majority label ({majority})", self.metrics(ex, [majority] * len(ex))
