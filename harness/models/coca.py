"""CoCa (Yu et al. 2022) in plain torch, laid out like open_clip's `CoCa` so that module paths
and an open_clip CoCa state dict map onto ours one to one (spec/harness.md §4).

Paths and parameter names follow open_clip `coca_model.py` / `transformer.py`: `visual` is a
ViT with one attentional pooler ("original OpenCLIP CoCa setup": pool, then `ln_post`; query 0
is the contrastive embedding, the rest are the image tokens), `text` is a causal transformer
with a CLS embedding appended last, `text_decoder` alternates causal self-attention blocks
(`resblocks`) with cross-attention blocks (`cross_attn`) and ends in `ln_final` and the
vocabulary projection `text_projection`. Attention keeps torch's `MultiheadAttention` names
(`in_proj_weight`, `in_proj_bias`, `out_proj`; `q/k/v_proj_weight` when keys and values have
another width). Blocks are pre-norm with exact GELU and no dropout.

The forward pass returns a dict that carries every block's output per module (`hidden`), so
layerwise distillation (spec/optima.md §3) needs no hooks.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import ConfigError

MODULES = ("visual", "text", "text_decoder")

# Where each module's blocks live; a text_decoder block is a self-attention block followed by
# its cross-attention block, so it spans two ModuleLists.
BLOCK_PATHS: dict[str, tuple[str, ...]] = {
    "visual": ("visual.transformer.resblocks",),
    "text": ("text.transformer.resblocks",),
    "text_decoder": ("text_decoder.resblocks", "text_decoder.cross_attn"),
}


@dataclass(frozen=True)
class ModuleSize:
    blocks: int
    width: int


@dataclass(frozen=True)
class CoCaConfig:
    """Every size of a CoCa, as data (open_clip JSON style, flattened).

    `text_width`/`text_heads` serve both text towers because the decoder consumes the text
    tower's tokens unprojected (open_clip requires equal widths too). `context_length` is the
    longest token sequence; the text tower holds one more position for the CLS embedding.
    `correct_cls_mask=False` reproduces open_clip's legacy CLS mask (shifted by one position,
    which lets CLS see the first pad and not itself); use it only to run open_clip weights.
    """

    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    attn_pooler_queries: int
    attn_pooler_heads: int
    embed_dim: int
    vocab_size: int
    context_length: int
    text_width: int
    text_layers: int
    text_heads: int
    multimodal_layers: int
    multimodal_heads: int
    vision_mlp_ratio: float = 4.0
    text_mlp_ratio: float = 4.0
    pad_id: int = 0
    correct_cls_mask: bool = True
    init_logit_scale: float = math.log(1 / 0.07)

    def __post_init__(self) -> None:
        problems = []
        for name, width, heads in [
            ("vision", self.vision_width, self.vision_heads),
            ("text", self.text_width, self.text_heads),
            ("multimodal", self.text_width, self.multimodal_heads),
            ("attn_pooler", self.embed_dim, self.attn_pooler_heads),
        ]:
            if heads < 1 or width % heads:
                problems.append(f"{name} width {width} is not divisible by {heads} heads")
        if self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size")
        if self.attn_pooler_queries < 2:
            problems.append("attn_pooler_queries must be >= 2 (1 pooled + image tokens)")
        if not 0 <= self.pad_id < self.vocab_size:
            problems.append(f"pad_id {self.pad_id} is outside the vocabulary")
        if min(self.vision_layers, self.text_layers, self.multimodal_layers) < 1:
            problems.append("every module needs at least one layer")
        if self.context_length < 1:
            problems.append("context_length must be >= 1")
        if problems:
            raise ConfigError("CoCaConfig: " + "; ".join(problems))

    def module_sizes(self) -> dict[str, ModuleSize]:
        """Blocks and hidden width of each distillable module, in MODULES order."""
        return {
            "visual": ModuleSize(self.vision_layers, self.vision_width),
            "text": ModuleSize(self.text_layers, self.text_width),
            "text_decoder": ModuleSize(self.multimodal_layers, self.text_width),
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoCaConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"CoCaConfig: unknown fields {unknown}; known: {sorted(fields)}")
        return cls(**data)


# ---------------------------------------------------------------------------------------------
# Building blocks


def _normal(p: torch.Tensor, std: float, g: torch.Generator) -> None:
    nn.init.normal_(p, 0.0, std, generator=g)


def _init_layer_norm(ln: nn.LayerNorm) -> None:
    nn.init.ones_(ln.weight)
    nn.init.zeros_(ln.bias)


class Attention(nn.Module):
    """Batch-first multi-head attention with torch `MultiheadAttention` parameter names."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        kv_dim = dim if kv_dim is None else kv_dim
        # torch packs q, k, v into one matrix only when all three share the width
        self.packed = kv_dim == dim
        if self.packed:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(dim, dim))
            self.k_proj_weight = nn.Parameter(torch.empty(dim, kv_dim))
            self.v_proj_weight = nn.Parameter(torch.empty(dim, kv_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def init_parameters(self, g: torch.Generator, out_std: float) -> None:
        dim = self.out_proj.in_features
        weights = (
            [self.in_proj_weight]
            if self.packed
            else [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        )
        for w in weights:
            _normal(w, dim**-0.5, g)
        nn.init.zeros_(self.in_proj_bias)
        _normal(self.out_proj.weight, out_std, g)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self,
        x: torch.Tensor,
        kv: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """x: [B, Lq, D]; kv: [B, Lk, Dkv] (None: self-attention); mask: bool, True = attend."""
        if kv is None and self.packed:
            q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            dim = x.shape[-1]
            if self.packed:
                w_q, w_k, w_v = self.in_proj_weight.split(dim)
            else:
                w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
            b_q, b_k, b_v = self.in_proj_bias.split(dim)
            kv = x if kv is None else kv
            q, k, v = F.linear(x, w_q, b_q), F.linear(kv, w_k, b_k), F.linear(kv, w_v, b_v)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). With `kv_dim` it
    cross-attends to a second sequence normalised by its own `ln_1_kv` (open_clip)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, kv_dim: int | None = None) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, kv_dim)
        if kv_dim is not None:
            self.ln_1_kv = nn.LayerNorm(kv_dim)
        self.ln_2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, hidden)),
                    ("gelu", nn.GELU()),
                    ("c_proj", nn.Linear(hidden, width)),
                ]
            )
        )

    def init_parameters(self, g: torch.Generator, depth: int) -> None:
        """open_clip's text-tower scheme: residual outputs scaled down with depth."""
        width = self.ln_1.normalized_shape[0]
        out_std = width**-0.5 * (2 * depth) ** -0.5
        self.attn.init_parameters(g, out_std)
        for ln in (self.ln_1, self.ln_2, getattr(self, "ln_1_kv", None)):
            if ln is not None:
                _init_layer_norm(ln)
        _normal(self.mlp.c_fc.weight, (2 * width) ** -0.5, g)
        _normal(self.mlp.c_proj.weight, out_std, g)
        nn.init.zeros_(self.mlp.c_fc.bias)
        nn.init.zeros_(self.mlp.c_proj.bias)

    def forward(
        self,
        x: torch.Tensor,
        kv: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        if kv is not None:
            kv = self.ln_1_kv(kv)
        x = x + self.attn(self.ln_1(x), kv, mask=mask, is_causal=is_causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, mlp_ratio) for _ in range(layers)
        )

    def init_parameters(self, g: torch.Generator) -> None:
        for block in self.resblocks:
            block.init_parameters(g, len(self.resblocks))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hidden = []
        for block in self.resblocks:
            x = block(x, mask=mask, is_causal=is_causal)
            hidden.append(x)
        return x, hidden


