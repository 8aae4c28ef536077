"""Task models from named presets, sized by the run's tokenizer."""

from __future__ import annotations

from pathlib import Path

from harness.models.coca import CoCa
from harness.models.heads import TaskModel
from harness.models.presets import preset
from harness.models.weights import check_keys, read_state_dict
from harness.seeding import stream_seed


def build_task_model(name: str, task, tokenizer, context_length: int, seed: int) -> TaskModel:
    """CoCa preset `name` plus the task's head, initialised from `seed`'s own streams."""
    cfg = preset(
        name,
        vocab_size=tokenizer.vocab_size,
        context_length=context_length,
        pad_id=tokenizer.pad_id,
    )
    coca = CoCa(cfg, seed=stream_seed(seed, f"{name}/coca"))
    views = getattr(task, "views", 1)
    head = task.build_head(views * cfg.text_width, seed=stream_seed(seed, f"{name}/head"))
    return TaskModel(coca, head, views)


def module_shapes(name: str) -> dict:
    """Image size, and blocks and width per distillable module, without building weights."""
    cfg = preset(name)
    sizes = cfg.module_sizes()
    return {
        "image_size": cfg.image_size,
        "layers": {m: s.blocks for m, s in sizes.items()},
        "widths": {m: s.width for m, s in sizes.items()},
    }


def load_pretrained(coca, state: dict) -> None:
    """A pre-trained CoCa's weights into `coca` (strict). A shorter context keeps the first
    positions of the text tower's positional embedding; the CLS slot that follows the text is
    then a former token position, learned anew in fine-tuning (it feeds only the contrastive
    feature, which no task here reads)."""
    state = dict(state)
    key = "text.positional_embedding"
    rows = coca.text.positional_embedding.shape[0]
    if state[key].shape[0] < rows:
        raise ValueError(
            f"pre-trained context of {state[key].shape[0] - 1} tokens is shorter than {rows - 1}"
        )
    state[key] = state[key][:rows]
    coca.load_state_dict(state, strict=True)


def load_checkpoint(coca: CoCa, path: Path) -> None:
    """A CoCa checkpoint on disk (open_clip's or ours) into `coca`; a key or shape that does
    not fit stops with an error naming the file and the keys."""
    state = read_state_dict(path)
    check_keys(path, state, coca.state_dict(), "this CoCa (is the model preset its architecture?)")
    load_pretrained(coca, state)
