"""Sentencepiece tokenizer: trained on the train split's text when none is given [paper: the
paper names a sentence-piece model], loaded through transformers so a real CoCa's tokenizer
can later take its place behind the same calls.

transformers builds sentencepiece tokenizers silently wrong in several ways: some classes
from a bare model file (a 4-token vocabulary), `T5Tokenizer` from a BPE model (its converter
assumes unigram: other ids). `LlamaTokenizer.from_pretrained` on a folder holding
`tokenizer.model` reads a BPE model faithfully; a test checks its ids against sentencepiece's.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_FILE = "tokenizer.model"


def train_tokenizer(texts: Iterable[str], out_dir: Path, vocab_size: int) -> Path:
    """Train a BPE sentencepiece model on `texts`, written atomically (no half file on a crash)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()  # no model_prefix: the file would record the temporary path
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",  # unigram keeps ~65 pieces of a small templated corpus
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        hard_vocab_limit=False,  # small corpora hold fewer pieces than asked for
        character_coverage=1.0,
        num_threads=1,  # deterministic
        minloglevel=2,
    )
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(model.getvalue())
    os.replace(tmp, out_dir / MODEL_FILE)
    return out_dir / MODEL_FILE


def ensure_tokenizer(cache_dir: Path, texts: Sequence[str], vocab_size: int) -> Path:
    """The tokenizer folder for this text and size, trained once and reused."""
    h = hashlib.sha256(f"bpe:{vocab_size}:{MODEL_FILE}".encode())
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
        from transformers import LlamaTokenizer

        self.folder = folder
        self.hf = LlamaTokenizer.from_pretrained(
            str(folder), unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
        )
        self.pad_id = self.hf.pad_token_id
        self.eos_id = self.hf.eos_token_id
        self.bos_id = self.hf.bos_token_id
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
