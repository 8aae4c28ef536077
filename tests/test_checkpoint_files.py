"""Reading CoCa checkpoints: the file formats open_clip accepts, and errors that name the file
and every key that does not fit (tests/interop compares outputs with open_clip itself)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from harness.errors import DataError
from harness.models.build import load_checkpoint
from harness.models.coca import CoCa
from harness.models.presets import preset
from harness.models.weights import read_state_dict


def _tiny(seed: int) -> CoCa:
    return CoCa(preset("tiny"), seed=seed)


def _same(a: CoCa, b: CoCa) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("kind", ["safetensors", "pt", "wrapped-module-pt", "bin"])
def test_formats_open_clip_accepts_all_load(tmp_path, kind: str) -> None:
    source = _tiny(seed=1)
    state = source.state_dict()
    if kind == "safetensors":
        path = tmp_path / "coca.safetensors"
        save_file(state, str(path))
    elif kind == "wrapped-module-pt":  # a training checkpoint saved from DDP
        path = tmp_path / "epoch_3.pt"
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        path = tmp_path / f"open_clip_pytorch_model.{kind}"
        torch.save(state, path)
    target = _tiny(seed=2)
    assert not _same(source, target)
    load_checkpoint(target, path)
    assert _same(source, target)


def test_missing_and_unexpected_keys_are_named_with_the_file(tmp_path) -> None:
    state = _tiny(seed=1).state_dict()
    del state["text.cls_emb"]
    state["text.attn_mask"] = torch.zeros(3, 3)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(DataError) as err:
        load_checkpoint(_tiny(seed=2), path)
    message = str(err.value)
    assert str(path) in message
    assert "1 missing keys (text.cls_emb)" in message
    assert "1 unexpected keys (text.attn_mask)" in message


def test_shape_mismatches_are_named(tmp_path) -> None:
    """Another architecture's weights (here a wider vocabulary) fail on every such key."""
    path = tmp_path / "other.pt"
    torch.save(CoCa(preset("tiny", vocab_size=80), seed=1).state_dict(), path)
    with pytest.raises(DataError, match=r"text.token_embedding.weight \(80, 32\) != \(64, 32\)"):
        load_checkpoint(_tiny(seed=2), path)


def test_a_longer_text_context_keeps_its_first_positions(tmp_path) -> None:
    longer = CoCa(preset("tiny", context_length=20), seed=1)
    path = tmp_path / "long.safetensors"
    save_file(longer.state_dict(), str(path))
    target = _tiny(seed=2)
    load_checkpoint(target, path)
    rows = target.text.positional_embedding.shape[0]
    assert torch.equal(target.text.positional_embedding, longer.text.positional_embedding[:rows])


def test_files_that_are_not_weights_are_refused(tmp_path) -> None:
    code = tmp_path / "pickled.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _tiny}, code)  # a function
    with pytest.raises(DataError, match="not a weights-only torch checkpoint"):
        read_state_dict(code)
    with pytest.raises(DataError, match="unknown checkpoint format '.ckpt'"):
        (tmp_path / "x.ckpt").write_bytes(b"")
        read_state_dict(tmp_path / "x.ckpt")
    with pytest.raises(DataError, match="checkpoint file not found"):
        read_state_dict(tmp_path / "absent.safetensors")
