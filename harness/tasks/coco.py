"""COCO captioning (Karpathy split) as a distillation task: the decoder's language-model head
with teacher forcing for the loss terms (`L_task` next-token cross-entropy, `L_pred` per-token
KL to the teacher, spec/optima.md §3), greedy or beam-search generation for evaluation, and
pycocoevalcap's BLEU-1..4, METEOR, ROUGE-L and CIDEr (x100, as papers print them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.coco import CocoSplit, read_coco
from harness.data.image_store import ImageStore, to_model_input
from harness.data.synthetic.coco import coco_world_spec, write_coco_world
from harness.tasks import coco_eval
from harness.tasks.common import Task

SCORES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


@dataclass
class CaptionExamples:
    """Train: one row per (image, caption). Evaluation: one row per image, captions kept as
    references; its `tokens` hold only the start token."""

    split: CocoSplit
    images: ImageStore
    image_index: torch.Tensor  # [N]
    tokens: torch.Tensor  # [N, L]: start token, caption pieces, end token, padding

    def __len__(self) -> int:
        return self.tokens.shape[0]


class CocoTask(Task):
    name = "coco"
    primary = "CIDEr"
    metric_name = "CIDEr (x100, pycocoevalcap)"
    reader = staticmethod(read_coco)
    world = (coco_world_spec, write_coco_world)
    evaluator = {"name": coco_eval.EVALUATOR}
    views = 1

    def __init__(self, beam_size: int = 3, max_length: int = 20) -> None:
        self.beam_size = beam_size
        self.max_length = max_length
        self.tokenizer = None  # set by `examples`, which knows the run's tokenizer

    @classmethod
    def from_train(cls, train: CocoSplit, cfg) -> CocoTask:
        return cls(beam_size=cfg.extra.get("beam_size", 3), max_length=cfg.context_length)

    @staticmethod
    def texts(split: CocoSplit) -> list[str]:
        return [c for image in split.images for c in image.captions]

    def examples(
        self, split: CocoSplit, tokenizer, image_size: int, context_length: int, progress=True
    ) -> CaptionExamples:
        self.tokenizer = tokenizer
        images = ImageStore(
            [i.path for i in split.images], image_size, progress=progress, desc="COCO images"
        )
        if split.split == "train":
            rows = [(i, c) for i, image in enumerate(split.images) for c in image.captions]
        else:
            rows = [(i, "") for i in range(len(split.images))]
        tokens = tokenizer.encode([c for _, c in rows], context_length - 1)
        start = torch.full((len(rows), 1), tokenizer.bos_id, dtype=torch.long)
        if split.split != "train":
            tokens.fill_(tokenizer.pad_id)
        return CaptionExamples(
            split=split,
            images=images,
            image_index=torch.tensor([i for i, _ in rows]),
            tokens=torch.cat([start, tokens], dim=1),
        )

    @staticmethod
    def build_head(width: int, seed: int) -> None:
        return None  # the decoder's own vocabulary projection is the head

    @staticmethod
    def batch(ex: CaptionExamples, index: torch.Tensor, device) -> dict:
        return {
            "images": to_model_input(ex.images.get(ex.image_index[index]), device),
            "image_index": ex.image_index[index],
            "text": ex.tokens[index].to(device),
        }

    def _targets(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next tokens and where they are real (logits[:, t] predicts text[:, t + 1])."""
        target = text[:, 1:]
        return target, target != self.tokenizer.pad_id

    def task_loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        target, real = self._targets(batch["text"])
        loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), target, reduction="none")
        return (loss * real).sum() / real.sum().clamp(min=1)

    def pred_loss(self, student, teacher, tau: float, batch: dict) -> torch.Tensor:
        """Per-token KL(teacher || student) at the real next-token positions, times tau^2."""
        _, real = self._targets(batch["text"])
        log_p = F.log_softmax(student[:, :-1] / tau, dim=-1)
        log_q = F.log_softmax(teacher[:, :-1] / tau, dim=-1)
        kl = (log_q.exp() * (log_q - log_p)).sum(dim=-1)
        return (kl * real).sum() / real.sum().clamp(min=1) * tau**2

    @torch.no_grad()
    def generate(self, model: nn.Module, images: torch.Tensor) -> list[list[int]]:
        """Beam search (greedy when beam_size is 1) over the decoder; the image is encoded
        once. Beams are ranked by mean log-probability per token, so length is not punished."""
        tok, coca = self.tokenizer, model.coca
        k, n = self.beam_size, images.shape[0]
        image_tokens = coca.visual(images)["tokens"].repeat_interleave(k, dim=0)
        seqs = torch.full((n * k, 1), tok.bos_id, dtype=torch.long, device=images.device)
        score = torch.full((n, k), float("-inf"), device=images.device)
        score[:, 0] = 0.0
        length = torch.zeros(n, k, device=images.device)
        done = torch.zeros(n * k, dtype=torch.bool, device=images.device)
        for _ in range(self.max_length - 1):
            text = coca.text(seqs)["tokens"]
            hidden = coca.text_decoder(image_tokens, text)["multimodal"][:, -1]
            logp = F.log_softmax(hidden @ coca.text_decoder.text_projection, dim=-1)
            # a finished beam only continues with padding, at no cost
            logp[done] = float("-inf")
            logp[done, tok.pad_id] = 0.0
            vocab = logp.shape[-1]
            total = (score.unsqueeze(-1) + logp.view(n, k, vocab)).view(n, k * vocab)
            score, flat = total.topk(k, dim=1)
            beam, token = flat // vocab, flat % vocab
            rows = (torch.arange(n, device=images.device).unsqueeze(1) * k + beam).flatten()
            seqs = torch.cat([seqs[rows], token.view(-1, 1)], dim=1)
            was_done = done[rows]
            length = length.gather(1, beam) + (~was_done).view(n, k).float()
            done = was_done | (token.view(-1) == tok.eos_id)
            if done.all():
                break
        best = (score / length.clamp(min=1)).argmax(dim=1)
        chosen = seqs.view(n, k, -1)[torch.arange(n), best]
        return [row[1:].tolist() for row in chosen.cpu()]

    def evaluate(self, model: nn.Module, ex: CaptionExamples, device, batch_size: int) -> dict:
        model.eval()
        captions = []
        for start in range(0, len(ex), batch_size):
            index = torch.arange(start, min(start + batch_size, len(ex)))
            images = to_model_input(ex.images.get(ex.image_index[index]), device)
            captions += [self.tokenizer.decode(ids) for ids in self.generate(model, images)]
        model.train()
        return self.metrics(ex, captions)

    def metrics(self, ex: CaptionExamples, captions: list[str]) -> dict:
        gts = {i.cocoid: list(i.captions) for i in ex.split.images}
        res = {i.cocoid: c for i, c in zip(ex.split.images, captions, strict=True)}
        scores = coco_eval.caption_metrics(gts, res)
        out = {m: 100 * scores[m] for m in SCORES}
        out["not_computed"] = scores["not_computed"]
        out["examples"] = dict(list(res.items())[:5])
        return {"primary": out["CIDEr"], **out}

    def baseline(self, train: CocoSplit, ex: CaptionExamples) -> tuple[str, dict]:
        caption = Counter(c for i in train.images for c in i.captions).most_common(1)[0][0]
        return f"most frequent training caption ({caption!r})", self.metrics(
            ex, [caption] * len(ex)
        )
