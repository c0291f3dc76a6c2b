"""``autobalance sweep``: accuracy–fairness trade-offs over λ (AutoBalance §4, Fig. 5).

Li et al. 2021 (arXiv 2201.01212), §4, compare two families along a weight λ ∈ [0, 1]:

- **AutoBalance** searches the (class, group) loss (eq. 4.2) against the validation objective
  ``(1 − λ_val)·CE + λ_val·CE_deo``; one point per λ_val, method label ``autobalance+lam<λ>``;
- **λ-blended fixed losses** ``(1 − λ)·CE + λ·L_reg`` for ``L_reg`` ∈ {CE_bal^G, CE_deo,
  Group-LA}; one point per (L_reg, λ), label ``REG@λ`` (:mod:`autobalance.losses.blend`);

plus any fixed baselines without a λ (Group DRO by default). Each point is trained for every
seed through :class:`autobalance.reproduce.Session`, so a point is one run directory per seed,
reused when the command is run again with the same resolved config. The outcome is a table of
the test metrics (mean ± std over seeds) and two Pareto plots of the paper's Fig. 5: the
standard error ``E(f) = Σ π_{y,g} E_{y,g}(f)`` (π from the training set, see
:attr:`~autobalance.experiment.ExperimentConfig.error_weights`) against DEO (eq. 4.1) and
against the group-balanced error ``mean_{y,g} E_{y,g}``, with the front over all points drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autobalance.experiment import GROUP_DATASETS
from autobalance.losses import blend_label, is_loss_label, parse_blend
from autobalance.report.tables import fmt_mean_std, mean_std, pareto_front

if TYPE_CHECKING:
    from autobalance.reproduce import Outcome, Plan, Session

SEARCH_PREFIX = "autobalance+lam"
DEFAULT_LAMS: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
DEFAULT_REGS: tuple[str, ...] = ("ce_bal_group", "ce_deo", "group_la")
DEFAULT_FIXED: tuple[str, ...] = ("group_dro",)
# the validation objectives of the form (1 − λ)·CE + λ·R that a sweep may search against
VAL_OBJECTIVES: tuple[str, ...] = ("ce_deo", "blend")
SWEEP_METRICS: tuple[str, ...] = (
    "error",
    "deo",
    "group_balanced_error",
    "worst_group_error",
    "balanced_error",
)
REG_NAMES: dict[str, str] = {
    "ce_bal_group": "CE_bal^G",
    "ce_deo": "CE_deo",
    "group_la": "Group-LA",
    "group_dro": "Group DRO",
    "ce": "CE",
    "balanced_ce": "CE_bal",
}


def search_label(lam: float) -> str:
    """The method label of the AutoBalance point at λ_val = ``lam``: ``autobalance+lam0.1``."""
    return f"{SEARCH_PREFIX}{lam:g}"


def parse_search_label(label: str) -> float | None:
    """``autobalance+lam0.1`` → 0.1; ``None`` for any other label."""
    if not label.startswith(SEARCH_PREFIX):
        return None
    try:
        return float(label[len(SEARCH_PREFIX) :])
    except ValueError:
        return None


def _check_lams(lams: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(x) for x in lams)
    if not out:
        raise ValueError("sweep: give at least one λ")
    bad = [x for x in out if not (math.isfinite(x) and 0.0 <= x <= 1.0)]
    if bad:
        raise ValueError(f"sweep: every λ must lie in [0, 1], got {bad}")
    if len(set(out)) != len(out):
        raise ValueError(f"sweep: repeated λ in {list(out)}")
    return out


def sweep_methods(
    lams: Sequence[float] = DEFAULT_LAMS,
    regs: Sequence[str] = DEFAULT_REGS,
    fixed: Sequence[str] = DEFAULT_FIXED,
    *,
    search: bool = True,
    val_objective: str = "ce_deo",
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The method labels of a sweep and the config overrides of its AutoBalance points.

    AutoBalance at λ_val gets ``search.objective=<val_objective>`` and
    ``search.objective_lam=λ_val``; a blended baseline is its label ``REG@λ``; ``fixed`` losses
    are added as they are. Labels come AutoBalance first, then ``ce`` (every blend at λ = 0),
    then per regulariser by λ, then the fixed losses.
    """
    use = _check_lams(lams)
    if val_objective not in VAL_OBJECTIVES:
        raise ValueError(
            f"sweep: validation objective must be one of {VAL_OBJECTIVES}, got {val_objective!r}"
        )
    for reg in (*regs, *fixed):
        if parse_blend(reg) is not None or not is_loss_label(reg):
            raise ValueError(f"sweep: unknown loss {reg!r} (give a loss name, not a blend)")
    labels: list[str] = []
    overrides: dict[str, tuple[str, ...]] = {}
    if search:
        for lam in use:
            label = search_label(lam)
            labels.append(label)
            overrides[label] = (f"search.objective={val_objective}", f"search.objective_lam={lam}")
    if regs and 0.0 in use:
        labels.append("ce")  # λ = 0 is plain CE for every regulariser: one point, not one each
    for reg in regs:
        labels += [blend_label(reg, lam) for lam in use if lam > 0.0]
    labels += [f for f in fixed if f not in labels]
    if not labels:
        raise ValueError("sweep: nothing to run (no search, no regulariser, no fixed loss)")
    return tuple(labels), overrides


