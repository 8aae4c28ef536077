"""Which teacher layer each student layer matches, and teacher-layer student initialisation
(spec/optima.md §2, both [ours])."""

from __future__ import annotations

import torch

from harness.errors import ConfigError
from harness.models.coca import BLOCK_PATHS, MODULES, CoCa


def layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Student layer i (0-based) matches teacher layer (i+1)*n_t/n_s - 1 (integer division):
    uniformly spaced, and the last student layer always matches the last teacher layer."""
    if n_student < 1 or n_teacher < 1:
        raise ValueError(f"layer_map: layer counts must be >= 1, got {n_student}, {n_teacher}")
    if n_student > n_teacher:
        raise ValueError(
            f"layer_map: the student has {n_student} layers, more than the teacher's "
            f"{n_teacher}; each student layer needs its own teacher layer"
        )
    return [(i + 1) * n_teacher // n_student - 1 for i in range(n_student)]


def _block_of(name: str) -> tuple[str, str, int, str] | None:
    """'text.transformer.resblocks.3.ln_1.weight' -> ('text', path, 3, 'ln_1.weight')."""
    for module, paths in BLOCK_PATHS.items():
        for path in paths:
            if name.startswith(path + "."):
                index, rest = name[len(path) + 1 :].split(".", 1)
                return module, path, int(index), rest
    return None


@torch.no_grad()
def init_student_from_teacher(student: CoCa, teacher: CoCa) -> list[tuple[str, str]]:
    """`init=teacher-layers`: copy teacher block layer_map(n_s, n_t)[i] into student block i
    of every module, and every other parameter whose name and shape agree (embeddings,
    poolers, norms, projections; one that differs, e.g. another embed_dim, keeps its random
    init). Returns (student parameter, teacher parameter) for each copy."""
    s_sizes, t_sizes = student.module_sizes(), teacher.module_sizes()
    for module in MODULES:
        if s_sizes[module].width != t_sizes[module].width:
            raise ConfigError(
                f"init_student_from_teacher: module {module!r} has width "
                f"{s_sizes[module].width} in the student and {t_sizes[module].width} in the "
                "teacher; copying teacher layers needs equal widths (use init=random)"
            )
    maps = {m: layer_map(s_sizes[m].blocks, t_sizes[m].blocks) for m in MODULES}
    t_params = dict(teacher.named_parameters())
    copied = []
    for name, param in student.named_parameters():
        block = _block_of(name)
        if block is not None:
            module, path, index, rest = block
            source = f"{path}.{maps[module][index]}.{rest}"
            if t_params[source].shape != param.shape:
                raise ConfigError(
                    f"init_student_from_teacher: {name} has shape {tuple(param.shape)}, "
                    f"teacher {source} has {tuple(t_params[source].shape)}"
                )
        elif name in t_params and t_params[name].shape == param.shape:
            source = name
        else:
            continue
        param.copy_(t_params[source])
        copied.append((name, source))
    return copied
