"""B3: real tabular fairness data (Adult, COMPAS, CelebA attributes), seed by seed.

Protocol (../shared/PROTOCOLS.md, B3; exact settings in ``DATASETS`` below and benchmarks/README):

- ``adult``  (summary key ``b3_adult``): UCI Adult, label income > 50K, group sex, the official
  adult.data / adult.test split (32,561 / 16,281 rows, 106 features);
- ``compas`` (``b3_compas``): ProPublica COMPAS after the usual filter, African-American vs
  Caucasian (5,278 rows, 12 features), label two_year_recid, group race; a seeded 80/20 split
  stratified by (label, group) whose seed is the run's seed;
- ``celeba`` (``b3_celeba``): CelebA attributes, label Blond_Hair, group Male, the other 38
  attributes as ±1 features, the official partition (train 162,770, test 19,962 rows; the
  official validation rows are not used).

The sensitive attribute is never a feature. Every method is LINEAR: our methods train
``model.name: linear`` (one ``nn.Linear``, d → 2) and the fairlearn peers wrap scikit-learn's
``LogisticRegression``, on identical train/test rows and features.

    python benchmarks/b3_tabular.py --datasets adult compas celeba --seeds 0 1 2 --skip-done

Methods: our fixed losses ``ce``, ``ce_bal_group``, ``group_la``, ``ce_deo`` (the DEO surrogate
alone), the blends ``ce_deo@λ`` = (1 − λ)·CE + λ·CE_deo for λ ∈ {0.1, 0.5, 0.9} (any loss label
or blend ``REG@LAM`` is accepted) and ``group_dro`` (cells as groups), trained by
``autobalance.runs.run_train``; ``autobalance`` (``autobalance.runs.run_search``: 50/50
train/validation split, (class, group) loss space with l and Δ searched from the LA init,
validation objective 0.9·CE + 0.1·CE_deo (λ_val = 0.1), then a retrain on all the training rows
with α* frozen) and its variants ``autobalance+no_fallback`` (the guard never resets α* to the
init) and ``autobalance+lam0.9`` (validation objective 0.1·CE + 0.9·CE_deo); and the fairlearn
peers ``fairlearn_lr`` (plain logistic regression), ``fairlearn_eg_tpr`` / ``fairlearn_eg_eo``
(ExponentiatedGradient with TruePositiveRateParity / EqualizedOdds) and ``fairlearn_threshold``
(ThresholdOptimizer, equalized odds). Every method is scored by
``autobalance.metrics.evaluate_predictions`` with the training (class, group) proportions as the
weights of ``error``.

Every (dataset, method, seed) run is written to ``results/b3/<dataset>/<method>__s<seed>.json``
as soon as it ends (``--skip-done`` reuses them), and ``results/summary.json`` is updated from
the runs of the seeds asked for. ``--quick`` is a smoke run (2 epochs, ≤ 2,000 rows, one seed,
stored under ``results/b3/<dataset>_quick``, no summary). ``--tag T`` stores runs under
``results/b3/<dataset>_T`` and leaves the summary alone (the seed-100 tuning runs are in
``results/b3/tuning_seed100/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autobalance.config import apply_overrides, to_dict
from autobalance.data.dataset import InMemoryDataset
from autobalance.data.tabular import load_adult, load_celeba_attributes, load_compas
from autobalance.experiment import (
    ExperimentConfig,
    baseline_loss,
    experiment_from_data,
    loss_counts,
)
from autobalance.losses import is_loss_label
from autobalance.metrics import evaluate_predictions
from autobalance.runs import RunDir, run_search, run_train

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.b3_tabular
    from _common import (
        environment,
        format_table,
        make_parser,
        read_json,
        run_path,
        set_threads,
        update_summary,
        write_json_atomic,
    )
except ImportError:  # pragma: no cover
    from benchmarks._common import (
        environment,
        format_table,
        make_parser,
        read_json,
        run_path,
        set_threads,
        update_summary,
        write_json_atomic,
    )

HERE = Path(__file__).resolve().parent
# our fixed losses (any loss label or blend REG@LAM is accepted; these are the defaults)
OURS = (
    "ce",
    "ce_bal_group",
    "group_la",
    "ce_deo",
    "ce_deo@0.1",
    "ce_deo@0.5",
    "ce_deo@0.9",
    "group_dro",
)
SEARCH = "autobalance"
# autobalance+VARIANT: overrides of the search config
VARIANTS: dict[str, dict[str, Any]] = {
    # the searched α* kept even when the guard would reset it to the init (what the search found)
    "no_fallback": {"search.guard.fallback": False},
    # the other reading of the paper's Table 3: its caption and "a mild amount of CE" give the
    # validation loss 0.1·CE + 0.9·CE_deo, i.e. λ_val = 0.9 in (1 − λ_val)·CE + λ_val·CE_deo
    "lam0.9": {"search.objective_lam": 0.9},
}
FAIRLEARN = ("fairlearn_lr", "fairlearn_eg_tpr", "fairlearn_eg_eo", "fairlearn_threshold")
METHODS = (*OURS, SEARCH, *(f"{SEARCH}+{v}" for v in VARIANTS), *FAIRLEARN)
METRICS = (
    "error",
    "empirical_error",
    "balanced_error",
    "group_balanced_error",
    "worst_group_error",
    "deo",
)
SUMMARY_METRICS = (
    "balanced_error",
    "error",
    "group_balanced_error",
    "worst_group_error",
    "deo",
    "seconds",
)
PARETO_X = {"deo": "DEO (%)", "balanced_error": "balanced error (%)"}
OUR_MODEL = "linear: one nn.Linear d→2 (model.name: linear), SGD"
LR_MODEL = "sklearn LogisticRegression(C=1.0, lbfgs, max_iter=1000)"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One B3 dataset: its files under ``--data``, its θ schedule and its training fraction.

    The schedule (``train``) was picked on the tuning seed 100 (benchmarks/README, B3).
    ``train_fraction`` < 1 keeps that fraction of each (class, group) cell of the training rows,
    drawn with a fixed seed (0), the same rows for every method and seed.
    """

    key: str
    files: tuple[str, ...]
    train: dict[str, Any]
    train_fraction: float = 1.0


