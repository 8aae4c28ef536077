"""Task reports from run records alone (spec/harness.md §7, a contract): `reports/<task>.md`
with its figures beside it. Never imports models: a report is a function of records."""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

ORDER = ("optima", "uniform", "random", "none")
TITLES = {"vqa": "VQA v2"}
SECONDARY = {"vqa": ("yes/no", "number", "other")}


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    v = np.asarray(values, dtype=float)
    std = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.2f} ± {std:.2f}"


def secondary_metrics(task: str, metrics: dict) -> list[float | None]:
    if task == "vqa":
        per_type = metrics.get("perAnswerType", {})
        return [per_type.get(k) for k in SECONDARY[task]]
    return []


def selection_figure(by_scheduler: dict[str, list[dict]], modules: list[str], path: Path) -> bool:
    """Share of seeds that distilled each module in each round, one panel per scheduler."""
    names = [n for n in ("optima", "random") if by_scheduler.get(n)]
    if not names:
        return False
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.6 * len(names)), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, name in zip(axes[:, 0], names, strict=True):
        records = by_scheduler[name]
        n_rounds = len(records[0]["rounds"])
        share = np.zeros((len(modules), n_rounds))
        for r in records:
            for p, rnd in enumerate(r["rounds"]):
                for m in rnd["active"]:
                    share[modules.index(m), p] += 1 / len(records)
        bottom = np.zeros(n_rounds)
        for i, m in enumerate(modules):
            ax.bar(np.arange(n_rounds), share[i], bottom=bottom, color=colors[i], label=m)
            bottom += share[i]
        ax.set_title(f"{name}: module distilled per round ({len(records)} seeds)")
        ax.set_xlabel("round")
        ax.set_ylabel("share of seeds")
        ax.set_ylim(0, 1)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)
    return True


def task_report(task: str, records: list[dict], reports_dir: Path) -> Path:
    complete = [r for r in records if r and r.get("status") == "complete"]
    failed = [r for r in records if r and r.get("status") != "complete"]
    by_scheduler: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(complete, key=lambda r: r["seed"]):
        by_scheduler[r["scheduler"]].append(r)
    names = [n for n in ORDER if n in by_scheduler] + sorted(set(by_scheduler) - set(ORDER))
    title = TITLES.get(task, task)
    any_record = (complete or failed or [None])[0]
    lines = [f"# {title}: OPTIMA against layer-uniform and random module selection", ""]
    if any_record is None:
        lines += ["No run records found.", ""]
        out = reports_dir / f"{task}.md"
        write_text_atomic(out, "\n".join(lines))
        return out

    cfg = any_record["config"]
    d = cfg["distill"]
    prov = any_record["provenance"]
    sec = SECONDARY.get(task, ())
    uniform = {r["seed"]: r["metrics"]["primary"] for r in by_scheduler.get("uniform", [])}
    lines += [
        f"Preset `{cfg['preset']}`, data: {prov['data']['source']}. "
        f"Teacher `{cfg['teacher']['model']}`, student `{d['student']}`; "
        f"T = {d['steps']} steps in P = {d['rounds']} rounds, T0 = {d['warmup_rounds']}, "
        f"gamma = {d['gamma']}, a = {tuple(d['alpha'])}. "
        "Every student row uses the same seeds, hence the same data order, student "
        "initialisation and reward set; only the active modules differ. `none` is the "
        "student trained on the task alone (a1 = 1, a2 = a3 = 0). Metric: "
        f"{any_record['metric']['name']} on `{cfg['eval_split']}`, "
        "mean ± sample std over seeds; Δ uniform is the mean paired difference to `uniform` "
        "on the same seed, wins counts seeds where the row beats `uniform`.",
        "",
        "| row | n | " + " | ".join(["primary", *sec, "Δ uniform", "wins vs uniform"]) + " |",
        "|---|---|" + "---|" * (len(sec) + 3),
    ]
    teacher = any_record["teacher"]["metrics"]
    t_sec = secondary_metrics(task, teacher)
    lines.append(
        f"| teacher | 1 | {teacher['primary']:.2f} | "
        + " | ".join(f"{v:.2f}" if v is not None else "–" for v in t_sec)
        + " | | |"
    )
    for name in names:
        rs = by_scheduler[name]
        primary = [r["metrics"]["primary"] for r in rs]
        cols = [mean_std(primary)]
        for i in range(len(sec)):
            cols.append(mean_std([secondary_metrics(task, r["metrics"])[i] for r in rs]))
        paired = [r["metrics"]["primary"] - uniform[r["seed"]] for r in rs if r["seed"] in uniform]
        if name == "uniform" or not paired:
            cols += ["", ""]
        else:
            cols += [mean_std(paired), f"{sum(d > 0 for d in paired)}/{len(paired)}"]
        lines.append(f"| {name} | {len(rs)} | " + " | ".join(cols) + " |")

    seeds = sorted({r["seed"] for r in complete})
    lines += ["", "## Per seed", "", "| row | " + " | ".join(f"seed {s}" for s in seeds) + " |"]
    lines.append("|---|" + "---|" * len(seeds))
    for name in names:
        by_seed = {r["seed"]: r["metrics"]["primary"] for r in by_scheduler[name]}
        cells = [f"{by_seed[s]:.2f}" if s in by_seed else "–" for s in seeds]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    modules = sorted({m for r in complete for rnd in r["rounds"] for m in rnd["active"]})
    figure = reports_dir / f"{task}-module-selection.png"
    if modules and selection_figure(by_scheduler, modules, figure):
        lines += [
            "",
            "## Module selection",
            "",
            f"![module selection per round]({figure.name})",
        ]

    lines += [
        "",
        "## Mean reward per round",
        "",
        "| row | " + " | ".join(["first round", "last round", "mean"]) + " |",
        "|---|---|---|---|",
    ]
    for name in names:
        rewards = np.array([[x["reward"] for x in r["rounds"]] for r in by_scheduler[name]])
        lines.append(
            f"| {name} | {rewards[:, 0].mean():.4f} | {rewards[:, -1].mean():.4f} | "
            f"{rewards.mean():.4f} |"
        )

    if failed:
        lines += ["", "## Failed runs", "", "| row | seed | error |", "|---|---|---|"]
        for r in failed:
            msg = r.get("error", {}).get("message", "unknown").replace("|", "\\|").splitlines()[0]
            lines.append(f"| {r['scheduler']} | {r['seed']} | {msg} |")

    timing = [r["timing"]["wall_seconds"] for r in complete]
    lines += [
        "",
        "## Provenance",
        "",
        f"- config hash `{any_record['config_hash']}`, git `{prov['git']['commit']}`"
        + (" (uncommitted changes)" if prov["git"]["dirty"] else ""),
        f"- device `{prov['device']}`, torch threads {prov['torch_threads']}, python "
        f"{prov['python']}, " + ", ".join(f"{k} {v}" for k, v in prov["packages"].items()),
        f"- data sha256 `{prov['data']['sha256'][:16]}…` ({prov['data']['root']}), "
        f"splits {prov['data']['splits']}",
        f"- evaluator: {prov['evaluator']['name']}",
        "- [ours] options: " + ", ".join(f"{k}={v}" for k, v in prov["ours_options"].items()),
        f"- optimizer: {prov['optimizer']['name']}: {prov['optimizer']['note']}",
        f"- run wall time: {sum(timing):.0f} s over {len(timing)} runs",
        "",
    ]
    out = reports_dir / f"{task}.md"
    write_text_atomic(out, "\n".join(lines))
    return out
