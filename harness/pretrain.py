"""The embedded default's stand-in for CoCa pre-training [ours].

The paper distills a pre-trained CoCa fine-tuned on each task. On the synthetic worlds a
teacher trained from scratch on a binary task (SNLI-VE's entailed vs contradicted, NLVR2)
stays at chance for thousands of CPU steps: nothing has yet taught it to look at the image.
So, as CoCa is, the embedded teacher is first pre-trained by captioning (its decoder's
language-model loss) on the synthetic COCO world's train split, then fine-tuned per task.
One pre-trained model serves all four tasks, so they share one tokenizer, trained on the four
worlds' train text. Cached under a key of everything that shapes it; trained under a lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from harness.atomic import atomic_path
from harness.checkpoint import exclusive
from harness.config import StudyConfig, config_hash
from harness.data.tokenizer import Tokenizer, ensure_tokenizer
from harness.errors import ConfigError
from harness.integrity import clear_temps, record, verified
from harness.models.build import build_task_model, module_shapes
from harness.numerics import teacher_identity
from harness.tasks import TaskCard, cards, get_task
from harness.teacher import TEACHER_SEED, code_hash, train_supervised


@dataclass
class Pretrained:
    state: dict  # the CoCa's state dict (no task head)
    key: str
    path: Path


def world_texts(workdir: Path, world: str, progress: bool) -> list[str]:
    """The train text of the synthetic worlds of the tokenizer's tasks, in task order."""
    texts = []
    for card in (c for c in cards().values() if c.tokenizer_corpus):
        spec = get_task(card.name)
        root = spec.ensure_world(workdir / "data", world, progress)
        texts += spec.texts(spec.read(root, card.train_split))
    return texts


def corpus() -> TaskCard:
    """The task whose train text pre-trains the shared teacher (the COCO captions)."""
    return next(c for c in cards().values() if c.pretraining_corpus)


def shared_tokenizer(workdir: Path, world: str, vocab_size: int, progress: bool) -> Tokenizer:
    texts = world_texts(workdir, world, progress)
    return Tokenizer(ensure_tokenizer(workdir / "tokenizers", texts, vocab_size))


def ensure_pretrained(
    cfg: StudyConfig, tokenizer: Tokenizer, workdir: Path, device, progress: bool = True
) -> Pretrained:
    p = cfg.pretrain
    card = corpus()
    spec = get_task(card.name)
    root = spec.ensure_world(workdir / "data", cfg.world, progress)
    split = spec.read(root, card.train_split)
    key = config_hash(
        {
            "pretrain": asdict(p),
            "world": cfg.world,
            "data": split.files,
            "tokenizer": tokenizer.sha256,
            "code": code_hash(card.name),
            "max_steps": cfg.max_steps,
            "numerics": teacher_identity(cfg.numerics),
        }
    )
    folder = workdir / "pretrained" / f"coca-{p.model}-{key}"
    weights, meta_file = folder / "coca.pt", folder / "coca.json"
    with exclusive(folder.with_name(folder.name + ".lock"), wait=True):
        clear_temps(folder)
        if verified(weights, meta_file, "pre-trained CoCa") is not None:  # coca.json: checksum
            print(f"pre-trained CoCa: reusing {folder}")
            state = torch.load(weights, map_location="cpu", weights_only=True)
            return Pretrained(state, key, folder)

        task = spec.from_train(split, cfg)
        context = card.context_length
        size = module_shapes(p.model)["image_size"]
        train = task.examples(split, tokenizer, size, context, progress)
        if p.batch_size > len(train):  # before minutes of pre-training
            raise ConfigError(
                f"pretrain.batch_size {p.batch_size} is larger than the {len(train)} examples "
                f"of the pre-training corpus ({card.name} '{cfg.world}' world, {root})"
            )
        model = build_task_model(p.model, task, tokenizer, context, TEACHER_SEED).to(device)
        seconds = train_supervised(
            model, p, task, train, device, progress, "pre-training", cfg.max_steps
        )
        state = {k: v.cpu() for k, v in model.coca.state_dict().items()}
        with atomic_path(weights) as tmp, open(tmp, "wb") as f:  # a full disk: an OSError
            torch.save(state, f)
        record(weights, meta_file, {"key": key, "seconds": seconds})
    steps = min(p.steps, cfg.max_steps) if cfg.max_steps else p.steps
    print(f"pre-trained CoCa: {steps} captioning steps in {seconds:.0f} s, saved to {folder}")
    return Pretrained(state, key, folder)
