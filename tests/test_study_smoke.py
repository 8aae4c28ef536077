"""The real entry point on the smoke preset, as nox and reviewers call it (open_clip's
`test_training_simple.py` habit): end to end, deterministic, resumable by skipping."""

import json
import shutil

import pytest

from harness.cli import main

ROWS = ("optima", "uniform", "random", "none")  # the default grid and the `none` reference
CACHE_TOLERANCE = 0.5  # VQA accuracy points


def _reproduce(workdir, reports, *extra):
    argv = ["reproduce", "vqa", "--preset", "smoke", "--seeds", "0", "--quiet"]
    argv += ["--schedulers", ",".join(ROWS)]  # a later `--schedulers` in `extra` wins
    return main([*argv, "--workdir", str(workdir), "--reports", str(reports), *extra])


def _records(workdir):
    found = sorted(workdir.glob("runs/vqa/*/*/seed-*/record.json"))
    return {p.parent.parent.name: json.loads(p.read_text()) for p in found}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    base = tmp_path_factory.mktemp("smoke")
    assert _reproduce(base / "work", base / "reports") == 0
    return base


def test_report_has_every_row(smoke):
    text = (smoke / "reports" / "vqa.md").read_text()
    for row in ("teacher", *ROWS):
        assert f"| {row} |" in text
    assert (smoke / "reports" / "vqa-module-selection.png").stat().st_size > 1000


def test_records_follow_the_contract(smoke):
    records = _records(smoke / "work")
    assert set(records) == set(ROWS)
    for name, r in records.items():
        assert r["schema_version"] == 1 and r["status"] == "complete"
        assert r["task"] == "vqa" and r["scheduler"] == name and r["seed"] == 0
        assert 0.0 <= r["metrics"]["primary"] <= 100.0
        assert set(r["metrics"]["perAnswerType"]) == {"yes/no", "number", "other"}
        assert len(r["rounds"]) == r["config"]["distill"]["rounds"]
        assert all(isinstance(x["reward"], float) for x in r["rounds"])
        assert r["provenance"]["ours_options"]["reward"] == "relative"
        # teacher-layers by default; the smoke student is narrower than its teacher everywhere
        assert r["provenance"]["student_init"] == {
            "option": "teacher-layers",
            "copied_modules": [],
            "random_modules": ["visual", "text", "text_decoder"],
            "copied_parameters": 0,
        }
    optima = records["optima"]["rounds"]
    assert all(len(x["active"]) == 1 for x in optima)
    assert optima[0]["scheduler"]["phase"] == "warmup"
    assert all(
        x["active"] == ["text", "text_decoder", "visual"] for x in records["uniform"]["rounds"]
    )
    assert all(x["active"] == [] for x in records["none"]["rounds"])


def test_same_command_twice_is_bitwise_identical(smoke, tmp_path):
    """Everything but wall-clock timing, from a fresh work directory."""
    assert _reproduce(tmp_path / "work", tmp_path / "reports") == 0
    first, second = _records(smoke / "work"), _records(tmp_path / "work")
    for name in ROWS:
        assert first[name]["metrics"] == second[name]["metrics"]
        assert first[name]["rounds"] == second[name]["rounds"]
        assert first[name]["teacher"] == second[name]["teacher"]


def test_rerun_skips_complete_runs(smoke, tmp_path, capsys):
    shutil.copytree(smoke / "work", tmp_path / "work")
    before = _records(tmp_path / "work")
    assert _reproduce(tmp_path / "work", tmp_path / "reports") == 0
    out = capsys.readouterr().out
    assert "complete, skipped" in out
    assert "teacher outputs: reusing" in out  # stored by the first process, not recomputed
    assert "study time: " in out and " min runs" in out  # what issue 14's 15 minutes count
    assert _records(tmp_path / "work") == before


def test_students_with_and_without_the_teacher_cache_agree(smoke, tmp_path):
    """The cache changes teacher outputs only by float rounding of batch composition (1e-5,
    tests/test_teacher_cache.py); after training, the student's metric stays within
    CACHE_TOLERANCE points and the bandit makes the same choices."""
    shutil.copytree(smoke / "work", tmp_path / "work")
    extra = ("--schedulers", "optima", "--set", "teacher_cache=false")
    assert _reproduce(tmp_path / "work", tmp_path / "reports", *extra) == 0
    found = sorted((tmp_path / "work").glob("runs/vqa/*/optima/seed-0/record.json"))
    runs = {
        json.loads(p.read_text())["config"]["teacher_cache"]: json.loads(p.read_text())
        for p in found
    }
    cached, live = runs[True], runs[False]
    assert [r["active"] for r in cached["rounds"]] == [r["active"] for r in live["rounds"]]
    gap = abs(cached["metrics"]["primary"] - live["metrics"]["primary"])
    print("cache vs live metric gap", gap)
    assert gap <= CACHE_TOLERANCE