def family(label: str) -> tuple[str, float | None]:
    """(series name, λ) of a sweep label, for the plots: ``ce_deo@0.9`` → ("(1−λ)CE + λ CE_deo",
    0.9); ``autobalance+lam0.1`` → ("AutoBalance (λ_val)", 0.1); ``group_dro`` → ("Group DRO",
    None)."""
    lam = parse_search_label(label)
    if lam is not None:
        return "AutoBalance (λ_val)", lam
    blended = parse_blend(label)
    if blended is not None:
        reg, lam = blended
        return f"(1−λ)CE + λ {REG_NAMES.get(reg, reg)}", lam
    return REG_NAMES.get(label, label), None


def aggregate_points(
    per_label: dict[str, list[dict[str, Any]]], metrics: Sequence[str] = SWEEP_METRICS
) -> list[dict[str, Any]]:
    """One point per label: its series, λ, and per metric the mean, std and per-seed values of
    the test metrics in ``per_label[label]`` (one summary ``test`` dict per seed)."""
    points = []
    for label, tests in per_label.items():
        series, lam = family(label)
        point: dict[str, Any] = {"label": label, "method": series, "lam": lam}
        for m in metrics:
            values = [t.get(m) for t in tests]
            mean, std, _ = mean_std(values)
            point[m] = mean
            point[f"{m}_std"] = std
            point[f"{m}_values"] = values
        points.append(point)
    return points


def front_labels(points: Sequence[dict[str, Any]], x: str, y: str) -> list[str]:
    """Labels of the points on the Pareto front of (x, y), both minimised, sorted by x."""
    xy = [(float(p[x]), float(p[y])) for p in points]
    return [points[i]["label"] for i in pareto_front(xy)]


def dominance(points: Sequence[dict[str, Any]], x: str, y: str) -> dict[str, list[str]]:
    """For each AutoBalance point, the non-AutoBalance points it Pareto-dominates on (x, y)
    (both means minimised; ≤ in both and < in one)."""
    out: dict[str, list[str]] = {}
    for p in points:
        if parse_search_label(p["label"]) is None:
            continue
        beaten = []
        for q in points:
            if parse_search_label(q["label"]) is not None:
                continue
            if (
                p[x] <= q[x]
                and p[y] <= q[y]
                and (p[x] < q[x] or p[y] < q[y])
                and math.isfinite(p[x] + p[y] + q[x] + q[y])
            ):
                beaten.append(q["label"])
        out[p["label"]] = beaten
    return out


PARETO_AXES: tuple[tuple[str, str], ...] = (("error", "deo"), ("error", "group_balanced_error"))


