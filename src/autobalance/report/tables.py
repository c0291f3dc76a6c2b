"""Tables and summary statistics for reports: mean ± std over seeds, Pareto fronts, text tables.

All numbers are plain floats; NaN (an undefined metric, e.g. a class without test samples) is
skipped by the statistics and printed as ``n/a``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(mean, sample std, n) over the finite values.

    ``mean = Σ v_i / n``, ``std = sqrt(Σ (v_i − mean)² / (n − 1))`` (Bessel-corrected, 0 for
    n = 1); NaN, NaN, 0 when no value is finite.
    """
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, 0
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean()), std, int(v.size)


def fmt(value: float | None, digits: int = 3, percent: bool = False) -> str:
    """``0.123`` (or ``12.3`` with ``percent``); ``n/a`` for None/NaN."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if percent:
        return f"{100 * value:.{max(digits - 2, 1)}f}"
    return f"{value:.{digits}f}"


def fmt_mean_std(values: Sequence[float | None], digits: int = 3, percent: bool = False) -> str:
    """``mean ± std`` over seeds (only ``mean`` for one value, ``n/a`` for none)."""
    m, s, n = mean_std(values)
    if n == 0:
        return "n/a"
    if n == 1:
        return fmt(m, digits, percent)
    return f"{fmt(m, digits, percent)} ± {fmt(s, digits, percent)}"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points when both coordinates are minimised, sorted by x.

    Point i is dominated when some j has ``x_j ≤ x_i`` and ``y_j ≤ y_i`` with one inequality
    strict. Points with a non-finite coordinate are never on the front.
    """
    finite = [i for i, (x, y) in enumerate(points) if math.isfinite(x) and math.isfinite(y)]
    front = []
    for i in finite:
        xi, yi = points[i]
        dominated = any(
            points[j][0] <= xi and points[j][1] <= yi and (points[j][0] < xi or points[j][1] < yi)
            for j in finite
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v)
    return "n/a" if v is None else str(v)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (floats with 3 decimals)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in r) + " |")
    return "\n".join(lines) + "\n"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table for the terminal (first column left-aligned, others right)."""
    cells = [list(headers)] + [[_cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])]) + "\n"


# Columns of `autobalance compare`: (header, summary key under "test", shown only with groups)
COMPARE_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("bal.err", "balanced_error", False),
    ("err", "error", False),
    ("worst class", "worst_class_error", False),
    ("group bal.err", "group_balanced_error", True),
    ("worst group", "worst_group_error", True),
    ("DEO", "deo", True),
)


def compare_rows(
    summaries: Sequence[dict[str, Any]], labels: Sequence[str]
) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) comparing runs side by side from their ``summary.json``.

    Group columns appear when any run has group metrics; ``time`` is the run's wall time (s).
    """
    grouped = any("deo" in s.get("test", {}) for s in summaries)
    cols = [c for c in COMPARE_COLUMNS if grouped or not c[2]]
    headers = ["run", "method", *(c[0] for c in cols), "time (s)"]
    rows = []
    for label, s in zip(labels, summaries):
        t = s.get("test", {})
        rows.append(
            [
                label,
                s.get("method", "?"),
                *(t.get(c[1]) for c in cols),
                f"{s['seconds']:.1f}" if isinstance(s.get("seconds"), float) else "",
            ]
        )
    return headers, rows


__all__ = [
    "COMPARE_COLUMNS",
    "compare_rows",
    "fmt",
    "fmt_mean_std",
    "markdown_table",
    "mean_std",
    "pareto_front",
    "text_table",
]
