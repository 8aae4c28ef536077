"""Reports from records built here with known values (the shape `harness.runs.execute_run`
writes): byte-identical regeneration, the numbers in the main table, failed and missing runs
listed, tables that parse as tables, figures that open, clear errors on other schemas."""

import json
from pathlib import Path

import numpy as np
import pytest
from markdown_it import MarkdownIt
from PIL import Image

from harness.config import LR_EVIDENCE
from harness.errors import UserError
from harness.records import SCHEMA_VERSION, Grid, RecordError, load_records, parse_record
from harness.report import task_report, write_reports
from harness.stats import detectable_difference, seeds_needed

MODULES = ("visual", "text", "text_decoder")
ACTIVE = {"optima": lambda p: [MODULES[p % 3]], "uniform": lambda p: sorted(MODULES)}
CONFIG_HASH = "c0ffee0000000000"


def record(
    scheduler: str,
    seed: int,
    primary: float | None,
    *,
    task: str = "vqa",
    config_hash: str = CONFIG_HASH,
    steps: int = 40,
    rounds: int = 4,
    evals: bool = False,
    error: str | None = None,
) -> dict:
    """A record as `execute_run` writes it; `primary=None` with `error` makes a failed run."""
    active = ACTIVE.get(scheduler, lambda p: [])
    trace = []
    for p in range(rounds):
        x = {
            "round": p,
            "active": active(p),
            "reward": 0.5 / (p + 1) + 0.01 * seed,
            "objective_before": 10.0 - p,
            "objective_after": 9.0 - p,
            "train": {"loss": 5.0 - p, "task": 4.0 - p / 2, "pred": 4.5 - p / 2}
            | {f"layer/{m}": 2.0 - p / 10 for m in MODULES},
            "reward_set": {"task": 4.0, "pred": 4.5} | {f"layer/{m}": 2.0 for m in MODULES},
            "lr": 0.01 * (1 - p / rounds),
            "scheduler": {},
        }
        if scheduler == "optima":
            means = {
                m: (None if p == 0 else 0.1 * (i + 1) + 0.01 * seed) for i, m in enumerate(MODULES)
            }
            x["scheduler"] = {
                "phase": "warmup" if p < 2 else "sample",
                "arm": MODULES[p % 3],
                "posterior_means": means,
                "samples": means,
                "counts": {m: float(p) for m in MODULES},
            }
        if evals:
            x["eval"] = {"step": (p + 1) * steps // rounds, "primary": (primary or 0) - 5 + p}
        trace.append(x)
    metrics = {}
    if primary is not None:
        metrics = {
            "primary": primary,
            "overall": primary,
            "perAnswerType": {"yes/no": primary + 10, "number": primary - 10, "other": primary},
        }
    out = {
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "scheduler": scheduler,
        "seed": seed,
        "status": "complete" if error is None else "failed",
        "config": {
            "task": task,
            "preset": "unit",
            "teacher": {"model": "tiny"},
            "distill": {
                "student": "tiny-student",
                "steps": steps,
                "rounds": rounds,
                "warmup_rounds": 2,
                "gamma": 0.98,
                "alpha": [0.0, 1.0, 0.01],
            },
            "eval_split": "val2014",
        },
        "config_hash": config_hash,
        "metric": {"name": "VQA accuracy (official, %)", "primary": "overall"},
        "teacher": {
            "key": "teacherkey",
            "metrics": {
                "primary": 80.0,
                "perAnswerType": {"yes/no": 90.0, "number": 70.0, "other": 75.0},
            },
        },
        "metrics": metrics,
        "rounds": trace if error is None else [],
        "timing": {"wall_seconds": 1.0},
        "provenance": {
            "git": {"commit": "abc123", "dirty": False},
            "packages": {"numpy": "2.0", "torch": "2.9"},
            "python": "3.11.7",
            "platform": "Linux",
            "device": "cpu",
            "torch_threads": 2,
            "data": {
                "root": "work/data/vqa-unit",
                "source": "synthetic world 'unit' (embedded default)",
                "sha256": "d" * 64,
                "splits": {"train2014": 100, "val2014": 20},
                "tokenizer_sha256": "e" * 64,
            },
            "evaluator": {"name": "GT-Vision-Lab/VQA vqaEval.py @ a013f00 (reimplemented)"},
            "ours_options": {"reward": "relative", "arms": "modules"},
            "optimizer": {"name": "torch.optim.Adafactor", "note": "no first moment"},
        },
    }
    if error is not None:
        out["error"] = {"message": error, "round": 1, "step": 20}
    return out


def write_runs(runs: Path, records: list[dict]) -> Path:
    for r in records:
        study = runs / r["task"] / f"{r['config']['preset']}-{r['config_hash']}"
        path = study / r["scheduler"] / f"seed-{r['seed']}" / "record.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r, indent=2))
    return runs


def grid(base: dict[str, list[float]], **kw) -> list[dict]:
    return [record(name, s, v, **kw) for name, values in base.items() for s, v in enumerate(values)]


UNIFORM = [60.25, 63.5, 58.75]


def main_row(text: str, row: str) -> list[str]:
    """The cells of `row` in the main table (the first table of the report)."""
    table = text.split("## Main table", 1)[1].split("\n\n", 2)[1]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if cells[0] == row:
            return cells
    raise AssertionError(f"no row {row!r} in\n{table}")


def tables(text: str) -> list[list[list[str]]]:
    """Tables as markdown-it (CommonMark + GFM tables) parses them: rows of cell texts."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    out, row = [], None
    for i, t in enumerate(tokens):
        if t.type == "table_open":
            out.append([])
        elif t.type == "tr_open":
            row = []
        elif t.type in ("th_open", "td_open"):
            row.append(tokens[i + 1].content if tokens[i + 1].type == "inline" else "")
        elif t.type == "tr_close":
            out[-1].append(row)
    return out


def images(text: str) -> list[str]:
    tokens = MarkdownIt("commonmark").parse(text)
    return [c.attrs["src"] for t in tokens if t.children for c in t.children if c.type == "image"]


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """Four schedulers x three seeds with known differences to uniform, and its reports."""
    base = {
        "optima": [u + 1.5 for u in UNIFORM],
        "uniform": UNIFORM,
        "random": [58.0, 65.0, 57.5],
        "none": [u - 2.0 for u in UNIFORM],
    }
    tmp = tmp_path_factory.mktemp("full")
    runs = write_runs(tmp / "runs", grid(base, evals=True))
    assert [p.name for p in write_reports(runs, tmp / "reports")] == ["vqa.md", "summary.md"]
    return tmp


def test_reports_regenerate_byte_identically(full, tmp_path):
    first = full / "reports"
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    write_reports(full / "runs", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)
    assert {"vqa-module-selection.png", "vqa-rewards.png", "vqa-posterior.png"} <= set(before)
    assert "vqa-curves.png" in before
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, name
    write_reports(full / "runs", tmp_path)  # over its own output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert not list(tmp_path.glob(".*"))  # no temp files left


def test_main_table_has_known_statistics(full):
    text = (full / "reports" / "vqa.md").read_text()
    optima = main_row(text, "optima")
    assert optima[:2] == ["optima", "3"]
    # a constant difference: its interval collapses and it has no spread to size power from
    assert optima[-5:] == ["+1.50 [+1.50, +1.50] t", "– (no spread)", "–", "3/3", ""]
    none = main_row(text, "none")
    assert none[-5:-1] == ["-2.00 [-2.00, -2.00] t", "– (no spread)", "–", "0/3"]
    uniform = main_row(text, "uniform")
    assert uniform[2] == "60.83 ± 2.43" and uniform[-5:] == ["", "", "", "", ""]
    # secondary columns: yes/no = primary + 10
    assert uniform[3] == "70.83 ± 2.43"
    teacher = main_row(text, "teacher")
    assert teacher[:6] == ["teacher", "1", "80.00", "90.00", "70.00", "75.00"]
    random = main_row(text, "random")
    assert random[-2] == "1/3"
    # differences -2.25, +1.5, -1.25: sd 1.942, n = 3
    sd = float(np.std([-2.25, 1.5, -1.25], ddof=1))
    assert random[-4:-2] == [f"{detectable_difference(sd, 3):.2f}", str(seeds_needed(1.0, sd))]
    assert random[-4:-2] == ["6.34", "32"]
    assert "One point (seeds for 1 point) is one percentage point of accuracy." in text
    assert "noncentral t" in text and "fewer than 30 seeds pair up" in text
    assert text.startswith("# VQA v2") and "**How to read this report.**" in text


def test_swapped_rows_flip_the_difference(tmp_path):
    base = {"optima": UNIFORM, "uniform": [u + 1.5 for u in UNIFORM]}
    runs = write_runs(tmp_path / "runs", grid(base))
    text = write_reports(runs, tmp_path / "r")[0].read_text()
    assert main_row(text, "optima")[-5:-1] == [
        "-1.50 [-1.50, -1.50] t",
        "– (no spread)",
        "–",
        "0/3",
    ]


def test_setup_line_defines_none_only_where_it_is_a_row(full, tmp_path):
    runs = write_runs(tmp_path / "runs", grid({"optima": UNIFORM, "uniform": UNIFORM}))
    without = write_reports(runs, tmp_path / "r")[0].read_text()
    with_none = (full / "reports" / "vqa.md").read_text()
    definition = "`none` is the student trained on the task alone"
    assert "| none |" in with_none and definition in with_none
    assert "| none |" not in without and definition not in without
    assert "Metric: VQA accuracy" in without  # the rest of the line stays


def test_failed_and_missing_runs_are_listed(tmp_path):
    records = grid({"optima": [61.0, None, 60.0], "uniform": [60.0, 62.0, 59.0]})
    records[1] = record("optima", 1, None, error="NumericalError: non-finite | loss\ntrace")
    del records[5]  # uniform seed 2 never wrote a record
    runs = write_runs(tmp_path / "runs", records)
    rows = dict.fromkeys(("optima", "uniform", "random"), (0, 1, 2))
    expected = {"vqa": Grid.of(CONFIG_HASH, rows)}
    text = write_reports(runs, tmp_path / "r", expected)[0].read_text()
    section = text.split("## Failed and missing runs", 1)[1].split("##", 1)[0]
    rows = tables(section)[0]
    assert rows[0] == ["row", "seed", "status", "reason"]
    assert rows[1][:3] == ["optima", "1", "failed"]
    assert "non-finite | loss (round 1, step 20)" in rows[1][3]
    assert rows[2][:3] == ["uniform", "2", "missing"]
    assert [r[:3] for r in rows[3:]] == [["random", str(s), "missing"] for s in range(3)]
    assert main_row(text, "optima")[1] == "2 of 3"
    assert main_row(text, "random")[1:3] == ["0 of 3", "–"]
    per_seed = text.split("## Per seed", 1)[1]
    assert tables(per_seed)[0] == [
        ["seed", "optima", "uniform", "random"],
        ["0", "61.00", "60.00", "missing"],
        ["1", "failed", "62.00", "missing"],
        ["2", "60.00", "missing", "missing"],
    ]
    assert "1 failed, 4 missing" in text


def test_missing_runs_inferred_without_a_grid(tmp_path):
    records = grid({"optima": [61.0, 60.0], "uniform": [60.0, 62.0]})
    runs = write_runs(tmp_path / "runs", records[:3])  # uniform seed 1 absent
    text = write_reports(runs, tmp_path / "r")[0].read_text()
    assert "| uniform | 1 | missing |" in text


def test_markdown_renders_as_tables_and_images_open(full):
    out = full / "reports"
    text, summary = (out / "vqa.md").read_text(), out / "summary.md"
    parsed = tables(text)
    assert len(parsed) == 3  # main, per seed, rewards; no failed or missing run: a sentence
    for rows in parsed:
        assert len({len(r) for r in rows}) == 1, rows  # every row as wide as the header
    assert parsed[0][0][:3] == ["row", "n", "primary"]
    assert [r[0] for r in parsed[0][1:]] == ["teacher", "optima", "uniform", "random", "none"]
    srcs = images(text)
    assert len(srcs) == 4
    for src in srcs:
        with Image.open(out / src) as im:
            im.verify()
        with Image.open(out / src) as im:
            assert im.format == "PNG" and im.size[0] >= 600
    summary_rows = tables(summary.read_text())[0]
    assert summary_rows[0] == ["row", "VQA v2"]
    assert summary_rows[2] == ["optima", "62.33 ± 2.43 (n=3)"]
    assert summary_rows[-1] == ["runs complete", "12/12"]


def test_published_numbers_are_quoted_with_their_source(full, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "published.toml").write_text(
        '[vqa.optima]\nprimary = 77.3\nsource = "Paper, Table 1"\n'
        '[vqa.teacher]\nprimary = 82.1\nsource = "Paper, Table 1"\n'
    )
    text = write_reports(full / "runs", out)[0].read_text()
    assert main_row(text, "optima")[-1] == "77.30 [1]"
    assert main_row(text, "teacher")[-1] == "82.10 [1]"
    assert "Published numbers: [1] Paper, Table 1." in text
    (out / "published.toml").write_text("[vqa.optima]\nprimary = 77.3\n")
    with pytest.raises(UserError, match="source"):
        write_reports(full / "runs", out)


def test_shipped_published_file_is_empty():
    root = Path(__file__).resolve().parent.parent
    from harness.report import load_published

    assert load_published(root / "reports" / "published.toml") == {}


@pytest.mark.parametrize(
    ("version", "words"), [(0, "older"), (SCHEMA_VERSION + 1, "newer"), (None, "no integer")]
)
def test_other_record_versions_give_a_clear_error(tmp_path, version, words):
    records = grid({"uniform": [60.0, 61.0]})
    records[1]["schema_version"] = version
    runs = write_runs(tmp_path / "runs", records)
    with pytest.raises(RecordError, match=words) as e:
        write_reports(runs, tmp_path / "r")
    assert "seed-1/record.json" in str(e.value) and "schema_version" in str(e.value)
    assert isinstance(e.value, UserError)


def test_a_bad_field_is_named(tmp_path):
    records = grid({"uniform": [60.0]})
    records[0]["metrics"]["primary"] = "sixty"
    runs = write_runs(tmp_path / "runs", records)
    with pytest.raises(RecordError, match=r"field 'metrics.primary': expected a number"):
        load_records(runs)


def test_no_records_is_a_user_error(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(UserError, match="no run records"):
        write_reports(tmp_path / "runs", tmp_path / "r")
    with pytest.raises(UserError, match="no such directory"):
        write_reports(tmp_path / "absent", tmp_path / "r")


def test_one_study_per_task_and_the_others_named(tmp_path):
    small = grid({"optima": [50.0], "uniform": [49.0]}, config_hash="aaaa", steps=20)
    big = grid({"optima": [70.0, 71.0], "uniform": [69.0, 70.0]})
    runs = write_runs(tmp_path / "runs", small + big)
    text = write_reports(runs, tmp_path / "r")[0].read_text()
    assert main_row(text, "optima")[2] == "70.50 ± 0.71"
    assert "config hash `aaaa`" in text.split("## Other studies", 1)[1]
    pick_small = {"vqa": Grid.of("aaaa", {"optima": [0]})}
    text = write_reports(runs, tmp_path / "r", pick_small)[0].read_text()
    assert main_row(text, "optima")[2] == "50.00"


def test_figures_follow_the_records(tmp_path):
    """Records without a bandit or training-time eval: no posterior figure, no stale one."""
    out = tmp_path / "r"
    with_optima = write_runs(tmp_path / "a", grid({"optima": [61.0], "uniform": [60.0]}))
    write_reports(with_optima, out)
    assert (out / "vqa-posterior.png").exists()
    without = write_runs(tmp_path / "b", grid({"uniform": [60.0], "none": [58.0]}))
    text = write_reports(without, out)[0].read_text()
    assert not (out / "vqa-posterior.png").exists()
    assert images(text) == ["vqa-module-selection.png", "vqa-rewards.png", "vqa-curves.png"]


def test_task_report_accepts_run_grid_records(tmp_path):
    records = [
        parse_record(r, tmp_path / f"{r['scheduler']}-{r['seed']}.json")
        for r in grid({"optima": [61.0, 62.0], "uniform": [60.0, 61.0]})
    ]
    out = task_report("vqa", [*records, None], tmp_path / "r")
    assert main_row(out.read_text(), "optima")[-5:-1] == [
        "+1.00 [+1.00, +1.00] t",
        "– (no spread)",
        "–",
        "2/2",
    ]


def test_reader_and_writer_agree_on_the_version():
    from harness import runs

    assert runs.SCHEMA_VERSION == SCHEMA_VERSION


def test_readings_line_names_lr_against_the_card_and_the_options(tmp_path):
    records = grid({"optima": [61.0, 62.0], "uniform": [60.0, 61.0]})
    for r in records:
        r["config"]["preset"] = "default"
        r["config"]["distill"]["lr"] = 0.01
        r["provenance"]["ours_options"] = {
            "reward": "relative",
            "reward_loss": "full",
            "arms": "modules",
            "warmup": "round-robin",
            "student_init": "teacher-layers",
            "layer_loss_positions": "non-pad",
            "weight_decay": 0.01,
        }
        r["provenance"]["student_init"] = {
            "option": "teacher-layers",
            "copied_modules": [],
            "random_modules": list(MODULES),
            "copied_parameters": 0,
        }
    text = write_reports(write_runs(tmp_path / "runs", records), tmp_path / "r")[0].read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("**Readings.**")]
    why = LR_EVIDENCE["default", 0.01]
    assert line == (
        f"**Readings.** Distillation lr 0.01 (not the card's 0.001; {why}); "
        "reward=relative, "
        "reward_loss=full, warmup=round-robin, student_init=teacher-layers, "
        "layer_loss_positions=non-pad; student initialisation: teacher-layers, but no module's "
        "width matches the teacher's: all random."
    )
    assert "- [ours] options (the reading of the method these runs used): reward=relative" in text
    # the card's lr, and a student that took teacher layers where widths match
    records[0]["config"]["distill"]["lr"] = 1e-3
    records[0]["provenance"]["student_init"] |= {
        "copied_modules": ["visual"],
        "random_modules": ["text", "text_decoder"],
        "copied_parameters": 12,
    }
    text = write_reports(write_runs(tmp_path / "runs", records), tmp_path / "r")[0].read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("**Readings.**")]
    assert "lr 0.001 (the card's value) (1 runs); 0.01 (not the card's 0.001; " in line
    assert f"{why}) (3 runs)" in line
    # a rate without measured evidence for its preset says only that it is not the card's
    for r in records:
        r["config"]["distill"]["lr"] = 2e-3
    text = write_reports(write_runs(tmp_path / "runs", records), tmp_path / "r")[0].read_text()
    assert "Distillation lr 0.002 (not the card's 0.001); reward=" in text
    for r in records:
        r["config"] |= {"preset": "smoke", "distill": r["config"]["distill"] | {"lr": 0.01}}
    smoke = write_runs(tmp_path / "smoke-runs", records)
    text = write_reports(smoke, tmp_path / "smoke-reports")[0].read_text()
    assert "Distillation lr 0.01 (not the card's 0.001); reward=" in text
    assert "teacher-layers, copied into visual (12 tensors); text, text_decoder random" in line


@pytest.mark.parametrize(
    ("optima", "answer"),
    [
        ([62.0, 63.5, 61.0, 62.5], "OPTIMA beats `uniform` on this study"),
        ([58.0, 59.5, 57.0, 58.5], "OPTIMA does worse than `uniform` on this study"),
        ([61.0, 59.0, 60.5, 60.0], "this study cannot tell OPTIMA from `uniform`"),
    ],
)
def test_the_report_states_its_verdict_with_the_interval(tmp_path, optima, answer):
    runs = write_runs(
        tmp_path / "runs", grid({"optima": optima, "uniform": [60.0, 61.0, 59.0, 60.5]})
    )
    text = write_reports(runs, tmp_path / "r")[0].read_text()
    line = next(x for x in text.splitlines() if x.startswith("**Verdict.**"))
    assert f"On 4 paired seeds, {answer}: optima - uniform = " in line
    interval = next(c for c in main_row(text, "optima") if "[" in c)  # the main table's
    assert interval in line and "80% of the time" in line
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert f"- VQA v2: {line.removeprefix('**Verdict.** ')}" in summary


def test_no_verdict_from_one_seed(tmp_path):
    runs = write_runs(tmp_path / "runs", grid({"optima": [61.0], "uniform": [60.0]}))
    text = write_reports(runs, tmp_path / "r")[0].read_text()
    assert "**Verdict.** None: `optima` and `uniform` completed 1 common seed(s)" in text
