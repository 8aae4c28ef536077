"""Adafactor whose step reads nothing back from the device (issue 18).

`torch.optim.Adafactor` computes its step's scalars on the host: `.item()` of the step count,
of each parameter's norm and of each update's norm. On XLA each read is a device round trip
that stalls the step. Here every scalar is a 0-dim tensor on the parameter's device and no
Python branch looks at a tensor's value, so an XLA step traces to one graph.

On CPU the step is bitwise that of torch's single-tensor Adafactor (the loop's optimizer
since the first study), so published numbers and config hashes stand: the scalars are float64
computed as Python computes them (`pow` with a tensor exponent is C's `pow`, as Python's `**`;
torch's own `pow(x, 0.5)` is `sqrt`, which differs in the last bit for some x), rounded to
float32 where torch's kernels round a Python scalar, and the last `param.add_(update,
alpha=a)`, which ATen's CPU kernel rounds once (a fused multiply-add), is rounded once here
too (`fma`). Elsewhere the scalars are float32 (TPUs have no float64) and the update is a
multiply then an add: accelerators are reproducible statistically, not bitwise.

The state is torch's (`step`, `row_var`, `col_var`, `variance`), so checkpoints pass between
the two optimizers.
"""

from __future__ import annotations

import torch


def fma(params: list[torch.Tensor], updates: list[torch.Tensor], scales: torch.Tensor) -> None:
    """`param += scale * update` for each float32 parameter, rounded once as `param.add_(update,
    alpha=scale)` rounds on CPU (a fused multiply-add); `scales` float32 [n]. All parameters
    at once, flattened. The product is exact in float64 and the sum is rounded to float64,
    then to float32; rounding twice differs from rounding once only where the float64 sum
    lies on a float32 midpoint (or in float32's subnormal range), and there the float64
    sum's own rounding error (TwoSum) says which way the exact sum lies."""
    sizes = [x.numel() for x in params]
    p = torch.cat([x.reshape(-1) for x in params]).double()
    prod = torch.cat([u.reshape(-1) for u in updates]).double()
    prod.mul_(torch.cat([a.expand(n) for a, n in zip(scales.double(), sizes, strict=True)]))
    s = p + prod
    out = s.float()
    low = s.view(torch.int64).bitwise_and(_BELOW_FLOAT32)
    at = torch.nonzero((low == _HALF_FLOAT32_ULP).logical_or_(out.abs() <= _TINY)).squeeze(1)
    p, prod, s, r = p[at], prod[at], s[at], out[at]
    b = s - p
    err = (p - (s - b)) + (prod - b)
    toward = torch.nextafter(r, torch.where(err > 0, torch.inf, -torch.inf).float())
    on_midpoint = (r.double() + toward.double()) * 0.5 == s
    out[at] = torch.where((err != 0) & on_midpoint, toward, r)
    torch._foreach_copy_(
        params, [o.view_as(x) for o, x in zip(out.split(sizes), params, strict=True)]
    )


# float64 bits below float32's last: a float32 midpoint has exactly the top one of them set
_BELOW_FLOAT32 = (1 << 29) - 1
_HALF_FLOAT32_ULP = 1 << 28
_TINY = torch.finfo(torch.float32).tiny  # below it float32's spacing no longer scales


def _max(bound: float, x: torch.Tensor) -> torch.Tensor:
    """Python's `max(bound, x)`: x only where it is greater (a NaN gives `bound`, as there)."""
    return torch.where(x > bound, x, bound)


