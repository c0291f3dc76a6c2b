"""``report.md`` writers: one run (:func:`write_run_report`) or several methods over seeds
(:func:`write_comparison_report`, used by ``autobalance demo``). Figures are PNG files next to
the report, embedded with relative links; without matplotlib the report says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autobalance.checkpoint import atomic_write_text
from autobalance.report import plots
from autobalance.report.tables import (
    COMPARE_COLUMNS,
    fmt,
    fmt_mean_std,
    markdown_table,
    mean_std,
)
from autobalance.runs import REPORT, SUMMARY, RunDir


class MarkdownReport:
    """A Markdown document assembled section by section."""

    def __init__(self, title: str) -> None:
        self.parts: list[str] = [f"# {title}\n"]

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"{'#' * level} {text}\n")

    def text(self, paragraph: str) -> None:
        self.parts.append(paragraph.rstrip() + "\n")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.parts.append(markdown_table(headers, rows))

    def image(self, path: str, alt: str) -> None:
        self.parts.append(f"![{alt}]({path})\n")

    def code(self, text: str, lang: str = "") -> None:
        self.parts.append(f"```{lang}\n{text.rstrip()}\n```\n")

    def render(self) -> str:
        return "\n".join(self.parts)

    def write(self, path: str | Path) -> Path:
        return atomic_write_text(self.render(), path)


def _flat_counts(summary: Mapping[str, Any]) -> np.ndarray:
    if "group_counts" in summary:
        return np.asarray(summary["group_counts"], dtype=np.float64).ravel()
    return np.asarray(summary["class_counts"], dtype=np.float64)


def cluster_counts(
    rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]
) -> dict[int, float]:
    """Mean training count of the classes (cells) in each cluster, for plot labels."""
    flat = _flat_counts(summary)
    n_groups = flat.size // max(len(summary["class_counts"]), 1)
    members: dict[int, set[int]] = {}
    for r in rows:
        if r.get("cluster") is None:
            continue
        cell = int(r["class"]) * n_groups + (int(r["group"]) if r.get("group") is not None else 0)
        members.setdefault(int(r["cluster"]), set()).add(cell)
    return {c: float(flat[sorted(m)].mean()) for c, m in members.items()}


def class_accuracy(summary: Mapping[str, Any]) -> list[float]:
    """Per-class test accuracy ``1 − Err_k`` (NaN for classes without test samples)."""
    return [np.nan if e is None else 1.0 - float(e) for e in summary["test"]["class_errors"]]


def cell_rows(summary: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of the per-(class, group) table of a grouped run's ``summary.json``.

    One row per cell (k, g): class and group names, the training samples ``n_{k,g}`` (when the
    summary has ``group_counts``), the test error ``Err_{k,g} = P(ŷ ≠ y | y = k, g)`` (None, shown
    as ``n/a``, for a cell without test samples) and, for a searched run whose α is per cell, the
    learned weight w, additive offset l and multiplicative scale Δ of the cell.
    """
    cells = summary["test"]["cell_errors"]
    n_classes = len(cells)
    n_groups = len(cells[0]) if cells else 0
    classes = summary.get("class_names") or [str(k) for k in range(n_classes)]
    groups = summary.get("group_names") or [str(g) for g in range(n_groups)]
    counts = summary.get("group_counts")
    if counts is not None and np.shape(counts) != (n_classes, n_groups):
        counts = None
    alpha = summary.get("alpha")
    if alpha is not None and np.shape(alpha["weight"]) != (n_classes, n_groups):
        alpha = None
    headers = ["class", "group"]
    headers += ["train samples"] if counts is not None else []
    headers += ["test error"]
    headers += ["w", "l", "Δ"] if alpha is not None else []
    rows: list[list[Any]] = []
    for k in range(n_classes):
        for g in range(n_groups):
            row: list[Any] = [classes[k], groups[g]]
            if counts is not None:
                row.append(counts[k][g])
            err = cells[k][g]
            row.append(None if err is None else float(err))
            if alpha is not None:
                row += [alpha[key][k][g] for key in ("weight", "additive", "multiplicative")]
            rows.append(row)
    return headers, rows


def _cell_section(rep: MarkdownReport, summary: Mapping[str, Any]) -> None:
    test = summary["test"]
    rep.heading("Per (class, group) cell")
    headers, rows = cell_rows(summary)
    rep.table(headers, rows)
    rep.text(
        "Test error of each cell `Err_{k,g} = P(ŷ ≠ y | y = k, g)` (`n/a`: no test samples). "
        f"DEO `Σ_k (max_g Err_{{k,g}} − min_g Err_{{k,g}})` (eq. 4.1) = {fmt(test.get('deo'))}; "
        f"worst (class, group) error `max_{{k,g}} Err_{{k,g}}` = "
        f"{fmt(test.get('worst_group_error'))}."
    )


