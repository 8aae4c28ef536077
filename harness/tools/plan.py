"""`optima-repro plan`: what a study will cost before anything is trained (issue 5).

Models are built on the meta device (no weights), FLOPs counted by torch's FlopCounterMode on
one example, and memory estimated from parameter shapes plus the activation formula of
Korthikanti et al. (2022, "Reducing Activation Recomputation in Large Transformer Models"),
so planning CoCa-Large takes seconds on a laptop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.config import StudyConfig
from harness.data.open_clip_tokenizer import CLIP_VOCAB
from harness.models.coca import MODULES, CoCa
from harness.models.layer_map import layer_map
from harness.models.presets import preset

PAPER_VOCAB = 64_000  # CoCa's sentencepiece vocabulary (its paper, §4.1)
GIB = 2**30
HOUR = 3600.0

# Peak dense bfloat16 matrix throughput of one chip, FLOP/s, as the vendors publish it:
# TPU v4 275e12 (Google Cloud TPU docs, "TPU v4": 275 TFLOPS bf16 per chip); TPU v5e 197e12
# (Google Cloud TPU docs, "TPU v5e": 197 TFLOPS bf16 per chip); A100 312e12 (NVIDIA A100
# Tensor Core GPU datasheet: 312 TFLOPS BF16 dense, 624 with sparsity); H100 SXM 989e12
# (NVIDIA H100 Tensor Core GPU datasheet: 1,979 TFLOPS BF16 with sparsity, half of it dense).
ACCELERATORS = {"tpu-v4": 275e12, "tpu-v5e": 197e12, "a100": 312e12, "h100-sxm": 989e12}
UTILISATION = 0.4  # default share of the peak a training step sustains (model FLOPs utilisation)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def paper_accounting(model: CoCa) -> int:
    """Parameters counted as the CoCa paper does: open_clip (whose layout we follow) gives each
    cross-attention block of the decoder its own MLP where CoCa's decoder layers have one, and
    its vocabulary is what the tokenizer makes it; the paper's 787M (CoCa-Large) has neither
    extra MLPs and a 64k vocabulary."""
    cross = sum(_count(b.mlp) + _count(b.ln_2) for b in model.text_decoder.cross_attn)
    vocab_gap = 2 * (PAPER_VOCAB - model.config.vocab_size) * model.config.text_width
    return _count(model) - cross + vocab_gap


def vocab_size(cfg: StudyConfig) -> int:
    """The run's vocabulary: CLIP's with open_clip's tokenizer, else the sentencepiece size
    asked for (a small corpus may yield fewer pieces)."""
    return CLIP_VOCAB if cfg.tokenizer == "open_clip" else cfg.vocab_size


def _model(name: str, cfg: StudyConfig) -> CoCa:
    with torch.device("meta"):
        return CoCa(
            preset(name, vocab_size=vocab_size(cfg), context_length=cfg.context_length), seed=0
        )


def _forward_flops(model: CoCa) -> int:
    """Forward FLOPs of one image-text pair (matmuls and attention, as FlopCounterMode counts)."""
    c = model.config
    with torch.device("meta"):
        images = torch.empty(1, 3, c.image_size, c.image_size)
        text = torch.zeros(1, c.context_length, dtype=torch.long)
        with FlopCounterMode(display=False) as counter:
            model(images, text)
    return int(counter.get_total_flops())


def _optimizer_state_bytes(model: torch.nn.Module) -> int:
    """Adafactor's factored second moment: rows + columns per matrix, the full vector else."""
    total = 0
    for p in model.parameters():
        total += (p.shape[-2] + p.shape[-1]) if p.dim() >= 2 else p.numel()
    return 4 * total


