"""Tables and summary statistics for reports: mean ± std over seeds, Pareto fronts, text tables.

All numbers are plain floats; NaN (an undefined metric, e.g. a class without test samples) is
skipped by the statistics and printed as ``n/a``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
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
    summaries: Sequence[dict[str, Any]],
    labels: Sequence[str],
    epochs: Sequence[int | None] | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) comparing runs side by side from their ``summary.json``.

    Group columns appear when any run has group metrics; ``time`` is the run's wall time (s);
    ``epochs`` (the θ-epochs each run trained, :func:`epochs_trained`) adds that column.
    """
    grouped = any("deo" in s.get("test", {}) for s in summaries)
    cols = [c for c in COMPARE_COLUMNS if grouped or not c[2]]
    headers = ["run", "method", *(c[0] for c in cols), "time (s)"]
    headers += ["θ-epochs"] if epochs is not None else []
    rows = []
    for i, (label, s) in enumerate(zip(labels, summaries)):
        t = s.get("test", {})
        row = [
            label,
            s.get("method", "?"),
            *(t.get(c[1]) for c in cols),
            f"{s['seconds']:.1f}" if isinstance(s.get("seconds"), float) else "",
        ]
        if epochs is not None:
            row.append("" if epochs[i] is None else str(epochs[i]))
        rows.append(row)
    return headers, rows


# Many / medium / few-shot split of long-tail reports (Liu et al. 2019, OLTR): training samples
# n_k > 100, 20 ≤ n_k ≤ 100, n_k < 20
MANY_SHOT = 100
FEW_SHOT = 20
SHOT_SPLITS = ("many", "medium", "few")


def shot_split(count: float, *, many: float = MANY_SHOT, few: float = FEW_SHOT) -> str:
    """``many`` (n > ``many``), ``medium`` (``few`` ≤ n ≤ ``many``) or ``few`` (n < ``few``)."""
    if few > many:
        raise ValueError(f"few-shot threshold {few} is above the many-shot threshold {many}")
    return "many" if count > many else ("few" if count < few else "medium")


def shot_label(split: str, *, many: float = MANY_SHOT, few: float = FEW_SHOT) -> str:
    """``many-shot (> 100)``, ``medium-shot (20–100)`` or ``few-shot (< 20)``."""
    bounds = {"many": f"> {many:g}", "medium": f"{few:g}–{many:g}", "few": f"< {few:g}"}
    return f"{split}-shot ({bounds[split]})"


def shot_accuracy(
    class_counts: Sequence[float],
    class_accuracy: Sequence[float | None],
    *,
    many: float = MANY_SHOT,
    few: float = FEW_SHOT,
) -> dict[str, dict[str, float | int]]:
    """Mean per-class accuracy of the many-, medium- and few-shot classes.

    Class k (``n_k`` training samples) is many-shot when ``n_k > many``, few-shot when
    ``n_k < few``, medium-shot otherwise; ``acc_S = (1/|S|) Σ_{k ∈ S} acc_k`` over the classes
    of split S with a defined accuracy (a class without test samples is left out). Returns
    ``{split: {"accuracy": acc_S (NaN when S is empty), "classes": |S|}}``.
    """
    if len(class_counts) != len(class_accuracy):
        raise ValueError(f"{len(class_accuracy)} accuracies for {len(class_counts)} class counts")
    members: dict[str, list[float]] = {s: [] for s in SHOT_SPLITS}
    sizes = dict.fromkeys(SHOT_SPLITS, 0)
    for n, acc in zip(class_counts, class_accuracy):
        split = shot_split(float(n), many=many, few=few)
        sizes[split] += 1
        if acc is not None and math.isfinite(acc):
            members[split].append(float(acc))
    return {
        s: {"accuracy": float(np.mean(v)) if v else math.nan, "classes": sizes[s]}
        for s, v in members.items()
    }