def test_compared_rows_run_every_seed_the_others_the_first_k(smoke, tmp_path):
    """`--seeds 0-1 --descriptive-seeds 1`: optima and uniform run seeds 0 and 1, none only 0;
    seed 0 of each is the smoke study's, skipped. The report lists none's seed 1 as not asked
    for (–), not missing."""
    shutil.copytree(smoke / "work", tmp_path / "work")
    extra = ("--seeds", "0-1", "--descriptive-seeds", "1", "--schedulers", "optima,uniform,none")
    assert _reproduce(tmp_path / "work", tmp_path / "reports", *extra) == 0
    found = sorted((tmp_path / "work").glob("runs/vqa/*/*/seed-*/record.json"))
    ran = {(p.parent.parent.name, p.parent.name) for p in found}
    assert {(s, n) for s, n in ran if s != "random"} == {
        ("optima", "seed-0"), ("optima", "seed-1"), ("uniform", "seed-0"),
        ("uniform", "seed-1"), ("none", "seed-0"),
    }  # fmt: skip
    text = (tmp_path / "reports" / "vqa.md").read_text()
    per_seed = text.split("## Per seed", 1)[1].split("##", 1)[0]
    assert "| 1 |" in per_seed and per_seed.count("missing") == 0
    assert "all 6 runs of this study completed" in text  # random's seed 0 is the smoke study's


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert _reproduce(tmp_path, tmp_path, "--seeds", "0,x") == 2
    assert "--seeds" in capsys.readouterr().err
    assert _reproduce(tmp_path, tmp_path, "--schedulers", "optima,bogus") == 2
    assert "bogus" in capsys.readouterr().err
    argv = ["reproduce", "vqa", "--preset", "nope", "--workdir", str(tmp_path)]
    assert main(argv) == 2
    assert "nope" in capsys.readouterr().err


def test_set_overrides_a_field_into_its_own_study(smoke, tmp_path, capsys):
    shutil.copytree(smoke / "work", tmp_path / "work")
    extra = ("--schedulers", "optima", "--set", "distill.gamma=0.5", "--set", "distill.warmup=all")
    assert _reproduce(tmp_path / "work", tmp_path / "reports", *extra) == 0
    found = sorted((tmp_path / "work").glob("runs/vqa/*/optima/seed-0/record.json"))
    assert len(found) == 2  # the preset's study and the overridden one, side by side
    distill = [json.loads(p.read_text())["config"]["distill"] for p in found]
    assert sorted((d["gamma"], d["warmup"]) for d in distill) == [
        (0.5, "all"),
        (0.98, "shuffled"),
    ]
    for bad, named in (("distill.gamma=1.5", "gamma"), ("distill.gama=1", "gama"), ("x", "x")):
        assert _reproduce(tmp_path / "work", tmp_path / "reports", "--set", bad) == 2
        assert named in capsys.readouterr().err


def test_ablate_shares_the_main_runs_and_reports_each_variant(smoke, tmp_path, capsys):
    shutil.copytree(smoke / "work", tmp_path / "work")
    argv = ["ablate", "vqa", "--preset", "smoke", "--seeds", "0", "--quiet"]
    argv += ["--workdir", str(tmp_path / "work"), "--reports", str(tmp_path / "reports")]
    assert main([*argv, "--only", "warmup-all,single:text"]) == 0
    out = capsys.readouterr().out
    assert "run optima seed 0: complete, skipped" in out  # the main study's run, not re-run
    text = (tmp_path / "reports" / "ablations-vqa.md").read_text()
    for row in ("optima", "warmup-all", "single:text"):
        assert f"| `{row}` |" in text
    assert "| `uniform` |" not in text and "None: all 3 runs completed." in text
    # variants never enter the main study's folder, so its report is unchanged
    assert set(_records(tmp_path / "work")) == set(ROWS)
    assert len(list((tmp_path / "work" / "ablations" / "vqa").glob("*/*/seed-0/record.json"))) == 2
    # the report is a function of the records: a second call re-runs nothing, same bytes
    assert main([*argv, "--only", "warmup-all,single:text"]) == 0
    assert "FAILED" not in capsys.readouterr().out
    assert (tmp_path / "reports" / "ablations-vqa.md").read_text() == text
    assert main([*argv, "--only", "bogus"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_ablate_takes_overrides_and_max_steps(smoke, tmp_path):
    shutil.copytree(smoke / "work", tmp_path / "work")
    argv = ["ablate", "vqa", "--preset", "smoke", "--seeds", "0", "--quiet", "--only", "gamma-0.9"]
    argv += ["--workdir", str(tmp_path / "work"), "--reports", str(tmp_path / "reports")]
    assert main([*argv, "--max-steps", "3", "--set", "distill.warmup=all"]) == 0
    found = sorted((tmp_path / "work" / "ablations").glob("vqa/*/*/seed-0/record.json"))
    assert len(found) == 1  # the variant; the study's own optima run sits with the study
    record = json.loads(found[0].read_text())
    assert record["config"]["max_steps"] == 3
    assert record["config"]["distill"]["warmup"] == "all"
    assert record["config"]["distill"]["gamma"] == 0.9