class AttentionalPooler(nn.Module):
    """Learned queries cross-attend to the ViT tokens (CoCa §3.2)."""

    def __init__(self, d_model: int, context_dim: int, heads: int, queries: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.empty(queries, d_model))
        self.attn = Attention(d_model, heads, kv_dim=context_dim)
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_k = nn.LayerNorm(context_dim)

    def init_parameters(self, g: torch.Generator) -> None:
        _normal(self.query, 1.0, g)  # open_clip: torch.randn
        self.attn.init_parameters(g, self.query.shape[1] ** -0.5)
        _init_layer_norm(self.ln_q)
        _init_layer_norm(self.ln_k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.ln_q(self.query).expand(x.shape[0], -1, -1)
        return self.attn(q, self.ln_k(x))


# ---------------------------------------------------------------------------------------------
# Towers


class VisionTransformer(nn.Module):
    def __init__(self, c: CoCaConfig) -> None:
        super().__init__()
        self.image_size = c.image_size
        grid = c.image_size // c.patch_size
        self.conv1 = nn.Conv2d(3, c.vision_width, c.patch_size, stride=c.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(c.vision_width))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, c.vision_width))
        self.ln_pre = nn.LayerNorm(c.vision_width)
        self.transformer = Transformer(
            c.vision_width, c.vision_layers, c.vision_heads, c.vision_mlp_ratio
        )
        self.attn_pool = AttentionalPooler(
            c.embed_dim, c.vision_width, c.attn_pooler_heads, c.attn_pooler_queries
        )
        self.ln_post = nn.LayerNorm(c.embed_dim)
        self.proj = nn.Parameter(torch.empty(c.embed_dim, c.embed_dim))

    def init_parameters(self, g: torch.Generator) -> None:
        width = self.class_embedding.shape[0]
        _normal(self.conv1.weight, self.conv1.weight[0].numel() ** -0.5, g)
        for p in (self.class_embedding, self.positional_embedding, self.proj):
            _normal(p, width**-0.5, g)  # open_clip scales all three by the ViT width
        _init_layer_norm(self.ln_pre)
        self.transformer.init_parameters(g)
        self.attn_pool.init_parameters(g)
        _init_layer_norm(self.ln_post)

    def forward(self, images: torch.Tensor) -> dict[str, Any]:
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"CoCa.visual: images are {tuple(images.shape[-2:])}, the config says "
                f"{self.image_size}x{self.image_size}"
            )
        x = self.conv1(images).flatten(2).transpose(1, 2)  # [B, grid*grid, W]
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        x, hidden = self.transformer(x)
        x = self.ln_post(self.attn_pool(x))
        return {"pooled": x[:, 0] @ self.proj, "tokens": x[:, 1:], "hidden": hidden}


