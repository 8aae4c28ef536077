"""A task report's figures, PNG files beside its markdown, and the links to them. Layout is
fixed in inches and the PNG carries no software stamp, so the same records give the same
bytes; the Agg backend is chosen before pyplot loads so no display is ever needed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from harness.atomic import atomic_path
from harness.records import RunRecord, StudyRecords
from harness.report.display import ORDER, by_scheduler

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

FIGURES = ("module-selection", "rewards", "posterior", "curves")
DPI = 100


def figure_links(task: str, figures: set[str]) -> list[str]:
    captions = {
        "module-selection": (
            "Module selection",
            "Share of seeds that distilled each module in each round, stacked, one panel per "
            "scheduler (`uniform` distils every module every round; `none` none).",
        ),
        "rewards": (
            "Rewards",
            "Reward per round: relative drop of the reward-set objective; line: mean over "
            "seeds, band: min to max.",
        ),
        "posterior": (
            "OPTIMA posterior",
            "Posterior mean of each arm's reward when the round's modules were chosen; "
            "line: mean over seeds, band: min to max; gaps before an arm's first reward.",
        ),
        "curves": (
            "Training curves",
            "Primary metric measured during training (where the records have it) and the "
            "loss terms, each the mean over a round's steps, against steps; line: mean over "
            "seeds, band: min to max.",
        ),
    }
    lines = []
    for name in FIGURES:
        if name in figures:
            title, caption = captions[name]
            lines += ["", f"## {title}", "", caption, "", f"![{title}]({task}-{name}.png)"]
    return lines


def write_figures(study: StudyRecords, names: list[str], reports_dir: Path) -> set[str]:
    """The figures the complete runs support, as PNG files; returns their names."""
    done = {n: by_scheduler(study.complete, n) for n in names}
    done = {n: [r for r in rs if r.rounds] for n, rs in done.items()}
    done = {n: rs for n, rs in done.items() if rs}
    if not done:
        return set()
    makers: dict[str, Callable[[dict[str, list[RunRecord]]], plt.Figure | None]] = {
        "module-selection": _selection_figure,
        "rewards": _reward_figure,
        "posterior": _posterior_figure,
        "curves": _curves_figure,
    }
    written = set()
    with plt.style.context("default"):
        for name, make in makers.items():
            fig = make(done)
            if fig is not None:
                save_figure(fig, reports_dir / f"{study.task}-{name}.png")
                written.add(name)
    return written


def save_figure(fig: plt.Figure, path: Path) -> None:
    """PNG without a software stamp (byte-identical from the same records), written atomically."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)


def _color(name: str, names: Sequence[str]) -> Any:
    colors = plt.get_cmap("tab10").colors
    known = [*ORDER, *sorted(set(names) - set(ORDER))]
    return colors[known.index(name) % len(colors)]


def _modules(records: Iterable[RunRecord]) -> list[str]:
    """Modules in the order the records name their layer losses (the model's order)."""
    order: list[str] = []
    for r in records:
        for x in r.rounds:
            for key in x.train:
                m = key.removeprefix("layer/")
                if key.startswith("layer/") and m not in order:
                    order.append(m)
            for m in x.active:
                if m not in order:
                    order.append(m)
    return order


def _band(ax: Any, points: list[tuple[float, float]], label: str, color: Any) -> None:
    """Mean line and min-max band over seeds of (x, y) points pooled across runs."""
    by_x: dict[float, list[float]] = {}
    for x, y in points:
        if y is not None and np.isfinite(y):
            by_x.setdefault(x, []).append(y)
    if not by_x:
        return
    xs = np.array(sorted(by_x))
    ys = [np.array(by_x[x]) for x in xs]
    ax.plot(xs, [y.mean() for y in ys], color=color, label=label, linewidth=1.5, marker=".")
    ax.fill_between(
        xs, [y.min() for y in ys], [y.max() for y in ys], color=color, alpha=0.2, linewidth=0
    )


