"""Which keep/fall-back rule for the guard? An offline study on ablation rows (issue 8).

Reads runs of a variant with the fallback off (``keep``, ``old_upper_keep``: α* is always
kept, and the guard's S_V scores and paired SEs are still recorded) and replays the guard's
final decision for a grid of ``guard.keep_z``: α* is kept when the searched θ scores no worse
than the reference θ (init loss) on S_V and the θ trained from scratch with α* beats it by more
than ``keep_z`` paired standard errors; otherwise the run hands back the init, whose test error
is the LA row of the same seed (a fallback retrains exactly that training). Prints, per rule,
the outcome minus LA (mean, worst) and how often α* was kept::

    python benchmarks/ablation_small.py --seeds 0 1 ... 15 --variants keep old_upper_keep \
        --out /tmp/study_keep.json --no-summary
    python benchmarks/guard_rule.py /tmp/study_keep.json
    # B1 runs: the per-run JSON of the fallback-off variant and of LA (same seeds)
    python benchmarks/guard_rule.py --b1 results/b1/fit_keep results/b1/fit
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

try:
    from _common import GUARD_SCORES, load_run
except ImportError:  # pragma: no cover
    from benchmarks._common import GUARD_SCORES, load_run

GRID = (-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def verdict_measured(guard_config: dict[str, Any]) -> bool:
    """Whether a run measured the default guard's verdict: its guard on, with the reference θ
    (``guard.reference: false``, as the cheaper lever runs, leaves only a comparison with the
    search's start, another rule)."""
    return bool(guard_config.get("enabled", True)) and guard_config.get("reference") is not False


def keeps(row: dict[str, Any], keep_z: float, margin: float = 0.0) -> bool:
    """The guard's final decision for ``row`` under ``keep_z`` (``fallback_margin`` = margin):
    the searched θ must not score worse than the reference on S_V, and the θ trained from
    scratch with α* must beat it by ``keep_z`` paired SEs (the last check weighs the noise); a
    negative ``keep_z`` lets each check be worse by up to ``|keep_z|`` of its own SE."""
    ref = row["reference_val_score"]
    if ref is None:
        return True
    # a negative keep_z falls back only on harm: every check tolerates |keep_z| of its SE
    searched_se = row.get("reference_paired_se") or 0.0
    if row["final_val_score"] > ref + margin - min(keep_z, 0.0) * searched_se:
        return False
    scratch, se = row["from_scratch_val_score"], row["from_scratch_paired_se"] or 0.0
    return scratch is None or scratch <= ref + margin - keep_z * se


def replay(rows: list[dict[str, Any]], method: str, keep_z: float) -> dict[str, Any]:
    """Outcome − LA per row when the guard decides with ``keep_z``."""
    la = {(r["problem"], r["seed"]): r["balanced_error"] for r in rows if r["method"] == "la"}
    out = []
    kept = 0
    for r in rows:
        if r["method"] != method:
            continue
        k = keeps(r, keep_z)
        kept += k
        out.append(r["minus_la"] if k else 0.0)
        del la[(r["problem"], r["seed"])]
    return {
        "mean": statistics.mean(out),
        "worst": max(out),
        "best": min(out),
        "kept": kept,
        "runs": len(out),
    }


def b1_rows(runs: Path, la_runs: Path) -> list[dict[str, Any]]:
    """Rows in ``ablation_small.py``'s shape from b1_cifar10_lt.py's per-run JSON: every
    AutoBalance run in ``runs`` with the guard's scores, and the ``la`` run of its seed."""
    rows: list[dict[str, Any]] = []
    for path in sorted(runs.glob("autobalance*__s*.json")):
        run = json.loads(path.read_text())
        la_run = load_run(la_runs, "la", run["seed"])
        if la_run is None:
            continue
        la = la_run["balanced_error"]
        rows.append({"problem": "b1", "method": "la", "seed": run["seed"], "balanced_error": la})
        rows.append(
            {"problem": "b1", "method": run["method"], "seed": run["seed"]}
            | {"balanced_error": run["balanced_error"], "minus_la": run["balanced_error"] - la}
            | {key: run["guard"].get(key) for key in GUARD_SCORES}
        )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("rows", nargs="?", help="an ablation_small.py JSON with a fallback-off variant")
    p.add_argument("--b1", nargs=2, metavar=("RUNS", "LA_RUNS"), help="b1 per-run JSON folders")
    p.add_argument("--grid", type=float, nargs="+", default=list(GRID))
    args = p.parse_args(argv)
    if args.b1:
        rows = b1_rows(Path(args.b1[0]), Path(args.b1[1]))
    elif args.rows:
        rows = json.loads(Path(args.rows).read_text())["rows"]
    else:
        p.error("give an ablation JSON or --b1 RUNS LA_RUNS")
    methods = sorted({r["method"] for r in rows if r["method"] != "la"})
    result: dict[str, Any] = {}
    print(f"{'method':32s} {'keep_z':>6s} {'mean−LA':>8s} {'worst':>7s} {'best':>7s} kept")
    for method in methods:
        for z in args.grid:
            res = replay(rows, method, z)
            result[f"{method}@{z:g}"] = res
            print(
                f"{method:32s} {z:6.2f} {res['mean']:+8.4f} {res['worst']:+7.3f} "
                f"{res['best']:+7.3f} {res['kept']}/{res['runs']}"
            )
    return result


if __name__ == "__main__":
    main()
