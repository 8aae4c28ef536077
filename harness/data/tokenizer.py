"""Sentencepiece tokenizer: trained on the train split's text when none is given [paper: the
paper names a sentence-piece model], loaded through transformers so a real CoCa's tokenizer
can later take its place behind the same calls.

transformers builds sentencepiece tokenizers silently wrong in several ways: some classes
from a bare model file (a 4-token vocabulary), `T5Tokenizer` from a BPE model (its converter
assumes unigram: other ids). `LlamaTokenizer.from_pretrained` on a folder holding
`tokenizer.model` reads a BPE model faithfully; a test checks its ids against sentencepiece's.
A tokenizer folder is written whole (harness.atomic.atomic_dir) and holds the model and its
recorded sha256, nothing else: transformers 5 takes the first name in the folder that starts
with `tokenizer.model` when there is no `tokenizer.json` (a `tokenizer.model.json` listed first
gave a 4-id vocabulary). The checksum is checked before reuse: a damaged (e.g. truncated)
model, which transformers refuses with a misleading "tiktoken is required", is set aside with
its folder and trained again.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

from harness.atomic import atomic_dir
from harness.checkpoint import exclusive
from harness.errors import UserError
from harness.integrity import clear_temps, record, sha256_file, verified

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_FILE = "tokenizer.model"
RECORD_FILE = "checksum.json"  # not tokenizer.json nor tokenizer.model.*: transformers reads them


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> bytes:
    """A BPE sentencepiece model trained on `texts`."""
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
    return model.getvalue()


def ensure_tokenizer(cache_dir: Path, texts: Sequence[str], vocab_size: int) -> Path:
    """The tokenizer folder for this text and size, trained once and reused while it matches
    its recorded checksum."""
    h = hashlib.sha256(f"bpe:{vocab_size}:{MODEL_FILE}".encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\n")
    folder = cache_dir / f"sp{vocab_size}-{h.hexdigest()[:16]}"
    with exclusive(folder.with_name(folder.name + ".lock"), wait=True):
        clear_temps(cache_dir, folder.name)
        if verified(folder / MODEL_FILE, folder / RECORD_FILE, "tokenizer", whole=folder) is None:
            model = train_tokenizer(texts, vocab_size)
            with atomic_dir(folder) as tmp:
                (tmp / MODEL_FILE).write_bytes(model)
                record(tmp / MODEL_FILE, tmp / RECORD_FILE)
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
        pieces = spm.SentencePieceProcessor(model_file=str(folder / MODEL_FILE)).vocab_size()
        if self.vocab_size != pieces:  # read silently wrong: see the module's docstring
            raise UserError(
                f"{folder}: transformers read {self.vocab_size} ids from {MODEL_FILE}, which "
                f"holds {pieces}; leave only {MODEL_FILE} and {RECORD_FILE} in the folder"
            )
        self.sha256 = sha256_file(folder / MODEL_FILE)

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
