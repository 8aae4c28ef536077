"""`reports/bench.md` after a run of some benchmarks only keeps what that run did not measure."""

from harness.tools import bench


def _results(rows, timings, notes=(), sections=None):
    return {
        "machine": "m",
        "rows": [tuple(r) for r in rows],
        "timings": dict(timings),
        "notes": list(notes),
        "sections": sections or {},
    }


def test_a_subset_run_replaces_its_figures_and_keeps_the_others(tmp_path):
    full = _results(
        [("step ratio", "1.05", "<= 1.05"), ("bf16 / fp32", "3.76x", "report")],
        {"bare step": 0.066, "bf16 step": 2.57},
        ["Step ratio: how it is measured."],
        {"Runs phase": ["| a | b |", "", "Ratio 3.00x."]},
    )
    assert bench.parse(bench.render(full)) == {k: full[k] for k in bench.parse(bench.render(full))}
    bench.write(full, tmp_path)
    subset = _results([("bf16 / fp32", "2.58x", "report")], {"bf16 step": 0.745}, ["bf16: how."])
    text = (tmp_path / bench.REPORT).read_text()
    bench.write(subset, tmp_path)
    got = bench.parse((tmp_path / bench.REPORT).read_text())
    assert got["rows"] == [("step ratio", "1.05", "<= 1.05"), ("bf16 / fp32", "2.58x", "report")]
    assert got["timings"] == {"bare step": 0.066, "bf16 step": 0.745}
    assert got["sections"] == {"Runs phase": ["| a | b |", "", "Ratio 3.00x."]}
    assert "Step ratio: how it is measured." in got["notes"] and "bf16: how." in got["notes"]
    assert any(n.startswith(bench.KEPT) and "step ratio" in n for n in got["notes"])
    assert text != (tmp_path / bench.REPORT).read_text()
    bench.write(full, tmp_path)  # a full run again: nothing is marked as kept
    assert not any(
        n.startswith(bench.KEPT)
        for n in bench.parse((tmp_path / bench.REPORT).read_text())["notes"]
    )
