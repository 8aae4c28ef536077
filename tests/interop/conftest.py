"""These tests compare our CoCa with open_clip's; they run in `nox -s interop`, which installs
open_clip with a torch and torchvision that match. Without open_clip they are not collected,
so the default suite does not need it."""

import importlib.util

if importlib.util.find_spec("open_clip") is None:
    collect_ignore_glob = ["test_*.py"]