# θ schedules (SGD, momentum 0.9, 1 warm-up epoch, ×0.1 at 75 % and 90 %): picked on seed 100.
DATASETS: dict[str, Dataset] = {
    "adult": Dataset(
        "b3_adult",
        ("adult/adult.data", "adult/adult.test"),
        {"epochs": 10, "batch_size": 128, "lr": 0.2, "weight_decay": 1e-4},
    ),
    "compas": Dataset(
        "b3_compas",
        ("compas/compas-scores-two-years.csv",),
        {"epochs": 10, "batch_size": 64, "lr": 0.05, "weight_decay": 1e-4},
    ),
    "celeba": Dataset(
        "b3_celeba",
        (
            "celeba/list_attr_celeba.txt.gz|celeba/list_attr_celeba.txt",
            "celeba/list_eval_partition.txt",
        ),
        {"epochs": 10, "batch_size": 512, "lr": 0.2, "weight_decay": 1e-4},
    ),
}
QUICK_ROWS = 2000


def known_method(method: str) -> bool:
    if method in FAIRLEARN or method == SEARCH:
        return True
    if method.startswith(SEARCH + "+"):
        return method.partition("+")[2] in VARIANTS
    return is_loss_label(method)


def default_data() -> Path:
    return Path(os.environ.get("AUTOBALANCE_DATA", HERE.parents[1] / "shared" / "data"))


def check_files(root: Path, spec: Dataset, name: str) -> None:
    """Exit with one message naming the first missing file (``a|b``: either one)."""
    for f in spec.files:
        options = f.split("|")
        if not any((root / o).is_file() for o in options):
            raise SystemExit(
                f"B3 {name}: missing {root / options[-1]}"
                + (f" (or {root / options[0]})" if len(options) > 1 else "")
                + "; point --data at the folder that holds adult/, compas/ and celeba/"
            )


def cell_subsample(data: InMemoryDataset, fraction: float, seed: int) -> InMemoryDataset:
    """``round(fraction · n_c)`` rows of every (class, group) cell c, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    y, g = data.y.numpy(), data.groups.numpy()
    keep = []
    for cell in np.unique(y * data.num_groups + g):
        rows = np.flatnonzero(y * data.num_groups + g == cell)
        keep.append(rng.permutation(rows)[: max(1, round(fraction * len(rows)))])
    return data.subset(torch.from_numpy(np.sort(np.concatenate(keep))))


def load(name: str, root: Path, seed: int, quick: bool) -> tuple[InMemoryDataset, InMemoryDataset]:
    """(train, test) of one dataset; COMPAS's split is drawn with ``seed``."""
    spec = DATASETS[name]
    if name == "adult":
        train, test = load_adult(root / "adult")
    elif name == "compas":
        train, test = load_compas(root / "compas", seed=seed)
    else:
        train, _, test = load_celeba_attributes(root / "celeba")
    if spec.train_fraction < 1:
        train = cell_subsample(train, spec.train_fraction, 0)
    if quick:
        train = cell_subsample(train, min(1.0, QUICK_ROWS / len(train)), 0)
        test = cell_subsample(test, min(1.0, QUICK_ROWS / len(test)), 0)
    return train, test


