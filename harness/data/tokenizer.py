"""Sentencepiece tokenizer: trained on the train split's text when none is given [paper: the
paper names a sentence-piece model], loaded through transformers so a real CoCa's tokenizer
can later take its place behind the same calls.

transformers builds some sentencepiece classes silently wrong from a bare model file (e.g. a
4-token vocabulary); `T5Tokenizer.from_pretrained` on a folder holding `spiece.model` reads it
faithfully, and a test checks its ids against sentencepiece's own.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_FILE = "spiece.model"


def train_tokenizer(texts: Iterable[str], out_dir: Path, vocab_size: int) -> Path:
    """Train a unigram model on `texts`; written atomically, so a crash leaves no half file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        prefix = os.path.join(tmp, "sp")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_prefix=prefix,
            vocab_size=vocab_size,
            model_type="unigram",
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            hard_vocab_limit=False,  # small corpora hold fewer pieces than asked for
            character_coverage=1.0,
            num_threads=1,  # deterministic
            minloglevel=2,
        )
        os.replace(prefix + ".model", out_dir / MODEL_FILE)
    return out_dir / MODEL_FILE


def ensure_tokenizer(cache_dir: Path, texts: Sequence[str], vocab_size: int) -> Path:
    """The tokenizer folder for this text and size, trained once and reused."""
    h = hashlib.sha256(str(vocab_size).encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\n")
    folder = cache_dir / f"sp{vocab_size}-{h.hexdigest()[:16]}"
    if not (folder / MODEL_FILE).exists():
        train_tokenizer(texts, folder, vocab_size)
    return folder


class Tokenizer:
    """Fixed-length encoding: text, end token, padding. Fixed length keeps shapes static."""

    def __init__(self, folder: Path) -> None:
        from transformers import T5Tokenizer

        self.folder = folder
        self.hf = T5Tokenizer.from_pretrained(str(folder), extra_ids=0, legacy=True)
        self.pad_id = self.hf.pad_token_id
        self.eos_id = self.hf.eos_token_id
        self.vocab_size = len(self.hf)
        self.sha256 = hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()

    def encode(self, texts: Sequence[str], length: int) -> torch.Tensor:
        """[N, length] ids: pieces, then the end token, then padding; long texts are cut
        before the end token so every row ends in one."""
        out = torch.full((len(texts), length), self.pad_id, dtype=torch.long)
        ids = self.hf(list(texts), add_special_tokens=False)["input_ids"]
        for row, piece_ids in enumerate(ids):
            piece_ids = piece_ids[: length - 1] + [self.eos_id]
            out[row, : len(piece_ids)] = torch.tensor(piece_ids, dtype=torch.long)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True)
