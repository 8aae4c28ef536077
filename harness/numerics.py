"""How a run's arithmetic is pinned, and what each library actually did.

Training amplifies the last bits of a float into points of accuracy: one seed of the VQA
study ended at 69.90, 71.63 or 71.86 with 2 threads, 1 thread or AVX2 kernels, round 0 equal
to 7 digits (issue 19). So the kernel family and the thread count are part of a run's
configuration, fixed before the first tensor operation and the same on every x86-64 machine
with AVX2. Portable mode, the default on CPU:

- ATen's vectorised kernels at AVX2 (`ATEN_CPU_CAPABILITY`), not the widest the CPU has;
- MKL's conditional numerical reproducibility at `COMPATIBLE`: on AMD CPUs MKL ignores
  `MKL_CBWR=AVX2` (it reports `CNR:AUTO`), and only `COMPATIBLE` is honoured on every x86-64;
  MKL's and OpenMP's dynamic thread adjustment off, as MKL's reproducibility conditions ask;
- numpy's SIMD dispatch at AVX2 (`NPY_DISABLE_CPU_FEATURES`, set by `harness/__init__.py`
  before numpy's import): its exp and log take other paths on AVX-512, and virtual machines of
  one CPU model show AVX-512 or hide it (the kernel probe's `host` hash told them apart);
- oneDNN and NNPACK off: their JIT kernels choose blockings from the ISA and cache sizes of the
  machine, so convolutions take ATen's own path (im2col and an MKL GEMM) instead;
- a fixed intra-op thread count per step (`numerics.threads` for runs, `teacher_threads` for
  pre-training, the teacher and its output cache), whatever the machine's core count;
- no MKL vector math where it rounds per CPU: a float32 tensor's `sqrt` is MKL's vsSqrt, not
  correctly rounded in the `COMPATIBLE` branch and rounded differently by Intel and AMD CPUs,
  so the teacher's AdamW runs fused on CPU (ATen's own `sqrt`; harness/teacher.py).

ATen and MKL read their settings lazily, at the first operation that needs them, so
`set_environment` works as long as no tensor operation ran before it in the process: the CLI
calls it first thing, the test suite in its conftest. `settle` then checks what each library
really does (MKL through its own verbose output) and stops when a portable run cannot be had.
It also records the digest of `harness.kernel_probe`, a hash of each kind of kernel's output
on fixed inputs, so records that ran on different arithmetic say so even where every setting
asked for agrees.
Native mode takes the machine's own kernels: faster, and reproducible only on the same kind
of CPU with the same threads; records say which mode ran.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import re
import sys
import tempfile

from harness import NUMPY_PIN  # set by harness/__init__.py, before numpy's import
from harness.config import NumericsConfig
from harness.errors import ConfigError

ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
ATEN_KERNELS = "AVX2"
MKL_BRANCH = "COMPATIBLE"


class NumericsError(ConfigError):
    """Portable numerics asked for on a machine or process that cannot honour them."""


def set_environment(mode: str = "portable") -> None:
    """Before any tensor operation of the process: the settings ATen and MKL read once."""
    if mode == "portable":
        os.environ.update(ENVIRONMENT)


def teacher_identity(n: NumericsConfig) -> dict:
    """What of the numerics shapes a teacher (its cache keys include it)."""
    return {"mode": n.mode, "threads": n.teacher_threads}


def settle(n: NumericsConfig, threads: int, device_type: str = "cpu") -> dict:
    """Pin this process's arithmetic for the next steps and return what is really in force.
    `threads` is `n.threads` or `n.teacher_threads`, whichever phase is about to run."""
    import torch

    torch.set_num_threads(threads)
    if n.mode == "portable":
        torch.backends.mkldnn.enabled = False
        torch.backends.nnpack.set_flags(False)
    found = observed()
    found["threads"] = torch.get_num_threads()
    if n.mode == "portable" and device_type == "cpu":  # elsewhere the device's numerics rule
        problems = _portable_problems(found)
        if problems:
            raise NumericsError(
                "portable numerics cannot be had here: "
                + "; ".join(problems)
                + ". Run with --set numerics.mode=native (its records say they are not "
                "portable), or start a fresh process through `optima-repro`, which sets the "
                "kernels before torch's first operation"
            )
    found["mode"] = n.mode
    found["portable"] = n.mode == "portable" and device_type == "cpu"
    if device_type == "cpu":  # elsewhere the device's kernels do the arithmetic
        from harness import kernel_probe

        found["kernels"] = kernel_probe.digest(kernel_probe.probe())
    found["environment"] = {k: os.environ.get(k) for k in (*ENVIRONMENT, NUMPY_PIN)}
    return found


def _portable_problems(found: dict) -> list[str]:
    problems = []
    if found["machine"] not in ("x86_64", "AMD64"):
        problems.append(f"the machine is {found['machine']}, not x86-64")
    if found["aten_kernels"] != ATEN_KERNELS:
        problems.append(
            f"ATen runs {found['aten_kernels']} kernels, not {ATEN_KERNELS} (the CPU lacks "
            "AVX2, or a tensor operation ran before ATEN_CPU_CAPABILITY was set)"
        )
    if found["mkl_branch"] != MKL_BRANCH:
        problems.append(
            f"MKL runs the {found['mkl_branch']} branch, not {MKL_BRANCH} (MKL_CBWR was set "
            "after MKL's first call, or this torch has no MKL)"
        )
    if found["mkl_dynamic"]:
        problems.append("MKL adjusts its thread count dynamically (MKL_DYNAMIC set too late)")
    return problems


def observed() -> dict:
    """The kernels, libraries and CPU of this process, as the libraries report them."""
    import torch

    mkl = _mkl_verbose_line()
    config = torch.__config__.show()
    return {
        "cpu": cpu_model(),
        "cpu_vendor": cpu_vendor(),
        "cpu_flags": sorted(f for f in _cpu_flags() if f in ("avx2", "avx512f", "fma")),
        "machine": platform.machine(),
        "aten_kernels": torch.backends.cpu.get_cpu_capability(),
        "mkl_version": _first(r"Math Kernel Library Version ([\d.]+)", config),
        "mkl_branch": _first(r"CNR:([A-Z0-9_]+)", mkl) or "absent",
        "mkl_dynamic": _first(r"Dyn:(\d)", mkl) == "1",
        "onednn_version": _first(r"MKL-DNN (v[\d.]+)", config),
        "onednn_enabled": bool(torch.backends.mkldnn.enabled),
        "nnpack_enabled": bool(torch._C._get_nnpack_enabled()),
        "numpy_simd": _numpy_simd(),
    }


def _numpy_simd() -> list[str]:
    """The SIMD targets numpy dispatches to in this process, above its baseline."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2.0
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]