def experiment_config(
    name: str, root: Path, seed: int, train_settings: dict[str, Any], sets: list[str]
) -> ExperimentConfig:
    """Our methods' config: linear model, the dataset's θ schedule, the B3 search settings."""
    epochs = int(train_settings["epochs"])
    data = {
        "name": f"b3-{name}",
        "description": f"B3 {name}: linear model, (class, group) loss, 0.9·CE + 0.1·CE_deo",
        "dataset": {"name": name, "data_dir": str(root)},
        "model": {"name": "linear"},
        "baselines": list(OURS),
        # Group DRO's groups are Sagawa et al.'s (label, attribute) pairs: our (class, group)
        # cells, with the default step 0.01 (as in the group presets)
        "loss_options": {"group_dro": {"by": "cell"}},
        "search": {
            "seed": seed,
            "device": "cpu",
            "val_fraction": 0.5,
            "objective": "ce_deo",
            "objective_lam": 0.1,
            "space": {
                "kind": "full",
                "search": ["additive", "multiplicative"],
                "init": "la",
            },
            "hyper": {"interval": 10},
            "train": {
                "warmup_epochs": 1,
                "milestones": [0.75, 0.9],
                "eval_every": epochs,
                **train_settings,
            },
        },
    }
    return ExperimentConfig.from_dict(apply_overrides(data, list(sets)))


def test_metrics(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: m[k] for k in METRICS}
    out["cell_errors"] = m["cell_errors"]
    return out


def searched_alpha(run: RunDir, k: int, g: int) -> dict[str, list[list[float]]] | None:
    """(l, Δ) at the end of the last search epoch, before any fallback of the guard."""
    rows = [r for r in run.trajectory() if r["phase"] == "search"]
    if not rows:
        return None
    last = max(r["epoch"] for r in rows)
    out = {
        "additive": [[0.0] * g for _ in range(k)],
        "multiplicative": [[0.0] * g for _ in range(k)],
    }
    for r in rows:
        if r["epoch"] == last:
            out["additive"][r["class"]][r["group"]] = r["l"]
            out["multiplicative"][r["class"]][r["group"]] = r["delta"]
    return out


def run_ours(
    method: str,
    cfg: ExperimentConfig,
    train: InMemoryDataset,
    test: InMemoryDataset,
    workdir: Path,
) -> dict[str, Any]:
    """One of our methods through the library (``run_train`` / ``run_search``)."""
    exp = experiment_from_data(cfg, train, test)
    slug = method.replace("@", "_at_").replace("+", "_plus_")
    run = RunDir.create(workdir / slug, overwrite=True)
    run.write_config(cfg)
    t0 = time.perf_counter()
    if method.startswith(SEARCH):
        summary = run_search(cfg, exp, run)
        extra = {
            "alpha": summary["alpha"],
            "alpha_searched": searched_alpha(run, train.num_classes, train.num_groups),
            "guard": summary["guard"],
            "hyper_steps": summary["hyper_steps"],
            "timings": summary["timings"],
            "search_config": to_dict(cfg.search),
        }
    else:
        summary = run_train(cfg, exp, run, baseline_loss(cfg, exp.train, method), method)
        extra = {}
    seconds = time.perf_counter() - t0
    losses = [r["train_loss"] for r in run.metrics() if "train_loss" in r]
    return {
        **test_metrics(summary["test"]),
        "seconds": seconds,
        "final_train_loss": losses[-1] if losses else None,
        "model": OUR_MODEL,
        "train_settings": dataclasses.asdict(cfg.search.train),
        **extra,
    }


