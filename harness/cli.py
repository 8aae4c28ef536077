"""`optima-repro`: reproduce OPTIMA studies, score predictions, check datasets.

A thin entry point: it parses, then calls the library.

Bad input or configuration exits with code 2 and a message naming the file, record and
field; a grid with a failed run exits with code 1 after writing its report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import UserError

TASKS = ("vqa",)


def _reproduce(args: argparse.Namespace) -> int:
    import torch

    from harness.config import parse_seeds, study_config
    from harness.report import task_report
    from harness.schedulers import parse_schedulers
    from harness.study import prepare, run_grid

    cfg = study_config(args.task, args.preset)
    seeds = parse_seeds(args.seeds)
    schedulers = parse_schedulers(args.schedulers)
    device = torch.device(args.device)
    progress = not args.quiet
    study = prepare(cfg, args.data_root, args.workdir, device, progress)
    records = run_grid(study, schedulers, seeds, progress)
    report = task_report(cfg.task, records, args.reports)
    print(f"report: {report}")
    return 0 if all(r["status"] == "complete" for r in records) else 1


def _load_json(path: Path):
    from harness.errors import DataError

    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise DataError(path, "file not found") from e
    except json.JSONDecodeError as e:
        raise DataError(
            path, f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from e


def _evaluate(args: argparse.Namespace) -> int:
    from harness.tasks import vqa_eval

    scores = vqa_eval.evaluate(
        _load_json(args.questions),
        _load_json(args.annotations),
        _load_json(args.results),
        questions_file=str(args.questions),
        annotations_file=str(args.annotations),
        results_file=str(args.results),
    )
    print(json.dumps(scores, indent=2))
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from harness.data import vqa

    print(json.dumps(vqa.check(args.root, args.split), indent=2))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="optima-repro", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run a study grid and write its report")
    r.add_argument("task", choices=TASKS)
    r.add_argument("--preset", default="default", help="smoke | default")
    r.add_argument("--seeds", default="0,1,2", help="comma-separated integers")
    r.add_argument("--schedulers", default="optima,uniform,random,none")
    r.add_argument("--data-root", type=Path, default=None, help="real data; default: synthetic")
    r.add_argument("--workdir", type=Path, default=Path("work"), help="data, teachers, runs")
    r.add_argument("--reports", type=Path, default=Path("reports"))
    r.add_argument("--device", default="cpu", help="cpu | cuda")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=_reproduce)

    e = sub.add_parser("evaluate", help="score predictions with a task's official metric")
    esub = e.add_subparsers(dest="task", required=True)
    ev = esub.add_parser("vqa", help="official VQA accuracy")
    ev.add_argument("--questions", type=Path, required=True)
    ev.add_argument("--annotations", type=Path, required=True)
    ev.add_argument("--results", type=Path, required=True)
    ev.set_defaults(func=_evaluate)

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="action", required=True)
    check = dsub.add_parser("check", help="validate a data root and print a JSON summary")
    check.add_argument("task", choices=TASKS)
    check.add_argument("--root", type=Path, required=True)
    check.add_argument("--split", required=True)
    check.set_defaults(func=_data_check)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"optima-repro: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
