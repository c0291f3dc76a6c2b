"""Figure of B1-PDA (paper Table 2 analogue, issue 12) from its per-run JSON files.

Left: balanced test error of each row (mean ± std over the seeds, one dot per seed; a cross
where the default guard would have reset α* to its init, ``b1_cifar10_lt.guard_keeps``), with
its wall time over CE's. Right: the learned policies at the end of the search, for the policy rows
(``policy_search_end`` in each run's JSON; the guard may still have reset α* to its init
afterwards): p − p₀ and m − m₀ of every (cluster, operation), mean over the seeds, clusters
head → tail (cluster 0 is the most frequent).

    python benchmarks/b1_pda_plots.py            # results/b1/pda/*.json → results/b1_pda.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.b1_pda_plots
    from _common import load_run
    from b1_cifar10_lt import guard_keeps
except ImportError:  # pragma: no cover
    from benchmarks._common import load_run
    from benchmarks.b1_cifar10_lt import guard_keeps

HERE = Path(__file__).resolve().parent
METHODS = (
    "ce",
    "autobalance+single_policy",
    "autobalance+pda",
    "autobalance+dl",
    "autobalance+pda_dl",
    "fixed_policy",
    "fixed_init",
)
LABELS = {
    "ce": "CE",
    "autobalance+single_policy": "one policy",
    "autobalance+pda": "PDA",
    "autobalance+dl": "Δ&l",
    "autobalance+pda_dl": "PDA + Δ&l",
    "fixed_policy": "init policy,\nno search",
    "fixed_init": "init loss, no\naugmentation",
}
POLICY_ROWS = ("autobalance+single_policy", "autobalance+pda", "autobalance+pda_dl")


def load_runs(folder: Path, seeds: list[int]) -> dict[str, list[dict[str, Any]]]:
    """method → its per-seed JSON rows (seeds in order; missing runs are skipped)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for m in METHODS:
        rows = [r for r in (load_run(folder, m, s) for s in seeds) if r is not None]
        if rows:
            out[m] = rows
    return out


def policy_change(rows: list[dict[str, Any]], key: str, init: float) -> np.ndarray | None:
    """Mean over seeds of (value − init) at the end of the search, (clusters, operations)."""
    ends = [r["policy_search_end"][key] for r in rows if r.get("policy_search_end")]
    return None if not ends else np.mean(np.asarray(ends, dtype=np.float64), axis=0) - init


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--folder", type=Path, default=HERE / "results" / "b1" / "pda")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=HERE / "results" / "b1_pda.png")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = load_runs(args.folder, args.seeds)
    ce = {r["seed"]: r["seconds"] for r in runs.get("ce", [])}
    policy_rows = [m for m in POLICY_ROWS if m in runs and runs[m][0].get("policy")]
    n = len(policy_rows)
    fig = plt.figure(figsize=(4.8 + 4.0 * n, 7.0), layout="constrained")
    grid = fig.add_gridspec(2, 1 + n, width_ratios=[1.3] + [1.0] * n)
    ax = fig.add_subplot(grid[:, 0])
    for i, m in enumerate(runs):
        errs = [r["balanced_error"] for r in runs[m]]
        ax.errorbar(i, np.mean(errs), yerr=np.std(errs, ddof=1) if len(errs) > 1 else 0, fmt="o")
        reset = [bool(r.get("guard")) and not guard_keeps(r) for r in runs[m]]
        for flag, marker in ((False, "o"), (True, "x")):
            ys = [e for e, f in zip(errs, reset) if f == flag]
            ax.scatter([i] * len(ys), ys, s=14, marker=marker, color="grey", zorder=3)
        ratios = [r["seconds"] / ce[r["seed"]] for r in runs[m] if r["seed"] in ce]
        if ratios:
            ax.annotate(
                f"{np.mean(ratios):.1f}× CE",
                (i, max(errs)),
                fontsize=7,
                ha="center",
                xytext=(0, 6),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(runs)), [LABELS[m] for m in runs], rotation=30, fontsize=8)
    ax.set_ylabel("balanced test error")
    ax.set_title(
        "B1-PDA: seeds " + ", ".join(map(str, args.seeds)) + "\n(×: the default guard resets α*)",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    for j, m in enumerate(policy_rows):
        pol = runs[m][0]["policy"]
        for i, (key, init, ops) in enumerate(
            (
                ("prob", pol["init_prob"], pol["ops"]),
                ("magnitude", pol["init_magnitude"], pol["magnitude_ops"]),
            )
        ):
            a = fig.add_subplot(grid[i, 1 + j])
            delta = policy_change(runs[m], key, init)
            if delta is None:
                a.set_axis_off()
                continue
            lim = max(float(np.abs(delta).max()), 1e-3)
            im = a.imshow(delta, cmap="coolwarm", vmin=-lim, vmax=lim, aspect="auto")
            a.set_xticks(range(len(ops)), ops, rotation=60, fontsize=7)
            a.set_yticks(range(delta.shape[0]))
            a.set_ylabel("cluster (0 = most frequent)", fontsize=8)
            name = "p − p₀" if key == "prob" else "m − m₀ (fraction of max)"
            a.set_title(f"{LABELS[m]}: {name}", fontsize=9)
            fig.colorbar(im, ax=a, fraction=0.05)
    fig.suptitle("Learned policies at the end of the search, mean over seeds", fontsize=9)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