def _activation_bytes(model: CoCa, batch: int) -> int:
    """Activations kept for the backward pass, float32: Korthikanti et al.'s s*b*h*(34 +
    5*a*s/h) bytes per transformer layer (16-bit) doubled, summed over the three towers."""
    c = model.config
    patches = (c.image_size // c.patch_size) ** 2 + 1
    towers = (
        (patches, c.vision_width, c.vision_heads, c.vision_layers),
        (c.context_length + 1, c.text_width, c.text_heads, c.text_layers),
        # decoder layers: self-attention over the text plus cross-attention to the image
        (c.context_length, c.text_width, c.multimodal_heads, 2 * c.multimodal_layers),
    )
    return int(sum(2 * s * batch * h * (34 + 5 * a * s / h) * n for s, h, a, n in towers))


def accelerator_time(
    run: int, teacher: int, runs: int, utilisation: float
) -> dict[str, dict[str, float]]:
    """Hours of one chip per run and per grid (`runs` runs plus the teacher's fine-tuning,
    done once per study) at `utilisation` of each chip's bf16 peak; N chips in data parallel
    take about 1/N of it."""
    out = {}
    for name, peak in ACCELERATORS.items():
        rate = peak * utilisation
        out[name] = {
            "peak_bf16_flops_per_second": peak,
            "hours_per_run": round(run / rate / HOUR, 2),
            "hours_teacher_finetune": round(teacher / rate / HOUR, 2),
            "hours_per_grid": round((runs * run + teacher) / rate / HOUR, 2),
        }
    return out


def plan(
    cfg: StudyConfig,
    views: int = 1,
    utilisation: float = UTILISATION,
    seeds: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """The numbers `optima-repro plan` prints; `views` images per example (NLVR2: 2); a grid
    is each row's seeds (`seeds`, default: the four rows on three seeds)."""
    seeds = seeds or dict.fromkeys(("optima", "uniform", "random", "none"), range(3))
    runs = sum(len(v) for v in seeds.values())
    d = cfg.distill
    teacher, student = _model(cfg.teacher.model, cfg), _model(d.student, cfg)
    t_sizes, s_sizes = teacher.config.module_sizes(), student.config.module_sizes()

    def sizes(model: CoCa) -> dict[str, Any]:
        return {
            "total": _count(model),
            "paper_accounting": paper_accounting(model),
            **{m: _count(getattr(model, m)) for m in MODULES},
        }

    f_teacher, f_student = _forward_flops(teacher), _forward_flops(student)
    pairs = d.batch_size * views
    # A step: teacher forward (none when its outputs are cached), student forward + backward
    # (about twice the forward). A round adds the reward: the student's forward on the reward
    # set before and after it.
    step = pairs * (3 * f_student + (0 if cfg.teacher_cache else f_teacher))
    reward = 2 * d.reward_set_size * views * f_student
    run = d.steps * step + d.rounds * reward
    # the teacher's fine-tuning (task loss only, forward and backward), unless one is given
    teacher_finetune = (
        0
        if cfg.teacher_finetuned
        else cfg.teacher.steps * (cfg.teacher.batch_size * views * 3 * f_teacher)
    )
    weights = 4 * (_count(teacher) + _count(student))
    training = 4 * _count(student) + _optimizer_state_bytes(student)
    activations = _activation_bytes(student, pairs)
    return {
        "task": cfg.task,
        "preset": cfg.preset,
        "parameters": {"teacher": sizes(teacher), "student": sizes(student)},
        "layer_map": {m: layer_map(s_sizes[m].blocks, t_sizes[m].blocks) for m in MODULES},
        "schedule": {
            "steps": d.steps,
            "rounds": d.rounds,
            "steps_per_round": d.round_steps,
            "warmup_rounds": d.warmup_rounds,
            "batch_size": d.batch_size,
            "image_text_pairs_per_step": pairs,
            "reward_set_size": d.reward_set_size,
        },
        "flops": {
            "teacher_forward_per_pair": f_teacher,
            "student_forward_per_pair": f_student,
            "per_step": step,
            "reward_per_round": reward,
            "per_run": run,
            "teacher_outputs_cached": cfg.teacher_cache,
            "teacher_finetune": teacher_finetune,
        },
        "accelerators": {
            "utilisation": utilisation,
            "grid": {"seeds": {k: len(v) for k, v in seeds.items()}, "runs": runs},
            "assumes": "precision=bf16, one chip; hours = FLOPs / (peak * utilisation); a grid "
            "is its runs plus the teacher's fine-tuning once",
            "chips": accelerator_time(run, teacher_finetune, runs, utilisation),
        },
        "memory_gib": {
            "weights_teacher_and_student": round(weights / GIB, 2),
            "student_gradients_and_adafactor_state": round(training / GIB, 2),
            "student_activations_per_step": round(activations / GIB, 2),
            "total_estimate": round((weights + training + activations) / GIB, 2),
        },
    }