def run_fairlearn(
    method: str, seed: int, train: InMemoryDataset, test: InMemoryDataset
) -> dict[str, Any]:
    """A fairlearn peer on the same rows and features; sensitive feature = the group."""
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import EqualizedOdds, ExponentiatedGradient, TruePositiveRateParity
    from sklearn.linear_model import LogisticRegression

    # float64: with float32 features ThresholdOptimizer.predict fails under pandas ≥ 2 (it sets
    # float64 interpolated probabilities into a float32 Series: "Invalid value ... for dtype
    # 'float32'"). The values are the same features, widened.
    x, y, a = train.x.numpy().astype(np.float64), train.y.numpy(), train.groups.numpy()
    xt, at = test.x.numpy().astype(np.float64), test.groups.numpy()

    def lr() -> LogisticRegression:
        return LogisticRegression(C=1.0, max_iter=1000)

    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if method == "fairlearn_lr":
        est = lr().fit(x, y)
        pred = est.predict(xt)
        extra["n_iter"] = int(est.n_iter_[0])
    elif method in ("fairlearn_eg_tpr", "fairlearn_eg_eo"):
        constraint = TruePositiveRateParity() if method == "fairlearn_eg_tpr" else EqualizedOdds()
        eg = ExponentiatedGradient(lr(), constraint)
        eg.fit(x, y, sensitive_features=a)
        pred = eg.predict(xt, random_state=seed)
        extra["n_predictors"] = len(eg.predictors_)
        extra["n_oracle_calls"] = int(eg.n_oracle_calls_)
    elif method == "fairlearn_threshold":
        to = ThresholdOptimizer(
            estimator=lr(),
            constraints="equalized_odds",
            predict_method="predict_proba",
            prefit=False,
        )
        to.fit(x, y, sensitive_features=a)
        pred = to.predict(xt, sensitive_features=at, random_state=seed)
    else:
        raise SystemExit(f"unknown method '{method}', expected one of {METHODS}")
    seconds = time.perf_counter() - t0
    m = evaluate_predictions(
        test.y.numpy(),
        np.asarray(pred).astype(np.int64),
        at,
        num_classes=test.num_classes,
        num_groups=test.num_groups,
        cell_weights=loss_counts(train)["group_counts"].numpy(),
    )
    return {**test_metrics(m), "seconds": seconds, "model": LR_MODEL, **extra}


def mean_std(values: list[float]) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def table(rows: list[dict[str, Any]], methods: list[str]) -> str:
    """Markdown table: mean ± std over seeds of each metric (in %), mean seconds per run."""
    cols = ("error", "balanced_error", "group_balanced_error", "worst_group_error", "deo")
    headers = ["method", "error", "bal. error", "group-bal. error", "worst group", "DEO", "s/run"]
    body = []
    for method in methods:
        rs = [r for r in rows if r["method"] == method]
        if rs:
            cells = [mean_std([r[k] for r in rs]) for k in cols]
            body.append(
                [f"`{method}`", *cells, f"{statistics.fmean(r['seconds'] for r in rs):.1f}"]
            )
    return format_table(headers, body)


