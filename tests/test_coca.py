"""CoCa model, presets, heads and layer maps (spec/optima.md §2, spec/harness.md §4): shapes,
masks, determinism, golden layer maps, teacher-layer init, and the paper's parameter counts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.config import study_config
from harness.errors import ConfigError
from harness.models import presets
from harness.models.coca import MODULES, CoCa, CoCaConfig
from harness.models.heads import ClassifierHead, TaskModel, pool_last_token
from harness.models.layer_map import init_student_from_teacher, layer_map, matching_modules
from harness.models.presets import preset
from harness.tools.plan import paper_accounting

PAD = 0


def _inputs(config: CoCaConfig, batch: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and text whose rows have 3, 6, ..., real tokens followed by pads."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, config.image_size, config.image_size, generator=g)
    text = torch.randint(1, config.vocab_size, (batch, config.context_length), generator=g)
    for row in range(batch):
        text[row, min(3 * (row + 1), config.context_length) :] = config.pad_id
    return images, text


@pytest.fixture(scope="module")
def tiny() -> CoCa:
    return CoCa(preset("tiny"), seed=0).eval()


def test_output_shapes_and_hidden_states(tiny: CoCa) -> None:
    c = tiny.config
    images, text = _inputs(c)
    out = tiny(images, text)
    B, L, P, Q = 4, c.context_length, (c.image_size // c.patch_size) ** 2, c.attn_pooler_queries
    assert out["image_features"].shape == (B, c.embed_dim)
    assert out["text_features"].shape == (B, c.embed_dim)
    assert out["image_tokens"].shape == (B, Q - 1, c.embed_dim)
    assert out["multimodal"].shape == (B, L, c.text_width)
    assert out["logits"].shape == (B, L, c.vocab_size)
    torch.testing.assert_close(out["image_features"], tiny.encode_image(images))
    sizes = tiny.module_sizes()
    assert tuple(out["hidden"]) == MODULES == tuple(sizes)
    tokens = {"visual": P + 1, "text": L + 1, "text_decoder": L}  # text: CLS appended
    for module in MODULES:
        assert len(out["hidden"][module]) == sizes[module].blocks
        for h in out["hidden"][module]:
            assert h.shape == (B, tokens[module], sizes[module].width)
    # the last decoder block's output, normalised, is the multimodal output
    torch.testing.assert_close(
        tiny.text_decoder.ln_final(out["hidden"]["text_decoder"][-1]), out["multimodal"]
    )


def test_pad_tokens_are_invisible_to_cls_and_real_positions() -> None:
    """Change what pad tokens embed to: nothing that should ignore them may move."""
    model = CoCa(preset("tiny"), seed=0).eval()
    images, text = _inputs(model.config)
    real = (text != PAD)[..., None]
    with torch.no_grad():
        before = model(images, text)
        model.text.token_embedding.weight[PAD].add_(3.0)
        after = model(images, text)
    torch.testing.assert_close(after["text_features"], before["text_features"])
    torch.testing.assert_close(after["multimodal"] * real, before["multimodal"] * real)
    assert not torch.allclose(after["multimodal"], before["multimodal"])  # pads did move


def test_legacy_cls_mask_is_open_clips_shifted_one() -> None:
    """open_clip's mask lets CLS see the first pad and not itself (its issue #549)."""
    text = torch.tensor([[5, 6, PAD, PAD]])
    legacy = CoCa(preset("tiny", correct_cls_mask=False), seed=0).text.attention_mask(text)
    correct = CoCa(preset("tiny"), seed=0).text.attention_mask(text)
    assert legacy[0, 0, -1].tolist() == [True, True, True, False, False]
    assert correct[0, 0, -1].tolist() == [True, True, False, False, True]
    # real positions are plainly causal either way
    causal = torch.ones(3, 3, dtype=torch.bool).tril()
    assert torch.equal(legacy[0, 0, :2, :3], causal[:2]) and torch.equal(
        correct[0, 0, :2, :3], causal[:2]
    )