def _try_plot(
    report: MarkdownReport, folder: Path, name: str, alt: str, fn: Any, *a: Any, **k: Any
) -> None:
    if not plots.plots_available():
        return
    try:
        fn(*a, folder / name, **k)
    except ValueError as exc:  # nothing to draw (e.g. an empty history)
        report.text(f"_{alt}: not drawn ({exc})._")
        return
    report.image(name, alt)


def write_run_report(run: RunDir, *, figures: bool = True) -> Path:
    """``report.md`` of one run from its files (summary, metrics, trajectory), with plots
    unless ``figures`` is false."""
    summary = run.read_json(SUMMARY)
    history = run.metrics()
    traj = run.trajectory()
    test = summary["test"]
    rep = MarkdownReport(f"{summary.get('name', 'run')}: {summary['method']}")
    rep.text(
        f"Dataset `{summary['dataset']}`, model `{summary['model']}`, seed {summary['seed']}, "
        f"{summary['seconds']:.1f} s wall time. Configuration: [config.yaml](config.yaml); "
        f"environment: [env.json](env.json); per-epoch metrics: [metrics.jsonl](metrics.jsonl)."
    )
    rep.heading("Test metrics")
    grouped = "deo" in test
    rows = [
        [key.replace("_", " "), test.get(key)] for _, key, g in COMPARE_COLUMNS if grouped or not g
    ]
    if grouped and "empirical_error" in test:
        rows.append(["empirical error", test["empirical_error"]])
    rep.table(["metric", "value"], rows)
    if "hyper_steps" in summary:
        hs = summary["hyper_steps"]
        rep.text(
            f"Hyper-steps on α: {hs['applied']} applied, {hs['skipped']} skipped. "
            "α* is in [alpha.json](alpha.json) (reuse it: `autobalance train --alpha alpha.json`); "
            "its evolution in [alpha_trajectory.csv](alpha_trajectory.csv)."
        )
    guard = summary.get("guard") or {}
    if guard:
        rep.text(guard_sentence(guard))
    rep.heading("Per class")
    names = summary.get("class_names") or [str(k) for k in range(len(summary["class_counts"]))]
    acc = class_accuracy(summary)
    headers = ["class", "train samples", "test accuracy"]
    alpha = summary.get("alpha")
    if alpha is not None and np.asarray(alpha["weight"]).ndim == 1:
        headers += ["w", "l", "Δ"]
    table = []
    for k, name in enumerate(names):
        row: list[Any] = [name, summary["class_counts"][k], acc[k]]
        if len(headers) > 3:
            row += [alpha["weight"][k], alpha["additive"][k], alpha["multiplicative"][k]]
        table.append(row)
    rep.table(headers, table)
    if grouped:
        _cell_section(rep, summary)
    if not figures:
        return rep.write(run.file(REPORT))
    rep.heading("Figures")
    if not plots.plots_available():
        rep.text(f"_{plots.MISSING_PLOTS}._")
    else:
        _try_plot(
            rep,
            run.path,
            "error_curves.png",
            "balanced error over epochs",
            plots.plot_error_curves,
            history,
        )
        if traj:
            _try_plot(
                rep,
                run.path,
                "alpha_trajectory.png",
                "loss parameters per cluster over the search",
                plots.plot_alpha_trajectory,
                traj,
                cluster_counts=cluster_counts(traj, summary),
            )
        _try_plot(
            rep,
            run.path,
            "per_class_accuracy.png",
            "per-class accuracy against class frequency",
            plots.plot_per_class_accuracy,
            summary["class_counts"],
            {summary["method"]: acc},
        )
        if grouped:
            _try_plot(
                rep,
                run.path,
                "cell_errors.png",
                "test error per (class, group) cell",
                plots.plot_cell_errors,
                test["cell_errors"],
                counts=summary.get("group_counts"),
                class_names=summary.get("class_names") or None,
                group_names=summary.get("group_names") or None,
            )
            _try_plot(
                rep,
                run.path,
                "group_curves.png",
                "DEO and worst (class, group) error over epochs",
                plots.plot_group_curves,
                history,
            )
    return rep.write(run.file(REPORT))


