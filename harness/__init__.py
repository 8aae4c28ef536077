"""numpy picks its SIMD kernels once, when it is first imported, so the pin of portable numerics
(harness/numerics.py) on them is set here, before any module of the harness imports numpy:
AVX2 level (X86_V3), as for ATen, whatever AVX-512 the machine shows. The names are numpy
2.4's; an older numpy skips those it does not know (an ImportWarning, silent by default), and
each record's `numpy_simd` says what ran."""

import os

NUMPY_PIN = "NPY_DISABLE_CPU_FEATURES"
os.environ.setdefault(NUMPY_PIN, "X86_V4 AVX512_ICL AVX512_SPR")