def test_causal_masking(tiny: CoCa) -> None:
    images, text = _inputs(tiny.config)
    text[:, :6] = torch.arange(1, 7)  # every row real up to position 5
    changed = text.clone()
    changed[:, 4] = 9
    with torch.no_grad():
        a, b = tiny(images, text), tiny(images, changed)
    for key in ("multimodal", "logits"):
        torch.testing.assert_close(a[key][:, :4], b[key][:, :4])
        assert not torch.allclose(a[key][:, 4], b[key][:, 4])
    for module in ("text", "text_decoder"):
        for ha, hb in zip(a["hidden"][module], b["hidden"][module], strict=True):
            torch.testing.assert_close(ha[:, :4], hb[:, :4])
    assert not torch.allclose(a["text_features"], b["text_features"])  # CLS sees everything


def test_same_seed_same_model_without_global_rng() -> None:
    config = preset("tiny")
    images, text = _inputs(config)
    state = torch.random.get_rng_state()
    a, b, c = (CoCa(config, seed=s).eval() for s in (7, 7, 8))
    assert torch.equal(torch.random.get_rng_state(), state)
    with torch.no_grad():
        out_a, out_b, out_c = a(images, text), b(images, text), c(images, text)
    for key in ("image_features", "text_features", "logits"):
        assert torch.equal(out_a[key], out_b[key])
        assert not torch.equal(out_a[key], out_c[key])


