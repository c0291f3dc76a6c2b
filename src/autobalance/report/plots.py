"""Report figures (matplotlib, Agg backend, imported lazily; ``pip install autobalance[plots]``).

- :func:`plot_alpha_trajectory`: change of l and Δ of each class cluster over the search epochs
  (AutoBalance, Li et al. 2021, arXiv 2201.01212, Fig. 3b–d);
- :func:`plot_per_class_accuracy`: test accuracy of each class against its training frequency
  (log x), one series per method;
- :func:`plot_error_curves`: train / validation / test balanced error over epochs, broken at
  the θ reset of the retrain, with the hyper-steps on α below (Fig. 4);
- :func:`plot_confusion_matrix`: row-normalised test confusion matrix, classes ordered by
  training count (log-count bars beside the rows);
- :func:`plot_shot_accuracy`: many / medium / few-shot accuracy, one bar per method;
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


def _steps(rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """The (epoch, phase) steps of a trajectory, in file order."""
    steps: list[tuple[int, str]] = []
    for r in rows:
        s = (int(r["epoch"]), str(r["phase"]))
        if not steps or steps[-1] != s:
            steps.append(s)
    return steps


def _cell(r: Mapping[str, Any]) -> tuple[int, int]:
    return int(r["class"]), -1 if r.get("group") is None else int(r["group"])


def _cluster_of(r: Mapping[str, Any]) -> int:
    return int(r["cluster"]) if r.get("cluster") is not None else int(r["class"])


def _cluster_series(
    rows: Sequence[Mapping[str, Any]], key: str, *, relative: bool = True
) -> tuple[list[int], dict[int, np.ndarray], list[str]]:
    """Per cluster, the mean of ``key`` over its classes/cells at each trajectory step.

    With ``relative`` each class/cell's value at the first step (the init) is subtracted first:
    the series is ``mean_{i ∈ cluster} (v_i(t) − v_i(t₀))``. Returns (x, series, phases), x = 0
    for the init and e + 1 for the value after epoch e (0-based).
    """
    steps = _steps(rows)
    index = {s: i for i, s in enumerate(steps)}
    first: dict[tuple[int, int], float] = {}
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, np.ndarray] = {}
    for r in rows:
        v = float(r[key])
        base = first.setdefault(_cell(r), v) if relative else 0.0
        c, i = _cluster_of(r), index[(int(r["epoch"]), str(r["phase"]))]
        sums.setdefault(c, np.zeros(len(steps)))[i] += v - base
        counts.setdefault(c, np.zeros(len(steps)))[i] += 1
    series = {c: sums[c] / np.maximum(counts[c], 1) for c in sorted(sums)}
    xs = [0 if ph == "init" else e + 1 for e, ph in steps]
    return xs, series, [ph for _, ph in steps]


def _moves(rows: Sequence[Mapping[str, Any]], key: str) -> bool:
    """Whether ``key`` of any class/cell changes over the trajectory."""
    seen: dict[tuple[int, int], list[float]] = {}
    for r in rows:
        seen.setdefault(_cell(r), []).append(float(r[key]))
    return any(np.ptp(v) > 1e-9 for v in seen.values())


def _cluster_colours(
    clusters: Sequence[int], cluster_counts: Mapping[int, float] | None
) -> tuple[list[int], dict[int, Any], Any, str]:
    """Clusters ordered head → tail, their colours, a ScalarMappable for the colour bar and its
    label. With counts the colour is log10 of the cluster's mean training count (dark = head),
    otherwise the cluster id (cluster 0 first)."""
    import matplotlib as mpl
    from matplotlib.colors import LogNorm, Normalize

    cmap = mpl.colormaps["viridis_r"]
    if cluster_counts and all(cluster_counts.get(c, 0) > 0 for c in clusters):
        order = sorted(clusters, key=lambda c: (-cluster_counts[c], c))
        vals = [float(cluster_counts[c]) for c in clusters]
        lo, hi = min(vals), max(vals)
        norm: Normalize = LogNorm(lo / 1.05, hi * 1.05) if hi > lo else LogNorm(lo / 2, lo * 2)
        label = "mean training samples (log scale)"
        colour = {c: cmap(norm(cluster_counts[c])) for c in clusters}
    else:
        order = sorted(clusters)
        norm = Normalize(min(order) - 0.5, max(order) + 0.5)
        label = "cluster (0 = most frequent when clustered by frequency)"
        colour = {c: mpl.colormaps["viridis"](norm(c)) for c in clusters}
        cmap = mpl.colormaps["viridis"]
    return order, colour, mpl.cm.ScalarMappable(norm=norm, cmap=cmap), label


_ALPHA_KEYS = {
    "w": ("w − w_init", "weight w"),
    "l": ("l − l_init", "additive offset l"),
    "delta": ("Δ − Δ_init", "multiplicative scale Δ"),
}
_MAX_LEGEND = 10  # clusters named in a legend; above, the colour bar alone


def _draw_alpha_panel(
    ax: Any,
    rows: Sequence[Mapping[str, Any]],
    key: str,
    order: Sequence[int],
    colour: Mapping[int, Any],
    names: Mapping[int, str],
) -> None:
    xs, series, phases = _cluster_series(rows, key)
    warm = [x for x, ph in zip(xs, phases) if ph == "warmup"]
    if warm:
        ax.axvspan(0, max(warm), color="0.92", zorder=0, label="warm-up (α frozen)")
    final = [i for i, ph in enumerate(phases) if ph == "final"]
    keep = [i for i in range(len(xs)) if i not in final]
    for c in order:
        ys = series[c]
        ax.plot([xs[i] for i in keep], ys[keep], color=colour[c], lw=1.6, label=names[c])
        for i in final:  # α* after the guard (fallback or averaging): drawn at the last epoch
            ax.plot(xs[keep[-1]], ys[i], marker="*", ms=9, color=colour[c], ls="none")
    if final:
        ax.plot(
            [],
            [],
            marker="*",
            ms=9,
            color="0.4",
            ls="none",
            label="α* set by the guard (fallback / average)",
        )
    ax.axhline(0.0, color="0.5", lw=0.8, zorder=1)
    delta, name = _ALPHA_KEYS[key]
    ax.set_ylabel(f"{delta}\n(change of the {name})")
    ax.set_xlabel("search epoch (0 = init)")
    ax.grid(alpha=0.3)
    _integer_epochs(ax)


def plot_alpha_trajectory(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    cluster_counts: Mapping[int, float] | None = None,
    title: str | None = None,
) -> Path:
    """Change of l and Δ (and w when it moves) per frequency cluster over the search (Fig. 3b–d).

    ``rows`` are ``alpha_trajectory.csv`` rows (epoch, phase, class, group, cluster, w, l, Δ);
    one line per cluster: ``mean_{i ∈ cluster} (l_i(t) − l_i(init))`` and the same for Δ (the
    first trajectory row is the init), so a small move is visible whatever the absolute scale.
    ``cluster_counts`` (mean training samples of the classes, or (class, group) cells, of each
    cluster) orders and colours the clusters head → tail (dark → light, log scale, with a
    colour bar for any number of clusters; a legend names up to 10). The grey band is the
    warm-up; a star is α* when the guard replaced the last epoch's α (fallback, averaging).
    """
    if not rows:
        raise ValueError("plot_alpha_trajectory: the trajectory is empty")
    plt = _pyplot()
    keys = [k for k in ("w", "l", "delta") if k != "w" or _moves(rows, "w")]
    clusters = sorted({_cluster_of(r) for r in rows})
    order, colour, mappable, bar_label = _cluster_colours(clusters, cluster_counts)
    unit = "cell" if any(r.get("group") is not None for r in rows) else "class"
    names = {
        c: f"cluster {c}"
        + (f" (n={cluster_counts[c]:.3g})" if cluster_counts and c in cluster_counts else "")
        for c in clusters
    }
    fig, axes = plt.subplots(
        1, len(keys), figsize=(4.6 * len(keys) + 1.6, 4.2), squeeze=False, layout="constrained"
    )
    for ax, key in zip(axes[0], keys):
        _draw_alpha_panel(ax, rows, key, order, colour, names)
    bar = fig.colorbar(mappable, ax=list(axes[0]), fraction=0.04, pad=0.02)
    bar.set_label(bar_label.replace("samples", f"samples per {unit}"), fontsize=8)
    if len(clusters) <= _MAX_LEGEND:
        handles, labels = axes[0][-1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncol=4)
    fig.suptitle(
        title
        or f"Change of the learned loss parameters since the init, per {unit} cluster "
        "(head → tail: dark → light)"
    )
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


# warm-up and search train one θ (hyper-steps start on the warmed-up θ); retrain resets it
_THETA_RUN = {"warmup": "search"}


def _segments(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """[start, end) index ranges of the records of one θ trajectory each.

    Warm-up and search continue one θ; the retrain (θ reset to its initial weights) and a
    plain training start new ones, so a curve is never drawn through the reset.
    """
    runs = [_THETA_RUN.get(str(r.get("phase", "")), str(r.get("phase", ""))) for r in history]
    starts = [i for i in range(len(runs)) if i == 0 or runs[i] != runs[i - 1]]
    return list(zip(starts, [*starts[1:], len(runs)]))


def _plot_segments(
    ax: Any, x: np.ndarray, ys: np.ndarray, segments: Sequence[tuple[int, int]], **style: Any
) -> None:
    """One line per θ trajectory; the legend label goes on the first segment with data."""
    label = style.pop("label", None)
    for a, b in segments:
        has_data = bool(np.isfinite(ys[a:b]).any())
        ax.plot(x[a:b], ys[a:b], label=label if has_data else "_nolegend_", **style)
        label = "_nolegend_" if has_data else label


def _draw_curves(ax: Any, ax_loss: Any, history: Sequence[Mapping[str, Any]], metric: str) -> None:
    x = np.arange(1, len(history) + 1)
    segments = _segments(history)
    for split, (color, style) in _SPLIT_STYLE.items():
        yv = _values(history, f"{split}/{metric}")
        if yv is None:
            continue
        _plot_segments(
            ax, x, yv, segments, color=color, ls=style, marker=".", ms=4, lw=1.5, label=split
        )
    loss = np.asarray([float(r.get("train_loss", np.nan)) for r in history])
    _plot_segments(ax_loss, x, loss, segments, color="0.3", lw=1.3)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    ax_loss.grid(alpha=0.3)


def _hyper_x(
    history: Sequence[Mapping[str, Any]], steps: Sequence[Mapping[str, Any]]
) -> np.ndarray:
    """Where each hyper-step falls on the epoch axis of :func:`plot_error_curves`.

    Search epoch e is drawn at its record's position p_e (1-based) and owns the span
    [p_e − ½, p_e + ½] (phase boundaries are drawn at half-integers); its m hyper-steps are
    spread evenly over that span in order, the i-th (0-based) at ``p_e − ½ + (i + ½) / m``
    (they are taken every k θ-steps, so evenly spaced). NaN for a
    step without ``epoch`` or whose epoch has no record.
    """
    pos: dict[int, int] = {}
    for i, r in enumerate(history):
        if r.get("phase") in ("warmup", "search") and isinstance(r.get("epoch"), int):
            pos.setdefault(int(r["epoch"]), i + 1)
    epochs = [h.get("epoch") for h in steps]
    per_epoch = {e: epochs.count(e) for e in set(epochs)}
    seen: dict[Any, int] = {}
    xs = []
    for e in epochs:
        rank = seen[e] = seen.get(e, -1) + 1
        if e is None or int(e) not in pos:
            xs.append(math.nan)
            continue
        xs.append(pos[int(e)] - 0.5 + (rank + 0.5) / per_epoch[e])
    return np.asarray(xs, dtype=np.float64)


def _draw_hyper(
    ax: Any, history: Sequence[Mapping[str, Any]], steps: Sequence[Mapping[str, Any]]
) -> None:
    """Validation objective (left), hypergradient norm (right, log) and skipped steps (red ×)
    of every hyper-step on α, on the epoch axis of the curves above."""
    x = _hyper_x(history, steps)
    applied = np.asarray([bool(h.get("applied", True)) for h in steps])
    val, norm = _values(steps, "val_loss"), _values(steps, "hypergrad_norm")
    style = {"marker": ".", "ms": 5 if len(steps) < 200 else 2.5, "lw": 0.6, "alpha": 0.8}
    if val is not None:
        ax.plot(x, val, color="tab:orange", label="validation objective L_val", **style)
    ax.set_ylabel("L_val", fontsize=8)
    twin = ax.twinx()
    if norm is not None and np.isfinite(norm).any() and np.nanmax(norm) > 0:
        twin.plot(x, norm, color="tab:purple", label="‖hypergradient‖ (right, log)", **style)
        clipped = np.asarray([bool(h.get("spike_clipped")) for h in steps])
        if clipped.any():
            twin.plot(
                x[clipped],
                norm[clipped],
                "^",
                ms=5,
                color="tab:red",
                mfc="none",
                label=f"spike clipped ({int(clipped.sum())})",
            )
        twin.set_yscale("log")
        twin.set_ylabel("‖dL_val/dα‖", fontsize=8)
    skipped = ~applied
    ax.plot(
        x[skipped],
        np.full(int(skipped.sum()), 0.06),
        "x",
        color="red",
        ms=6,
        ls="none",
        transform=ax.get_xaxis_transform(),
        label=f"skipped ({int(skipped.sum())})",
    )
    handles, labels = [], []
    for a in (ax, twin):
        h, lab = a.get_legend_handles_labels()
        handles += h
        labels += lab
    ax.legend(
        handles,
        labels,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        fontsize=7,
        ncol=2,
        frameon=False,
        title=f"{int(applied.sum())} hyper-steps on α applied",
        title_fontsize=7,
        alignment="left",
    )
    ax.grid(alpha=0.3)


def _as_runs(data: Any) -> dict[str, Any]:
    return dict(data) if isinstance(data, Mapping) else {"": data}


def plot_error_curves(
    history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    metric: str = "balanced_error",
    hyper_steps: Sequence[Mapping[str, Any]]
    | Mapping[str, Sequence[Mapping[str, Any]]]
    | None = None,
    title: str | None = None,
) -> Path:
    """Train / val / test ``metric``, the training loss and the hyper-steps of a run (Fig. 4).

    ``history`` is one run's records (``metrics.jsonl``) or a mapping name → records, drawn as
    side-by-side panels with a shared y axis (put each method's compute in its name). Epochs
    of successive phases (warm-up, search, retrain) are laid end to end and marked; a line
    breaks where θ is reset (the retrain), since the retrained θ starts from its initial
    weights. ``hyper_steps`` (``hyper_steps.jsonl`` records, or a mapping with the names of
    ``history``) adds a panel per run: the validation objective L_val of each hyper-step, the
    hypergradient norm ``‖dL_val/dα‖`` (log scale), clipped spikes and skipped steps.
    """
    runs = _as_runs(history)
    if not runs or any(not h for h in runs.values()):
        raise ValueError("plot_error_curves: the history is empty")
    hyper = {} if hyper_steps is None else _as_runs(hyper_steps)
    hyper = {name: h for name, h in hyper.items() if h and name in runs}
    plt = _pyplot()
    n, rows = len(runs), 3 if hyper else 2
    fig, axes = plt.subplots(
        rows,
        n,
        figsize=(7.2 if n == 1 else 4.6 * n, 5.4 + 1.9 * (rows == 3)),
        sharex="col",
        squeeze=False,
        gridspec_kw={"height_ratios": [2.2, 1, 1.3][:rows]},
        layout="constrained",
    )
    for r in (0, 1):  # the metric and the loss share y across runs; each hyper panel its own
        for j in range(1, n):
            axes[r][j].sharey(axes[r][0])
            axes[r][j].tick_params(labelleft=False)
    for j, (name, hist) in enumerate(runs.items()):
        col = [axes[i][j] for i in range(rows)]
        _draw_curves(col[0], col[1], hist, metric)
        if rows == 3 and name in hyper:
            _draw_hyper(col[2], hist, hyper[name])
        elif rows == 3:
            col[2].text(
                0.5,
                0.5,
                "no hyper-steps (a fixed loss)",
                ha="center",
                va="center",
                transform=col[2].transAxes,
                color="0.4",
                fontsize=9,
            )
            col[2].tick_params(left=False, labelleft=False)
        _mark_phases(hist, col, col[0])
        col[-1].set_xlabel("epoch (all phases, laid end to end)")
        _integer_epochs(col[-1])
        if name:
            col[0].set_title(name)
    axes[0][0].set_ylabel(metric.replace("_", " "))
    axes[1][0].set_ylabel("train loss")
    label = f"{metric.replace('_', ' ').capitalize()} over training"
    if n == 1:
        axes[0][0].set_title(title or label, fontsize=10)
    else:
        fig.suptitle(title or label)
    return _save(fig, path)


def normalized_confusion(confusion: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix ``P(ŷ = j | y = k) = C_kj / Σ_j C_kj`` (rows: true class
    k, columns: predicted class j); a row without samples is NaN."""
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.size == 0:
        raise ValueError(f"the confusion matrix must be a non-empty (K, K) table, got {c.shape}")
    totals = c.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, c / np.where(totals > 0, totals, 1.0), np.nan)


