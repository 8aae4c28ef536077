import sentencepiece as spm
import torch

from harness.data.tokenizer import MODEL_FILE, Tokenizer, ensure_tokenizer

TEXTS = [
    "what color is the circle?",
    "how many red objects are there?",
    "is there a yellow triangle?",
    "is the red circle left of the blue square?",
    "what is to the left of the green triangle?",
] * 40


def test_ids_equal_sentencepiece_own(tmp_path):
    """transformers can build a sentencepiece tokenizer silently wrong; ours must not be."""
    tok = Tokenizer(ensure_tokenizer(tmp_path, TEXTS, 64))
    sp = spm.SentencePieceProcessor(model_file=str(tok.folder / MODEL_FILE))
    assert tok.vocab_size == sp.vocab_size() > 8
    for text in set(TEXTS):
        ids = sp.encode(text)
        row = tok.encode([text], len(ids) + 3)[0].tolist()
        assert row == ids + [tok.eos_id, tok.pad_id, tok.pad_id]
    assert tok.decode(sp.encode(TEXTS[3])) == TEXTS[3]


def test_fixed_length_truncates_before_end_token(tmp_path):
    tok = Tokenizer(ensure_tokenizer(tmp_path, TEXTS, 64))
    out = tok.encode([TEXTS[3], "red"], 5)
    assert out.shape == (2, 5) and out.dtype == torch.long
    assert out[0, -1] == tok.eos_id  # cut, but still ends in the end token
    assert (out[1] == tok.pad_id).sum() > 0


def test_trained_once_and_deterministic(tmp_path):
    a = ensure_tokenizer(tmp_path / "a", TEXTS, 64)
    b = ensure_tokenizer(tmp_path / "b", TEXTS, 64)
    assert (a / MODEL_FILE).read_bytes() == (b / MODEL_FILE).read_bytes()
    mtime = (a / MODEL_FILE).stat().st_mtime_ns
    assert ensure_tokenizer(tmp_path / "a", TEXTS, 64) == a
    assert (a / MODEL_FILE).stat().st_mtime_ns == mtime
    assert ensure_tokenizer(tmp_path / "a", TEXTS[:5], 64) != a  # other text, other model
