"""Where a study's runs execute: in this process, in local worker processes, as Slurm jobs
through submitit, or as Ray tasks (issue 15; docs/cluster.md).

One order whatever the executor. The parent prepares the study (worlds, tokenizer,
pre-training, teacher, teacher-output cache), which leaves every shared step on disk. Then
each run that has no complete record is one job: it pins the numerics, re-opens the prepared
study from the work directory (every step a cache hit, once per worker process), runs under
the run's lock and writes its record. The parent writes the reports once every job has
ended. A job that fails or is killed leaves the run's round checkpoints, so the same command
again submits only the runs that are not complete, each resuming from its last round.

An executor changes where a run's arithmetic happens, never what it is: the thread count is
the run's config (`numerics.threads`), so records are bitwise identical whichever executor
ran them (CPU). submitit and ray are optional extras, imported only when chosen.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from harness.config import StudyConfig
from harness.errors import ConfigError, UserError

EXECUTORS = ("serial", "processes", "submitit", "ray")
# the default for --executor where the command line names none (a cluster profile may set it)
DEFAULT_VARIABLE = "OPTIMA_REPRO_EXECUTOR"
EXTRAS = {"submitit": "slurm", "ray": "ray"}
# submitit's own default is 5 min on Slurm, 2 min locally: a run would spend its requeues
# (submitit allows 3 time-outs) before its first rounds
TIME_LIMIT = 240


@dataclass(frozen=True)
class Source:
    """What the parent prepared its study from: a worker re-opens the same study with it.
    `cwd` is the parent's folder, so relative paths (and the records that quote them) are
    the same in every worker."""

    cfg: StudyConfig
    data_root: Path | None
    workdir: Path
    device: str
    skip_bad_records: bool
    cwd: str

    def key(self) -> tuple:
        return (
            self.cfg.hash(),
            str(self.data_root),
            str(self.workdir),
            self.device,
            self.cwd,
            self.skip_bad_records,
        )


@dataclass(frozen=True)
class Job:
    """One run: its config (an ablation variant's differs from the source's) and folder, and
    the teacher the parent prepared (a worker that finds another one stops)."""

    source: Source
    cfg: StudyConfig
    study_dir: Path
    scheduler: str
    seed: int
    teacher_key: str

    def __str__(self) -> str:
        return f"run {self.scheduler} seed {self.seed}"


_PREPARED: dict[tuple, object] = {}  # this worker process's prepared study, by source


def _prepared(source: Source):
    """The study `source` names, prepared once per worker process: a worker given several
    runs reads data, teacher and its cached outputs once."""
    if source.key() not in _PREPARED:
        from harness.backend import make_backend
        from harness.study import prepare

        _PREPARED.clear()  # one study at a time
        with contextlib.redirect_stdout(io.StringIO()):  # the parent printed these steps
            _PREPARED[source.key()] = prepare(
                source.cfg,
                source.data_root,
                source.workdir,
                make_backend(source.device),
                progress=False,
                skip_bad_records=source.skip_bad_records,
            )
    return _PREPARED[source.key()]


def run_job(job: Job) -> str:
    """A run in a worker process (the function every executor ships); returns its status."""
    from harness.numerics import set_environment

    set_environment(job.source.cfg.numerics.mode)  # before this process's first tensor op
    try:
        os.chdir(job.source.cwd)
    except OSError as e:
        raise UserError(
            f"{job}: folder {job.source.cwd} not found on {socket.gethostname()} ({e}): the "
            "work directory must sit on a file system every node mounts at the same path "
            "(docs/cluster.md)"
        ) from e
    from harness.runs import RECORD, read_record, run_dir, run_once

    study = dataclasses.replace(_prepared(job.source), cfg=job.cfg, study_dir=job.study_dir)
    if study.teacher.key != job.teacher_key:
        raise UserError(
            f"{job}: the study re-opened on {socket.gethostname()} has teacher "
            f"{study.teacher.key}, the driver prepared {job.teacher_key}: the code, data or "
            "work directory changed while the jobs ran; run the command again"
        )
    print(f"{job}: on {socket.gethostname()}, pid {os.getpid()}", flush=True)
    run_once(study, job.scheduler, job.seed, wait=True, progress=False)
    record = read_record(run_dir(job.study_dir, job.scheduler, job.seed) / RECORD)
    return record.status if record else "no record"


class SubmititRun:
    """A run as a submitit job. On a pre-emption, or Slurm's warning signal before the time
    limit, submitit calls `checkpoint` and requeues what it returns: the same run, which
    resumes from its last round checkpoint (only the current round is done again)."""

    def __call__(self, job: Job) -> str:
        return run_job(job)

    def checkpoint(self, job: Job):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, job)


def require(module: str, executor: str):
    """An optional extra's module, or a UserError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UserError(
            f"--executor {executor} needs the {module} package: pip install "
            f"'optima-repro[{EXTRAS[executor]}]' (nox -s executors installs it) ({e})"
        ) from e


