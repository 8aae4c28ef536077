"""Our CoCa, checkpoint reader and tokenizer against open_clip 3.3.0 on the same weights."""

from __future__ import annotations

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from harness.data.open_clip_tokenizer import CLIP_VOCAB, OpenClipTokenizer
from harness.models.build import load_checkpoint
from harness.models.coca import CoCa, CoCaConfig
from harness.models.presets import preset

TOL = 1e-5  # float32


def small_open_clip(vocab_size: int = 100, context_length: int = 12) -> torch.nn.Module:
    """An open_clip CoCa of a few layers; its decoder's vocabulary projection is left as
    torch.empty by open_clip, so it is drawn here."""
    torch.manual_seed(0)
    model = open_clip.coca_model.CoCa(
        embed_dim=32,
        multimodal_cfg=dict(
            context_length=context_length, vocab_size=vocab_size, width=32, heads=4, layers=2
        ),
        text_cfg=dict(
            context_length=context_length, vocab_size=vocab_size, width=32, heads=4, layers=2,
            embed_cls=True, output_tokens=True,
        ),
        vision_cfg=dict(
            image_size=32, layers=2, width=64, head_width=16, patch_size=8,
            attentional_pool=True, attn_pooler_queries=9, attn_pooler_heads=4,
            output_tokens=True,
        ),
    )  # fmt: skip
    torch.nn.init.normal_(model.text_decoder.text_projection, std=32**-0.5)
    return model.eval()


def ours_for(vocab_size: int = 100, context_length: int = 12) -> CoCa:
    cfg = CoCaConfig(
        image_size=32, patch_size=8, vision_width=64, vision_layers=2, vision_heads=4,
        attn_pooler_queries=9, attn_pooler_heads=4, embed_dim=32, vocab_size=vocab_size,
        context_length=context_length, text_width=32, text_layers=2, text_heads=4,
        multimodal_layers=2, multimodal_heads=4, correct_cls_mask=False,
    )  # fmt: skip
    return CoCa(cfg, seed=1).eval()


def inputs(vocab_size: int = 100, length: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    images = torch.randn(3, 3, 32, 32, generator=g)
    text = torch.randint(1, vocab_size, (3, length), generator=g)
    text[0, 7:] = 0  # padded rows: the CLS mask matters
    text[1, 4:] = 0
    return images, text


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "wrapped-pt"])
def test_open_clip_weights_give_open_clip_outputs(tmp_path, fmt: str) -> None:
    theirs = small_open_clip()
    state = {k: v.detach().clone().contiguous() for k, v in theirs.state_dict().items()}
    path = tmp_path / f"coca.{'safetensors' if fmt == 'safetensors' else 'pt'}"
    if fmt == "safetensors":
        save_file(state, str(path))
    elif fmt == "pt":
        torch.save(state, path)
    else:  # an open_clip training checkpoint saved from DistributedDataParallel
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    ours = ours_for()
    load_checkpoint(ours, path)
    images, text = inputs()
    with torch.no_grad():
        want = theirs(images, text)
        got = ours(images, text)
    diffs = {
        "image_features": (got["image_features"] - want["image_features"]).abs().max(),
        "text_features": (got["text_features"] - want["text_features"]).abs().max(),
        "logits": (got["logits"][:, :-1] - want["logits"]).abs().max(),
    }
    print(f"max abs differences ({fmt}): { {k: f'{v:.2e}' for k, v in diffs.items()} }")
    assert all(d < TOL for d in diffs.values()), diffs


@pytest.mark.parametrize("name", ["coca_ViT-B-32", "coca_ViT-L-14"])
def test_presets_have_open_clips_architecture(name: str) -> None:
    """Every key and shape of open_clip's model from its JSON config, on the meta device."""
    config = {k: v for k, v in open_clip.get_model_config(name).items() if k != "custom_text"}
    with torch.device("meta"):
        theirs = open_clip.coca_model.CoCa(**config)
        ours = CoCa(preset(name), seed=0)
    want = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == want


def test_open_clip_tokenizer_ids_are_open_clips() -> None:
    tok = OpenClipTokenizer()
    texts = ["A red square left of a blue circle.", "how many shapes are there?"]
    theirs = open_clip.get_tokenizer("coca_ViT-B-32")(texts)  # [sot, ..., eot, 0, ...]
    assert (tok.vocab_size, tok.bos_id, tok.eos_id, tok.pad_id) == (CLIP_VOCAB, 49406, 49407, 0)
    assert torch.equal(tok.encode(texts, theirs.shape[1] - 1), theirs[:, 1:])
    decoded = tok.decode(tok.encode(texts[:1], 16)[0].tolist())
    assert decoded == "a red square left of a blue circle ."
    cut = tok.encode(texts, 4)
    assert (cut[:, -1] == tok.eos_id).all()


def test_teacher_from_an_open_clip_file_with_its_tokenizer(tmp_path, capsys) -> None:
    """The whole path a real checkpoint takes: open_clip saves it, `optima-repro teacher`
    fine-tunes from it with open_clip's tokenizer (tiny shapes, CLIP's vocabulary)."""
    from harness.cli import main

    tiny = preset("tiny")
    torch.manual_seed(0)
    theirs = open_clip.coca_model.CoCa(
        embed_dim=tiny.embed_dim,
        multimodal_cfg=dict(
            context_length=76, vocab_size=49408, width=tiny.text_width,
            heads=tiny.multimodal_heads, layers=tiny.multimodal_layers,
        ),
        text_cfg=dict(
            context_length=76, vocab_size=49408, width=tiny.text_width, heads=tiny.text_heads,
            layers=tiny.text_layers, embed_cls=True, output_tokens=True,
        ),
        vision_cfg=dict(
            image_size=tiny.image_size, layers=tiny.vision_layers, width=tiny.vision_width,
            head_width=tiny.vision_width // tiny.vision_heads, patch_size=tiny.patch_size,
            attentional_pool=True, attn_pooler_queries=tiny.attn_pooler_queries,
            attn_pooler_heads=tiny.attn_pooler_heads, output_tokens=True,
        ),
    )  # fmt: skip
    torch.nn.init.normal_(theirs.text_decoder.text_projection, std=tiny.text_width**-0.5)
    path = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, str(path))
    argv = ["teacher", "vqa", "--preset", "smoke", "--workdir", str(tmp_path / "work")]
    argv += ["--quiet", "--max-steps", "2", "--set", "tokenizer=open_clip"]
    assert main([*argv, "--set", f"teacher_checkpoint={path}"]) == 0
    out = capsys.readouterr().out
    assert "tokenizer: open_clip BPE, 49408 ids" in out
    assert "teacher: VQA accuracy" in out
