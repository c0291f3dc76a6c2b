"""Report figures (matplotlib, Agg backend, imported lazily; ``pip install autobalance[plots]``).

- :func:`plot_alpha_trajectory`: l and Δ of each class cluster over the search epochs
  (AutoBalance, Li et al. 2021, arXiv 2201.01212, Fig. 3b–d);
- :func:`plot_per_class_accuracy`: test accuracy of each class against its training frequency
  (log x), one series per method;
- :func:`plot_error_curves`: train / validation / test balanced error over epochs (Fig. 4);
- :func:`plot_cell_errors`: heat-map of the test error of each (class, group) cell;
- :func:`plot_group_curves`: DEO (eq. 4.1), worst (class, group) error and standard error over
  epochs, per split;
- :func:`plot_pareto`: error against DEO or balanced error for several runs, with the Pareto
  front (Fig. 5).

Every function writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autobalance.report.tables import pareto_front

MISSING_PLOTS = (
    "matplotlib is not installed, so no plots were drawn (pip install 'autobalance[plots]')"
)
_SPLIT_STYLE = {"train": ("tab:blue", ":"), "val": ("tab:orange", "--"), "test": ("tab:green", "-")}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plots_available() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return p


def _cluster_series(
    rows: Sequence[Mapping[str, Any]], key: str
) -> tuple[list[int], dict[int, np.ndarray], list[str]]:
    """Per cluster, the mean of ``key`` over its classes/cells at each trajectory step."""
    steps: list[tuple[int, str]] = []
    for r in rows:
        s = (int(r["epoch"]), str(r["phase"]))
        if not steps or steps[-1] != s:
            steps.append(s)
    index = {s: i for i, s in enumerate(steps)}
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, np.ndarray] = {}
    for r in rows:
        c = int(r["cluster"]) if r.get("cluster") is not None else int(r["class"])
        i = index[(int(r["epoch"]), str(r["phase"]))]
        sums.setdefault(c, np.zeros(len(steps)))[i] += float(r[key])
        counts.setdefault(c, np.zeros(len(steps)))[i] += 1
    series = {c: sums[c] / np.maximum(counts[c], 1) for c in sorted(sums)}
    # x: the init is drawn at 0, epoch e (0-based) at e + 1 (the value after that epoch)
    xs = [0 if ph == "init" else e + 1 for e, ph in steps]
    return xs, series, [ph for _, ph in steps]


def plot_alpha_trajectory(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    cluster_counts: Mapping[int, float] | None = None,
    title: str | None = None,
) -> Path:
    """l and Δ (and w when it moves) per frequency cluster over the search (Fig. 3b–d).

    ``rows`` are ``alpha_trajectory.csv`` rows (epoch, phase, class, group, cluster, w, l, Δ);
    each line is the mean over one cluster's classes. ``cluster_counts`` (training samples per
    class in the cluster) labels the lines; the shaded band is the warm-up.
    """
    if not rows:
        raise ValueError("plot_alpha_trajectory: the trajectory is empty")
    plt = _pyplot()
    keys = [("l", "additive offset l"), ("delta", "multiplicative scale Δ")]
    w_moves = np.ptp([float(r["w"]) for r in rows if r["class"] == rows[0]["class"]]) > 1e-9
    if w_moves:
        keys.insert(0, ("w", "weight w"))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.8), squeeze=False)
    clusters = sorted({int(r["cluster"]) if r.get("cluster") is not None else 0 for r in rows})
    cmap = plt.get_cmap("viridis")
    n_cl = max(len(clusters), 1)
    for ax, (key, label) in zip(axes[0], keys):
        xs, series, phases = _cluster_series(rows, key)
        warm = [x for x, ph in zip(xs, phases) if ph == "warmup"]
        if warm:
            ax.axvspan(0, max(warm), color="0.9", zorder=0, label="warm-up")
        for j, (c, ys) in enumerate(series.items()):
            name = f"cluster {c}"
            if cluster_counts is not None and c in cluster_counts:
                name += f" (n={cluster_counts[c]:g})"
            ax.plot(xs, ys, color=cmap(j / max(n_cl - 1, 1)), lw=1.6, label=name)
        ax.set_xlabel("search epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    if len(series) <= 12:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle(title or "Learned loss parameters per class cluster (head → tail: dark → light)")
    fig.tight_layout()
    return _save(fig, path)


def plot_per_class_accuracy(
    class_counts: Sequence[float],
    accuracies: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    stds: Mapping[str, Sequence[float]] | None = None,
    title: str | None = None,
) -> Path:
    """Test accuracy of each class against its training count (log x), one series per method.

    ``accuracies[method][k]`` is the accuracy of class k (mean over seeds with ``stds``).
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or (counts <= 0).any():
        raise ValueError("class_counts must be a (K,) vector of positive counts")
    plt = _pyplot()
    order = np.argsort(-counts, kind="stable")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    n = len(accuracies)
    # spread the methods a little along x so that equal accuracies do not hide each other
    offsets = np.exp(np.linspace(-0.04, 0.04, n)) if n > 1 else np.ones(1)
    for j, (method, acc) in enumerate(accuracies.items()):
        a = np.asarray(acc, dtype=np.float64)
        if a.shape != counts.shape:
            raise ValueError(f"{method}: {a.size} accuracies for {counts.size} classes")
        err = None if stds is None or method not in stds else np.asarray(stds[method])[order]
        ax.errorbar(
            counts[order] * offsets[j],
            a[order],
            yerr=err,
            marker=_MARKERS[j % len(_MARKERS)],
            ms=5,
            lw=1.3,
            capsize=2,
            label=method,
        )
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training samples of the class (log scale)")
    ax.set_ylabel("test accuracy of the class")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    ax.set_title(title or "Per-class accuracy against class frequency")
    fig.tight_layout()
    return _save(fig, path)


