import importlib.util

# tests/xla needs torch-xla, installed by `nox -s xla` only; the default suite never imports it
collect_ignore = [] if importlib.util.find_spec("torch_xla") else ["xla"]
