"""open_clip's tokenizer (CLIP's byte-level BPE, 49,408 ids, its vocabulary bundled with
open_clip) behind our Tokenizer's calls: open_clip's CoCa weights index its vocabulary, so
they need it. open_clip is an optional dependency (`nox -s interop` installs it).

As with our sentencepiece tokenizer, `encode` gives pieces, the end token, then padding (0,
as open_clip pads); the start token is `bos_id`, which captioning puts first. open_clip's own
`tokenize` starts every text with it, so classification inputs here differ from its by that
one leading token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch

from harness.errors import ConfigError

CLIP_VOCAB = 49408  # ids of CLIP's BPE vocabulary, start and end tokens included


class OpenClipTokenizer:
    def __init__(self) -> None:
        try:
            from open_clip.tokenizer import SimpleTokenizer, default_bpe
        except ImportError:
            raise ConfigError(
                "tokenizer=open_clip needs the open-clip-torch package (pip install "
                "open-clip-torch, with a torchvision that matches your torch)"
            ) from None
        self.folder = Path(default_bpe())
        self.bpe = SimpleTokenizer()
        self.pad_id = 0
        self.bos_id = self.bpe.encoder["<start_of_text>"]
        self.eos_id = self.bpe.encoder["<end_of_text>"]
        self.vocab_size = len(self.bpe.encoder)
        self.sha256 = hashlib.sha256(self.folder.read_bytes()).hexdigest()

    def encode(self, texts: Sequence[str], length: int) -> torch.Tensor:
        """[N, length] ids; long texts are cut before the end token so every row ends in one."""
        out = torch.full((len(texts), length), self.pad_id, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.bpe.encode(text)[: length - 1] + [self.eos_id]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """Text up to the end token; start token and padding left out."""
        ids = list(ids)
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.bpe.decode([i for i in ids if i not in (self.bos_id, self.pad_id)]).strip()