def run_pareto(session: Session) -> Outcome:
    """Every sweep point × seed, then the table (mean ± std, percent) and the Fig. 5 plots."""
    from autobalance.report import plot_pareto, plots_available
    from autobalance.reproduce import Outcome, display

    plan = session.plan
    per_label: dict[str, list[dict[str, Any]]] = {}
    runs: dict[str, list[str]] = {}
    for seed in plan.seeds:
        for m in plan.methods:
            summary, run = session.run(m, seed)
            per_label.setdefault(m, []).append(summary["test"])
            runs.setdefault(m, []).append(str(run.path))
    points = aggregate_points(per_label)
    fronts = {f"{y}_vs_{x}": front_labels(points, x, y) for x, y in PARETO_AXES}
    headers = [
        "method",
        "λ",
        *(f"{_short(m)} (%)" for m in SWEEP_METRICS),
        "front (DEO)",
        "front (G-bal)",
    ]
    rows = []
    for p in points:
        row: list[Any] = [display(p["label"]), "—" if p["lam"] is None else f"{p['lam']:g}"]
        row += [fmt_mean_std(p[f"{m}_values"], 4, percent=True) for m in SWEEP_METRICS]
        row += ["*" if p["label"] in fronts[f"{y}_vs_{x}"] else "" for x, y in PARETO_AXES]
        rows.append(row)
    notes = []
    for x, y in PARETO_AXES:
        dom = dominance(points, x, y)
        front = fronts[f"{y}_vs_{x}"]
        n_ab = sum(parse_search_label(lbl) is not None for lbl in front)
        notes.append(
            f"Pareto front of {_short(x)} vs {_short(y)}: {len(front)} points, {n_ab} of them "
            f"AutoBalance ({', '.join(front)})"
        )
        for label, beaten in dom.items():
            if beaten:
                axes = f"({_short(x)}, {_short(y)})"
                notes.append(f"{label} dominates on {axes}: {', '.join(beaten)}")
    figures = []
    if plots_available():
        for x, y in PARETO_AXES:
            path = plan.out / f"pareto_{y}_vs_{x}.png"
            figures.append(
                plot_pareto(
                    points,
                    path,
                    x=x,
                    y=y,
                    title=f"{_short(y)} against standard error (mean of {len(plan.seeds)} seeds)",
                )
            )
    data = {"points": points, "fronts": fronts, "runs": runs, "seeds": list(plan.seeds)}
    return Outcome(headers, rows, figures=figures, notes=notes, data=data)


def make_sweep_plan(
    *,
    preset: str | None = None,
    config: str | Path | None = None,
    lams: Sequence[float] = DEFAULT_LAMS,
    regs: Sequence[str] = DEFAULT_REGS,
    fixed: Sequence[str] = DEFAULT_FIXED,
    search: bool = True,
    val_objective: str = "ce_deo",
    seeds: Sequence[int] = (0,),
    overrides: Sequence[str] = (),
    device: str | None = None,
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    argv: Sequence[str] = (),
) -> Plan:
    """Resolve ``autobalance sweep`` arguments into a validated
    :class:`~autobalance.reproduce.Plan` (every point's config is parsed before anything runs;
    the dataset must have groups)."""
    from autobalance.reproduce import Plan, Reproduction

    if (preset is None) == (config is None):
        raise ValueError("sweep: give exactly one of --preset or --config")
    methods, method_overrides = sweep_methods(
        lams, regs, fixed, search=search, val_objective=val_objective
    )
    name = preset if preset is not None else Path(str(config)).stem
    rep = Reproduction(
        name="sweep",
        description=f"λ sweep on {name}: AutoBalance (λ_val) vs (1 − λ)·CE + λ·L_reg",
        presets={"cpu": name},
        methods=methods,
        runner=run_pareto,
        citation="Li et al. 2021, arXiv 2201.01212, §4 and Fig. 5 (the protocol, not its numbers)",
        metrics=SWEEP_METRICS,
        method_overrides=method_overrides,
    )
    extra = list(overrides)
    if data_dir is not None:
        extra.append(f"dataset.data_dir={Path(data_dir).expanduser()}")
    plan = Plan(
        reproduction=rep,
        scale="cpu",
        preset=name,
        methods=methods,
        seeds=tuple(int(x) for x in seeds) or (0,),
        overrides=tuple(extra),
        out=Path(out) if out is not None else Path(f"sweep-{name}"),
        device=device,
        argv=tuple(argv),
        config_file=None if config is None else Path(config).expanduser(),
    )
    for m in methods:
        cfg = plan.config(m, plan.seeds[0])  # fail early on a bad override
    if cfg.dataset.name not in GROUP_DATASETS:
        raise ValueError(
            f"sweep: dataset '{cfg.dataset.name}' has no groups; the λ sweep needs a grouped "
            f"dataset ({', '.join(GROUP_DATASETS)})"
        )
    return plan


def _short(metric: str) -> str:
    return {
        "error": "error",
        "deo": "DEO",
        "group_balanced_error": "group-bal. error",
        "worst_group_error": "worst (class, group)",
        "balanced_error": "bal. error",
    }.get(metric, metric)


__all__ = [
    "DEFAULT_FIXED",
    "DEFAULT_LAMS",
    "DEFAULT_REGS",
    "PARETO_AXES",
    "SWEEP_METRICS",
    "aggregate_points",
    "dominance",
    "family",
    "front_labels",
    "make_sweep_plan",
    "parse_search_label",
    "run_pareto",
    "search_label",
    "sweep_methods",
]
