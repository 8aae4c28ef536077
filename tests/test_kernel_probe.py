"""The kernel probe (harness/kernel_probe.py): one hash per kind of kernel, repeatable within
a process, carried by every record, and compared across machines by `optima-repro numerics`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from harness import kernel_probe, numerics
from harness.cli import main
from harness.config import NumericsConfig

PORTABLE = NumericsConfig()
GOLDEN = Path(__file__).parent / "golden" / "kernels.json"


def _cpu_kind() -> str:
    """The CPU as exactly as /proc/cpuinfo names it: values are kept per kind."""
    info = numerics._cpuinfo()
    fields = ("vendor_id", "cpu family", "model", "model name")
    return " | ".join(info.get(k, "?") for k in fields)


def test_the_probe_repeats_and_leaves_the_random_state_alone():
    numerics.settle(PORTABLE, 1)
    torch.manual_seed(3)
    before = torch.get_rng_state()
    first = kernel_probe.probe()
    assert torch.equal(torch.get_rng_state(), before)
    assert kernel_probe.probe() == first
    assert set(first) == set(kernel_probe.PROBES)


def test_the_probe_sees_a_change_of_arithmetic():
    """Two threads split layer norm's backward reduction: the probe names that kernel."""
    one = (numerics.settle(PORTABLE, 1), kernel_probe.probe())
    two = (numerics.settle(PORTABLE, 2), kernel_probe.probe())
    assert "normalisation" in kernel_probe.differences(one[1], two[1])
    assert one[0]["kernels"] == kernel_probe.digest(one[1]) != two[0]["kernels"]
    assert len(numerics.mixed([one[0], two[0], {**one[0], "kernels": "0" * 16}])) == 3
    numerics.settle(PORTABLE, 1)


def test_numerics_command_writes_and_compares(tmp_path, capsys):
    mine = tmp_path / "here.json"
    assert main(["numerics", "--out", str(mine)]) == 0
    written = json.loads(mine.read_text())
    assert written["numerics"]["portable"] is True and written["numerics"]["threads"] == 1
    assert set(written["probes"]) == set(kernel_probe.PROBES)
    capsys.readouterr()
    assert main(["numerics", "--compare", str(mine)]) == 0
    assert "every probed kernel gives the same bits" in capsys.readouterr().out

    theirs = tmp_path / "there.json"
    gemm = written["probes"]["gemm"]
    written["probes"]["gemm"] = "0" * 16
    del written["probes"]["host"]
    theirs.write_text(json.dumps(written))
    assert main(["numerics", "--compare", str(theirs)]) == 1
    out = capsys.readouterr().out
    assert f"gemm: {gemm} here, {'0' * 16} in {theirs}" in out
    assert "host:" in out and "2 kernels differ" in out

    assert main(["numerics", "--threads", "0"]) == 2
    assert "--threads 0" in capsys.readouterr().err

    (bad := tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["numerics", "--compare", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err


def test_kernels_reproduce_on_the_cpu_kind_that_made_them():
    """Exact where this kind of CPU has values; the CLI compares other kinds by hand."""
    numerics.settle(PORTABLE, 1)
    found = kernel_probe.probe()
    known = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("OPTIMA_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps({**known, _cpu_kind(): found}, indent=1) + "\n")
        known[_cpu_kind()] = found
    if _cpu_kind() not in known:
        pytest.skip(f"no kernel values for {_cpu_kind()} (kept for {sorted(known)})")
    differ = kernel_probe.differences(found, known[_cpu_kind()])
    assert not differ, f"kernels whose bits changed on {_cpu_kind()}: {differ}"
