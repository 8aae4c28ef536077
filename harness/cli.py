"""`optima-repro`: reproduce OPTIMA studies, score predictions, check datasets.

A thin entry point: it parses, then calls the library. Bad input or configuration, or a
folder it cannot write (a full disk, read-only), exits with code 2 and a message naming the
file, record and field; a grid with a failed run exits with code 1 after writing its report."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

from harness import executors
from harness.config import COMPARED, DESCRIPTIVE_SEEDS, SEEDS, default_seeds
from harness.errors import UserError
from harness.tasks import card, cards

# the study's question (README, "Sizing the studies"): OPTIMA against uniform and random
# selection; `none` (no layer distillation) is a reference one `--schedulers` away, left out
# of the default grid to keep each study within 15 minutes on 2 cores
DEFAULT_ROWS = "optima,uniform,random"


def _writable(folder: Path, option: str) -> Path:
    """Stop before any work, naming the folder, when it cannot be written: a file in its
    place, a read-only disk or folder. (`os.access` says yes to root; a probe file does not.)"""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {folder}: is a file, not a folder")
    # probe the folder, or the nearest one above it that exists: nothing is created yet
    probe = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not probe.is_dir():
        raise UserError(f"{option} {folder}: cannot write there ({probe} is a file)")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise UserError(f"{option} {folder}: cannot write there ({e.strerror or e})") from e
    return folder


def _reproduce(args: argparse.Namespace) -> int:
    from harness.backend import close, make_backend
    from harness.config import apply_overrides, parse_seeds, row_seeds, study_config
    from harness.models.coca import MODULES
    from harness.records import Grid
    from harness.report import write_reports
    from harness.schedulers import parse_schedulers
    from harness.study import prepare

    cfg = apply_overrides(study_config(args.task, args.preset), _overrides(args))
    given = args.seeds is not None
    seeds = parse_seeds(args.seeds if given else default_seeds(args.task, args.preset))
    schedulers = parse_schedulers(args.schedulers, MODULES)
    rows = row_seeds(schedulers, seeds, args.descriptive_seeds)
    _writable(args.workdir, "--workdir")
    _writable(args.reports, "--reports")
    backend = make_backend(args.device)
    executor = executors.from_args(args, cfg, backend.distributed)
    progress = not args.quiet
    start = time.monotonic()
    study = prepare(cfg, args.data_root, args.workdir, backend, progress, args.skip_bad_records)
    prepared = time.monotonic()
    grid = Grid.of(cfg.hash(), rows, study.data.sha256)
    records = executor.run_grids([(study, grid.runs)], progress)
    if backend.is_main:
        # the study's cost as issue 14 counts it (README, "Studies"): set-up, teacher, runs
        minutes = [(prepared - start) / 60, (time.monotonic() - prepared) / 60]
        print(
            f"study time: {sum(minutes):.1f} min = {minutes[0]:.1f} min set-up (data, tokenizer, "
            f"pre-training, teacher, its outputs: each unless cached) + {minutes[1]:.1f} min runs"
        )
        for path in write_reports(args.workdir / "runs", args.reports, {cfg.task: grid}):
            print(f"report: {path}")
    close(backend)
    return 0 if all(r and r.complete for r in records) else 1


def _teacher(args: argparse.Namespace) -> int:
    from harness.backend import make_backend
    from harness.config import apply_overrides, study_config
    from harness.prepare import prepare_teacher

    cfg = apply_overrides(study_config(args.task, args.preset), _overrides(args))
    _writable(args.workdir, "--workdir")
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
    from harness.backend import close, make_backend
    from harness.config import apply_overrides, parse_seeds, study_config
    from harness.models.coca import MODULES
    from harness.study import prepare
    from harness.tools import ablation

    cfg = apply_overrides(study_config(args.task, args.preset), _overrides(args))
    seeds = parse_seeds(args.seeds)
    chosen = ablation.select(ablation.variants(cfg, MODULES), args.only)
    _writable(args.workdir, "--workdir")
    _writable(args.reports, "--reports")
    backend = make_backend(args.device)
    executor = executors.from_args(args, cfg, backend.distributed)
    study = prepare(
        cfg, args.data_root, args.workdir, backend, not args.quiet, args.skip_bad_records
    )
    results = ablation.run_ablation(study, chosen, seeds, args.workdir, not args.quiet, executor)
    complete = True
    if backend.is_main:
        path, complete = ablation.write_report(cfg.task, results, seeds, MODULES, args.reports)
        print(f"report: {path}")
    close(backend)
    return 0 if complete else 1


def _plan(args: argparse.Namespace) -> int:
    from harness.config import apply_overrides, parse_seeds, row_seeds, study_config
    from harness.errors import ConfigError
    from harness.tasks import get_task
    from harness.tools.plan import UTILISATION, plan

    cfg = apply_overrides(study_config(args.task, args.preset), args.set)
    utilisation = UTILISATION if args.utilisation is None else args.utilisation
    if not 0 < utilisation <= 1:
        raise ConfigError(f"--utilisation must be in (0, 1], got {utilisation}")
    views = getattr(get_task(cfg.task), "views", 1)
    given = args.seeds is not None
    seeds = parse_seeds(args.seeds if given else default_seeds(args.task, args.preset))
    rows = row_seeds(DEFAULT_ROWS.split(","), seeds, DESCRIPTIVE_SEEDS)
    print(json.dumps(plan(cfg, views, utilisation, seeds=rows), indent=2))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from harness.report_compare import compare

    differences = compare(args.old, args.new)
    for d in differences:
        print(d)
    print(f"{len(differences)} differences" if differences else "the tables are identical")
    return 1 if differences else 0


def _report(args: argparse.Namespace) -> int:
    from harness.report import write_reports

    _writable(args.reports, "--reports")
    for path in write_reports(args.runs, args.reports):
        print(f"report: {path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    spec = card(args.task)
    module, function = spec.evaluate.split(":")
    files = {o.name: getattr(args, o.name) for o in spec.evaluate_options}
    print(json.dumps(getattr(importlib.import_module(module), function)(**files), indent=2))
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from harness.data.skips import skipping_bad_records

    reader = importlib.import_module(card(args.task).reader)
    with skipping_bad_records(args.skip_bad_records) as bad:
        summary = reader.check(args.root, args.split, progress=not args.quiet)
    if args.skip_bad_records:
        summary["skipped_records"] = [str(err) for err in bad]
    print(json.dumps(summary, indent=2))
    return 0


def _numerics(args: argparse.Namespace) -> int:
    from harness import kernel_probe, numerics
    from harness.atomic import write_text
    from harness.config import NumericsConfig

    if args.threads < 1:
        raise UserError(f"--threads {args.threads}: at least 1")
    found = numerics.settle(NumericsConfig(mode=args.mode, threads=args.threads), args.threads)
    mine = {"numerics": found, "probes": kernel_probe.probe()}
    text = json.dumps(mine, indent=1, sort_keys=True) + "\n"
    if args.out:
        write_text(args.out, text)
    if not args.compare:
        print(text, end="")
        return 0
    try:
        theirs = json.loads(args.compare.read_text())["probes"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--compare {args.compare}: not a file `numerics --out` wrote ({e})") from e
    other = kernel_probe.differences(mine["probes"], theirs)
    for name in other:
        print(f"{name}: {mine['probes'].get(name)} here, {theirs.get(name)} in {args.compare}")
    print(f"{len(other)} kernels differ" if other else "every probed kernel gives the same bits")
    return 1 if other else 0


def _ls(args: argparse.Namespace) -> int:
    from harness.schedulers import list_schedulers

    for name, description in list_schedulers():
        print(f"{name:<22} {description}")
    return 0


def _bandit_sim(args: argparse.Namespace) -> int:
    from harness.tools import bandit_sim

    return bandit_sim.run(args)


def _study_arguments(p: argparse.ArgumentParser) -> None:
    """What every command that runs a study takes (`reproduce`, `ablate`)."""
    p.add_argument("task", choices=list(cards()))
    p.add_argument("--preset", default="default", help="smoke | default | paper")
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
    executors.add_arguments(p)


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
        "--seeds",
        default=None,
        help=f"integers and ranges (0-15, 0,1,2), all run by the compared rows "
        f"({', '.join(COMPARED)}); default per preset: "
        + ", ".join(f"{k} {v}" for k, v in SEEDS.items())
        + "; a task card may ask more of `default`: "
        + ", ".join(f"{c.name} {c.seeds}" for c in cards().values() if c.seeds),
    )
    r.add_argument(
        "--descriptive-seeds",
        type=int,
        default=DESCRIPTIVE_SEEDS,
        metavar="K",
        help=f"the other rows run the first K of --seeds (default {DESCRIPTIVE_SEEDS})",
    )
    r.add_argument(
        "--schedulers",
        default=DEFAULT_ROWS,
        help="see `optima-repro ls schedulers`",
    )
    _set_argument(r)
    _max_steps_argument(r)
    r.set_defaults(func=_reproduce)

    t = sub.add_parser(
        "teacher", help="fine-tune (or take) the study's teacher alone; reproduce reuses it"
    )
    t.add_argument("task", choices=list(cards()))
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
    a.add_argument("--seeds", default="0,1,2", help="integers and ranges, e.g. 0,1,2 or 0-7")
    a.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    _set_argument(a)
    _max_steps_argument(a)
    a.set_defaults(func=_ablate)

    pl = sub.add_parser("plan", help="model sizes, layer map, schedule, FLOPs, memory: no training")
    pl.add_argument("task", choices=list(cards()))
    pl.add_argument("--preset", default="paper", help="smoke | default | paper")
    pl.add_argument(
        "--seeds",
        default=None,
        help=f"as `reproduce --seeds`: the compared rows run all, the other two rows the "
        f"first {DESCRIPTIVE_SEEDS}",
    )
    pl.add_argument(
        "--utilisation",
        type=float,
        default=None,
        help="share of each accelerator's bf16 peak a step sustains (default 0.4)",
    )
    _set_argument(pl)
    pl.set_defaults(func=_plan)

    rep = sub.add_parser("report", help="regenerate every report from run records alone")
    rep.add_argument("--runs", type=Path, default=Path("work/runs"))
    rep.add_argument("--reports", type=Path, default=Path("reports"))
    rep.set_defaults(func=_report)

    e = sub.add_parser("evaluate", help="score predictions with a task's official metric")
    esub = e.add_subparsers(dest="task", required=True)
    for spec in cards().values():
        ev = esub.add_parser(spec.name, help=spec.evaluate_help)
        for o in spec.evaluate_options:
            ev.add_argument(o.flag, dest=o.name, type=Path, required=True, help=o.help)
    e.set_defaults(func=_evaluate)

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="action", required=True)
    check = dsub.add_parser(
        "check", help="validate a data root, decoding every image, and print a JSON summary"
    )
    check.add_argument("task", choices=list(cards()))
    check.add_argument("--root", type=Path, required=True)
    check.add_argument("--split", required=True)
    check.add_argument(
        "--skip-bad-records", action="store_true", help="list bad records instead of stopping"
    )
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=_data_check)

    cmp = sub.add_parser(
        "compare", help="two reports' tables digit for digit (files, or folders of reports)"
    )
    cmp.add_argument("old", type=Path, help="e.g. reports (the committed ones)")
    cmp.add_argument("new", type=Path, help="e.g. a regenerated reports folder")
    cmp.set_defaults(func=_compare)

    num = sub.add_parser(
        "numerics", help="this machine's kernels: settings in force and a hash per kernel kind"
    )
    num.add_argument("--mode", choices=("portable", "native"), default="portable")
    num.add_argument("--threads", type=int, default=1, help="torch intra-op threads (runs: 1)")
    num.add_argument("--out", type=Path, help="also write the JSON here, for --compare elsewhere")
    num.add_argument("--compare", type=Path, help="another machine's --out: list what differs")
    num.set_defaults(func=_numerics)

    ls = sub.add_parser("ls", help="list registered names")
    ls.add_argument("what", choices=("schedulers",))
    ls.set_defaults(func=_ls)

    from harness.tools import bandit_sim

    sim = sub.add_parser("bandit-sim", help="regret of schedulers on synthetic reward processes")
    bandit_sim.add_arguments(sim)
    sim.set_defaults(func=_bandit_sim)
    return p


def _pin_numerics(args: argparse.Namespace) -> None:
    """Before any tensor operation: the kernels a study's config asks for (harness/numerics.py).
    Commands that train read the mode from their config; the others take portable kernels."""
    from harness.config import apply_overrides, study_config
    from harness.numerics import set_environment

    mode = getattr(args, "mode", "portable")
    if hasattr(args, "preset") and args.command != "plan":
        mode = apply_overrides(study_config(args.task, args.preset), _overrides(args))
        mode = mode.numerics.mode
    set_environment(mode)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        _pin_numerics(args)
        return args.func(args)
    except UserError as e:
        print(f"optima-repro: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine, not the code: a full disk, a folder made read-only
        print(f"optima-repro: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