class Executor:
    name = ""

    def __init__(self, source: Source, workers: int | None = None) -> None:
        self.source = source
        self.workers = workers

    def describe(self) -> str:
        threads = self.source.cfg.numerics.threads
        return (
            f"{self.name} executor, {self.workers or 'all'} at once, "
            f"{threads} thread{'s' * (threads > 1)} a run"
        )

    def run_grids(self, grids: list[tuple], progress: bool) -> list:
        """Each (study, runs), runs being (scheduler, seed) pairs; the records in that order
        (None: no record). Only runs without a complete record are submitted."""
        from harness.runs import RECORD, is_complete, read_record, run_dir

        runs = [(s, name, seed) for s, pairs in grids for name, seed in pairs]
        jobs = []
        for study, name, seed in runs:
            folder = run_dir(study.study_dir, name, seed)
            if is_complete(folder, study.cfg.hash()):
                print(f"run {name} seed {seed}: complete, skipped ({folder})")
            else:
                key = study.teacher.key
                jobs.append(Job(self.source, study.cfg, study.study_dir, name, seed, key))
        if jobs:
            print(f"runs: {len(jobs)} through the {self.describe()}", flush=True)
            for job, error in zip(jobs, self.run(jobs), strict=True):
                if error:
                    print(
                        f"{job}: NOT FINISHED: {error}. The same command again resumes it from "
                        "its last round checkpoint"
                    )
        return [read_record(run_dir(s.study_dir, n, seed) / RECORD) for s, n, seed in runs]

    def run(self, jobs: list[Job]) -> list[str | None]:
        """Run the jobs; for each, None when it ended (its record says how) or why not."""
        raise NotImplementedError


class Serial(Executor):
    """In this process, one run after another (also data-parallel ranks under torchrun)."""

    name = "serial"

    def run_grids(self, grids: list[tuple], progress: bool) -> list:
        from harness.runs import run_grid

        return [r for study, pairs in grids for r in run_grid(study, pairs, progress)]


