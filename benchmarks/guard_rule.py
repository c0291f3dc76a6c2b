"""Which keep/fall-back rule for the guard? An offline study on ablation rows (issue 8).

Reads rows written by ``ablation_small.py`` for a variant run with the fallback off (``keep``,
``old_upper_keep``: α* is always kept, and the guard's S_V scores are still recorded) and
replays the guard's final decision for a grid of ``guard.keep_z``: α* is kept when both the
searched θ and the θ trained from scratch with α* beat the reference θ (init loss) on S_V by
more than ``keep_z`` paired standard errors; otherwise the run hands back the init, whose test
error is the LA row of the same seed. Prints, per rule, the outcome minus LA (mean, worst) and
how often α* was kept::

    python benchmarks/ablation_small.py --seeds 0 1 ... 15 --variants keep old_upper_keep \\
        --out /tmp/study_keep.json --no-summary
    python benchmarks/guard_rule.py /tmp/study_keep.json

The replay is exact for the decision; the fallback's test error is LA's own training rather
than the search's retrain with α₀ (same loss, data and initial weights, another batch order).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def keeps(row: dict[str, Any], keep_z: float, margin: float = 0.0) -> bool:
    """The guard's final decision for ``row`` under ``keep_z`` (``fallback_margin`` = margin)."""
    ref = row["reference_val_score"]
    for score, se in (
        (row["final_val_score"], row["reference_paired_se"]),
        (row["from_scratch_val_score"], row["from_scratch_paired_se"]),
    ):
        if score is None or ref is None:
            continue
        if score > ref + margin - keep_z * (se or 0.0):
            return False
    return True


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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("rows", help="an ablation_small.py JSON with a fallback-off variant")
    p.add_argument("--grid", type=float, nargs="+", default=list(GRID))
    args = p.parse_args(argv)
    rows = json.loads(Path(args.rows).read_text())["rows"]
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