def epochs_trained(
    history: Sequence[Mapping[str, Any]], timings: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """θ-epochs a run trained, per part: the compute of a method.

    From the run's records: one ``metrics.jsonl`` record per epoch of each phase (``warmup``
    and ``search`` on S_T, ``retrain`` on all of S, ``train`` for a fixed loss); and, when
    ``timings`` (``summary["timings"]``) show the search guard trained them, its ``reference``
    θ with the init loss (one epoch per search epoch after the warm-up) and its
    ``check`` from scratch with α* (all warm-up + search epochs). ``total`` is their sum.
    """
    out: dict[str, int] = {}
    for r in history:
        phase = str(r.get("phase", "train"))
        out[phase] = out.get(phase, 0) + 1
    t = timings or {}
    if "reference" in t:
        out["reference"] = out.get("search", 0)
    if "check" in t:
        out["check"] = out.get("warmup", 0) + out.get("search", 0)
    out["total"] = sum(out.values())
    return out


_EPOCH_PARTS = (
    ("warmup", "warm-up"),
    ("search", "search"),
    ("reference", "guard reference"),
    ("check", "from-scratch check"),
    ("retrain", "retrain"),
    ("train", "train"),
)


def describe_epochs(epochs: Mapping[str, int]) -> str:
    """``96 θ-epochs (warm-up 16 + search 24 + guard reference 24 + retrain 40)``; just
    ``40 θ-epochs`` for a single part."""
    parts = [(label, epochs[k]) for k, label in _EPOCH_PARTS if epochs.get(k)]
    total = int(epochs.get("total", sum(n for _, n in parts)))
    if len(parts) <= 1:
        return f"{total} θ-epochs"
    return f"{total} θ-epochs (" + " + ".join(f"{label} {n}" for label, n in parts) + ")"


def dataset_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """What makes a run's data, from its resolved ``config.yaml``: dataset name, options,
    imbalance ratio ρ and the data seed (``dataset.seed``, else ``search.seed``, which then
    draws the long-tailed subsample and any synthetic data)."""
    ds = config.get("dataset") or {}
    seed = ds.get("seed")
    if seed is None:
        seed = (config.get("search") or {}).get("seed")
    return {
        "dataset": ds.get("name"),
        "options": ds.get("options") or {},
        "imbalance ratio": ds.get("imbalance_ratio"),
        "data seed": seed,
    }


def budget_identity(config: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The training budget of a run: model (name and options), epochs of ``search.train`` and,
    for a search that retrains, of the retrain; a fixed loss trains on the final model's
    schedule (``retrain_train`` when set, as ``run_train`` does)."""
    search = config.get("search") or {}
    model = config.get("model") or {}
    final = search.get("retrain_train") or search.get("train") or {}
    searched = method == "autobalance"
    out: dict[str, Any] = {
        "model": {k: v for k, v in model.items() if v not in (None, {}, [])},
        "epochs": (search.get("train") or {}).get("epochs") if searched else final.get("epochs"),
    }
    if searched and search.get("retrain", True):
        out["retrain epochs"] = final.get("epochs")
    return out


def _brief(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_brief(v)}" for k, v in value.items()) or "{}"
    return "n/a" if value is None else str(value)


def _differences(
    values: Sequence[Mapping[str, Any]], labels: Sequence[str], keys: Sequence[str]
) -> list[str]:
    """``key (label: value; label: value)`` for each key whose value is not the same in all."""
    out = []
    for key in keys:
        seen = [(lab, v[key]) for lab, v in zip(labels, values) if key in v]
        if len({json.dumps(v, sort_keys=True, default=str) for _, v in seen}) > 1:
            shown = "; ".join(f"{lab}: {_brief(v)}" for lab, v in seen[:4])
            more = f"; … {len(seen) - 4} more" if len(seen) > 4 else ""
            out.append(f"{key} ({shown}{more})")
    return out


def dataset_mismatch(
    configs: Sequence[Mapping[str, Any]], labels: Sequence[str], methods: Sequence[str]
) -> str | None:
    """Why the runs are not on the same data (None when they are).

    The dataset, its options and ρ must agree. Data seeds may differ only as a seeds × methods
    grid: every data seed holds the same methods, so that each method meets the same data
    (runs of one method over several seeds, or a reproduction's runs folder).
    """
    ids = [dataset_identity(c) for c in configs]
    diff = _differences(ids, labels, ("dataset", "options", "imbalance ratio"))
    if diff:
        return "runs are on different datasets: " + "; ".join(diff)
    by_seed: dict[str, list[str]] = {}
    for i, m in zip(ids, methods):
        by_seed.setdefault(_brief(i["data seed"]), []).append(m)
    if len({tuple(sorted(v)) for v in by_seed.values()}) > 1:
        shown = "; ".join(f"data seed {k}: {', '.join(v)}" for k, v in by_seed.items())
        return f"runs are on different data seeds and not every seed has the same methods ({shown})"
    return None


def budget_mismatch(
    configs: Sequence[Mapping[str, Any]], labels: Sequence[str], methods: Sequence[str]
) -> list[str]:
    """The budget keys (model, epochs, retrain epochs) that differ between the runs."""
    budgets = [budget_identity(c, m) for c, m in zip(configs, methods)]
    return _differences(budgets, labels, ("model", "epochs", "retrain epochs"))


__all__ = [
    "COMPARE_COLUMNS",
    "FEW_SHOT",
    "MANY_SHOT",
    "SHOT_SPLITS",
    "budget_identity",
    "budget_mismatch",
    "compare_rows",
    "dataset_identity",
    "dataset_mismatch",
    "describe_epochs",
    "epochs_trained",
    "fmt",
    "fmt_mean_std",
    "markdown_table",
    "mean_std",
    "pareto_front",
    "shot_accuracy",
    "shot_label",
    "shot_split",
    "text_table",
]
