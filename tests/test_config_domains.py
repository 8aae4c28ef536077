"""Every config field's domain is checked before any work starts, and folders the harness
cannot write stop it naming the folder (issue 16, items 2, 7, 8): exit 2, never a failed run,
a traceback or minutes of training first. Nothing here trains."""

import dataclasses
import os
import stat
import tempfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import (
    DOMAINS,
    ConfigError,
    StudyConfig,
    apply_overrides,
    check_sizes,
    parse_seeds,
    row_seeds,
    study_config,
)
from harness.tasks import cards

SMOKE = ["reproduce", "vqa", "--preset", "smoke", "--seeds", "0", "--schedulers", "uniform"]


def _reproduce(tmp_path: Path, *extra: str) -> int:
    work = tmp_path / "work"
    return main([*SMOKE, "--quiet", "--workdir", str(work), "--reports", str(work / "r"), *extra])


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ("distill.lr=nan", "distill.lr", "finite number, got nan"),
        ("distill.lr=inf", "distill.lr", "finite number, got inf"),
        ("pretrain.lr=-inf", "pretrain.lr", "finite number"),
        ("distill.gamma=nan", "distill.gamma", "finite number"),
        ("distill.alpha=0,nan,1", "distill.alpha", "finite number"),
        ("distill.alpha=0,0,0", "distill.alpha", "not all 0"),
        ("distill.alpha=0,-1,1", "distill.alpha", "weights >= 0"),
        ("distill.temperature=0", "distill.temperature", "> 0"),
        ("distill.weight_decay=-0.1", "distill.weight_decay", ">= 0"),
        ("distill.reward_set_size=0", "distill.reward_set_size", ">= 1"),
        ("distill.gamma=1.5", "distill.gamma", "in (0, 1]"),
        ("distill.warmup_rounds=7", "distill.warmup_rounds", "[0, P=6]"),
        ("distill.posterior=laplace", "distill.posterior", "one of"),
        ("distill.warmup=sorted", "distill.warmup", "one of"),
        ("distill.reward_baseline=mean", "distill.reward_baseline", "one of"),
        ("distill.reward_skip_rounds=-1", "distill.reward_skip_rounds", ">= 0"),
        ("distill.layer_loss_norm=batch", "distill.layer_loss_norm", "one of"),
        ("eval_batch_size=0", "eval_batch_size", ">= 1"),
        ("eval_every_rounds=-1", "eval_every_rounds", ">= 0"),
        ("answer_top_k=0", "answer_top_k", ">= 1"),
        ("context_length=1", "context_length", ">= 2"),
        ("vocab_size=2", "vocab_size", ">= 5"),
        ("max_steps=-1", "max_steps", ">= 0"),
        ("teacher.batch_size=0", "teacher.batch_size", ">= 1"),
        ("teacher.steps=-5", "teacher.steps", ">= 0"),
        ("teacher.warmup_steps=-1", "teacher.warmup_steps", ">= 0"),
        ("teacher.weight_decay=nan", "teacher.weight_decay", "finite number"),
        ("pretrain.batch_size=0", "pretrain.batch_size", ">= 1"),
        ("teacher_cache_dtype=int8", "teacher_cache_dtype", "one of"),
    ],
)
def test_a_value_outside_its_domain_exits_2_before_any_work(
    tmp_path, capsys, override, field, words
):
    assert _reproduce(tmp_path, "--set", override) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"optima-repro: error: {field} ") and words in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "work").exists()  # stopped before the work directory was made


def test_fields_added_later_keep_hashes_at_their_published_reading():
    smoke = study_config("vqa", "smoke")
    late = ("reward_baseline", "reward_skip_rounds", "layer_loss_norm")
    published = apply_overrides(
        smoke,
        [
            "distill.reward_baseline=none",
            "distill.reward_skip_rounds=0",
            "distill.layer_loss_norm=none",
        ],
    )
    assert not set(late) & set(published.identity()["distill"])  # hashed as before they existed
    assert smoke.identity()["distill"]["reward_baseline"] == "ratio"  # today's default: own hash
    assert published.hash() != smoke.hash()


