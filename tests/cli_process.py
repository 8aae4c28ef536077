"""The CLI in a process of its own: what a test needs to kill a run and resume it."""

import os
import subprocess
import sys


def run_cli(argv: list[str], workdir, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m harness.cli *argv` with the work directory and reports under `workdir`."""
    argv = [*argv, "--workdir", str(workdir), "--reports", str(workdir / "reports")]
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