def _class_ticks(ax: Any, axis: str, labels: Sequence[str], max_labels: int = 40) -> None:
    """Every class labelled up to ``max_labels`` classes; above, every ⌈K / max_labels⌉-th."""
    k = len(labels)
    step = max(1, math.ceil(k / max_labels))
    ticks = list(range(0, k, step))
    if axis == "x":
        ax.set_xticks(ticks)
        ax.set_xticklabels([labels[i] for i in ticks], rotation=90, fontsize=7)
    else:
        ax.set_yticks(ticks)
        ax.set_yticklabels([labels[i] for i in ticks], fontsize=7)


def plot_confusion_matrix(
    confusion: Sequence[Sequence[float]] | np.ndarray,
    class_counts: Sequence[float],
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    shot_thresholds: tuple[float, float] | None = (100, 20),
    title: str | None = None,
) -> Path:
    """Row-normalised test confusion matrix ``P(ŷ = j | y = k)``, classes ordered by training
    count (head first), with the training count of each class on a log axis beside its row.

    ``confusion[k][j]`` counts the test samples of class k predicted as j. The diagonal is the
    per-class accuracy; mass right of it in a tail row is a tail class taken for a head one.
    Values are written in the cells up to 12 classes. ``shot_thresholds`` (many, few) mark the
    many / medium / few-shot boundaries on the count axis (None: no marks).
    """
    norm = normalized_confusion(confusion)
    counts = np.asarray(class_counts, dtype=np.float64)
    k = norm.shape[0]
    if counts.shape != (k,):
        raise ValueError(f"{counts.size} class counts for a {k}-class confusion matrix")
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    order = np.argsort(-counts, kind="stable")
    m = norm[np.ix_(order, order)]
    labels = [names[i] for i in order]
    plt = _pyplot()
    side = min(max(4.0, 0.32 * k + 2.0), 9.0)
    fig, (ax_n, ax) = plt.subplots(
        1,
        2,
        figsize=(side + 2.6, side),
        sharey=True,
        layout="constrained",
        gridspec_kw={"width_ratios": [1, 4.5]},
    )
    cmap = plt.get_cmap("Blues").with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    if k <= 12:
        for i in range(k):
            for j in range(k):
                if np.isfinite(m[i, j]) and m[i, j] >= 0.005:
                    ax.text(
                        j,
                        i,
                        f"{100 * m[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if m[i, j] > 0.6 else "black",
                    )
    bars = np.maximum(counts[order], 0.5)
    ax_n.barh(np.arange(k), bars, color="0.55", height=0.8)
    ax_n.set_xscale("log")
    marks = [float(t) for t in shot_thresholds or ()]
    ax_n.set_xlim(max(bars.max(), *marks) * 1.6, min(bars.min(), *marks) / 1.6)  # bars → left
    for t in marks:
        ax_n.axvline(t, color="tab:red", lw=0.8, ls=":")
        ax_n.annotate(
            f"{t:g}",
            (t, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            fontsize=7,
            color="tab:red",
            ha="left",
            va="top",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
        )
    ax_n.set_xlabel("training samples\n(log scale)", fontsize=8)
    ax_n.set_ylabel("true class (most frequent first)")
    _class_ticks(ax_n, "y", [f"{lab} ({counts[i]:g})" for lab, i in zip(labels, order)])
    _class_ticks(ax, "x", labels)
    ax.tick_params(left=False, labelleft=False)
    ax.set_xlabel("predicted class (same order)")
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02, label="P(predicted | true class)")
    acc = np.nanmean(np.diag(m)) if np.isfinite(np.diag(m)).any() else math.nan
    ax.set_title(
        title or f"Test confusion matrix, rows normalised (mean diagonal {acc:.3f})",
        fontsize=10,
    )
    return _save(fig, path)