def _first(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None


@functools.cache
def _mkl_verbose_line() -> str:
    """One GEMM with MKL's verbose mode on, its line read back from file descriptor 1: MKL
    prints the reproducibility branch it actually runs (`CNR:...`), which no API returns."""
    import torch

    if not torch.backends.mkl.is_available():
        return ""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        try:
            with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                a = torch.ones(8, 8)
                a @ a
            libc.fflush(None)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    return next((line for line in text.splitlines() if "SGEMM" in line), "")


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_vendor() -> str | None:
    """`GenuineIntel`, `AuthenticAMD`, ...: in each record, to trace a difference of machines."""
    return _cpuinfo().get("vendor_id")


def _cpu_flags() -> frozenset[str]:
    return frozenset(_cpuinfo().get("flags", "").split())


def signature(found: dict) -> dict:
    """The fields two records must share to be comparable digit for digit."""
    keys = ("mode", "portable", "threads", "aten_kernels", "mkl_branch", "mkl_version", "kernels")
    return {k: found.get(k) for k in keys}


def describe(found: dict) -> str:
    """One line for a report: the mode and what the libraries ran."""
    if not found:
        return "not recorded (a record older than portable numerics)"
    onednn = "on" if found.get("onednn_enabled") else "off"
    threads = found.get("threads")
    where = "" if found.get("portable") else " (not portable)"
    return (
        f"{found.get('mode')}{where}: ATen {found.get('aten_kernels')}, MKL "
        f"{found.get('mkl_version')} branch {found.get('mkl_branch')}, oneDNN "
        f"{found.get('onednn_version')} {onednn}, {threads} thread{'s' * (threads != 1)} a run"
        + (f", kernel probe {found['kernels']}" if found.get("kernels") else "")
    )


def mixed(findings: list[dict]) -> list[str]:
    """The distinct signatures among records that should share one, described; [] when the
    records agree (their digits are comparable)."""
    seen: dict[str, str] = {}
    for found in findings:
        seen.setdefault(repr(sorted(signature(found).items())), describe(found))
    return sorted(seen.values()) if len(seen) > 1 else []
