"""numpy picks its SIMD kernels once, when it is first imported, so the pin of portable numerics
(harness/numerics.py) on them is set here, before any module of the harness imports numpy:
AVX2 level (X86_V3), as for ATen, whatever AVX-512 the machine shows (numpy >= 2.4's names)."""

import os

os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")