def plot_shot_accuracy(
    accuracies: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    stds: Mapping[str, Mapping[str, float]] | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """Grouped bars of many / medium / few-shot accuracy, one bar per method.

    ``accuracies[method][split]`` is the mean per-class accuracy of the split
    (:func:`autobalance.report.tables.shot_accuracy`); ``labels[split]`` its axis label (e.g.
    ``few-shot (< 20)``); ``stds`` error bars over seeds. An empty split (NaN) has no bar.
    """
    if not accuracies:
        raise ValueError("plot_shot_accuracy: no method to draw")
    splits = [sp for sp in ("many", "medium", "few") if any(sp in a for a in accuracies.values())]
    plt = _pyplot()
    fig, ax = plt.subplots(
        figsize=(1.6 + 1.5 * len(splits) * max(1, len(accuracies)) ** 0.5, 3.8),
        layout="constrained",
    )
    width = 0.8 / len(accuracies)
    x = np.arange(len(splits))
    for j, (method, acc) in enumerate(accuracies.items()):
        ys = np.asarray([_num(acc.get(sp)) for sp in splits])
        err = (
            None
            if not stds or method not in stds
            else [_num(stds[method].get(sp)) for sp in splits]
        )
        bars = ax.bar(
            x + (j - (len(accuracies) - 1) / 2) * width,
            ys,
            width,
            yerr=err,
            capsize=2,
            label=method,
        )
        ax.bar_label(
            bars,
            labels=[("" if not np.isfinite(v) else f"{v:.2f}") for v in ys],
            fontsize=7,
            padding=2,
        )
    ax.set_xticks(x)
    ax.set_xticklabels([(labels or {}).get(sp, f"{sp}-shot") for sp in splits])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("mean per-class test accuracy")
    ax.grid(alpha=0.3, axis="y")
    fig.legend(fontsize=8, loc="outside right upper")
    ax.set_title(title or "Accuracy by class frequency (training samples)")
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
    laid end to end, with the boundaries marked and the lines broken at the θ reset as in
    :func:`plot_error_curves`.
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
            _plot_segments(
                ax, x, ys, _segments(history), color=color, marker=".", ms=4, lw=1.5, label=label
            )
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
    "normalized_confusion",
    "plot_alpha_trajectory",
    "plot_cell_errors",
    "plot_confusion_matrix",
    "plot_error_curves",
    "plot_group_curves",
    "plot_pareto",
    "plot_per_class_accuracy",
    "plot_shot_accuracy",
    "plots_available",
]