class Adafactor(torch.optim.Adafactor):
    """torch's Adafactor (its arguments, defaults and state), stepped on the device. Its state
    is made up front, not in the first step: on XLA the first step then traces the graph of
    every later one (measured: one compilation instead of two of the same size)."""

    def __init__(self, params, *args, **kwargs) -> None:
        super().__init__(params, *args, **kwargs)
        for group in self.param_groups:
            for param in group["params"]:
                self._state(param)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["maximize"]:
                raise NotImplementedError("maximize: the loop minimises")
            together: dict[tuple, list[torch.Tensor]] = {}
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse or torch.is_complex(param):
                    raise RuntimeError("Adafactor supports dense real parameters only")
                together.setdefault((param.device, param.dtype), []).append(param)
            for params in together.values():
                self._update(params, group)
        return loss

    def _update(self, params: list[torch.Tensor], group: dict) -> None:
        """One step of `params`, all on one device and of one dtype; float32 on CPU is
        torch's step bit for bit."""
        dev, dtype = params[0].device, params[0].dtype
        exact = dev.type == "cpu" and dtype == torch.float32
        sd = torch.float64 if exact else torch.float32  # the scalars' dtype
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = torch.finfo(dtype).eps
        lr, wd = group["lr"], group["weight_decay"]
        # the host's own numbers (the schedule's lr), uploaded once a step: not a read
        lr_t, decay = torch.tensor([lr, 1 - lr * wd], dtype=sd, device=dev)
        steps = [self._state(p)["step"] for p in params]
        torch._foreach_add_(steps, 1.0)

        exponents = torch.tensor([[group["beta2_decay"]], [0.5]], dtype=sd, device=dev)
        if exact:  # a 0-dim pow with a tensor exponent is C's pow, as Python's ** in torch's
            # step; a vector's pow takes other kernels
            powers = torch.stack([torch.pow(s.to(sd), exponents[:, 0]) for s in steps], 1)
        else:  # one vector op: a smaller graph
            powers = torch.pow(torch.stack(steps).to(sd), exponents)
        decay2, sqrt_step = powers
        rho = torch.minimum(sqrt_step.reciprocal(), lr_t)  # Python's min(lr, x): no NaN here
        root_numel = torch.tensor([p.numel() ** 0.5 for p in params], dtype=sd, device=dev)
        rms = torch.stack(torch._foreach_norm(params)).to(sd) / root_numel
        alpha = _max(eps2, rms) * rho

        if wd != 0:
            torch._foreach_mul_(params, decay.to(dtype))

        updates = []
        for param, beta in zip(params, decay2.to(dtype), strict=True):
            grad, state = param.grad, self.state[param]
            if grad.dim() > 1:
                row_var, col_var = state["row_var"], state["col_var"]
                row_mean = torch.norm(grad, dim=-1, keepdim=True).square_().div_(grad.size(-1))
                row_var.lerp_(row_mean, beta)
                col_mean = torch.norm(grad, dim=-2, keepdim=True).square_().div_(grad.size(-2))
                col_var.lerp_(col_mean, beta)
                var_estimate = row_var @ col_var
                var_estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
            else:
                state["variance"].lerp_(grad * grad, beta)
                var_estimate = state["variance"].clone()
            update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_()
            updates.append(update.mul_(grad))

        ratio = torch.stack(torch._foreach_norm(updates)).to(sd) / (root_numel * group["d"])
        scales = (-alpha / _max(1.0, ratio)).to(dtype)
        if exact:
            fma(params, updates, scales)
        else:
            torch._foreach_add_(params, torch._foreach_mul(updates, list(scales.unbind())))

    def _state(self, param: torch.Tensor) -> dict:
        """torch's state layout (shaped as the gradient, which is shaped as the parameter);
        `step` on the parameter's device (a checkpoint loads it on the CPU, as torch keeps
        it)."""
        state = self.state[param]
        if not state:
            state["step"] = torch.tensor(0.0, device=param.device)
            if param.dim() > 1:
                state["row_var"] = param.new_zeros((*param.shape[:-1], 1))
                state["col_var"] = param.new_zeros((*param.shape[:-2], 1, param.shape[-1]))
            else:
                state["variance"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        elif state["step"].device != param.device:
            state["step"] = state["step"].to(param.device)
        return state