def _values(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray | None:
    """``key`` of every record as floats (NaN where missing); None when no record has it."""
    ys = [r.get(key) for r in history]
    if all(y is None for y in ys):
        return None
    return np.asarray([np.nan if y is None else float(y) for y in ys])


def _mark_phases(history: Sequence[Mapping[str, Any]], axes: Sequence[Any], label_ax: Any) -> None:
    """Dashed lines between successive phases on ``axes``; phase names on top of ``label_ax``."""
    phases = [str(r.get("phase", "")) for r in history]
    starts = [i for i in range(len(phases)) if i == 0 or phases[i] != phases[i - 1]]
    for i in starts if len(starts) > 1 else []:
        for a in axes:
            if i > 0:
                a.axvline(i + 0.5, color="0.6", lw=0.8, ls="--")
        label_ax.annotate(
            phases[i],
            xy=(i + 1, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -12),
            textcoords="offset points",
            fontsize=8,
            color="0.35",
        )


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _draw_curves(ax: Any, ax_loss: Any, history: Sequence[Mapping[str, Any]], metric: str) -> None:
    x = np.arange(1, len(history) + 1)
    for split, (color, style) in _SPLIT_STYLE.items():
        yv = _values(history, f"{split}/{metric}")
        if yv is None:
            continue
        ax.plot(x, yv, color=color, ls=style, marker=".", ms=4, lw=1.5, label=split)
    ax_loss.plot(x, [float(r.get("train_loss", np.nan)) for r in history], color="0.3", lw=1.3)
    _mark_phases(history, (ax, ax_loss), ax)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    ax_loss.set_xlabel("epoch (all phases)")
    ax_loss.grid(alpha=0.3)
    _integer_epochs(ax_loss)


def plot_error_curves(
    history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    metric: str = "balanced_error",
    title: str | None = None,
) -> Path:
    """Train / val / test ``metric`` and the training loss over all epochs of a run (Fig. 4).

    ``history`` is one run's records (``metrics.jsonl``) or a mapping name → records, drawn as
    side-by-side panels with a shared y axis. Epochs of successive phases (warm-up, search,
    retrain) are laid end to end; the phase boundaries are marked.
    """
    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    if not runs or any(not h for h in runs.values()):
        raise ValueError("plot_error_curves: the history is empty")
    plt = _pyplot()
    n = len(runs)
    fig, axes = plt.subplots(
        2,
        n,
        figsize=(6.8 if n == 1 else 4.4 * n, 5.4),
        sharex="col",
        sharey="row",
        squeeze=False,
        gridspec_kw={"height_ratios": [2.2, 1]},
    )
    for j, (name, hist) in enumerate(runs.items()):
        _draw_curves(axes[0][j], axes[1][j], hist, metric)
        if name:
            axes[0][j].set_title(name)
    axes[0][0].set_ylabel(metric.replace("_", " "))
    axes[1][0].set_ylabel("train loss")
    label = f"{metric.replace('_', ' ').capitalize()} over training"
    if n == 1:
        axes[0][0].set_title(title or label)
    else:
        fig.suptitle(title or label)
    fig.tight_layout()
    return _save(fig, path)


def _cell_table(values: Any, name: str) -> np.ndarray:
    """A (K, G) float table; None (a NaN written to JSON) becomes NaN."""
    rows = [[math.nan if v is None else float(v) for v in row] for row in values]
    table = np.asarray(rows, dtype=np.float64)
    if table.ndim != 2 or table.size == 0:
        raise ValueError(f"{name} must be a non-empty (K, G) table, got shape {table.shape}")
    return table


def _deo_of(table: np.ndarray) -> float:
    # Σ_k (max_g Err_{k,g} − min_g Err_{k,g}) over classes with ≥ 2 non-empty cells (eq. 4.1)
    terms = [
        float(r.max() - r.min()) for r in (row[np.isfinite(row)] for row in table) if r.size > 1
    ]
    return float(np.sum(terms)) if terms else math.nan


def plot_cell_errors(
    cell_errors: Sequence[Sequence[float | None]] | np.ndarray,
    path: str | Path,
    *,
    counts: Sequence[Sequence[float]] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    group_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Heat-map of the test error ``Err_{k,g} = P(ŷ ≠ y | y = k, g)`` of every (class, group)
    cell: rows are classes, columns groups, each cell annotated with its error in percent and,
    with ``counts`` (the (K, G) training samples per cell), ``n=…``.

    Cells without test samples (NaN or None, as ``summary.json`` writes them) are grey and say
    "no samples". The x label gives the worst-group error ``max_{k,g} Err_{k,g}`` and the DEO
    ``Σ_k (max_g Err_{k,g} − min_g Err_{k,g})`` (AutoBalance eq. 4.1) over non-empty cells.
    """
    err = _cell_table(cell_errors, "cell_errors")
    n_classes, n_groups = err.shape
    n = None if counts is None else _cell_table(counts, "counts")
    if n is not None and n.shape != err.shape:
        raise ValueError(f"counts have shape {n.shape}, the cell errors {err.shape}")
    for names, size, what in (
        (class_names, n_classes, "classes"),
        (group_names, n_groups, "groups"),
    ):
        if names and len(names) != size:
            raise ValueError(f"{len(names)} names for {size} {what}")
    plt = _pyplot()
    finite = err[np.isfinite(err)]
    vmax = max(100 * float(finite.max()), 1.0) if finite.size else 100.0
    cmap = plt.get_cmap("Reds").with_extremes(bad="0.85")
    fig, ax = plt.subplots(
        figsize=(max(4.2, 1.5 * n_groups + 2.4), max(2.8, 0.7 * n_classes + 1.6))
    )
    im = ax.imshow(np.ma.masked_invalid(100 * err), cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    for k in range(n_classes):
        for g in range(n_groups):
            e = err[k, g]
            text = "no samples" if not math.isfinite(e) else f"{100 * e:.1f}%"
            if n is not None and math.isfinite(n[k, g]):
                text += f"\nn={n[k, g]:g}"
            dark = math.isfinite(e) and 100 * e > 0.6 * vmax
            ax.text(
                g,
                k,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else ("0.35" if not math.isfinite(e) else "black"),
            )
    ax.set_xticks(range(n_groups))
    ax.set_xticklabels(
        list(group_names) if group_names else [f"group {g}" for g in range(n_groups)]
    )
    ax.set_yticks(range(n_classes))
    ax.set_yticklabels(
        list(class_names) if class_names else [f"class {k}" for k in range(n_classes)]
    )
    worst = f"{100 * float(finite.max()):.1f}%" if finite.size else "n/a"
    deo = _deo_of(err)
    deo_text = "n/a" if math.isnan(deo) else f"{deo:.3f}"
    ax.set_xlabel(f"group\nworst cell {worst}, DEO {deo_text}")
    ax.set_ylabel("class")
    fig.colorbar(im, ax=ax, label="test error (%)")
    ax.set_title(title or "Test error per (class, group) cell")
    fig.tight_layout()
    return _save(fig, path)


# (metric key, legend label, colour) of the group-fairness curves
_GROUP_METRICS = (
    ("deo", "DEO", "tab:purple"),
    ("worst_group_error", "worst (class, group) error", "tab:red"),
    ("error", "standard error", "0.35"),
)


def plot_group_curves(
    history: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """DEO, worst (class, group) error and standard error over all epochs of a grouped run.

    One panel per split with group metrics (train, val, test: the ``{split}/deo``,
    ``{split}/worst_group_error`` and ``{split}/error`` keys of ``metrics.jsonl``), one line per
    metric: ``DEO = Σ_k (max_g Err_{k,g} − min_g Err_{k,g})`` (AutoBalance eq. 4.1),
    ``max_{k,g} Err_{k,g}`` and the standard error (weighted by the training cell proportions
    unless the run said otherwise). Epochs of successive phases (warm-up, search, retrain) are
    laid end to end, with the boundaries marked as in :func:`plot_error_curves`.
    """
    if not history:
        raise ValueError("plot_group_curves: the history is empty")
    series: dict[str, list[tuple[str, str, np.ndarray]]] = {}
    for split in _SPLIT_STYLE:
        lines = [
            (label, color, ys)
            for key, label, color in _GROUP_METRICS
            if (ys := _values(history, f"{split}/{key}")) is not None
        ]
        # a split is drawn when it has group metrics (the standard error alone is no reason)
        if any(label != "standard error" for label, _, _ in lines):
            series[split] = lines
    if not series:
        raise ValueError("plot_group_curves: no split has DEO or worst-group error records")
    plt = _pyplot()
    n = len(series)
    fig, axes = plt.subplots(
        1, n, figsize=(6.4 if n == 1 else 4.6 * n, 4.0), sharey=True, squeeze=False
    )
    x = np.arange(1, len(history) + 1)
    for ax, (split, lines) in zip(axes[0], series.items()):
        for label, color, ys in lines:
            ax.plot(x, ys, color=color, marker=".", ms=4, lw=1.5, label=label)
        _mark_phases(history, (ax,), ax)
        ax.set_title(split)
        ax.set_xlim(0.5, len(history) + 0.5)  # the same epochs in every panel
        ax.set_xlabel("epoch (all phases)")
        ax.grid(alpha=0.3)
        _integer_epochs(ax)
    axes[0][0].set_ylabel("DEO / error")
    legend: dict[str, Any] = {}  # one legend for all panels (the union of their lines)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(
        list(legend.values()),
        list(legend),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(legend),
        fontsize=8,
    )
    fig.suptitle(title or "DEO and worst (class, group) error over training")
    fig.tight_layout()
    return _save(fig, path)


def _pretty(metric: str) -> str:
    return {"deo": "DEO"}.get(metric, metric.replace("_", " "))


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def plot_pareto(
    points: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    x: str = "deo",
    y: str = "error",
    title: str | None = None,
) -> Path:
    """Scatter of ``y`` against ``x`` (both minimised) for several runs, Pareto front drawn.

    ``points`` are mappings with ``label`` and the two metric keys (e.g. a run's test metrics
    plus a label); ``method`` (optional) sets the marker/colour series. A point with a ``lam``
    (the λ of a sweep, AutoBalance §4 Fig. 5) is annotated ``λ=…``, and the points of one series
    are joined in λ order, so each family's trade-off curve is visible next to the front.
    """
    xy = [(_num(p.get(x)), _num(p.get(y))) for p in points]
    if not any(math.isfinite(a) and math.isfinite(b) for a, b in xy):
        raise ValueError(f"plot_pareto: no run has finite '{x}' and '{y}'")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    methods = list(dict.fromkeys(str(p.get("method", p.get("label", ""))) for p in points))
    for j, m in enumerate(methods):
        idx = [i for i, p in enumerate(points) if str(p.get("method", p.get("label", ""))) == m]
        ax.scatter(
            [xy[i][0] for i in idx],
            [xy[i][1] for i in idx],
            marker=_MARKERS[j % len(_MARKERS)],
            s=40,
            label=m,
            zorder=3,
        )
        swept = sorted(
            (float(points[i]["lam"]), xy[i]) for i in idx if points[i].get("lam") is not None
        )
        if len(swept) >= 2:
            ax.plot(
                [v[1][0] for v in swept],
                [v[1][1] for v in swept],
                lw=0.8,
                alpha=0.6,
                color=ax.collections[-1].get_facecolor()[0],
                zorder=2,
            )
    for (a, b), p in zip(xy, points):
        label = str(p.get("label", ""))
        if p.get("lam") is not None:
            label = f"λ={float(p['lam']):g}"
        elif label == str(p.get("method", label)) or "lam" in p:
            continue  # the legend names it (a sweep's fixed point, or a one-point series)
        if math.isfinite(a) and math.isfinite(b):
            ax.annotate(label, (a, b), xytext=(4, 4), textcoords="offset points", fontsize=7)
    front = pareto_front(xy)
    fx = [xy[i][0] for i in front]
    fy = [xy[i][1] for i in front]
    ax.scatter(fx, fy, s=140, facecolors="none", edgecolors="crimson", lw=1.2, zorder=4)
    ax.step(fx, fy, where="post", color="crimson", lw=1.2, ls="--", label="Pareto front", zorder=2)
    ax.set_xlabel(_pretty(x))
    ax.set_ylabel(_pretty(y))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{_pretty(y)} against {_pretty(x)} (lower is better)")
    fig.tight_layout()
    return _save(fig, path)


__all__ = [
    "MISSING_PLOTS",
    "plot_alpha_trajectory",
    "plot_cell_errors",
    "plot_error_curves",
    "plot_group_curves",
    "plot_pareto",
    "plot_per_class_accuracy",
    "plots_available",
]
