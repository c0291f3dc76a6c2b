"""The lever table of issue 8, printed from b1_cifar10_lt.py's per-run JSON.

Each lever is an ``autobalance+<lever>`` run with the guard's fallback off, so its test error is
the loss its search found; the guard's verdict (``would_fall_back``) and S_V scores are stored in
the run. For each lever the table gives the balanced test error (mean ± sample std over seeds),
the paired difference to LA and to ``--best`` of the same seeds (the best baseline, or the
default's own run; mean, and the one-sample t statistic over the pairs, n − 1 degrees of
freedom), the default guard's verdict per seed, the S_V scores (searched θ / θ trained from
scratch with α* against the reference θ trained with the init loss) and the mean seconds per
run::

    python benchmarks/lever_table.py results/b1/fit_ablation --la results/b1/fit \
        --best la+tau=1.5 --seeds 0 1 2

A seed whose run and baselines ran on unlike hosts (``_common.same_host``) has its differences
marked †: such a pair shares the seed but not its warm-up, so it is not paired in the sense of
the t statistic (benchmarks/README.md, "Same seed, other host").

``--keep-z Z`` replays the guard's verdict with ``guard.keep_z = Z`` (``guard_rule.keeps``)
instead of showing the one each run recorded under its own rule.

Several run folders may be given; a method is read from the first folder that holds it.

Reads only; nothing is written.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from _common import GUARD_SCORES, load_run, same_host
    from guard_rule import keeps
except ImportError:  # pragma: no cover
    from benchmarks._common import GUARD_SCORES, load_run, same_host
    from benchmarks.guard_rule import keeps


def paired(diffs: Sequence[float]) -> tuple[float, float]:
    """Mean of the paired differences d_s and t = mean / (std / √n) (nan for n < 2 or std 0)."""
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, math.nan
    sd = statistics.stdev(diffs)
    return mean, (mean / (sd / math.sqrt(len(diffs))) if sd > 0 else math.nan)


def lever_row(
    runs: Path,
    method: str,
    seeds: Sequence[int],
    la: Path,
    best: str,
    keep_z: float | None = None,
) -> dict[str, Any] | None:
    """One table row for ``method`` over the ``seeds`` whose run and baselines all exist.

    ``keep_z`` None: the verdict each run's own guard recorded (``would_fall_back``, under the
    ``guard.keep_z`` it ran with); a number: that rule replayed on the run's S_V scores
    (``guard_rule.keeps``), so runs made under different defaults are judged alike.
    """
    got, other_host = [], []
    for seed in seeds:
        run, base, top = (load_run(d, m, seed) for d, m in ((runs, method), (la, "la"), (la, best)))
        if run is not None and base is not None and top is not None:
            got.append((seed, run, base["balanced_error"], top["balanced_error"]))
            env = run.get("env")
            other_host.append(any(same_host(env, b.get("env")) is False for b in (base, top)))
    if not got:
        return None
    errors = [run["balanced_error"] for _, run, _, _ in got]
    guards = [run.get("guard") or {} for _, run, _, _ in got]
    return {
        "method": method,
        "seeds": [seed for seed, *_ in got],
        "errors": errors,
        "mean": statistics.fmean(errors),
        "std": statistics.stdev(errors) if len(errors) > 1 else math.nan,
        "minus_la": [e - b for e, (_, _, b, _) in zip(errors, got, strict=True)],
        "minus_best": [e - t for e, (_, _, _, t) in zip(errors, got, strict=True)],
        "other_host": other_host,
        "reset": [_verdict(run, keep_z) for _, run, _, _ in got],
        "val": [
            (
                g.get("final_val_score"),
                g.get("from_scratch_val_score"),
                g.get("reference_val_score"),
            )
            for g in guards
        ],
        "seconds": statistics.fmean(run["seconds"] for _, run, _, _ in got),
    }


NOT_MEASURED = "not measured"


def _verdict(run: dict[str, Any], keep_z: float | None) -> bool | str | None:
    """Whether the guard falls back: as recorded, or replayed with ``keep_z``; None without a
    guard, ``NOT_MEASURED`` for a run made without the reference θ (``guard.reference=false``,
    as the cheaper lever runs: its recorded verdict compares with the search's start instead,
    which is not the default guard's rule)."""
    guard = run.get("guard") or {}
    if guard and ((run.get("config") or {}).get("guard") or {}).get("reference") is False:
        return NOT_MEASURED
    if keep_z is None or "reference_val_score" not in guard:
        return guard.get("would_fall_back")
    return not keeps({key: guard.get(key) for key in GUARD_SCORES}, keep_z)


def _score(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _minus(text: str) -> str:
    """``text`` with the typographic minus, as the READMEs write it."""
    return text.replace("-", "−")


def _pt(x: float) -> str:
    """A difference in percentage points, signed."""
    return _minus(f"{100 * x:+.2f}")


def markdown(row: dict[str, Any]) -> str:
    """The row as a markdown table line (differences in percentage points; † other host)."""
    la_mean, la_t = paired(row["minus_la"])
    best_mean, best_t = paired(row["minus_best"])
    mark = ["†" if x else "" for x in row["other_host"]]
    verdict = {True: "reset", False: "kept", None: "no guard", NOT_MEASURED: NOT_MEASURED}
    cells = [
        row["method"],
        f"{row['mean']:.4f} ± {row['std']:.4f}",
        " ".join(f"{e:.4f}" for e in row["errors"]),
        " ".join(_pt(d) + m for d, m in zip(row["minus_la"], mark, strict=True)),
        _minus(f"{100 * la_mean:+.2f} (t = {la_t:+.1f})"),
        " ".join(_pt(d) + m for d, m in zip(row["minus_best"], mark, strict=True)),
        _minus(f"{100 * best_mean:+.2f} (t = {best_t:+.1f})"),
        ", ".join(verdict[r] for r in row["reset"]),
        "; ".join(f"{_score(s)}/{_score(f)} vs {_score(r)}" for s, f, r in row["val"]),
        f"{row['seconds']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def header(best: str) -> str:
    """The table's header; the second comparison names ``--best`` (a baseline or a default)."""
    return (
        "| lever (fallback off) | balanced error | per seed | − LA per seed (pt) | mean − LA | "
        f"− {best} per seed (pt) | mean − {best} | default guard | S_V: searched / from scratch "
        "vs reference | s / run |\n" + "|---" * 10 + "|"
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="folders of autobalance*__s<seed>.json runs")
    p.add_argument("--la", type=Path, required=True, help="folder with la__s<seed>.json")
    p.add_argument(
        "--best",
        default="la",
        help="the method in --la of the second comparison: the best baseline, or a default's run",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--keep-z",
        type=float,
        default=None,
        help="replay the guard's verdict with this guard.keep_z (default: as each run recorded)",
    )
    args = p.parse_args(argv)
    folder: dict[str, Path] = {}  # method -> the first folder that holds it
    for runs in args.runs:
        for path in sorted(runs.glob("autobalance*__s*.json")):
            folder.setdefault(path.name.split("__s")[0], runs)
    methods = sorted(folder, key=lambda m: (m != "autobalance", m))
    rows = [
        r
        for m in methods
        if (r := lever_row(folder[m], m, args.seeds, args.la, args.best, args.keep_z))
    ]
    print(header(args.best))
    for row in rows:
        print(markdown(row))
    if any(any(r["other_host"]) for r in rows):
        print("\n† run and baseline on unlike hosts: same seed, not the same warm-up (not paired)")
    return rows


if __name__ == "__main__":
    main()
