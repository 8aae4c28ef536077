"""What `nox -s bench` measures (issue 8), and `reports/bench.md`.

The models and batch shapes are the embedded default's (teacher-small, student-small, batch
64, 48 px images, VQA), on the smoke VQA world (seconds to write) with untrained weights:
time per step does not depend on what the weights hold. The pytest-benchmark functions in
`tests/bench/` time the callables built here; this module owns the set-up and the report.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from harness import numerics
from harness.atomic import write_text
from harness.config import NumericsConfig, study_config
from harness.data.tokenizer import Tokenizer, ensure_tokenizer
from harness.distill.adafactor import Adafactor
from harness.distill.loop import Distiller, DistillInputs, RunState, Watch, run_rounds
from harness.distill.losses import Projections, masked_mse, text_masks
from harness.distill.teacher_outputs import CachedTeacher, LiveTeacher
from harness.models.build import build_task_model, module_shapes
from harness.models.layer_map import layer_map
from harness.seeding import torch_seeded
from harness.tasks import get_task

REPORT = "bench.md"


@dataclass
class Bench:
    """The embedded default's shapes on the smoke VQA world, ready to time."""

    inputs: DistillInputs
    cfg: Any  # StudyConfig (default preset)
    teacher: torch.nn.Module
    live: LiveTeacher
    cached: CachedTeacher
    cache_seconds: float
    tokenizer: Tokenizer
    workdir: Path

    @classmethod
    def build(cls, workdir: Path) -> Bench:
        torch.manual_seed(0)
        cfg = study_config("vqa", "default")
        spec = get_task("vqa")
        root = spec.ensure_world(workdir / "data", "smoke", progress=False)
        split = spec.read(root, cfg.train_split)
        task = spec.from_train(split, cfg)
        tokenizer = Tokenizer(
            ensure_tokenizer(workdir / "tokenizers", task.texts(split), cfg.vocab_size)
        )
        size = module_shapes(cfg.teacher.model)["image_size"]
        train = task.examples(split, tokenizer, size, cfg.context_length, progress=False)
        teacher = build_task_model(cfg.teacher.model, task, tokenizer, cfg.context_length, 0)
        t_layers = module_shapes(cfg.teacher.model)["layers"]
        s_layers = module_shapes(cfg.distill.student)["layers"]
        maps = {m: layer_map(s_layers[m], t_layers[m]) for m in t_layers}
        live = LiveTeacher(teacher, task.forward, maps)
        device = torch.device("cpu")
        start = time.perf_counter()
        cached = CachedTeacher.build(
            live,
            len(train),
            lambda index: task.batch(train, index, device),
            cfg.eval_batch_size,
            progress=False,
        )
        cache_seconds = time.perf_counter() - start
        inputs = DistillInputs(task, train, cached, tuple(t_layers), tokenizer.pad_id, device)
        return cls(inputs, cfg, teacher, live, cached, cache_seconds, tokenizer, workdir)

    def student(self, seed: int = 0):
        """A fresh student, its projections, and their optimizer as the loop builds it."""
        cfg = self.cfg
        model = build_task_model(
            cfg.distill.student, self.inputs.task, self.tokenizer, cfg.context_length, seed
        )
        s, t = module_shapes(cfg.distill.student), module_shapes(cfg.teacher.model)
        with torch_seeded(seed, "projections"):  # as the study builds them
            projections = Projections(s["widths"], t["widths"])
        optimizer = Adafactor(
            [*model.parameters(), *projections.parameters()],
            lr=cfg.distill.lr,
            weight_decay=cfg.distill.weight_decay,
        )
        return model, projections, optimizer

    def index(self, step: int) -> torch.Tensor:
        n, b = len(self.inputs.train), self.cfg.distill.batch_size
        return torch.from_numpy(np.random.default_rng(step).choice(n, b, replace=False))

    def harness_step(self, teacher: str = "live", parts=None, precision: str = "fp32"):
        """The training loop's own step (`Distiller.step`) as a callable of no arguments;
        `parts`: a (student, projections, optimizer) of `student()`, else a fresh one."""
        inputs = dataclasses.replace(
            self.inputs, teacher=self.live if teacher == "live" else self.cached
        )
        student, projections, optimizer = parts or self.student()
        d = self.cfg.distill
        state = RunState(
            optimizer=optimizer,
            schedule=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / 10**9),
            order=None,
            scheduler=None,
            rounds=[],
            timing={},
        )
        distiller = Distiller(inputs, student, projections, precision=precision)
        mask = torch.ones(len(inputs.modules))
        counter = iter(range(10**9))

        def step() -> None:
            distiller.step(self.index(next(counter)), d.alpha, mask, d, state)

        return step

    def bare_step(self, parts=None):
        """The same work written by hand on a batch built once: teacher forward, student
        forward and backward (task, prediction and layer terms), optimizer step."""
        student, projections, optimizer = parts or self.student()
        d = self.cfg.distill
        task, teacher, maps = self.inputs.task, self.teacher, self.live.maps
        batch = task.batch(self.inputs.train, self.index(0), torch.device("cpu"))
        masks = text_masks(batch["text"], self.tokenizer.pad_id)
        a1, a2, a3 = d.alpha

        def step() -> None:
            with torch.no_grad():
                t = teacher(batch["images"], batch["text"])
            s = student(batch["images"], batch["text"])
            bce = F.binary_cross_entropy_with_logits  # VQA's sigmoid head, summed over answers
            loss = a1 * bce(s["task_logits"], batch["target"], reduction="none").sum(1).mean()
            soft = torch.sigmoid(t["task_logits"])
            loss = loss + a2 * bce(s["task_logits"], soft, reduction="none").sum(1).mean()
            for m, idx in maps.items():
                for j, k in enumerate(idx):
                    proj = projections[m](s["hidden"][m][j])
                    loss = loss + a3 * masked_mse(proj, t["hidden"][m][k], masks[m])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    def batch_maker(self):
        """One training batch gathered from the examples (the data pipeline)."""
        counter = iter(range(10**9))
        train, task = self.inputs.train, self.inputs.task
        return lambda: task.batch(train, self.index(next(counter)), torch.device("cpu"))

    def step_flops(self, teacher: str = "live") -> int:
        step = self.harness_step(teacher)
        with FlopCounterMode(display=False) as counter:
            step()
        return int(counter.get_total_flops())

    def run(self, scheduler_name: str, teacher: str, steps: int, rounds: int) -> dict:
        """A short distillation run (the default round shape, fewer rounds) as the grid runs it."""
        from harness.schedulers import build_scheduler

        d = dataclasses.replace(
            self.cfg.distill, steps=steps, rounds=rounds, warmup_rounds=min(3, rounds)
        )
        inputs = dataclasses.replace(
            self.inputs, teacher=self.live if teacher == "live" else self.cached
        )
        student, projections, _ = self.student()
        scheduler = build_scheduler(scheduler_name, inputs.modules, 0, d)
        start = time.perf_counter()
        out = run_rounds(inputs, student, projections, scheduler, d, 0, 256, Watch(progress=False))
        out["wall_seconds"] = time.perf_counter() - start
        return out