@pytest.mark.parametrize("seeds", ["-1", "0,-3"])
def test_negative_seeds_exit_2(tmp_path, capsys, seeds):
    argv = [*SMOKE[:-4], "--seeds", seeds, "--workdir", str(tmp_path / "work")]
    assert main(argv) == 2
    assert "--seeds must be integers >= 0" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def _numeric_fields(obj, prefix=""):
    """(section type, field name, dotted path) of every number or numbers field, recursively."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _numeric_fields(value, f"{prefix}{f.name}.")
        elif any(isinstance(x, int | float) and not isinstance(x, bool) for x in _items(value)):
            yield type(obj), f.name, prefix + f.name


def _items(value):
    return value if isinstance(value, tuple) else (value,)


def test_every_number_of_every_section_has_a_domain():
    cfg = study_config("vqa", "smoke")  # smoke has every section, pretrain included
    found = list(_numeric_fields(cfg))
    assert {t for t, _, _ in found} >= {StudyConfig, *(type(cfg.teacher), type(cfg.distill))}
    undeclared = [path for t, name, path in found if name not in DOMAINS.get(t, {})]
    assert not undeclared, f"fields without a domain in harness.config.DOMAINS: {undeclared}"


def test_every_preset_of_every_task_is_valid():
    for task in cards():
        for name in ("smoke", "default", "paper"):
            study_config(task, name)  # validates


def test_domains_accept_their_edges():
    cfg = apply_overrides(
        study_config("vqa", "smoke"),
        ["distill.gamma=1", "distill.alpha=0,0,1", "teacher.steps=0", "eval_every_rounds=0"],
    )
    assert cfg.distill.alpha == (0.0, 0.0, 1.0) and cfg.distill.gamma == 1.0


def test_sizes_the_train_split_bounds():
    cfg = study_config("vqa", "smoke")  # reward set 64, distill batch 32, teacher batch 32
    check_sizes(cfg, 64 + 32, "train2014")  # exactly one batch left: fine
    with pytest.raises(ConfigError, match=r"^distill.reward_set_size 64 leaves no training"):
        check_sizes(cfg, 64, "train2014")
    with pytest.raises(ConfigError, match=r"^distill.batch_size 32 .* 31 training examples"):
        check_sizes(cfg, 95, "train2014")
    big_teacher = apply_overrides(cfg, ["teacher.batch_size=200", "distill.reward_set_size=8"])
    with pytest.raises(ConfigError, match=r"^teacher.batch_size 200 .*100 examples of the train"):
        check_sizes(big_teacher, 100, "train2014")
    given = dataclasses.replace(big_teacher, teacher_finetuned="teacher.pt")
    check_sizes(given, 100, "train2014")  # a fine-tuned teacher is not trained: no batch


def test_a_vocabulary_smaller_than_the_text_needs_names_vocab_size(tmp_path):
    from harness.prepare import study_tokenizer

    class Task:
        texts = staticmethod(lambda split: ["what colour is the cube", "how many spheres"] * 20)

    cfg = apply_overrides(study_config("vqa", "smoke"), ["vocab_size=6"])
    with pytest.raises(ConfigError, match=r"^vocab_size 6: .*smaller than required_chars"):
        study_tokenizer(cfg, Task(), None, False, tmp_path, False)


# -- folders the harness cannot write (item 8)


def test_a_workdir_that_is_a_file_exits_2(tmp_path, capsys):
    file = tmp_path / "work"
    file.write_text("not a folder")
    assert main([*SMOKE, "--workdir", str(file), "--reports", str(tmp_path / "r")]) == 2
    assert f"--workdir {file}: is a file, not a folder" in capsys.readouterr().err
    assert main([*SMOKE, "--workdir", str(file / "sub"), "--reports", str(tmp_path)]) == 2
    assert f"--workdir {file / 'sub'}: cannot write there" in capsys.readouterr().err


def _read_only(monkeypatch, folder: Path) -> None:
    """chmod, and since root writes through it, a probe that fails as it would."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    probe = tempfile.TemporaryFile

    def refuse(*args, dir=None, **kw):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(13, "Permission denied", str(dir))
        return probe(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)


@pytest.mark.parametrize("option", ["--workdir", "--reports"])
def test_a_read_only_folder_exits_2_naming_it(tmp_path, monkeypatch, capsys, option):
    folders = {"--workdir": tmp_path / "work", "--reports": tmp_path / "reports"}
    _read_only(monkeypatch, folders[option])
    try:
        argv = [
            *SMOKE,
            "--workdir",
            str(folders["--workdir"]),
            "--reports",
            str(folders["--reports"]),
        ]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{option} {folders[option]}: cannot write there (Permission denied)" in err
        work = folders["--workdir"]  # no data, no runs: stopped first
        assert not work.exists() or not list(work.iterdir())
    finally:
        folders[option].chmod(0o755)


def test_report_to_a_read_only_folder_exits_2(tmp_path, monkeypatch, capsys):
    _read_only(monkeypatch, tmp_path / "reports")
    try:
        argv = ["report", "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports")]
        assert main(argv) == 2
        assert f"--reports {tmp_path / 'reports'}: cannot write there" in capsys.readouterr().err
    finally:
        (tmp_path / "reports").chmod(0o755)


def test_an_environment_error_midway_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    """A disk that fills after the checks: the CLI prints the OSError with its file, exit 2."""
    import harness.atomic

    def full(path, text):
        raise OSError(28, os.strerror(28), str(path))

    monkeypatch.setattr(harness.atomic, "write_text", full)
    runs = tmp_path / "runs" / "vqa" / "s" / "uniform" / "seed-0"
    runs.mkdir(parents=True)
    (runs / "record.json").write_bytes(b"\xff\xfe")  # damaged: listed, the report still written
    argv = ["report", "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("optima-repro: error: [Errno 28] No space left on device: ")
    assert str(tmp_path / "reports") in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0,1,2", [0, 1, 2]), ("0-3,8", [0, 1, 2, 3, 8]), ("2-3,0-1,3", [2, 3, 0, 1]), ("7", [7])],
)
def test_seeds_take_lists_and_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "problem"),
    [("0,x", "integers or ranges"), ("3-1", "empty"), ("-1", ">= 0"), (" , ", "no seed")],
)
def test_bad_seeds_are_named(text, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_seeds(text)


def test_compared_rows_run_every_seed_the_others_the_first_k():
    rows = row_seeds(["optima", "uniform", "random", "none"], list(range(6)), 2)
    assert rows == {"optima": [0, 1, 2, 3, 4, 5], "uniform": [0, 1, 2, 3, 4, 5],
                    "random": [0, 1], "none": [0, 1]}  # fmt: skip
    with pytest.raises(ConfigError, match="descriptive-seeds"):
        row_seeds(["optima"], [0], 0)
