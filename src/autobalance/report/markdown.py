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
from autobalance.guard import KEEPABLE_GAIN_WARNING
from autobalance.report import plots
from autobalance.report.tables import (
    COMPARE_COLUMNS,
    FEW_SHOT,
    MANY_SHOT,
    SHOT_SPLITS,
    describe_epochs,
    epochs_trained,
    fmt,
    fmt_mean_std,
    markdown_table,
    mean_std,
    shot_accuracy,
    shot_label,
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


def _member_count(r: Mapping[str, Any], summary: Mapping[str, Any]) -> float:
    """Training samples of a trajectory row's cell ``n_{k,g}`` (``group_counts``), or of its
    class ``n_k`` when α is per class (no group), also in a run with groups."""
    k = int(r["class"])
    if r.get("group") is not None and "group_counts" in summary:
        return float(summary["group_counts"][k][int(r["group"])])
    return float(summary["class_counts"][k])


def cluster_counts(
    rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]
) -> dict[int, float]:
    """Mean training count of the classes (cells) in each cluster: ``mean_{i ∈ c} n_i``, which
    labels the clusters and orders them head → tail in :func:`plots.plot_alpha_trajectory`."""
    members: dict[int, dict[tuple[int, int], float]] = {}
    for r in rows:
        if r.get("cluster") is None:
            continue
        cell = (int(r["class"]), -1 if r.get("group") is None else int(r["group"]))
        members.setdefault(int(r["cluster"]), {})[cell] = _member_count(r, summary)
    return {c: float(np.mean(list(m.values()))) for c, m in members.items()}


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