def _margins(
    fig: plt.Figure, left: float, right: float, top: float, bottom: float, **space: float
) -> None:
    """Fixed margins in inches: cheaper than tight_layout (most of a report's time) and
    independent of text extents, so a figure's layout depends on its size alone."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h, **space
    )


def _integer_x(ax: Any) -> None:
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def _selection_figure(done: dict[str, list[RunRecord]]) -> plt.Figure | None:
    panels = {n: rs for n, rs in done.items() if any(x.active for r in rs for x in r.rounds)}
    if not panels:
        return None
    modules = _modules(r for rs in panels.values() for r in rs)
    colors = plt.get_cmap("tab10").colors
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels) + 0.9), squeeze=False)
    for ax, (name, recs) in zip(axes[:, 0], panels.items(), strict=True):
        n_rounds = min(len(r.rounds) for r in recs)
        share = np.zeros((len(modules), n_rounds))
        for r in recs:
            for p, x in enumerate(r.rounds[:n_rounds]):
                for m in x.active:
                    share[modules.index(m), p] += 1 / len(recs)
        bottom = np.zeros(n_rounds)
        for i, m in enumerate(modules):
            ax.bar(np.arange(n_rounds), share[i], bottom=bottom, color=colors[i % 10], label=m)
            bottom += share[i]
        ax.set_title(f"{name} ({len(recs)} seeds)", fontsize="medium")
        ax.set_ylabel("share of seeds (stacked)")
        ax.set_ylim(0, max(1.0, float(bottom.max())) * 1.05)
        _integer_x(ax)
    axes[-1, 0].set_xlabel("round")
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    _margins(fig, left=0.75, right=1.6, top=0.35, bottom=0.55, hspace=0.45)
    return fig


def _reward_figure(done: dict[str, list[RunRecord]]) -> plt.Figure | None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, recs in done.items():
        points = [(x.index, x.reward) for r in recs for x in r.rounds]
        _band(ax, points, f"{name} ({len(recs)})", _color(name, list(done)))
    ax.set_xlabel("round")
    ax.set_ylabel("reward")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    _integer_x(ax)
    ax.legend(fontsize="small")
    _margins(fig, left=0.75, right=0.2, top=0.2, bottom=0.55)
    return fig


def _posterior_figure(done: dict[str, list[RunRecord]]) -> plt.Figure | None:
    recs = [r for r in done.get("optima", []) if any(x.bandit for x in r.rounds)]
    if not recs:
        return None
    arms = sorted({a for r in recs for x in r.rounds if x.bandit for a in x.bandit.posterior_means})
    modules = _modules(recs)
    arms.sort(key=lambda a: (modules.index(a) if a in modules else len(modules), a))
    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, arm in enumerate(arms):
        points = [
            (x.index, x.bandit.posterior_means.get(arm))
            for r in recs
            for x in r.rounds
            if x.bandit is not None
        ]
        _band(ax, points, arm, colors[i % 10])
    if not ax.lines:  # no finite posterior yet (runs cut short by `--max-steps`)
        plt.close(fig)
        return None
    ax.set_title(f"optima: posterior mean per arm ({len(recs)} seeds)", fontsize="medium")
    ax.set_xlabel("round")
    ax.set_ylabel("posterior mean reward")
    _integer_x(ax)
    ax.legend(fontsize="small")
    _margins(fig, left=0.75, right=0.2, top=0.35, bottom=0.55)
    return fig


def _curves_figure(done: dict[str, list[RunRecord]]) -> plt.Figure | None:
    all_recs = [r for rs in done.values() for r in rs]
    terms = _loss_terms(all_recs)
    has_eval = any(x.eval for r in all_recs for x in r.rounds)
    panels = (["primary metric"] if has_eval else []) + terms
    if not panels:
        return None
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows + 0.85), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for name, recs in done.items():
            if panel == "primary metric":  # evaluations during training, then the final one
                points = [(x.eval.step, x.eval.primary) for r in recs for x in r.rounds if x.eval]
                points += [(r.config.round_steps * len(r.rounds), r.primary) for r in recs]
            else:
                points = [
                    ((x.index + 1) * r.config.round_steps, x.train.get(panel))
                    for r in recs
                    for x in r.rounds
                ]
            _band(ax, points, name, _color(name, list(done)))
        ax.set_title(panel, fontsize="medium")
        ax.set_xlabel("step")
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize="small")
    _margins(fig, left=0.5, right=0.1, top=0.35, bottom=0.5, hspace=0.42, wspace=0.22)
    return fig


def _loss_terms(records: list[RunRecord]) -> list[str]:
    order: list[str] = []
    for r in records:
        for x in r.rounds:
            order += [k for k in x.train if k not in order]
    return order
