"""SNLI-VE as a distillation task: the image is the premise, `sentence2` the hypothesis, a
3-way softmax over entailment / neutral / contradiction; metric: accuracy (spec/optima.md §6).
The text premise (`sentence1`) is never a model input: SNLI-VE replaces it by the image."""

from __future__ import annotations

from harness.data.snli_ve import LABELS, SnliVeSplit, read_snli_ve
from harness.data.synthetic.snli_ve import snli_ve_world_spec, write_snli_ve_world
from harness.tasks import snli_ve_eval
from harness.tasks.common import LabelledExamples, SoftmaxTask


class SnliVeTask(SoftmaxTask):
    name = "snli-ve"
    primary = "accuracy"
    metric_name = "SNLI-VE accuracy (%)"
    labels = LABELS
    evaluator = {"name": "accuracy (harness.tasks.snli_ve_eval)"}

    reader = staticmethod(read_snli_ve)
    world = (snli_ve_world_spec, write_snli_ve_world)

    @staticmethod
    def texts(split: SnliVeSplit) -> list[str]:
        return [e.hypothesis for e in split.examples]

    @staticmethod
    def columns(split: SnliVeSplit):
        ex = split.examples
        labels = [None if e.label is None else LABELS.index(e.label) for e in ex]
        return [e.pair_id for e in ex], [(e.image_path,) for e in ex], labels

    def metrics(self, ex: LabelledExamples, predicted: list[str]) -> dict:
        scores = snli_ve_eval.evaluate(
            ex.split.examples, dict(zip(ex.ids, predicted, strict=True)), ignored=ex.split.skipped
        )
        return {"primary": 100 * scores["accuracy"], **scores}