def test_init_covers_every_parameter() -> None:
    model = CoCa(preset("tiny"), seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
        model.init_parameters(torch.Generator().manual_seed(0))
    bad = [n for n, p in model.named_parameters() if p.isnan().any()]
    assert not bad, f"not initialised: {bad}"


def test_open_clip_state_dict_names() -> None:
    """A sample of open_clip CoCa keys, with their shapes (open_clip coca_model.py)."""
    c = preset("tiny", embed_dim=16, attn_pooler_heads=2)
    shapes = {k: tuple(v.shape) for k, v in CoCa(c, seed=0).state_dict().items()}
    Wv, Wt, E, V = c.vision_width, c.text_width, c.embed_dim, c.vocab_size
    expected = {
        "logit_scale": (),
        "visual.conv1.weight": (Wv, 3, c.patch_size, c.patch_size),
        "visual.class_embedding": (Wv,),
        "visual.positional_embedding": ((c.image_size // c.patch_size) ** 2 + 1, Wv),
        "visual.transformer.resblocks.0.attn.in_proj_weight": (3 * Wv, Wv),
        "visual.transformer.resblocks.0.mlp.c_fc.weight": (4 * Wv, Wv),
        "visual.attn_pool.query": (c.attn_pooler_queries, E),
        "visual.attn_pool.attn.k_proj_weight": (E, Wv),  # torch's name when kdim != dim
        "visual.attn_pool.ln_k.weight": (Wv,),
        "visual.ln_post.weight": (E,),
        "visual.proj": (E, E),
        "text.token_embedding.weight": (V, Wt),
        "text.cls_emb": (Wt,),
        "text.positional_embedding": (c.context_length + 1, Wt),
        "text.ln_final.bias": (Wt,),
        "text.text_projection": (Wt, E),
        "text_decoder.resblocks.0.attn.out_proj.weight": (Wt, Wt),
        "text_decoder.cross_attn.0.ln_1_kv.weight": (E,),
        "text_decoder.cross_attn.0.mlp.c_proj.weight": (Wt, 4 * Wt),
        "text_decoder.ln_final.weight": (Wt,),
        "text_decoder.text_projection": (Wt, V),
    }
    assert {k: shapes.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    ("n_s", "n_t", "expected"),
    [
        (1, 2, [1]),
        (2, 4, [1, 3]),
        (6, 24, [3, 7, 11, 15, 19, 23]),
        (3, 12, [3, 7, 11]),
        (12, 24, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]),
        (2, 3, [0, 2]),
        (5, 5, [0, 1, 2, 3, 4]),
    ],
)
def test_layer_map_golden(n_s: int, n_t: int, expected: list[int]) -> None:
    assert layer_map(n_s, n_t) == expected


def test_layer_map_rejects_bigger_student() -> None:
    with pytest.raises(ValueError, match="more than the teacher"):
        layer_map(3, 2)
    with pytest.raises(ValueError):
        layer_map(0, 2)


def test_init_student_from_teacher_copies_mapped_blocks() -> None:
    teacher = CoCa(preset("tiny", vision_layers=4, text_layers=2, multimodal_layers=2), seed=1)
    student = CoCa(preset("tiny", vision_layers=2, vocab_size=80), seed=2)
    copied = dict(init_student_from_teacher(student, teacher))
    s, t = dict(student.named_parameters()), dict(teacher.named_parameters())
    pairs = {
        "visual.transformer.resblocks.0": "visual.transformer.resblocks.1",
        "visual.transformer.resblocks.1": "visual.transformer.resblocks.3",
        "text.transformer.resblocks.0": "text.transformer.resblocks.1",
        "text_decoder.resblocks.0": "text_decoder.resblocks.1",
        "text_decoder.cross_attn.0": "text_decoder.cross_attn.1",
    }
    for s_block, t_block in pairs.items():
        names = [n for n in s if n.startswith(s_block + ".")]
        assert names
        for name in names:
            source = t_block + name[len(s_block) :]
            assert copied[name] == source
            assert torch.equal(s[name], t[source])
    for name in ("visual.attn_pool.query", "text.cls_emb", "visual.proj", "logit_scale"):
        assert copied[name] == name and torch.equal(s[name], t[name])
    # another vocabulary: the embedding and the output projection keep their own init
    assert "text.token_embedding.weight" not in copied
    assert "text_decoder.text_projection" not in copied
    assert len(copied) == len(s) - 2


def test_init_student_from_teacher_copies_only_modules_of_equal_width() -> None:
    teacher = CoCa(preset("tiny", vision_layers=4), seed=0)
    student = CoCa(preset("tiny", text_width=16, embed_dim=16), seed=3)
    before = {n: p.clone() for n, p in student.named_parameters()}
    assert matching_modules(student, teacher) == ["visual"]
    copied = dict(init_student_from_teacher(student, teacher))
    s, t = dict(student.named_parameters()), dict(teacher.named_parameters())
    # every visual block from its mapped teacher block, and the visual parameters of equal shape
    for name in s:
        if name.startswith("visual.transformer.resblocks."):
            index = int(name.split(".")[3])
            assert copied[name] == name.replace(f".{index}.", f".{[1, 3][index]}.", 1)
    assert copied["visual.class_embedding"] == "visual.class_embedding"
    assert copied["logit_scale"] == "logit_scale"
    assert "visual.proj" not in copied  # embed_dim differs: stays random
    for name, source in copied.items():
        assert name.startswith("visual.") or name == "logit_scale"
        assert torch.equal(s[name], t[source])
    # the narrower text towers keep their random init whole
    for name, value in s.items():
        if name not in copied:
            assert torch.equal(value, before[name]), name


@pytest.mark.parametrize(
    ("study_preset", "modules"),
    [
        ("smoke", []),  # tiny (width 32) -> tiny-student (16) in every module
        ("default", []),  # teacher-small (128) -> student-small (64)
        ("paper", list(MODULES)),  # coca-large -> half: the teacher's widths
    ],
)
def test_what_the_default_init_copies_per_preset(study_preset, modules) -> None:
    """`init=teacher-layers` is the default (spec/optima.md §2); on the embedded presets the
    student is narrower than the teacher everywhere, so it starts random there."""
    cfg = study_config("vqa", study_preset)
    assert cfg.distill.student_init == "teacher-layers"
    s_sizes = preset(cfg.distill.student).module_sizes()
    t_sizes = preset(cfg.teacher.model).module_sizes()
    assert [m for m in MODULES if s_sizes[m].width == t_sizes[m].width] == modules


def test_teacher_layer_init_of_another_width_copies_nothing() -> None:
    teacher, student = CoCa(preset("tiny"), seed=0), CoCa(preset("tiny-student"), seed=1)
    before = {n: p.clone() for n, p in student.named_parameters()}
    assert init_student_from_teacher(student, teacher) == []
    assert all(torch.equal(p, before[n]) for n, p in student.named_parameters())


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_coca_large_parameter_count() -> None:
    """The paper: 787M in all, 303M in the ViT. Our open_clip-shaped build has the ViT (with
    its attentional pooler) within 2%, but 856M in all: open_clip gives every cross-attention
    block its own MLP (CoCa's decoder layers have one MLP each), and its CLIP vocabulary has
    49,408 entries where CoCa's has 64k. Undoing exactly those two lands within 2% of 787M."""
    with torch.device("meta"):
        model = CoCa(preset("coca-large"), seed=0)
    total, visual = _count(model), _count(model.visual)
    assert (total, visual) == (856_368_129, 307_118_080)
    assert abs(visual / 303e6 - 1) < 0.02
    assert abs(paper_accounting(model) / 787e6 - 1) < 0.02


def test_every_preset_builds() -> None:
    for name in presets.names():
        config = preset(name)
        with torch.device("meta"):
            model = CoCa(config, seed=0)
        assert model.module_sizes()["visual"].blocks == config.vision_layers
    teacher, student = preset("teacher-small"), preset("student-small")
    for field in ("image_size", "patch_size", "vocab_size", "context_length"):
        assert getattr(teacher, field) == getattr(student, field)
    assert preset("half").vision_layers == 12 and preset("quarter").multimodal_layers == 3
    # open_clip architectures (checked key by key against open_clip in tests/interop)
    assert preset("coca_ViT-L-14-half").vision_layers == 12
    assert preset("coca_ViT-B-32-quarter").multimodal_layers == 3
    assert not preset("coca_ViT-B-32").correct_cls_mask  # open_clip's legacy CLS mask
    assert CoCaConfig.from_dict(teacher.to_dict()) == teacher


def test_preset_errors_name_the_choices() -> None:
    with pytest.raises(ConfigError, match="known presets: coca-large, coca_ViT-B-32, "):
        preset("coca-huge")
    with pytest.raises(ConfigError, match="unknown overrides \\['width'\\]"):
        preset("tiny", width=3)
    with pytest.raises(ConfigError, match="not divisible"):
        preset("tiny", text_heads=3)
    assert preset("tiny", vocab_size=500).vocab_size == 500


def test_pool_last_token_and_vqa_head() -> None:
    text = torch.tensor([[4, 5, 6, PAD, PAD], [4, 5, 6, 7, 8], [9, PAD, PAD, PAD, PAD]])
    multimodal = torch.arange(3 * 5 * 2, dtype=torch.float32).reshape(3, 5, 2)
    pooled = pool_last_token(multimodal, text, PAD)
    assert torch.equal(pooled, multimodal[[0, 1, 2], [2, 4, 0]])

    coca = CoCa(preset("tiny"), seed=0).eval()
    head = ClassifierHead(coca.config.text_width, n_answers=7, seed=0)
    model = TaskModel(coca, head)
    images, text = _inputs(coca.config, batch=3)
    with torch.no_grad():
        out = model(images, text)
    assert out["task_logits"].shape == (3, 7)
    expected = head(pool_last_token(out["multimodal"], text, PAD))
    torch.testing.assert_close(out["task_logits"], expected)
    prefixes = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert prefixes == {"coca", "head"}
    assert dataclasses.asdict(coca.config) == model.coca.config.to_dict()


def test_init_student_records_what_it_copied() -> None:
    from harness.runs import init_student

    teacher = CoCa(preset("tiny"), seed=0)
    student = CoCa(preset("tiny", text_width=16, embed_dim=16), seed=1)
    got = init_student("teacher-layers", student, teacher)
    assert got["option"] == "teacher-layers"
    assert (got["copied_modules"], got["random_modules"]) == (["visual"], ["text", "text_decoder"])
    assert got["copied_parameters"] > 0
    assert init_student("random", CoCa(preset("tiny"), seed=1), teacher) == {
        "option": "random",
        "copied_modules": [],
        "random_modules": list(MODULES),
        "copied_parameters": 0,
    }
