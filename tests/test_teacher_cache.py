"""The teacher-output cache gives what the live teacher gives, for one- and two-image tasks,
up to float rounding of batch composition (the documented tolerance: 1e-5 absolute)."""

import pytest
import torch

from harness.config import study_config
from harness.data.tokenizer import Tokenizer, ensure_tokenizer
from harness.distill.teacher_outputs import CachedTeacher, LiveTeacher
from harness.models.build import build_task_model
from harness.models.layer_map import layer_map
from harness.tasks import get_task

TOLERANCE = 1e-5


@pytest.mark.parametrize("task_name", ["vqa", "nlvr2"])
def test_cached_outputs_equal_live_ones(task_name, tmp_path):
    cfg = study_config(task_name, "smoke")
    spec = get_task(task_name)
    root = spec.ensure_world(tmp_path / "data", "smoke", progress=False)
    split = spec.read(root, cfg.train_split)
    task = spec.from_train(split, cfg)
    tokenizer = Tokenizer(ensure_tokenizer(tmp_path / "tok", task.texts(split), 128))
    examples = task.examples(split, tokenizer, 32, cfg.context_length, progress=False)
    teacher = build_task_model("tiny", task, tokenizer, cfg.context_length, 0)
    maps = {m: layer_map(1, n.blocks) for m, n in teacher.coca.module_sizes().items()}
    live = LiveTeacher(teacher, task.forward, maps)
    cpu = torch.device("cpu")

    def batch(index):
        return task.batch(examples, index, cpu)

    cached = CachedTeacher.build(live, len(examples), batch, 64, progress=False)
    index = torch.randperm(len(examples), generator=torch.Generator().manual_seed(0))[:37]
    want, got = live(index, batch(index)), cached(index, batch(index))
    torch.testing.assert_close(got["logits"], want["logits"], atol=TOLERANCE, rtol=0)
    assert got["hidden"].keys() == want["hidden"].keys()
    for m in want["hidden"]:
        for g, w in zip(got["hidden"][m], want["hidden"][m], strict=True):
            torch.testing.assert_close(g, w, atol=TOLERANCE, rtol=0)