def numerics_step_seconds(mode: str, threads: int, steps: int, workdir: Path) -> float:
    """Seconds per cached-teacher training step of the default preset, in a fresh process
    whose kernels are `mode`'s (they are chosen once per process, before its first tensor
    operation, so each mode needs its own process)."""
    return float(_fresh_process(mode, "_mode_step", mode, threads, steps, workdir))


def _fresh_process(mode: str, function: str, *args) -> str:
    """The last line printed by `bench.<function>(*args)` (arguments as strings) in a new
    Python process whose kernels are `mode`'s and whose environment holds no numerics
    setting of this one's."""
    code = (
        "import sys\n"
        "from harness.numerics import set_environment\n"
        "set_environment(sys.argv[1])\n"
        "from harness.tools import bench\n"
        "print(getattr(bench, sys.argv[2])(*sys.argv[3:]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in numerics.ENVIRONMENT}
    argv = [sys.executable, "-c", code, mode, function, *map(str, args)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def _mode_step(mode: str, threads: str, steps: str, workdir: str) -> float:
    threads, steps = int(threads), int(steps)  # from `_fresh_process`'s command line
    numerics.settle(NumericsConfig(mode=mode, threads=threads), threads)
    b = Bench.build(Path(workdir))
    step = b.harness_step("cached")
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


RUNS = ("optima", "uniform")  # the runs phase measured: two default-preset runs, seed 0


def runs_phase_seconds(
    workdir: Path, layouts: list[tuple[str, int]], prepare_steps: int, run_steps: int
) -> list[float]:
    """Wall seconds of the default VQA study's runs phase (`RUNS`, seed 0) for each (executor,
    threads a run) in `layouts`, in that order, as `optima-repro reproduce` runs it after
    `prepare`: the workers of `processes` re-open the prepared study, which is timed too.
    Pre-training and the teacher stop after `prepare_steps` (time per run step does not
    depend on the teacher's quality); runs stop after `run_steps` (0: the preset's schedule)."""
    from harness.backend import make_backend
    from harness.config import apply_overrides
    from harness.executors import Processes, Serial, Source
    from harness.runs import RECORD, is_complete, run_dir
    from harness.study import prepare

    workdir = workdir.resolve()
    base = apply_overrides(study_config("vqa", "default"), [f"max_steps={prepare_steps}"])
    study = prepare(base, None, workdir, make_backend("cpu"), progress=False)
    source = Source(base, None, workdir, "cpu", False, os.getcwd())
    seconds = []
    for i, (name, threads) in enumerate(layouts):
        cfg = apply_overrides(
            study_config("vqa", "default"),
            [f"numerics.threads={threads}", f"max_steps={run_steps}"],
        )
        runs = dataclasses.replace(study, cfg=cfg, study_dir=workdir / "bench-runs" / str(i))
        executor = Serial(source) if name == "serial" else Processes(source, len(RUNS))
        start = time.perf_counter()
        executor.run_grids([(runs, [(name, 0) for name in RUNS])], progress=False)
        seconds.append(time.perf_counter() - start)
        for scheduler in RUNS:
            if not is_complete(folder := run_dir(runs.study_dir, scheduler, 0), cfg.hash()):
                raise RuntimeError(f"{folder / RECORD}: the run did not complete")
    return seconds


def precision_step(precision: str, steps: int, workdir: Path) -> dict[str, float]:
    """Seconds per cached-teacher training step of the default preset at `precision` (fp32,
    bf16) with a run's numerics (portable, 1 thread), and the process's resident memory
    before the steps and at its peak during them (MiB): a fresh process per call, since the
    kernels are chosen once per process and its peak cannot be lowered again."""
    out = _fresh_process("portable", "_precision_step", precision, steps, workdir)
    seconds, base, peak = map(float, out.split())
    return {"seconds": seconds, "rss_before_mib": base, "rss_peak_mib": peak}


def _precision_step(precision: str, steps: str, workdir: str) -> str:
    steps = int(steps)  # from `_fresh_process`'s command line
    numerics.settle(NumericsConfig(), NumericsConfig().threads)
    b = Bench.build(Path(workdir))
    if precision == "bf16":  # the teacher-output cache a bf16 run stores, in its place
        b.cached = b.cached.to(torch.bfloat16)
        b.inputs = dataclasses.replace(b.inputs, teacher=b.cached)
    step = b.harness_step("cached", precision=precision)
    for _ in range(3):
        step()
    ctypes.CDLL(None).malloc_trim(0)  # glibc: freed memory back to the system, so that
    base = _rss_mib("VmRSS")  # the peak below is the steps' own working memory
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak (VmHWM) starts again here
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return f"{(time.perf_counter() - start) / steps} {base} {_rss_mib('VmHWM')}"


def bf16_support() -> list[str]:
    """The CPU's bfloat16 instructions (/proc/cpuinfo flags): without them bf16 matmuls are
    emulated in float32."""
    return sorted(f for f in numerics._cpu_flags() if f in ("avx512_bf16", "amx_bf16"))


def _rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large float32 matmul on this machine: the best of `repeats`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def render(results: dict[str, Any]) -> str:
    """`reports/bench.md` from the measured figures (each a ratio measured in one session)."""
    r = results
    lines = [
        "# Benchmarks: harness overhead, data pipeline, bandit, teacher cache, FLOP/s",
        "",
        f"Machine: {r['machine']}. Measured by `nox -s bench` (pytest-benchmark, medians "
        "after warm-up rounds), all figures in one session on the embedded default's shapes "
        "(teacher-small, student-small, batch 64, 48 px, VQA).",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
    ]
    for name, value, target in r["rows"]:
        lines.append(f"| {name} | {value} | {target} |")
    lines += ["", "## Raw timings (median seconds)", ""]
    lines += [f"- {k}: {v:.6f}" for k, v in sorted(r["timings"].items())]
    lines += ["", *r.get("notes", []), ""]
    for title, section in r.get("sections", {}).items():
        lines += [f"## {title}", "", *section, ""]
    return "\n".join(lines)


def machine() -> str:
    return (
        f"{platform.machine()}, {platform.processor() or 'cpu'}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread{'s' * (torch.get_num_threads() != 1)}, "
        f"python {platform.python_version()}"
    )


def write(results: dict[str, Any], reports_dir: Path) -> Path:
    """`bench.md` with this session's figures; a run of some benchmarks only (`-k NAME`) keeps
    the earlier figures, timings, notes and sections it did not measure, and says so."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    out = reports_dir / REPORT
    earlier = parse(out.read_text()) if out.is_file() else None
    write_text(out, render(merge(earlier, results) if earlier else results))
    return out


def parse(text: str) -> dict[str, Any]:
    """The parts of a `bench.md` that `render` wrote."""
    main, *sections = text.split("\n## ")
    rows = [
        tuple(c.strip() for c in line.strip("|").split(" | "))
        for line in main.splitlines()
        if line.startswith("| ") and not line.startswith("| figure")
    ]
    timings, notes = {}, []
    raw = next((s for s in sections if s.startswith("Raw timings")), "")
    for line in raw.splitlines()[1:]:
        if line.startswith("- ") and ": " in line:
            key, _, value = line[2:].rpartition(": ")
            timings[key] = float(value)
        elif line.strip():
            notes.append(line)
    others = {
        title: body.strip("\n").splitlines()
        for title, _, body in (s.partition("\n") for s in sections)
        if not title.startswith("Raw timings")
    }
    return {"rows": [r for r in rows if len(r) == 3], "timings": timings, "notes": notes,
            "sections": others}  # fmt: skip


def merge(earlier: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """This session's figures in place of the earlier ones of the same name; the rest kept."""
    names = {name for name, _, _ in now["rows"]}
    kept = [r for r in earlier["rows"] if r[0] not in names]
    notes = [
        n for n in earlier["notes"] if n not in now.get("notes", []) and not n.startswith(KEPT)
    ]
    if kept:
        notes.append(f"{KEPT} {', '.join(r[0] for r in kept)}.")
    return {
        **now,
        "rows": [*kept, *now["rows"]],
        "timings": {**earlier["timings"], **now["timings"]},
        "notes": [*notes, *now.get("notes", [])],
        "sections": {**earlier["sections"], **now.get("sections", {})},
    }


KEPT = "Kept from an earlier `nox -s bench` (not measured in the latest run, which ran a subset):"
