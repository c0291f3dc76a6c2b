"""Figure of a learned augmentation policy over the search (AutoBalance §2, PDA; Table 2).

:func:`plot_policy_trajectory` draws ``augment_trajectory.csv``
(:mod:`autobalance.augment.io`): for an image policy, one column per operation with its
application probability p (top) and magnitude m (bottom, the fraction of the operation's
maximum) per policy cluster over the epochs; for the spherical policy (Lemma 2), the radius ε
per cluster. Clusters are the loss's D_π frequency clusters (cluster 0 the most frequent), so
a personalised policy shows how the head and the tail are augmented differently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _series(
    rows: Sequence[Mapping[str, Any]], op: str, key: str
) -> dict[int, tuple[list[int], list[float]]]:
    """cluster → (epochs, values) of ``key`` for operation ``op`` (empty values skipped)."""
    out: dict[int, tuple[list[int], list[float]]] = {}
    for r in rows:
        if r["op"] != op or r.get(key) is None:
            continue
        xs, ys = out.setdefault(int(r["cluster"]), ([], []))
        xs.append(int(r["epoch"]))
        ys.append(float(r[key]))
    return out


def plot_policy_trajectory(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Probability and magnitude of every operation per policy cluster over the search.

    ``rows`` are ``augment_trajectory.csv`` rows (epoch, phase, cluster, op, prob, magnitude);
    the init is epoch −1. Image policy: a 2 × (operations) grid, p_{c,o}(t) on top and
    m_{c,o}(t) (fraction of the maximum) below, one line per cluster c, head → tail dark →
    light; spherical policy: ε_c(t). Writes one PNG and returns its path.
    """
    if not rows:
        raise ValueError("plot_policy_trajectory: the policy trajectory is empty")
    plt = _pyplot()
    ops = list(dict.fromkeys(str(r["op"]) for r in rows))
    clusters = sorted({int(r["cluster"]) for r in rows})
    cmap = plt.get_cmap("viridis")
    colour = {c: cmap(0.85 * i / max(1, len(clusters) - 1)) for i, c in enumerate(clusters)}
    panels = [("prob", "probability p"), ("magnitude", "magnitude m (fraction of max)")]
    if ops == ["sphere"]:
        panels = [("magnitude", "radius ε")]
    fig, axes = plt.subplots(
        len(panels),
        len(ops),
        figsize=(2.6 * len(ops) + 1.0, 2.4 * len(panels) + 0.8),
        squeeze=False,
        layout="constrained",
    )
    for j, op in enumerate(ops):
        for i, (key, label) in enumerate(panels):
            ax = axes[i][j]
            series = _series(rows, op, key)
            for c in clusters:
                if c in series:
                    xs, ys = series[c]
                    ax.plot(xs, ys, color=colour[c], lw=1.4, label=f"cluster {c}")
            if not series:
                ax.text(0.5, 0.5, "no magnitude", ha="center", va="center", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
            if i == 0:
                ax.set_title(op if op != "sphere" else "spherical", fontsize=9)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            if i == len(panels) - 1:
                ax.set_xlabel("epoch", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        if len(h) > len(handles):
            handles, labels = h, lab
    if handles and len(clusters) <= 12:
        fig.legend(handles, labels, loc="outside lower center", fontsize=7, ncol=6)
    fig.suptitle(
        title or "Learned augmentation policy per cluster (cluster 0 = most frequent)",
        fontsize=10,
    )
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return p


__all__ = ["plot_policy_trajectory"]