class TextTransformer(nn.Module):
    """Causal text tower; a CLS embedding appended after the last position gives the
    contrastive feature, and may not attend to pad tokens."""

    def __init__(self, c: CoCaConfig) -> None:
        super().__init__()
        self.pad_id = c.pad_id
        self.correct_cls_mask = c.correct_cls_mask
        self.token_embedding = nn.Embedding(c.vocab_size, c.text_width)
        self.cls_emb = nn.Parameter(torch.empty(c.text_width))
        self.positional_embedding = nn.Parameter(torch.empty(c.context_length + 1, c.text_width))
        self.transformer = Transformer(c.text_width, c.text_layers, c.text_heads, c.text_mlp_ratio)
        self.ln_final = nn.LayerNorm(c.text_width)
        self.text_projection = nn.Parameter(torch.empty(c.text_width, c.embed_dim))

    def init_parameters(self, g: torch.Generator) -> None:
        _normal(self.token_embedding.weight, 0.02, g)
        _normal(self.positional_embedding, 0.01, g)
        _normal(self.cls_emb, 0.01, g)
        self.transformer.init_parameters(g)
        _init_layer_norm(self.ln_final)
        _normal(self.text_projection, self.text_projection.shape[0] ** -0.5, g)

    def attention_mask(self, text: torch.Tensor) -> torch.Tensor:
        """Bool [B, 1, L+1, L+1], True = may attend: causal, and no query sees a pad key, so
        CLS (last) pools real tokens only. Each position also sees itself, so a row of pads
        cannot end up with nothing to attend to (that only changes pad positions).

        The legacy mask (open_clip's, as its factory builds CoCa) puts CLS's own key slot
        first instead of last, shifting the key mask by one: CLS then sees the first pad and
        not itself (open_clip issue #549). Both match open_clip 3.3.0 at real positions and
        CLS; the legacy one at every position."""
        batch, length = text.shape
        real = text != self.pad_id
        own = torch.ones(batch, 1, dtype=torch.bool, device=text.device)
        keys = torch.cat([real, own] if self.correct_cls_mask else [own, real], dim=1)
        causal = torch.ones(length + 1, length + 1, dtype=torch.bool, device=text.device).tril()
        mask = causal & keys[:, None, :]
        if self.correct_cls_mask:
            mask |= torch.eye(length + 1, dtype=torch.bool, device=text.device)
        return mask.unsqueeze(1)

    def forward(self, text: torch.Tensor) -> dict[str, Any]:
        batch, length = text.shape
        if length + 1 > self.positional_embedding.shape[0]:
            raise ValueError(
                f"CoCa.text: {length} tokens exceed context_length "
                f"{self.positional_embedding.shape[0] - 1}"
            )
        x = self.token_embedding(text)
        x = torch.cat([x, self.cls_emb.expand(batch, 1, -1)], dim=1)
        x = x + self.positional_embedding[: length + 1]
        x, hidden = self.transformer(x, mask=self.attention_mask(text))
        pooled = self.ln_final(x[:, -1]) @ self.text_projection
        # the decoder reads the token states before ln_final, as in open_clip
        return {"pooled": pooled, "tokens": x[:, :-1], "hidden": hidden}


