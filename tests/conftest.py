import importlib.util
import os

from harness.executors import DEFAULT_VARIABLE
from harness.numerics import set_environment

# Portable kernels before any test runs a tensor operation: ATen and MKL read their settings
# once, at the first operation, and the CLI's own pinning comes too late inside one process.
set_environment("portable")
# Runs in the test process, where monkeypatches and capsys reach them (the CLI's own default
# on CPU is worker processes); tests/test_executors.py names its executors.
os.environ.setdefault(DEFAULT_VARIABLE, "serial")

# tests/xla needs torch-xla, installed by `nox -s xla` only; the default suite never imports it
collect_ignore = [] if importlib.util.find_spec("torch_xla") else ["xla"]