def pareto_plot(rows: list[dict[str, Any]], methods: list[str], title: str, path: Path) -> None:
    """Error against DEO and against balanced error (mean ± std over seeds), one point a method.

    Points whose error is above 1.6 × the median error are left off the axes and named in the
    title (a degenerate loss such as CE_deo alone would otherwise squash the plot).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return

    def stats(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    points = {}
    for method in methods:
        rs = [r for r in rows if r["method"] == method]
        if rs:
            points[method] = {k: stats([100 * r[k] for r in rs]) for k in ("error", *PARETO_X)}
    if not points:
        return
    cap = 1.6 * statistics.median(p["error"][0] for p in points.values())
    off = {m: p for m, p in points.items() if p["error"][0] > cap}
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, xkey in zip(axes, PARETO_X):
        for method, p in points.items():
            if method in off:
                continue
            color = (
                "tab:red"
                if method.startswith(SEARCH)
                else "tab:blue"
                if method.startswith("fairlearn")
                else "tab:gray"
            )
            (x, xs), (y, ys) = p[xkey], p["error"]
            ax.errorbar(x, y, xerr=xs, yerr=ys, fmt="o", color=color, ms=4, capsize=2)
            ax.annotate(method, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(PARETO_X[xkey])
        ax.set_ylabel("error, weighted by training π (%)")
        ax.grid(alpha=0.3)
    note = "; ".join(f"{m} (error {p['error'][0]:.1f} %)" for m, p in off.items())
    fig.suptitle(
        f"{title}: mean ± std over seeds; red AutoBalance, blue fairlearn, grey fixed losses"
        + (f"\noff the axes: {note}" if note else ""),
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = make_parser("b3_tabular", __doc__ or "", repeats=1)
    p.formatter_class = argparse.RawTextHelpFormatter
    p.add_argument("--data", type=Path, default=default_data(), help="holds adult/ compas/ celeba/")
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--set", nargs="*", default=[], help="our methods' config overrides key=value")
    p.add_argument("--results", type=Path, default=HERE / "results", help="results folder")
    p.add_argument("--tag", default="", help="store runs under b3/<dataset>_<tag>; no summary")
    p.add_argument("--skip-done", action="store_true", help="reuse finished per-run files")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, few rows, 1 seed")
    for action in p._actions:  # make_parser's timing options do not apply here
        if action.dest in ("repeats", "out", "seed"):
            action.help = argparse.SUPPRESS
    args = p.parse_args(argv)

    unknown = [m for m in args.methods if not known_method(m)]
    if unknown:
        raise SystemExit(
            f"unknown method(s) {unknown}: expected a loss label or blend REG@LAM, "
            f"{SEARCH}, {SEARCH}+VARIANT (VARIANT in {sorted(VARIANTS)}) or one of {FAIRLEARN}"
        )
    threads = set_threads(args.threads)
    try:  # scikit-learn's BLAS: as many threads as torch, for a like-for-like time
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover
        pass
    for name in args.datasets:
        check_files(args.data, DATASETS[name], name)
    seeds = args.seeds[:1] if args.quick else args.seeds
    tag = "quick" if args.quick else args.tag
    sets = [
        *args.set,
        *(["search.train.epochs=2", "search.train.eval_every=2"] if args.quick else []),
    ]
    env = environment()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="b3_runs_") as tmp:
        for name in args.datasets:
            spec = DATASETS[name]
            folder = args.results / "b3" / (f"{name}_{tag}" if tag else name)
            rows: list[dict[str, Any]] = []
            for seed in seeds:
                data: tuple[InMemoryDataset, InMemoryDataset] | None = None
                for method in args.methods:
                    path = run_path(folder, method, seed)
                    if args.skip_done and path.is_file():
                        rows.append(read_json(path))
                        print(f"{name} seed {seed} {method:20s} (done)", flush=True)
                        continue
                    if data is None:
                        data = load(name, args.data, seed, args.quick)
                    train, test = data
                    if method in FAIRLEARN:
                        row = run_fairlearn(method, seed, train, test)
                    else:
                        variant = VARIANTS.get(method.partition("+")[2], {})
                        more = [f"{k}={v}" for k, v in variant.items()]
                        cfg = experiment_config(name, args.data, seed, spec.train, [*more, *sets])
                        row = run_ours(method, cfg, train, test, Path(tmp) / name / f"s{seed}")
                    row.update(
                        protocol=spec.key,
                        dataset=name,
                        method=method,
                        seed=seed,
                        n_train=len(train),
                        n_test=len(test),
                        n_features=int(train.x.shape[1]),
                        train_fraction=spec.train_fraction,
                        train_cell_counts=loss_counts(train)["group_counts"].tolist(),
                        test_cell_counts=loss_counts(test)["group_counts"].tolist(),
                        class_names=list(train.class_names or []),
                        group_names=list(train.group_names or []),
                        overrides=sets,
                        quick=args.quick,
                        env=env,
                    )
                    write_json_atomic(path, row)
                    rows.append(row)
                    print(
                        f"{name} seed {seed} {method:20s} err {row['error']:.4f}  "
                        f"deo {row['deo']:.4f}  worst {row['worst_group_error']:.4f}  "
                        f"{row['seconds']:6.1f}s",
                        flush=True,
                    )
            if not tag:
                update_summary(
                    spec.key, rows, args.results / "summary.json", metrics=SUMMARY_METRICS
                )
            n = rows[0]["n_train"] if rows else 0
            print(f"\n{spec.key} (linear, n_train={n}, seeds {seeds}; errors in %)")
            text = table(rows, args.methods)
            pareto_plot(rows, args.methods, f"{spec.key}, seeds {seeds}", folder / "pareto.png")
            print(text + "\n", flush=True)
            out[name] = {"rows": rows, "table": text}
    return out


if __name__ == "__main__":
    main()