class Processes(Executor):
    """Local worker processes, started by spawn (a fork after torch has threads is unsafe)."""

    name = "processes"

    def run(self, jobs: list[Job]) -> list[str | None]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        from harness.numerics import set_environment

        errors: list[str | None] = []
        with ProcessPoolExecutor(
            max_workers=min(self.workers or len(jobs), len(jobs)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=set_environment,
            initargs=(self.source.cfg.numerics.mode,),
        ) as pool:
            futures = [pool.submit(run_job, job) for job in jobs]
            for future in futures:
                try:
                    future.result()
                    errors.append(None)
                except BrokenProcessPool:
                    errors.append("a worker process died (killed, or out of memory)")
                except Exception as e:
                    errors.append(f"{type(e).__name__}: {e}")
        return errors


class Submitit(Executor):
    """Slurm jobs through submitit (its local executor where there is no Slurm): one job per
    run, submitted as one job array."""

    name = "submitit"

    def __init__(self, source: Source, workers: int | None, folder: Path, params: dict) -> None:
        super().__init__(source, workers)
        submitit = require("submitit", "submitit")
        self.folder = folder
        # the one parameter submitit takes when the executor is made: time-outs before it stops
        # requeuing (`slurm_max_num_timeout`, default 3)
        made = {k: params.pop(k) for k in list(params) if k.endswith("max_num_timeout")}
        try:
            self.executor = submitit.AutoExecutor(folder=folder, **made)
            self.executor.update_parameters(**params)
        except (NameError, AssertionError, ValueError, TypeError) as e:
            raise ConfigError(f"--executor submitit: bad parameters {params}: {e}") from e

    def describe(self) -> str:
        return f"{super().describe()}, {self.executor.cluster} cluster, logs in {self.folder}"

    def run(self, jobs: list[Job]) -> list[str | None]:
        with self.executor.batch():
            handles = [self.executor.submit(SubmititRun(), job) for job in jobs]
        for job, handle in zip(jobs, handles, strict=True):
            print(f"{job}: submitit job {handle.job_id}", flush=True)
        errors: list[str | None] = []
        for handle in handles:
            try:
                handle.result()
                errors.append(None)
            except Exception as e:
                last = str(e).strip().splitlines()[-1:] or [type(e).__name__]
                errors.append(f"job {handle.job_id}: {last[0]} (log: {handle.paths.stderr})")
        return errors


class Ray(Executor):
    """Ray tasks, on the cluster at `address` (a local Ray when None): one task per run with
    the resources a run needs. Ray retries a task whose worker died (its max_retries), and
    the retry resumes from the run's last round checkpoint."""

    name = "ray"

    def __init__(
        self, source: Source, workers: int | None, address: str | None, resources: dict
    ) -> None:
        super().__init__(source, workers)
        self.ray = require("ray", "ray")
        self.address = address
        self.resources = resources

    def describe(self) -> str:
        where = self.address or "a local Ray"
        return f"{super().describe()}, on {where}, each {self.resources}"

    def run(self, jobs: list[Job]) -> list[str | None]:
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=True)
        try:
            options = {k: v for k, v in self.resources.items() if k in ("num_cpus", "num_gpus")}
            if self.resources.get("tpus"):
                options["resources"] = {"TPU": self.resources["tpus"]}
            task = ray.remote(run_job).options(**options)
            pending = list(enumerate(jobs))
            in_flight: dict = {}
            errors: list[str | None] = [None] * len(jobs)
            while pending or in_flight:
                while pending and len(in_flight) < (self.workers or len(jobs)):
                    i, job = pending.pop(0)
                    in_flight[task.remote(job)] = i
                (done,), _ = ray.wait(list(in_flight), num_returns=1)
                i = in_flight.pop(done)
                try:
                    ray.get(done)
                except Exception as e:
                    last = str(e).strip().splitlines()[-1:] or [type(e).__name__]
                    errors[i] = f"{type(e).__name__}: {last[0]}"
            return errors
        finally:
            if started:
                ray.shutdown()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`--executor` and its options, on every command that runs a study grid."""
    g = p.add_argument_group("executors (docs/cluster.md)")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help=f"where the runs execute; default: ${DEFAULT_VARIABLE}, else `processes` on CPU "
        "when the cores hold two or more runs of numerics.threads threads, else `serial`",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs at once (processes: default cores // numerics.threads; submitit: the job "
        "array's parallelism; ray: tasks in flight; default: no limit)",
    )
    g.add_argument("--slurm-partition", default=None, help="submitit: the Slurm partition")
    g.add_argument("--gpus-per-task", type=int, default=None, help="submitit: GPUs of each run")
    g.add_argument(
        "--time-limit",
        type=int,
        default=None,
        metavar="MIN",
        help=f"submitit: minutes a job may run before it is requeued (default {TIME_LIMIT})",
    )
    g.add_argument(
        "--submitit",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="submitit: any other parameter, e.g. slurm_account=ABC, mem_gb=64 (repeatable)",
    )
    g.add_argument("--ray-address", default=None, help="ray: the cluster (default: local Ray)")
    g.add_argument(
        "--ray-cpus", type=float, default=None, help="ray: CPUs a run (default: threads)"
    )
    g.add_argument("--ray-gpus", type=float, default=None, help="ray: GPUs a run")
    g.add_argument("--ray-tpus", type=float, default=None, help="ray: TPU chips a run")


OPTIONS = {
    "submitit": ("slurm_partition", "gpus_per_task", "time_limit", "submitit"),
    "ray": ("ray_address", "ray_cpus", "ray_gpus", "ray_tpus"),
}


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def default_name(cfg: StudyConfig, device: str, distributed: bool) -> str:
    """Measured here (reports/bench.md): two 1-thread runs side by side beat one 2-thread run
    after another, so CPU runs fill the cores; a GPU or TPU runs one at a time."""
    if os.environ.get(DEFAULT_VARIABLE):
        return os.environ[DEFAULT_VARIABLE]
    fits = cores() // cfg.numerics.threads
    return "processes" if device == "cpu" and not distributed and fits >= 2 else "serial"


def from_args(args: argparse.Namespace, cfg: StudyConfig, distributed: bool) -> Executor:
    """The executor the command line asks for, checked before any work is done."""
    name = args.executor or default_name(cfg, args.device, distributed)
    if name not in EXECUTORS:
        raise ConfigError(f"${DEFAULT_VARIABLE}={name!r}: expected one of {EXECUTORS}")
    for other, options in OPTIONS.items():
        given = [o for o in options if getattr(args, o) not in (None, [])]
        if given and other != name:
            flags = ", ".join("--" + o.replace("_", "-") for o in given)
            raise ConfigError(f"{flags}: only with --executor {other} (this is {name})")
    if args.workers is not None and (args.workers < 1 or name == "serial"):
        why = "expected 1 or more" if args.workers < 1 else "not with the serial executor"
        raise ConfigError(f"--workers {args.workers}: {why}")
    if distributed and name != "serial":
        raise ConfigError(
            f"--executor {name} under torchrun: data-parallel ranks run the grid together in "
            "their own processes; use --executor serial"
        )
    source = Source(
        cfg, args.data_root, args.workdir, args.device, args.skip_bad_records, os.getcwd()
    )
    threads = cfg.numerics.threads
    if name == "serial":
        return Serial(source)
    if name == "processes":
        return Processes(source, args.workers or max(1, cores() // threads))
    if name == "submitit":
        params = {
            "name": f"optima-{cfg.task}",
            "nodes": 1,
            "tasks_per_node": 1,
            "cpus_per_task": threads,
            "slurm_partition": args.slurm_partition,
            "gpus_per_node": args.gpus_per_task,
            "timeout_min": args.time_limit or TIME_LIMIT,
            "slurm_array_parallelism": args.workers,
            **dict(_parameter(item) for item in args.submitit),
        }
        params = {k: v for k, v in params.items() if v is not None}
        return Submitit(source, args.workers, args.workdir / "submitit", params)
    resources = {
        "num_cpus": args.ray_cpus if args.ray_cpus is not None else threads,
        "num_gpus": args.ray_gpus,
        "tpus": args.ray_tpus,
    }
    resources = {k: v for k, v in resources.items() if v}
    return Ray(source, args.workers, args.ray_address, resources)


def _parameter(item: str) -> tuple[str, object]:
    """`--submitit KEY=VALUE`: the value as JSON where it reads as JSON (64, true, 1.5,
    ["a"]), else the string itself."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--submitit {item!r}: expected KEY=VALUE, e.g. slurm_account=ABC")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value
