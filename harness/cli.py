"""`optima-repro`: reproduce OPTIMA studies, score predictions, check datasets.

A thin entry point: it parses, then calls the library. Bad input or configuration exits
with code 2 and a message naming the file, record and field; a grid with a failed run exits
with code 1 after writing its report."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from harness.errors import UserError

TASKS = ("vqa", "snli-ve", "nlvr2", "coco")
# data check: the reader module of each task, all with `check(root, split) -> dict`
READERS = {
    "vqa": "harness.data.vqa",
    "snli-ve": "harness.data.snli_ve",
    "nlvr2": "harness.data.nlvr2",
    "coco": "harness.data.coco",
}


def _reproduce(args: argparse.Namespace) -> int:
    from harness.backend import close, make_backend
    from harness.config import apply_overrides, parse_seeds, study_config
    from harness.models.coca import MODULES
    from harness.records import Grid
    from harness.report import write_reports
    from harness.schedulers import parse_schedulers
    from harness.study import prepare, run_grid

    cfg = apply_overrides(study_config(args.task, args.preset), _overrides(args))
    seeds = parse_seeds(args.seeds)
    schedulers = parse_schedulers(args.schedulers, MODULES)
    backend = make_backend(args.device)
    progress = not args.quiet
    study = prepare(cfg, args.data_root, args.workdir, backend, progress, args.skip_bad_records)
    records = run_grid(study, schedulers, seeds, progress)
    if backend.is_main:
        grid = Grid(cfg.hash(), tuple(schedulers), tuple(seeds), study.data["sha256"])
        for path in write_reports(args.workdir / "runs", args.reports, {cfg.task: grid}):
            print(f"report: {path}")
    close(backend)
    return 0 if all(r and r["status"] == "complete" for r in records) else 1


def _teacher(args: argparse.Namespace) -> int:
    from harness.backend import make_backend
    from harness.config import apply_overrides, study_config
    from harness.study import prepare_teacher

    cfg = apply_overrides(study_config(args.task, args.preset), _overrides(args))
    device = make_backend(args.device).device
    p = prepare_teacher(
        cfg, args.data_root, args.workdir, device, not args.quiet, args.skip_bad_records
    )
    print(f"teacher: {p.task.metric_name} {p.teacher.metrics['primary']:.2f} in {p.teacher.path}")
    return 0


def _overrides(args: argparse.Namespace) -> list[str]:
    """`--set` items, and `--max-steps N` as the field it sets."""
    return [*args.set, *([f"max_steps={args.max_steps}"] if args.max_steps else [])]


def _ablate(args: argparse.Namespace) -> int:
    from harness import ablation
    from harness.backend import close, make_backend
    from harness.config import apply_overrides, parse_seeds, study_config
    from harness.models.coca import MODULES
    from harness.study import prepare

    cfg = apply_overrides(study_config(args.task, args.preset), _overrides(args))
    seeds = parse_seeds(args.seeds)
    chosen = ablation.select(ablation.variants(cfg, MODULES), args.only)
    backend = make_backend(args.device)
    study = prepare(
        cfg, args.data_root, args.workdir, backend, not args.quiet, args.skip_bad_records
    )
    results = ablation.run_ablation(study, chosen, seeds, args.workdir, not args.quiet)
    complete = True
    if backend.is_main:
        path, complete = ablation.write_report(cfg.task, results, seeds, MODULES, args.reports)
        print(f"report: {path}")
    close(backend)
    return 0 if complete else 1


def _plan(args: argparse.Namespace) -> int:
    from harness.config import apply_overrides, study_config
    from harness.plan import plan
    from harness.tasks import get_task

    cfg = apply_overrides(study_config(args.task, args.preset), args.set)
    print(json.dumps(plan(cfg, getattr(get_task(cfg.task), "views", 1)), indent=2))
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness.report import write_reports

    for path in write_reports(args.runs, args.reports):
        print(f"report: {path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.task == "vqa":
        from harness.data.json_fields import load_json
        from harness.tasks import vqa_eval

        scores = vqa_eval.evaluate(
            load_json(args.questions)[0],
            load_json(args.annotations)[0],
            load_json(args.results)[0],
            questions_file=str(args.questions),
            annotations_file=str(args.annotations),
            results_file=str(args.results),
        )
    elif args.task == "coco":
        from harness.tasks import coco_eval

        scores = coco_eval.evaluate_files(args.gt, args.results)
    else:
        module = importlib.import_module(f"harness.tasks.{args.task.replace('-', '_')}_eval")
        scores = module.evaluate_files(args.data, args.predictions)
    print(json.dumps(scores, indent=2))
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from harness.data.skips import skipping_bad_records

    reader = importlib.import_module(READERS[args.task])
    with skipping_bad_records(args.skip_bad_records) as bad:
        summary = reader.check(args.root, args.split)
    if args.skip_bad_records:
        summary["skipped_records"] = [str(err) for err in bad]
    print(json.dumps(summary, indent=2))
    return 0


def _ls(args: argparse.Namespace) -> int:
    from harness.schedulers import list_schedulers

    for name, description in list_schedulers():
        print(f"{name:<22} {description}")
    return 0


def _bandit_sim(args: argparse.Namespace) -> int:
    from harness import bandit_sim

    return bandit_sim.run(args)


def _study_arguments(p: argparse.ArgumentParser) -> None:
    """What every command that runs a study takes (`reproduce`, `ablate`)."""
    p.add_argument("task", choices=TASKS)
    p.add_argument("--preset", default="default", help="smoke | default | paper")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated integers")
    p.add_argument("--data-root", type=Path, default=None, help="real data; default: synthetic")
    p.add_argument("--workdir", type=Path, default=Path("work"), help="data, teachers, runs")
    p.add_argument("--reports", type=Path, default=Path("reports"))
    p.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "xla"),
        help="xla needs torch-xla (nox -s xla); under torchrun: data-parallel ranks",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--skip-bad-records",
        action="store_true",
        help="leave out records the reader would refuse; the run records list them",
    )


def _set_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field, e.g. distill.gamma=0.9 (repeatable)",
    )


def _max_steps_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="stop every training loop (teacher, distillation) after N steps: smoke-checks a "
        "preset end to end; the runs are kept apart from full ones (their own config hash)",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="optima-repro", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run a study grid and write its report")
    _study_arguments(r)
    r.add_argument(
        "--schedulers",
        default="optima,uniform,random,none",
        help="see `optima-repro ls schedulers`",
    )
    _set_argument(r)
    _max_steps_argument(r)
    r.set_defaults(func=_reproduce)

    t = sub.add_parser(
        "teacher", help="fine-tune (or take) the study's teacher alone; reproduce reuses it"
    )
    t.add_argument("task", choices=TASKS)
    t.add_argument("--preset", default="default", help="smoke | default | paper")
    t.add_argument("--data-root", type=Path, default=None, help="real data; default: synthetic")
    t.add_argument("--workdir", type=Path, default=Path("work"), help="data, teachers, runs")
    t.add_argument("--device", default="cpu", help="cpu | cuda | xla")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument(
        "--skip-bad-records", action="store_true", help="leave out records the reader refuses"
    )
    _set_argument(t)
    _max_steps_argument(t)
    t.set_defaults(func=_teacher)

    a = sub.add_parser("ablate", help="OPTIMA variants, one [ours] option changed at a time")
    _study_arguments(a)
    a.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    _set_argument(a)
    _max_steps_argument(a)
    a.set_defaults(func=_ablate)

    pl = sub.add_parser("plan", help="model sizes, layer map, schedule, FLOPs, memory: no training")
    pl.add_argument("task", choices=TASKS)
    pl.add_argument("--preset", default="paper", help="smoke | default | paper")
    _set_argument(pl)
    pl.set_defaults(func=_plan)

    rep = sub.add_parser("report", help="regenerate every report from run records alone")
    rep.add_argument("--runs", type=Path, default=Path("work/runs"))
    rep.add_argument("--reports", type=Path, default=Path("reports"))
    rep.set_defaults(func=_report)

    e = sub.add_parser("evaluate", help="score predictions with a task's official metric")
    esub = e.add_subparsers(dest="task", required=True)
    ev = esub.add_parser("vqa", help="official VQA accuracy")
    ev.add_argument("--questions", type=Path, required=True)
    ev.add_argument("--annotations", type=Path, required=True)
    ev.add_argument("--results", type=Path, required=True, help='[{"question_id", "answer"}]')
    for task, what in (("snli-ve", "pairID,prediction"), ("nlvr2", "identifier,prediction")):
        ec = esub.add_parser(task, help=f"{task} accuracy (CSV {what})")
        ec.add_argument("--data", type=Path, required=True, help="the split's data file")
        ec.add_argument("--predictions", type=Path, required=True, help=f"CSV {what}")
    ecoco = esub.add_parser("coco", help="BLEU, METEOR, ROUGE-L, CIDEr (pycocoevalcap)")
    ecoco.add_argument("--gt", type=Path, required=True, help="COCO captions or Karpathy json")
    ecoco.add_argument("--results", type=Path, required=True, help='[{"image_id", "caption"}]')
    e.set_defaults(func=_evaluate)

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="action", required=True)
    check = dsub.add_parser("check", help="validate a data root and print a JSON summary")
    check.add_argument("task", choices=TASKS)
    check.add_argument("--root", type=Path, required=True)
    check.add_argument("--split", required=True)
    check.add_argument(
        "--skip-bad-records", action="store_true", help="list bad records instead of stopping"
    )
    check.set_defaults(func=_data_check)

    ls = sub.add_parser("ls", help="list registered names")
    ls.add_argument("what", choices=("schedulers",))
    ls.set_defaults(func=_ls)

    from harness import bandit_sim

    sim = sub.add_parser("bandit-sim", help="regret of schedulers on synthetic reward processes")
    bandit_sim.add_arguments(sim)
    sim.set_defaults(func=_bandit_sim)
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
