"""The teacher-output cache gives what the live teacher gives, for one- and two-image tasks,
up to float rounding of batch composition (the documented tolerance: 1e-5 absolute); stored
on disk it is reused by later processes, and a float16 store stays within float16 rounding."""

import pytest
import torch

from harness.config import study_config
from harness.data.tokenizer import Tokenizer, ensure_tokenizer
from harness.distill.teacher_outputs import CachedTeacher, LiveTeacher, cache_key, ensure_cached
from harness.models.build import build_task_model
from harness.models.layer_map import layer_map
from harness.tasks import get_task

TOLERANCE = 1e-5


def _smoke_teacher(tmp_path, task_name="vqa"):
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

    def batch(index):
        return task.batch(examples, index, torch.device("cpu"))

    return live, examples, batch, maps


@pytest.mark.parametrize("task_name", ["vqa", "nlvr2"])
def test_cached_outputs_equal_live_ones(task_name, tmp_path):
    live, examples, batch, _ = _smoke_teacher(tmp_path, task_name)
    cached = CachedTeacher.build(live, len(examples), batch, 64, progress=False)
    index = torch.randperm(len(examples), generator=torch.Generator().manual_seed(0))[:37]
    want, got = live(index, batch(index)), cached(index, batch(index))
    torch.testing.assert_close(got["logits"], want["logits"], atol=TOLERANCE, rtol=0)
    assert got["hidden"].keys() == want["hidden"].keys()
    for m in want["hidden"]:
        for g, w in zip(got["hidden"][m], want["hidden"][m], strict=True):
            torch.testing.assert_close(g, w, atol=TOLERANCE, rtol=0)


def test_stored_outputs_are_reused_not_recomputed(tmp_path):
    live, examples, batch, maps = _smoke_teacher(tmp_path)
    builds = []

    def build():
        builds.append(1)
        return CachedTeacher.build(live, len(examples), batch, 64, progress=False)

    path = tmp_path / "outputs" / f"{cache_key('t', maps, 'float32', len(examples))}.pt"
    first, reused_first = ensure_cached(path, build, "float32")
    second, reused_second = ensure_cached(path, build, "float32")  # as a later process would
    assert (len(builds), reused_first, reused_second) == (1, False, True)
    index = torch.arange(0, len(examples), 3)
    a, b = first(index, batch(index)), second(index, batch(index))
    assert torch.equal(a["logits"], b["logits"])
    for m in a["hidden"]:
        for x, y in zip(a["hidden"][m], b["hidden"][m], strict=True):
            assert torch.equal(x, y)
    assert not list(path.parent.glob(".*.tmp"))  # nothing half-written left behind

    path.write_bytes(b"not a torch file")  # damaged on disk: computed and stored again
    third, reused_third = ensure_cached(path, build, "float32")
    assert (len(builds), reused_third) == (2, False)
    assert torch.equal(third(index, batch(index))["logits"], a["logits"])


def test_half_precision_store_is_within_float16_rounding(tmp_path):
    live, examples, batch, maps = _smoke_teacher(tmp_path)

    def build():
        return CachedTeacher.build(live, len(examples), batch, 64, progress=False)

    full, _ = ensure_cached(tmp_path / "f32.pt", build, "float32")
    half, _ = ensure_cached(tmp_path / "f16.pt", build, "float16")
    assert half.nbytes() * 2 == full.nbytes()
    index = torch.arange(len(examples))
    want, got = full(index, batch(index)), half(index, batch(index))
    assert got["logits"].dtype == torch.float32  # the student sees float32 either way
    # float16 keeps 11 significant bits: relative error at most 2**-11 (plus subnormals)
    torch.testing.assert_close(got["logits"], want["logits"], rtol=2**-10, atol=1e-6)
    for m in want["hidden"]:
        for g, w in zip(got["hidden"][m], want["hidden"][m], strict=True):
            torch.testing.assert_close(g, w, rtol=2**-10, atol=1e-6)


def test_cache_key_covers_layer_map_and_dtype():
    maps = {"visual": [1, 3], "text": [1]}
    base = cache_key("teacher", maps, "float32", 10)
    assert base == cache_key("teacher", dict(maps), "float32", 10)
    assert base != cache_key("teacher", {**maps, "text": [0]}, "float32", 10)
    assert base != cache_key("teacher", maps, "float16", 10)
    assert base != cache_key("other", maps, "float32", 10)
    assert base != cache_key("teacher", maps, "float32", 11)
