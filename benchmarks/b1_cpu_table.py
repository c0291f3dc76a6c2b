"""B1 CPU's one-host table (summary key ``b1_cpu``), built from the runs of one folder.

The searched rows of B1 CPU are run with the guard's fallback off (``--set
guard.fallback=false``), so that each run keeps what its search found; the table reports what
the library *returns*, the default guard included. For a searched method and seed:

- returned error = the run's own when the default guard keeps α*, else that of the init's
  control (LA) of the same seed and the same kind of host: a fallback retrains exactly that
  training (``tests/engine/test_guard.py``); ``b1_cifar10_lt.guard_keeps`` gives the verdict;
- ``searched_balanced_error``: the run's own (α* retrained), ``guard_kept``: 1 or 0,
- ``seconds``: the search run's.

``PROMOTED`` names which run is which row: ``autobalance`` (the default) is the
``autobalance+average`` run (today's default, run under its lever name), ``autobalance+la_tau``
the τ-only search. Baselines are copied as they are. A method is written only when every seed
asked for has run, with its control, on like hosts; a run made without the guard's reference θ
has no verdict and is refused::

    python benchmarks/b1_cpu_table.py --runs results/b1/cpu_ablation --seeds 0 1 2

Writes ``summary.json``'s ``b1_cpu`` key (other keys kept) and prints the table.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.b1_cpu_table
    from _common import RESULTS_DIR, SUMMARY_METRICS, load_run, same_host, update_summary
    from b1_cifar10_lt import guard_keeps
    from guard_rule import verdict_measured
except ImportError:  # pragma: no cover
    from benchmarks._common import (
        RESULTS_DIR,
        SUMMARY_METRICS,
        load_run,
        same_host,
        update_summary,
    )
    from benchmarks.b1_cifar10_lt import guard_keeps
    from benchmarks.guard_rule import verdict_measured

BASELINES = ("ce", "la", "ldam_drw")
# summary row -> the run (method name in the folder) that measures it
PROMOTED = {"autobalance": "autobalance+average", "autobalance+la_tau": "autobalance+la_tau"}
METRICS = (*SUMMARY_METRICS, "guard_kept", "searched_balanced_error")


def returned_row(name: str, run: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """Row ``name`` of one seed: what the library returns for ``run`` (fallback off), with
    ``control`` (LA of the same seed) standing in when the default guard would fall back."""
    if not verdict_measured(run["config"]["guard"]):
        raise ValueError(f"{run['method']} seed {run['seed']}: no verdict of the default guard")
    if same_host(run.get("env"), control.get("env")) is False:
        raise ValueError(f"{run['method']} seed {run['seed']}: its LA ran on another host")
    kept = guard_keeps(run)
    source = run if kept else control
    return {
        "method": name,
        "seed": run["seed"],
        "balanced_error": source["balanced_error"],
        "error": source["error"],
        "worst_class_error": source["worst_class_error"],
        "seconds": run["seconds"],
        "guard_kept": float(kept),
        "searched_balanced_error": run["balanced_error"],
    }


def table_rows(runs: Path, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Every complete row of ``runs`` (baselines as run, searched rows as returned)."""
    rows: list[dict[str, Any]] = []
    for method in BASELINES:
        got = [load_run(runs, method, s) for s in seeds]
        if all(r is not None for r in got):
            rows += [{m: r[m] for m in ("method", "seed", *SUMMARY_METRICS)} for r in got if r]
    for name, method in PROMOTED.items():
        pairs = [(load_run(runs, method, s), load_run(runs, "la", s)) for s in seeds]
        if all(run is not None and la is not None for run, la in pairs):
            rows += [returned_row(name, run, la) for run, la in pairs if run and la]
        else:
            print(f"{name}: not every seed of {method} (and LA) has run; left out")
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=Path, default=RESULTS_DIR / "b1" / "cpu_ablation")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--summary", type=Path, default=RESULTS_DIR / "summary.json")
    p.add_argument("--key", default="b1_cpu")
    args = p.parse_args(argv)
    rows = table_rows(args.runs, args.seeds)
    if rows:
        update_summary(args.key, rows, args.summary, metrics=METRICS)
    for method in dict.fromkeys(r["method"] for r in rows):
        errs = [r["balanced_error"] for r in rows if r["method"] == method]
        kept = [r.get("guard_kept") for r in rows if r["method"] == method]
        note = "" if kept[0] is None else f"  guard kept {kept}"
        std = statistics.stdev(errs) if len(errs) > 1 else float("nan")
        print(f"{method:22s} {statistics.fmean(errs):.4f} ± {std:.4f}{note}")
    return rows


if __name__ == "__main__":
    main()