class MultimodalTransformer(nn.Module):
    """Multimodal text decoder: per layer, causal self-attention then cross-attention to the
    image tokens; `text_projection` maps to the vocabulary."""

    def __init__(self, c: CoCaConfig) -> None:
        super().__init__()
        w, heads, ratio = c.text_width, c.multimodal_heads, c.text_mlp_ratio
        layers = c.multimodal_layers
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(w, heads, ratio) for _ in range(layers)
        )
        self.cross_attn = nn.ModuleList(
            ResidualAttentionBlock(w, heads, ratio, kv_dim=c.embed_dim) for _ in range(layers)
        )
        self.ln_final = nn.LayerNorm(w)
        self.text_projection = nn.Parameter(torch.empty(w, c.vocab_size))

    def init_parameters(self, g: torch.Generator) -> None:
        for block in [*self.resblocks, *self.cross_attn]:
            block.init_parameters(g, len(self.resblocks))
        _init_layer_norm(self.ln_final)
        _normal(self.text_projection, self.text_projection.shape[0] ** -0.5, g)

    def forward(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor) -> dict[str, Any]:
        x, hidden = text_tokens, []
        for self_attn, cross_attn in zip(self.resblocks, self.cross_attn, strict=True):
            x = self_attn(x, is_causal=True)
            x = cross_attn(x, kv=image_tokens)
            hidden.append(x)
        return {"multimodal": self.ln_final(x), "hidden": hidden}


# ---------------------------------------------------------------------------------------------
# The model


def materialize(module: nn.Module, seed: int) -> None:
    """Move a module built on the meta device to the current default device and initialise
    it from `seed` alone, so building a model never touches torch's global RNG. On the meta
    device (parameter counting) it stays as it is."""
    device = torch.get_default_device()
    if device.type == "meta":
        return
    module.to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        module.init_parameters(g)


class CoCa(nn.Module):
    """`CoCa(config, seed=...)` builds a seeded model on the default device; under
    `with torch.device("meta")` it builds an uninitialised one for counting parameters."""

    def __init__(self, config: CoCaConfig, *, seed: int) -> None:
        super().__init__()
        self.config = config
        with torch.device("meta"):
            self.text = TextTransformer(config)
            self.visual = VisionTransformer(config)
            self.text_decoder = MultimodalTransformer(config)
            self.logit_scale = nn.Parameter(torch.empty(()))
        materialize(self, seed)

    def init_parameters(self, g: torch.Generator) -> None:
        self.visual.init_parameters(g)
        self.text.init_parameters(g)
        self.text_decoder.init_parameters(g)
        self.logit_scale.fill_(self.config.init_logit_scale)

    def module_sizes(self) -> dict[str, ModuleSize]:
        return self.config.module_sizes()

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        pooled = self.visual(images)["pooled"]
        return F.normalize(pooled, dim=-1) if normalize else pooled

    def encode_text(self, text: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        pooled = self.text(text)["pooled"]
        return F.normalize(pooled, dim=-1) if normalize else pooled

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> dict[str, Any]:
        """images: float [B, 3, H, W]; text: long [B, L] (no shifting here: `logits[:, t]`
        predicts token t+1, as open_clip's logits for `text[:, :-1]`).

        Returns image_features [B, E] and text_features [B, E] (L2-normalised, as open_clip),
        image_tokens [B, Q-1, E], text_tokens [B, L, Wt], multimodal [B, L, Wt] (after
        ln_final), logits [B, L, V], logit_scale (exp), and hidden: per module, one tensor per
        block (visual [B, 1+P, Wv]; text [B, L+1, Wt], CLS last; text_decoder [B, L, Wt]).
        """
        vision = self.visual(images)
        text_out = self.text(text)
        decoded = self.text_decoder(vision["tokens"], text_out["tokens"])
        return {
            "image_features": F.normalize(vision["pooled"], dim=-1),
            "text_features": F.normalize(text_out["pooled"], dim=-1),
            "image_tokens": vision["tokens"],
            "text_tokens": text_out["tokens"],
            "multimodal": decoded["multimodal"],
            "logits": decoded["multimodal"] @ self.text_decoder.text_projection,
            "logit_scale": self.logit_scale.exp(),
            "hidden": {
                "visual": vision["hidden"],
                "text": text_out["hidden"],
                "text_decoder": decoded["hidden"],
            },
        }