def compute_text(history: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """What a run trained: ``96 θ-epochs (warm-up 16 + search 24 + …), 57 hyper-steps on α``
    (:func:`~autobalance.report.tables.epochs_trained`; the hyper-steps of a search only)."""
    text = describe_epochs(epochs_trained(history, summary.get("timings")))
    hs = summary.get("hyper_steps")
    if hs:
        text += f", {int(hs.get('applied', 0)) + int(hs.get('skipped', 0))} hyper-steps on α"
    return text


def shot_rows(
    summaries: Sequence[Mapping[str, Any]], *, many: float = MANY_SHOT, few: float = FEW_SHOT
) -> list[Any]:
    """Mean ± std over runs (seeds) of the many / medium / few-shot accuracy
    (:func:`~autobalance.report.tables.shot_accuracy`), one cell per split."""
    per_run = [
        shot_accuracy(s["class_counts"], class_accuracy(s), many=many, few=few) for s in summaries
    ]
    return [fmt_mean_std([float(r[sp]["accuracy"]) for r in per_run]) for sp in SHOT_SPLITS]


def _shot_headers(
    summary: Mapping[str, Any], many: float, few: float
) -> tuple[list[str], dict[str, Any]]:
    """Column headers ``many-shot (> 100), 3 classes`` … and the split of the first run."""
    split = shot_accuracy(summary["class_counts"], class_accuracy(summary), many=many, few=few)
    heads = [
        f"{shot_label(sp, many=many, few=few)}, {split[sp]['classes']} classes"
        for sp in SHOT_SPLITS
    ]
    return heads, split


def _shot_section(
    rep: MarkdownReport,
    summaries: Mapping[str, Sequence[Mapping[str, Any]]],
    many: float,
    few: float,
) -> None:
    first = next(iter(summaries.values()))[0]
    heads, _ = _shot_headers(first, many, few)
    rep.heading("Many / medium / few-shot test accuracy")
    rep.table(
        ["method", *heads],
        [[m, *shot_rows(runs, many=many, few=few)] for m, runs in summaries.items()],
    )
    rep.text(
        f"Mean per-class test accuracy of the classes with more than {many:g} training samples "
        f"(many-shot), {few:g} to {many:g} (medium) and fewer than {few:g} (few-shot); "
        "`n/a`: no class in that range."
    )


def _confusion_plot(
    rep: MarkdownReport, folder: Path, summary: Mapping[str, Any], thresholds: tuple[float, float]
) -> None:
    """The run's normalised test confusion matrix (``summary["test"]["confusion"]``)."""
    confusion = summary["test"].get("confusion")
    if confusion is None:
        rep.text(
            "_Confusion matrix: not in summary.json (a run of an older autobalance, a streamed "
            "test set or more than 200 classes)._"
        )
        return
    _try_plot(
        rep,
        folder,
        "confusion_matrix.png",
        "test confusion matrix, rows normalised, classes by training count",
        plots.plot_confusion_matrix,
        confusion,
        summary["class_counts"],
        class_names=summary.get("class_names") or None,
        shot_thresholds=thresholds,
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


def write_run_report(
    run: RunDir,
    *,
    figures: bool = True,
    shot_thresholds: tuple[float, float] = (MANY_SHOT, FEW_SHOT),
) -> Path:
    """``report.md`` of one run from its files (summary, metrics, trajectory, hyper-steps),
    with plots unless ``figures`` is false. ``shot_thresholds`` = (many, few): classes with
    more than ``many`` training samples are many-shot, fewer than ``few`` few-shot."""
    summary = run.read_json(SUMMARY)
    history = run.metrics()
    traj = run.trajectory()
    test = summary["test"]
    many, few = shot_thresholds
    rep = MarkdownReport(f"{summary.get('name', 'run')}: {summary['method']}")
    rep.text(
        f"Dataset `{summary['dataset']}`, model `{summary['model']}`, seed {summary['seed']}, "
        f"{summary['seconds']:.1f} s wall time; compute: {compute_text(history, summary)}. "
        "Configuration: [config.yaml](config.yaml); environment: [env.json](env.json); "
        "per-epoch metrics: [metrics.jsonl](metrics.jsonl)."
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
    _shot_section(rep, {summary["method"]: [summary]}, many, few)
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
            "balanced error over epochs, and the hyper-steps on α",
            plots.plot_error_curves,
            history,
            hyper_steps=run.hyper_steps() or None,
            title=f"Balanced error over training\n{compute_text(history, summary)}",
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
        from autobalance.augment.io import read_policy_trajectory
        from autobalance.report.policy_plots import plot_policy_trajectory

        policy_rows = read_policy_trajectory(run.path)
        if policy_rows:  # a learned augmentation policy (search.augment, augment_policy.json)
            _try_plot(
                rep,
                run.path,
                "augment_policy.png",
                "augmentation policy per cluster over the search (augment_policy.json)",
                plot_policy_trajectory,
                policy_rows,
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
        _confusion_plot(rep, run.path, summary, (many, few))
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
    accuracy, many / medium / few-shot accuracy (default thresholds) and wall time
    (JSON-ready)."""
    out: dict[str, Any] = {}
    for method, runs in summaries.items():
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
        keys = [k for k, v in runs[0]["test"].items() if isinstance(v, float | int | type(None))]
        keys = [k for k in keys if not isinstance(runs[0]["test"][k], list)]
        for key in [*keys, "seconds"]:
            vals = [r["seconds"] if key == "seconds" else r["test"].get(key) for r in runs]
            m, s, _ = mean_std(vals)
            entry[key] = {"mean": m, "std": s, "values": vals}
        shots = [shot_accuracy(r["class_counts"], class_accuracy(r)) for r in runs]
        entry["shot_accuracy"] = {
            sp: dict(zip(("mean", "std"), mean_std([float(x[sp]["accuracy"]) for x in shots])))
            for sp in SHOT_SPLITS
        }
        accs = np.asarray([class_accuracy(r) for r in runs], dtype=np.float64)
        entry["class_accuracy"] = {
            "mean": np.nanmean(accs, axis=0).tolist(),
            "std": (
                np.nanstd(accs, axis=0, ddof=1) if len(runs) > 1 else np.zeros(accs.shape[1])
            ).tolist(),
        }
        out[method] = entry
    return out


def _short_compute(text: str) -> str:
    """``96 θ-epochs`` of :func:`compute_text`'s ``96 θ-epochs (…), 57 hyper-steps on α``."""
    return text.split(" (")[0].split(",")[0]


def write_comparison_report(
    path: str | Path,
    summaries: Mapping[str, Sequence[Mapping[str, Any]]],
    run_dirs: Mapping[str, Sequence[Path]],
    *,
    title: str,
    intro: str = "",
    shot_thresholds: tuple[float, float] = (MANY_SHOT, FEW_SHOT),
) -> Path:
    """``report.md`` comparing methods over seeds: mean ± std table with each method's
    compute (θ-epochs), many / medium / few-shot table (``shot_thresholds`` = (many, few)),
    per-class table, figures.

    ``summaries[method]`` are the runs' ``summary.json`` (one per seed), ``run_dirs[method]``
    their folders (linked from the report; their records give the compute and the curves).
    Figures are written next to ``path``.
    """
    path = Path(path)
    folder = path.parent
    methods = list(summaries)
    first = summaries[methods[0]][0]
    grouped = "deo" in first["test"]
    many, few = shot_thresholds
    histories = {m: RunDir(run_dirs[m][0]).metrics() for m in methods}
    compute = {m: compute_text(histories[m], summaries[m][0]) for m in methods}
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
                epochs_trained(histories[m], runs[0].get("timings"))["total"],
            ]
        )
    rep.table(["method", *(c[0] for c in cols), "time (s)", "seeds", "θ-epochs"], rows)
    rep.text(
        "Compute per run (θ-epochs: passes over the training data that update θ): "
        + "; ".join(f"{m} {compute[m]}" for m in methods)
        + "."
    )
    _shot_section(rep, summaries, many, few)
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
            "shot_accuracy.png",
            "many / medium / few-shot test accuracy",
            plots.plot_shot_accuracy,
            {m: {sp: v["mean"] for sp, v in agg[m]["shot_accuracy"].items()} for m in methods},
            stds={m: {sp: v["std"] for sp, v in agg[m]["shot_accuracy"].items()} for m in methods}
            if len(summaries[methods[0]]) > 1
            else None,
            labels={sp: shot_label(sp, many=many, few=few) for sp in SHOT_SPLITS},
        )
        _try_plot(
            rep,
            folder,
            "error_curves.png",
            f"balanced error over epochs (seed {summaries[methods[0]][0]['seed']})",
            plots.plot_error_curves,
            {f"{m}: {_short_compute(compute[m])}": histories[m] for m in methods},
            hyper_steps={
                f"{m}: {_short_compute(compute[m])}": RunDir(run_dirs[m][0]).hyper_steps()
                for m in methods
            },
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
    "compute_text",
    "guard_sentence",
    "shot_rows",
    "write_comparison_report",
    "write_run_report",
]


def guard_sentence(guard: Mapping[str, Any]) -> str:
    """One plain sentence on the search's stability guard (``SearchResult.guard``)."""
    if guard.get("fell_back"):
        head = f"**The search fell back to its initialisation.** {guard.get('fallback_reason')}."
    elif guard.get("would_fall_back"):
        head = (
            "**The search kept its learned α* because the fallback is off; the guard would have"
            f" reset it to its initialisation.** {guard.get('fallback_reason')}."
        )
    else:
        head = "The search kept its learned α*."
    start, final = guard.get("start_val_score"), guard.get("final_val_score")
    what = guard.get("val_score") or "balanced error"
    scores = (
        f" Validation {what}: {start:.4f} at the start of the search, {final:.4f} at the end."
        if start is not None and final is not None
        else ""
    )
    ref, scratch = guard.get("reference_val_score"), guard.get("from_scratch_val_score")
    se = guard.get("from_scratch_paired_se")
    checks = ""
    if ref is not None and scratch is not None and se is not None:
        checks = (
            f" A θ trained from scratch with α* scored {scratch:.4f} against {ref:.4f} for the"
            f" init loss's reference θ (paired standard error {se:.4f})."
        )
    floor = guard.get("min_keepable_gain")
    if floor is not None and floor > KEEPABLE_GAIN_WARNING:
        checks += (
            f" With this validation split the guard could keep α* only for a gain of at least"
            f" {100 * floor:.1f} pt on it."
        )
    rejected = guard.get("rejected_alpha_file")
    if guard.get("fell_back") and rejected:
        checks += (
            f" The loss the search found is kept in {rejected}; `autobalance train --alpha"
            f" {rejected}` trains with it, without the guard's approval."
        )
    return (
        f"{head}{scores}{checks} Rollbacks: {guard.get('rollbacks', 0)}; hypergradient spikes "
        f"clipped: {guard.get('spikes_clipped', 0)}; α′ entries on a bound: "
        f"{100 * float(guard.get('pinned_fraction') or 0):.0f} %."
    )
