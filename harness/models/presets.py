"""Named CoCa sizes (spec/optima.md §2, spec/harness.md §4): a dict of configs plus
`register`/`preset`. vocab_size and context_length are placeholders: the run overrides them
with its tokenizer's."""

from __future__ import annotations

import dataclasses

from harness.errors import ConfigError
from harness.models.coca import CoCaConfig

_PRESETS: dict[str, CoCaConfig] = {}
# Teachers too large to train from scratch here: they start from a checkpoint.
PRETRAINED_ONLY = frozenset({"coca-large", "coca_ViT-B-32", "coca_ViT-L-14"})


def register(name: str, config: CoCaConfig) -> CoCaConfig:
    if name in _PRESETS:
        raise ConfigError(f"model preset {name!r} is already registered")
    _PRESETS[name] = config
    return config


def names() -> list[str]:
    return sorted(_PRESETS)


def preset(name: str, **overrides: object) -> CoCaConfig:
    """The named config with `overrides` (CoCaConfig field names) applied."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; known presets: {', '.join(names())}")
    fields = {f.name for f in dataclasses.fields(CoCaConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(
            f"model preset {name!r}: unknown overrides {unknown}; CoCaConfig fields: "
            f"{', '.join(sorted(fields))}"
        )
    return dataclasses.replace(_PRESETS[name], **overrides)


# Tests only: every module present, everything minimal.
register(
    "tiny",
    CoCaConfig(
        image_size=32, patch_size=8, vision_width=32, vision_layers=2, vision_heads=2,
        attn_pooler_queries=5, attn_pooler_heads=2, embed_dim=32, vocab_size=64,
        context_length=12, text_width=32, text_layers=1, text_heads=2, multimodal_layers=1,
        multimodal_heads=2,
    ),
)  # fmt: skip

register(
    "tiny-student",
    CoCaConfig(
        image_size=32, patch_size=8, vision_width=16, vision_layers=1, vision_heads=2,
        attn_pooler_queries=5, attn_pooler_heads=2, embed_dim=16, vocab_size=64,
        context_length=12, text_width=16, text_layers=1, text_heads=2, multimodal_layers=1,
        multimodal_heads=2,
    ),
)  # fmt: skip

# The embedded default (spec/harness.md §5): teacher and student share image size, patches,
# vocabulary and pooler queries so their outputs align token for token. 16 px patches on the
# world's 3x3 grid of 16 px cells: one token per cell, half the cost of 8 px patches per step
# and the same accuracy per step (measured: 69% VQA accuracy after 1,500 steps either way).
_SMALL = dict(
    image_size=48, patch_size=16, attn_pooler_queries=17, vocab_size=1024, context_length=16,
)  # fmt: skip
register(
    "teacher-small",
    CoCaConfig(
        **_SMALL, vision_width=128, vision_layers=4, vision_heads=4, attn_pooler_heads=4,
        embed_dim=128, text_width=128, text_layers=2, text_heads=4, multimodal_layers=2,
        multimodal_heads=4,
    ),
)  # fmt: skip
register(
    "student-small",
    CoCaConfig(
        **_SMALL, vision_width=64, vision_layers=2, vision_heads=4, attn_pooler_heads=4,
        embed_dim=64, text_width=64, text_layers=1, text_heads=4, multimodal_layers=1,
        multimodal_heads=4,
    ),
)  # fmt: skip

# CoCa-Large: sizes from the CoCa paper (Table 1; pre-training at 288 px with 18 px patches,
# 256 image tokens), the rest as open_clip's coca_ViT-L-14: 256 pooler queries with 8 heads,
# embed_dim 768, the CLIP BPE vocabulary, 77 tokens.
COCA_LARGE = register(
    "coca-large",
    CoCaConfig(
        image_size=288, patch_size=18, vision_width=1024, vision_layers=24, vision_heads=16,
        attn_pooler_queries=256, attn_pooler_heads=8, embed_dim=768, vocab_size=49408,
        context_length=77, text_width=1024, text_layers=12, text_heads=16,
        multimodal_layers=12, multimodal_heads=16,
    ),
)  # fmt: skip

# Paper students [ours]: the teacher's structure and width with fewer layers per module.
register(
    "half",
    dataclasses.replace(COCA_LARGE, vision_layers=12, text_layers=6, multimodal_layers=6),
)
register(
    "quarter",
    dataclasses.replace(COCA_LARGE, vision_layers=6, text_layers=3, multimodal_layers=3),
)

# open_clip's CoCa architectures (its model_configs/coca_ViT-B-32.json, coca_ViT-L-14.json), so
# their released weights (base and mscoco_finetuned_* tags) load: 224 px, 256 pooler queries,
# ViT heads of width 64, the CLIP BPE vocabulary, 76 text positions plus CLS, and open_clip's
# legacy CLS mask. Students [ours], as for CoCa-Large: the same widths, fewer layers.
OPEN_CLIP_B32 = register(
    "coca_ViT-B-32",
    CoCaConfig(
        image_size=224, patch_size=32, vision_width=768, vision_layers=12, vision_heads=12,
        attn_pooler_queries=256, attn_pooler_heads=8, embed_dim=512, vocab_size=49408,
        context_length=76, text_width=512, text_layers=12, text_heads=8,
        multimodal_layers=12, multimodal_heads=8, correct_cls_mask=False,
    ),
)  # fmt: skip
OPEN_CLIP_L14 = register(
    "coca_ViT-L-14",
    CoCaConfig(
        image_size=224, patch_size=14, vision_width=1024, vision_layers=24, vision_heads=16,
        attn_pooler_queries=256, attn_pooler_heads=8, embed_dim=768, vocab_size=49408,
        context_length=76, text_width=768, text_layers=12, text_heads=12,
        multimodal_layers=12, multimodal_heads=12, correct_cls_mask=False,
    ),
)  # fmt: skip
for _name, _teacher in (("coca_ViT-B-32", OPEN_CLIP_B32), ("coca_ViT-L-14", OPEN_CLIP_L14)):
    _v, _t, _m = _teacher.vision_layers, _teacher.text_layers, _teacher.multimodal_layers
    register(
        f"{_name}-half",
        dataclasses.replace(_teacher, vision_layers=_v // 2, text_layers=_t // 2,
                            multimodal_layers=_m // 2),
    )  # fmt: skip
    register(
        f"{_name}-quarter",
        dataclasses.replace(_teacher, vision_layers=_v // 4, text_layers=_t // 4,
                            multimodal_layers=_m // 4),
    )  # fmt: skip
