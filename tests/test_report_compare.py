"""`optima-repro compare`: every differing cell is listed; provenance lines are not compared."""

from harness.cli import main
from harness.report_compare import compare_texts, tables

OLD = """# VQA
## Main table

| row | n | primary |
|---|---|---|
| optima | 3 | 65.62 ± 2.02 |
| uniform | 3 | 68.68 ± 4.49 |

## Provenance

- git `abc`, run wall time: 812 s
"""


def test_identical_tables_with_other_provenance_have_no_difference():
    new = OLD.replace("git `abc`, run wall time: 812 s", "git `def`, run wall time: 901 s")
    assert compare_texts("vqa.md", OLD, new) == []


def test_each_changed_cell_and_row_is_named():
    new = OLD.replace("65.62 ± 2.02", "65.63 ± 2.02").replace(
        "| uniform | 3 | 68.68 ± 4.49 |\n", ""
    )
    found = [str(d) for d in compare_texts("vqa.md", OLD, new)]
    assert found == [
        "vqa.md | Main table | optima | primary: 65.62 ± 2.02 -> 65.63 ± 2.02",
        "vqa.md | Main table | uniform: row -> (none)",
    ]


def test_two_tables_under_one_heading_are_kept_apart():
    text = "## T\n| a | b |\n|---|---|\n| x | 1 |\n\n| a | b |\n|---|---|\n| x | 2 |\n"
    assert tables(text) == {"T": [["a", "b"], ["x", "1"]], "T #2": [["a", "b"], ["x", "2"]]}


def test_cli_exit_codes_and_missing_report(tmp_path, capsys):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "vqa.md").write_text(OLD)
    (tmp_path / "new" / "vqa.md").write_text(OLD)
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new")]) == 0
    (tmp_path / "old" / "coco.md").write_text(OLD)
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "new")]) == 1
    assert "coco.md: report -> no " in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "nowhere"), str(tmp_path / "new")]) == 2
