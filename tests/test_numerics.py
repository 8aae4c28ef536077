"""Portable numerics (harness/numerics.py): what is pinned is what the libraries report, a
machine or process that cannot honour it stops, and reports show mixed numerics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from unittest import mock

import pytest
import torch
from test_report import grid, write_runs

import harness
from harness import numerics
from harness.config import NumericsConfig, apply_overrides, study_config
from harness.errors import ConfigError
from harness.report import write_reports

PORTABLE = NumericsConfig()


def test_settle_reports_what_the_libraries_run():
    found = numerics.settle(PORTABLE, 1)
    assert found["portable"] is True and found["mode"] == "portable"
    assert found["aten_kernels"] == "AVX2" == torch.backends.cpu.get_cpu_capability()
    assert found["mkl_branch"] == "COMPATIBLE" and found["mkl_dynamic"] is False
    assert found["onednn_enabled"] is False and found["nnpack_enabled"] is False
    assert found["threads"] == 1 == torch.get_num_threads()
    assert found["environment"] == {**numerics.ENVIRONMENT, harness.NUMPY_PIN: mock.ANY}
    # numpy pinned at AVX2 by `import harness`, whatever AVX-512 this machine shows
    assert found["numpy_simd"] == ["X86_V3"]
    assert found["cpu"] and found["mkl_version"] and found["onednn_version"]
    numerics.settle(PORTABLE, 2)
    assert torch.get_num_threads() == 2


def test_a_device_run_is_not_portable_whatever_its_mode():
    assert numerics.settle(PORTABLE, 1, "cuda")["portable"] is False


def _python(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in numerics.ENVIRONMENT}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )


def test_portable_mode_refuses_kernels_chosen_before_it():
    """A tensor operation before `set_environment`: ATen and MKL have chosen; stop, say why."""
    code = (
        "import torch; torch.ones(4, 4) @ torch.ones(4, 4)\n"
        "from harness import numerics; from harness.config import NumericsConfig\n"
        "numerics.set_environment('portable')\n"
        "try:\n    numerics.settle(NumericsConfig(), 1)\n"
        "except numerics.NumericsError as e:\n    print('REFUSED', e)\n"
    )
    out = _python(code, ATEN_CPU_CAPABILITY="default")
    assert "REFUSED" in out.stdout, out.stderr
    assert "ATen runs DEFAULT kernels" in out.stdout and "MKL runs the OFF branch" in out.stdout
    assert "numerics.mode=native" in out.stdout


def test_native_mode_takes_the_machines_kernels_and_says_so():
    code = (
        "from harness import numerics; from harness.config import NumericsConfig\n"
        "import json; print(json.dumps(numerics.settle(NumericsConfig(mode='native'), 1)))"
    )
    found = json.loads(_python(code).stdout)
    assert found["mode"] == "native" and found["portable"] is False
    assert found["mkl_branch"] == "OFF" and found["onednn_enabled"] is True


def test_numerics_fields_are_config_with_domains():
    cfg = apply_overrides(study_config("vqa", "smoke"), ["numerics.threads=2"])
    assert cfg.numerics.threads == 2 and cfg.hash() != study_config("vqa", "smoke").hash()
    for bad in ("numerics.mode=fast", "numerics.threads=0", "numerics.teacher_threads=-1"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            apply_overrides(study_config("vqa", "smoke"), [bad])


def _with_numerics(records: list[dict], **changes) -> list[dict]:
    found = {**numerics.settle(PORTABLE, 1), **changes}
    for r in records:
        r["provenance"]["numerics"] = found
    return records


def test_report_prints_numerics_and_warns_when_they_differ(tmp_path, capsys):
    same = _with_numerics(grid({"uniform": [60.0, 61.0], "optima": [62.0, 63.0]}))
    write_runs(tmp_path / "runs", same)
    (path, _) = write_reports(tmp_path / "runs", tmp_path / "reports")
    text = path.read_text()
    assert "- numerics: portable: ATen AVX2, MKL" in text and "1 thread a run" in text
    assert "different numerics" not in text and "warning" not in capsys.readouterr().err
    other = _with_numerics(grid({"random": [59.0, 60.0]}), threads=2, aten_kernels="AVX512")
    write_runs(tmp_path / "runs", other)
    (path, _) = write_reports(tmp_path / "runs", tmp_path / "reports")
    text = path.read_text()
    assert "**Warning: these records come from 2 different numerics**" in text
    assert "ATen AVX512" in text and "2 threads a run" in text
    assert "vqa: its records come from 2 different numerics" in capsys.readouterr().err


def test_no_step_of_a_run_calls_mkls_vendor_dependent_sqrt(tmp_path, monkeypatch):
    """A float32 tensor's `sqrt` on CPU is MKL's vsSqrt: not correctly rounded in its
    reproducible branch, and rounded differently on Intel and AMD CPUs (issue 19: digits made
    on one vendor moved in the 7th place on the other). Pre-training, teacher and runs must
    not call it; AdamW's fused CPU kernel takes ATen's own, correctly rounded sqrt."""
    from harness.cli import main

    def refuse(*args, **kwargs):
        raise AssertionError("torch.sqrt called: its bits follow the CPU vendor")

    monkeypatch.setattr(torch, "sqrt", refuse)
    monkeypatch.setattr(torch.Tensor, "sqrt", refuse)
    argv = ["reproduce", "vqa", "--preset", "smoke", "--seeds", "0", "--schedulers", "optima"]
    argv += ["--max-steps", "4", "--executor", "serial", "--quiet"]
    assert main([*argv, "--workdir", str(tmp_path / "work"), "--reports", str(tmp_path)]) == 0
