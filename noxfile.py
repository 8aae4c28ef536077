"""Entry points: `nox -s reproduce-<task>` and `reproduce-all` (the studies), `verify-<task>`
(a study re-run and compared digit for digit with the committed report), `nox -s tests`
(the suite), `nox -s lint`, `nox -s interop` (our CoCa against open_clip's), `nox -s xla`
(the torch-xla path on the CPU PJRT device), `nox -s executors` (submitit and Ray executors).

Every session installs the project with `constraints.txt`, the one place torch is pinned;
`nox -s xla` and `nox -s interop` use `constraints-xla.txt` (torch 2.9: torch-xla and
torchvision need their own torch release)."""

from __future__ import annotations

import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))
from harness.tasks import cards  # noqa: E402  (the task cards: standard library only)

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ("-c", "constraints.txt")


def install(session: nox.Session, extras: str = "") -> None:
    session.install(*CONSTRAINTS, "-e", f".{extras}")


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (smoke studies included)."""
    install(session, "[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def interop(session: nox.Session) -> None:
    """Our CoCa, loader and tokenizer against open_clip's on the same weights (tests/interop).

    open_clip imports torchvision, which fails to import on constraints.txt's torch 2.13, so
    this session takes the matching pair of constraints-xla.txt (CUDA builds, several GB)."""
    session.install(
        "-c", "constraints-xla.txt", "torch", "torchvision", "open-clip-torch", "-e", ".[test]"
    )
    session.run("pytest", "-q", "tests/interop", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")  # formatting rules change between releases
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


def _reproduce(task: str):
    def session_fn(session: nox.Session) -> None:
        install(session)
        session.run("optima-repro", "reproduce", task, *session.posargs)

    session_fn.__doc__ = f"The {task} study (default preset on the embedded synthetic world)."
    return session_fn


def _verify(task: str):
    def session_fn(session: nox.Session) -> None:
        install(session)
        out = session.create_tmp()
        session.run(
            "optima-repro", "reproduce", task, "--reports", f"{out}/reports", *session.posargs
        )
        session.run("optima-repro", "compare", f"reports/{task}.md", f"{out}/reports/{task}.md")

    session_fn.__doc__ = f"Re-run the {task} study and compare its tables with reports/{task}.md."
    return session_fn


TASKS = tuple(cards())
for _task in TASKS:
    nox.session(name=f"reproduce-{_task}")(_reproduce(_task))
    nox.session(name=f"verify-{_task}")(_verify(_task))


@nox.session
def bench(session: nox.Session) -> None:
    """Harness overhead, data pipeline, bandit, teacher cache, FLOP/s: reports/bench.md."""
    install(session, "[bench]")
    session.run("pytest", "-q", "-s", "tests/bench/bench_harness.py", *session.posargs)


@nox.session
def executors(session: nox.Session) -> None:
    """The executors' tests that need their extras: submitit's local executor, a local Ray
    (the others run in `nox -s tests`)."""
    install(session, "[test,slurm,ray]")
    selected = ("tests/test_executors.py", "-k", "submitit or ray")
    session.run("pytest", "-q", *selected, *session.posargs)


@nox.session
def xla(session: nox.Session) -> None:
    """XLA tests and a smoke VQA study through torch-xla on the CPU PJRT device (spec §8)."""
    session.install("-c", "constraints-xla.txt", "torch", "torch-xla", "-e", ".[test]")
    env = {"PJRT_DEVICE": "CPU"}
    session.run("pytest", "-q", "tests/xla", *session.posargs, env=env)
    work = session.create_tmp()
    # the smoke study, two rows and a 30-step teacher: XLA on CPU is slower than eager CPU
    session.run(
        "optima-repro", "reproduce", "vqa", "--preset", "smoke", "--seeds", "0",
        "--schedulers", "optima,uniform", "--set", "pretrain.steps=30",
        "--set", "teacher.steps=30", "--device", "xla", "--quiet",
        "--workdir", f"{work}/work", "--reports", f"{work}/reports", env=env,
    )  # fmt: skip


@nox.session(name="ablate-vqa")
def ablate_vqa(session: nox.Session) -> None:
    """OPTIMA variants on the VQA default study: reports/ablations-vqa.md."""
    install(session)
    session.run("optima-repro", "ablate", "vqa", *session.posargs)


@nox.session(name="reproduce-all")
def reproduce_all(session: nox.Session) -> None:
    """The four studies, then reports/summary.md across tasks."""
    install(session)
    for task in TASKS:
        session.run("optima-repro", "reproduce", task, *session.posargs)
