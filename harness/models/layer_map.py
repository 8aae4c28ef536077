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


def matching_modules(student: CoCa, teacher: CoCa) -> list[str]:
    """The modules whose hidden width the student shares with the teacher, in MODULES order:
    the ones `init=teacher-layers` copies."""
    s_sizes, t_sizes = student.module_sizes(), teacher.module_sizes()
    return [m for m in MODULES if s_sizes[m].width == t_sizes[m].width]


def _owner(name: str) -> str | None:
    """The module a parameter belongs to ('visual.ln_pre.weight' -> 'visual'); None for one
    outside every module (logit_scale)."""
    head = name.split(".", 1)[0]
    return head if head in MODULES else None


@torch.no_grad()
def init_student_from_teacher(student: CoCa, teacher: CoCa) -> list[tuple[str, str]]:
    """`init=teacher-layers` (spec/optima.md §2): in every module whose width the student
    shares with the teacher, copy teacher block layer_map(n_s, n_t)[i] into student block i,
    and the module's other parameters whose name and shape agree (embeddings, poolers, norms,
    projections; one that differs, e.g. another embed_dim, keeps its random init). A module of
    another width keeps its random init whole: a narrower block has no teacher counterpart.
    Parameters outside the modules (logit_scale) are copied when any module is. Returns
    (student parameter, teacher parameter) for each copy; `matching_modules` names the
    modules."""
    modules = matching_modules(student, teacher)
    s_sizes, t_sizes = student.module_sizes(), teacher.module_sizes()
    maps = {m: layer_map(s_sizes[m].blocks, t_sizes[m].blocks) for m in modules}
    t_params = dict(teacher.named_parameters())
    copied = []
    for name, param in student.named_parameters():
        owner = _owner(name)
        if not (owner in modules if owner is not None else modules):
            continue
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