def aggregate(summaries: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Per method, mean / std / values over seeds of every scalar test metric, per-class
    accuracy and wall time (JSON-ready)."""
    out: dict[str, Any] = {}
    for method, runs in summaries.items():
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
        keys = [k for k, v in runs[0]["test"].items() if isinstance(v, float | int | type(None))]
        keys = [k for k in keys if not isinstance(runs[0]["test"][k], list)]
        for key in [*keys, "seconds"]:
            vals = [r["seconds"] if key == "seconds" else r["test"].get(key) for r in runs]
            m, s, _ = mean_std(vals)
            entry[key] = {"mean": m, "std": s, "values": vals}
        accs = np.asarray([class_accuracy(r) for r in runs], dtype=np.float64)
        entry["class_accuracy"] = {
            "mean": np.nanmean(accs, axis=0).tolist(),
            "std": (
                np.nanstd(accs, axis=0, ddof=1) if len(runs) > 1 else np.zeros(accs.shape[1])
            ).tolist(),
        }
        out[method] = entry
    return out


def write_comparison_report(
    path: str | Path,
    summaries: Mapping[str, Sequence[Mapping[str, Any]]],
    run_dirs: Mapping[str, Sequence[Path]],
    *,
    title: str,
    intro: str = "",
) -> Path:
    """``report.md`` comparing methods over seeds: mean ± std table, per-class table, figures.

    ``summaries[method]`` are the runs' ``summary.json`` (one per seed), ``run_dirs[method]``
    their folders (linked from the report). Figures are written next to ``path``.
    """
    path = Path(path)
    folder = path.parent
    methods = list(summaries)
    first = summaries[methods[0]][0]
    grouped = "deo" in first["test"]
    rep = MarkdownReport(title)
    if intro:
        rep.text(intro)
    rep.heading("Results (test set, mean ± std over seeds)")
    cols = [c for c in COMPARE_COLUMNS if grouped or not c[2]]
    rows = []
    for m in methods:
        runs = summaries[m]
        rows.append(
            [m]
            + [fmt_mean_std([r["test"].get(key) for r in runs]) for _, key, _ in cols]
            + [
                fmt_mean_std([r["seconds"] for r in runs], 1),
                ", ".join(str(r["seed"]) for r in runs),
            ]
        )
    rep.table(["method", *(c[0] for c in cols), "time (s)", "seeds"], rows)
    rep.heading("Per-class test accuracy (mean over seeds)")
    agg = aggregate(summaries)
    names = first.get("class_names") or [str(k) for k in range(len(first["class_counts"]))]
    table = [
        [name, first["class_counts"][k], *(agg[m]["class_accuracy"]["mean"][k] for m in methods)]
        for k, name in enumerate(names)
    ]
    rep.table(["class", "train samples", *methods], table)
    rep.heading("Figures")
    if not plots.plots_available():
        rep.text(f"_{plots.MISSING_PLOTS}._")
    else:
        _try_plot(
            rep,
            folder,
            "per_class_accuracy.png",
            "per-class accuracy against class frequency",
            plots.plot_per_class_accuracy,
            first["class_counts"],
            {m: agg[m]["class_accuracy"]["mean"] for m in methods},
            stds={m: agg[m]["class_accuracy"]["std"] for m in methods}
            if len(summaries[methods[0]]) > 1
            else None,
        )
        for m in methods:
            run = RunDir(run_dirs[m][0])
            traj = run.trajectory()
            if traj:
                _try_plot(
                    rep,
                    folder,
                    f"alpha_trajectory_{m}.png",
                    f"{m}: loss parameters per cluster (seed {summaries[m][0]['seed']})",
                    plots.plot_alpha_trajectory,
                    traj,
                    cluster_counts=cluster_counts(traj, summaries[m][0]),
                )
        _try_plot(
            rep,
            folder,
            "error_curves.png",
            f"balanced error over epochs (seed {summaries[methods[0]][0]['seed']})",
            plots.plot_error_curves,
            {m: RunDir(run_dirs[m][0]).metrics() for m in methods},
            title=f"Balanced error over epochs (seed {summaries[methods[0]][0]['seed']})",
        )
    rep.heading("Runs")
    for m in methods:
        links = ", ".join(
            f"[{Path(d).name}]({Path(os.path.relpath(d, folder)).as_posix()}/report.md)"
            for d in run_dirs[m]
        )
        rep.text(f"- {m}: {links}")
    return rep.write(path)


__all__ = [
    "MarkdownReport",
    "aggregate",
    "cell_rows",
    "class_accuracy",
    "cluster_counts",
    "guard_sentence",
    "write_comparison_report",
    "write_run_report",
]


def guard_sentence(guard: Mapping[str, Any]) -> str:
    """One plain sentence on the search's stability guard (``SearchResult.guard``)."""
    if guard.get("fell_back"):
        head = f"**The search fell back to its initialisation.** {guard.get('fallback_reason')}."
    else:
        head = "The search kept its learned α*."
    start, final = guard.get("start_val_score"), guard.get("final_val_score")
    what = guard.get("val_score") or "balanced error"
    scores = (
        f" Validation {what}: {start:.4f} at the start of the search, {final:.4f} at the end."
        if start is not None and final is not None
        else ""
    )
    return (
        f"{head}{scores} Rollbacks: {guard.get('rollbacks', 0)}; hypergradient spikes clipped: "
        f"{guard.get('spikes_clipped', 0)}; α′ entries on a bound: "
        f"{100 * float(guard.get('pinned_fraction') or 0):.0f} %."
    )
