"""NLVR2 as a distillation task: a statement about a pair of images, true or false. Each image
goes through CoCa with the statement; the head reads the two pooled features side by side
(spec/harness.md §4). Metrics: accuracy and consistency as the official script computes them."""

from __future__ import annotations

from harness.data.nlvr2 import Nlvr2Split, read_nlvr2
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

    reader = staticmethod(read_nlvr2)
    world = (nlvr2_world_spec, write_nlvr2_world)

    @staticmethod
    def texts(split: Nlvr2Split) -> list[str]:
        return [e.sentence for e in split.examples]

    @staticmethod
    def columns(split: Nlvr2Split):
        ex = split.examples
        labels = [None if e.label is None else int(e.label) for e in ex]
        return [e.identifier for e in ex], [(e.left_path, e.right_path) for e in ex], labels

    def metrics(self, ex: LabelledExamples, predicted: list[str]) -> dict:
        truth = {i: p == "True" for i, p in zip(ex.ids, predicted, strict=True)}
        scores = nlvr2_eval.evaluate(ex.split.examples, truth)
        return {"primary": 100 * scores["accuracy"], **scores}
