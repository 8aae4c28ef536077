"""Every kind of kernel a run's arithmetic goes through, on fixed inputs, one hash each.

Two machines whose golden smoke studies differ in the 7th digit (issue 19) differ in some
kernel; the study cannot say which. The probe can: `optima-repro numerics --out A.json` on
each machine, then `--compare` the two files, lists the kernels whose bits differ. Records carry
the probe's digest, so a report warns when one study's records ran on different arithmetic even
where every setting that was asked for agrees.

Inputs are exact binary fractions from integers (no kernel makes them); the probe uses its own
generators and leaves torch's and numpy's global random state as it found them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import numpy as np


def _values(seed: int, *shape: int):
    """Float32 inputs that no kernel computes: multiples of 2**-10 in [-4, 4)."""
    import torch

    ints = np.random.default_rng([seed, 19]).integers(-4096, 4096, size=shape)
    return torch.from_numpy((ints / 1024).astype(np.float32))


def _grads(fn: Callable, *inputs) -> list:
    """The output of `fn` and the gradients of its sum of squares (the backward kernels)."""
    import torch

    leaves = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    grads = torch.autograd.grad((out.float() ** 2).sum(), leaves)
    return [out.detach(), *grads]


def _gemm() -> list:
    import torch.nn.functional as F

    a, b, bias = _values(1, 48, 96), _values(2, 80, 96), _values(3, 80)
    small = _values(4, 7, 5) @ _values(5, 5, 3)
    return [*_grads(F.linear, a, b, bias), small, a @ b.T, a.T @ a]


def _bmm() -> list:
    import torch

    return _grads(torch.bmm, _values(6, 8, 16, 32), _values(7, 8, 32, 12))


def _attention() -> list:
    import torch
    import torch.nn.functional as F

    q, k, v = (_values(s, 2, 4, 20, 16) for s in (8, 9, 10))
    keep = torch.from_numpy(np.arange(20) < 13).view(1, 1, 1, 20)
    causal = _grads(lambda *t: F.scaled_dot_product_attention(*t, is_causal=True), q, k, v)
    masked = _grads(lambda *t: F.scaled_dot_product_attention(*t, attn_mask=keep), q, k, v)
    return causal + masked


def _normalisation() -> list:
    import torch.nn.functional as F

    x, w, b = _values(11, 6, 10, 64), _values(12, 64), _values(13, 64)
    return _grads(lambda *t: F.layer_norm(t[0], (64,), t[1], t[2]), x, w, b) + _grads(
        lambda t: F.normalize(t, dim=-1), x
    )


def _activations() -> list:
    import torch
    import torch.nn.functional as F

    x = _values(14, 4096)
    return _grads(F.gelu, x) + _grads(torch.sigmoid, x) + _grads(torch.tanh, x)


def _elementwise() -> list:
    import torch

    x = _values(15, 4099)
    pos = x.abs() + 1 / 64
    # no `sqrt`: a float32 tensor's is MKL's vsSqrt, whose bits follow the CPU vendor, and no
    # run calls it (the teacher's AdamW is fused on CPU; test_numerics holds a run to that)
    return [x.exp(), pos.log(), pos.rsqrt(), torch.erf(x), pos.pow(0.7), x.pow(2)]


def _losses() -> list:
    import torch
    import torch.nn.functional as F

    logits, other = _values(16, 12, 50), _values(17, 12, 50)
    target = torch.from_numpy(np.random.default_rng(18).integers(0, 50, 12))
    target[3] = -100
    out = _grads(lambda t: F.cross_entropy(t, target, ignore_index=-100), logits)
    out += _grads(lambda t: F.log_softmax(t, -1), logits)
    kl = F.kl_div(
        F.log_softmax(other, -1), F.log_softmax(logits, -1), reduction="batchmean", log_target=True
    )
    bce = F.binary_cross_entropy_with_logits(logits, torch.sigmoid(other))
    return [*out, kl, bce, F.mse_loss(logits, other)]


def _reductions() -> list:
    import torch

    x = _values(20, 257, 131)
    return [x.sum(), x.sum(0), x.mean(1), x.norm(), torch.stack(torch._foreach_norm([x, x.T]))]


def _convolution() -> list:
    import torch.nn.functional as F

    img, w = _values(21, 2, 3, 16, 16), _values(22, 8, 3, 4, 4)
    return _grads(lambda a, b: F.conv2d(a, b, stride=4), img, w)


def _embedding() -> list:
    import torch
    import torch.nn.functional as F

    ids = torch.from_numpy(np.random.default_rng(23).integers(0, 30, (6, 9)))
    return _grads(lambda w: F.embedding(ids, w), _values(24, 30, 16))


def _optimizers() -> list:
    import torch

    from harness.distill.adafactor import Adafactor

    out = []
    for make in (
        lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01, fused=True),  # the teacher's
        lambda p: Adafactor(p, lr=1e-2, weight_decay=0.01),
    ):
        params = [_values(25, 24, 16).requires_grad_(True), _values(26, 16).requires_grad_(True)]
        opt = make(params)
        for step in range(3):
            for i, p in enumerate(params):
                p.grad = _values(27 + step * 2 + i, *p.shape)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        out += [p.detach() for p in params]
    return out


def _sampling() -> list:
    import torch

    g = torch.Generator().manual_seed(0)
    return [
        torch.randn(1000, generator=g),
        torch.rand(1000, generator=g),
        torch.randperm(100, generator=g),
    ]


def _host() -> list:
    """numpy's generator and libm, which the schedulers and the evaluators use."""
    rng = np.random.default_rng(0)
    x = np.linspace(0.01, 20.0, 997)
    scalars = (
        [math.exp(v) for v in x[::7]]
        + [math.log(v) for v in x[::7]]
        + [math.pow(v, 0.37) for v in x[::7]]
    )
    return [
        rng.standard_normal(1000),
        rng.gamma(2.0, size=100),
        np.sqrt(x),
        np.log(x),
        np.exp(x),
        np.array(scalars),
    ]


PROBES: dict[str, Callable[[], list]] = {
    "gemm": _gemm,
    "bmm": _bmm,
    "attention": _attention,
    "normalisation": _normalisation,
    "activations": _activations,
    "elementwise": _elementwise,
    "losses": _losses,
    "reductions": _reductions,
    "convolution": _convolution,
    "embedding": _embedding,
    "optimizers": _optimizers,
    "sampling": _sampling,
    "host": _host,
}


def _hash(outputs: list) -> str:
    h = hashlib.sha256()
    for out in outputs:
        arr = out if isinstance(out, np.ndarray) else out.detach().contiguous().numpy()
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def probe() -> dict[str, str]:
    """A hash of each probe's outputs, run under this process's current numerics."""
    import torch

    with torch.random.fork_rng(devices=[]):
        return {name: _hash(make()) for name, make in PROBES.items()}


def digest(hashes: dict[str, str]) -> str:
    """One short value for a record: equal digests, equal kernels (as far as probed)."""
    text = ",".join(f"{k}={v}" for k, v in sorted(hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """The probes whose bits differ (or that one side lacks), by name."""
    return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
