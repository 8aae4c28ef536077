"""VQA v2 as a distillation task: examples, head, loss terms, predictions, official metric.

Answers are a classification over the k most frequent train answers with soft targets, the
usual VQA-as-classification set-up; the task loss is BCE against the official per-answer
scores and `L_pred` the KL of the student's per-answer Bernoullis from the teacher's (the BCE
against the teacher's sigmoid probabilities minus their entropy; spec/optima.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.image_store import ImageStore, to_model_input
from harness.data.synthetic.vqa import vqa_world_spec, write_vqa_world
from harness.data.tokenizer import Tokenizer
from harness.data.vqa import VqaSplit, answer_vocab, read_vqa
from harness.models.heads import ClassifierHead
from harness.tasks import vqa_eval
from harness.tasks.common import Task

MAX_TARGETS = 10  # at most 10 distinct answers per question


@dataclass
class Examples:
    """One split as tensors; rows are examples in the reader's order."""

    split: VqaSplit
    images: ImageStore
    image_index: torch.Tensor  # [N] index into `images`
    tokens: torch.Tensor  # [N, L]
    target_index: torch.Tensor  # [N, 10] answer-vocabulary ids of the soft targets
    target_score: torch.Tensor  # [N, 10] their scores (0 where unused)

    def __len__(self) -> int:
        return self.tokens.shape[0]


class VqaTask(Task):
    name = "vqa"
    primary = "overall"
    metric_name = "VQA accuracy (official, %)"
    reader = staticmethod(read_vqa)
    world = (vqa_world_spec, write_vqa_world)
    evaluator = {"name": vqa_eval.EVALUATOR, "implementation": "harness.tasks.vqa_eval"}

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.answer_id = {a: i for i, a in enumerate(answers)}

    @classmethod
    def from_train(cls, train: VqaSplit, cfg) -> VqaTask:
        return cls(answer_vocab(train, cfg.answer_top_k))

    @staticmethod
    def texts(split: VqaSplit) -> list[str]:
        return [q.question for q in split.questions]

    def examples(
        self,
        split: VqaSplit,
        tokenizer: Tokenizer,
        image_size: int,
        context_length: int,
        progress: bool = True,
    ) -> Examples:
        image_ids = sorted({q.image_id for q in split.questions})
        slot = {image_id: i for i, image_id in enumerate(image_ids)}
        path_of = {q.image_id: q.image_path for q in split.questions}
        images = ImageStore(
            [path_of[i] for i in image_ids], image_size, progress=progress, desc=split.split
        )
        n = len(split.questions)
        target_index = torch.zeros(n, MAX_TARGETS, dtype=torch.long)
        target_score = torch.zeros(n, MAX_TARGETS)
        for row, q in enumerate(split.questions):
            if q.answers is None:
                continue
            scored = [
                (self.answer_id[a], s)
                for a, s in vqa_eval.soft_scores(q.answers).items()
                if a in self.answer_id
            ]
            for col, (answer, score) in enumerate(sorted(scored)):
                target_index[row, col] = answer
                target_score[row, col] = score
        return Examples(
            split=split,
            images=images,
            image_index=torch.tensor([slot[q.image_id] for q in split.questions]),
            tokens=tokenizer.encode(self.texts(split), context_length),
            target_index=target_index,
            target_score=target_score,
        )

    def build_head(self, width: int, seed: int) -> nn.Module:
        return ClassifierHead(width, len(self.answers), seed=seed)

    def batch(self, ex: Examples, index: torch.Tensor, device: torch.device) -> dict:
        target = torch.zeros(len(index), len(self.answers))
        target.scatter_add_(1, ex.target_index[index], ex.target_score[index])
        return {
            "images": to_model_input(ex.images.get(ex.image_index[index]), device),
            "image_index": ex.image_index[index],
            "text": ex.tokens[index].to(device),
            "target": target.to(device),
        }

    @staticmethod
    def task_loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """BCE against soft scores, summed over answers (the usual VQA scaling)."""
        loss = F.binary_cross_entropy_with_logits(logits, batch["target"], reduction="none")
        return loss.sum(dim=1).mean()

    @staticmethod
    def pred_loss(
        student: torch.Tensor, teacher: torch.Tensor, tau: float, batch: dict | None = None
    ) -> torch.Tensor:
        """KL(teacher || student) of the per-answer Bernoullis of the sigmoid head, summed
        over answers (spec/optima.md §3): the BCE against the teacher's probabilities minus
        the teacher's entropy. The entropy does not move the gradient, but left in it inflates
        R_before, the relative reward's denominator, and a student equal to the teacher would
        still score it. Both terms use the same stable kernel (the entropy is the BCE of the
        teacher's logits against its own probabilities), so student == teacher gives exactly
        0; a rounding residue below 0 reads 0, with the BCE's gradient kept as it is."""
        t = (teacher / tau).detach()
        target = torch.sigmoid(t)
        bce = F.binary_cross_entropy_with_logits(student / tau, target, reduction="none")
        entropy = F.binary_cross_entropy_with_logits(t, target, reduction="none")
        kl = bce - entropy
        kl = kl + (kl.clamp_min(0) - kl).detach()  # value >= 0, gradient untouched
        return kl.sum(dim=1).mean() * tau**2

    def baseline(self, train: VqaSplit, ex: Examples) -> tuple[str, dict]:
        top = self.answers[0]  # the vocabulary is sorted by train frequency
        return f"most frequent training answer ({top!r})", self.metrics(ex, [top] * len(ex))

    def predictions(self, logits: torch.Tensor) -> list[str]:
        return [self.answers[i] for i in logits.argmax(dim=1).tolist()]

    def metrics(self, ex: Examples, answers: list[str]) -> dict:
        results = [
            {"question_id": q.question_id, "answer": a}
            for q, a in zip(ex.split.questions, answers, strict=True)
        ]
        scores = vqa_eval.evaluate(ex.split.questions_json, ex.split.annotations_json, results)
        return {"primary": scores["overall"], **scores}
