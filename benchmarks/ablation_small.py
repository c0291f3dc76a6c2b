"""Ablation of the search's levers on small problems (issue 8), seed by seed, against LA.

Problems: long-tailed Gaussians (K=10, ρ=100, n_max=300, d=32) and scikit-learn's digits made
long-tailed (ρ=50); an MLP (64 hidden), 30 epochs, batch 32, a hyper-step every 2 θ-steps. For
each seed, LA (τ=1) is trained once and every variant searches from the same split and initial
weights; the row is the test balanced error and its difference to LA.

    python benchmarks/ablation_small.py --seeds 0 1 2 3 \\
        --variants default la_tau average soft_error no_reference hot hot_old

Variants (``VARIANTS``): the library default; one lever changed each; ``hot`` is the default
with α lr 0.5 (10×), ``hot_old`` the pre-issue-8 upper level (constant α lr, no weight decay,
Neumann step estimated once, no guard) at α lr 0.5: the collapse case. Writes
``results/ablation_small.json`` and updates ``results/summary.json`` under ``small_gaussians``
and ``small_digits`` (methods ``la``, ``autobalance`` and ``autobalance+VARIANT``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from autobalance import SearchConfig, evaluate, fit, make_loss, make_model, search
from autobalance.data import InMemoryDataset, load_digits_lt, long_tailed_gaussians
from autobalance.train import TrainConfig

try:
    from _common import (
        GUARD_SCORES,
        RESULTS_DIR,
        environment,
        train_acc_at_hyper_start,
        update_summary,
        write_json_atomic,
    )
except ImportError:  # pragma: no cover
    from benchmarks._common import (
        GUARD_SCORES,
        RESULTS_DIR,
        environment,
        train_acc_at_hyper_start,
        update_summary,
        write_json_atomic,
    )

TRAIN = TrainConfig(epochs=30, batch_size=32, lr=0.05, warmup_epochs=1, weight_decay=5e-4)
OLD = {
    "alpha.schedule": "constant",
    "alpha.weight_decay": 0.0,
    "hyper.rescale": "once",
    "hyper.val_sampling": "balanced",
    "guard.enabled": False,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "la_tau": {"space.kind": "la_tau"},
    "average": {"alpha.average": 0.5},
    "soft_error": {"objective": "balanced_soft_error"},
    "no_reference": {"guard.reference": False},
    "no_guard": {"guard.enabled": False},
    "old_default": OLD,
    "hot": {"alpha.lr": 0.5},
    "hot_old": {**OLD, "alpha.lr": 0.5},
    # the pre-issue-8 upper level with today's guard (reference θ, from-scratch check): the
    # variant that won B1-fit's fresh seeds (benchmarks/README.md)
    "old_upper_guarded": {k: v for k, v in OLD.items() if k != "guard.enabled"},
    # the guard keeps α* only when it beats the LA reference on S_V by 2 pt (both checks)
    "demand_gain": {"guard.fallback_margin": -0.02},
}
# the same two upper levels with the fallback off: α* is always kept, and the guard's S_V
# scores are still measured, so a keep/fall-back rule can be studied offline against LA
VARIANTS["keep"] = {"guard.fallback": False}
VARIANTS["old_upper_keep"] = {**VARIANTS["old_upper_guarded"], "guard.fallback": False}
# fewer searched parameters (3 clusters of classes by frequency, D_π of §2.2) or a stronger pull
# of α′ towards its init (weight decay): two ways to overfit a small S_V less; fallback off
VARIANTS["keep_clusters3"] = {"space.num_clusters": 3, "guard.fallback": False}
VARIANTS["keep_wd_0.01"] = {"alpha.weight_decay": 0.01, "guard.fallback": False}
VARIANTS["keep_wd_0.1"] = {"alpha.weight_decay": 0.1, "guard.fallback": False}
VARIANTS["keep_wd_0.3"] = {"alpha.weight_decay": 0.3, "guard.fallback": False}
VARIANTS["keep_wd_1"] = {"alpha.weight_decay": 1.0, "guard.fallback": False}
# today's default with α averaged over the last half of the search, fallback off (the candidate
# of results/prereg/2026-11-28_alpha_average.txt)
VARIANTS["keep_average"] = {"alpha.average": 0.5, "guard.fallback": False}
Problem = Callable[[int], tuple[InMemoryDataset, InMemoryDataset]]


def _gaussians(seed: int) -> tuple[InMemoryDataset, InMemoryDataset]:
    kw = {"num_classes": 10, "imbalance_ratio": 100, "n_max": 300, "seed": seed}
    return long_tailed_gaussians(**kw), long_tailed_gaussians(split="test", **kw)


PROBLEMS: dict[str, Problem] = {
    "small_gaussians": _gaussians,
    "small_digits": lambda seed: load_digits_lt(seed=seed),
}


def configure(seed: int, variant: str) -> SearchConfig:
    cfg = SearchConfig(seed=seed, train=TRAIN)
    cfg.hyper.interval = 2
    for key, value in VARIANTS[variant].items():
        obj, _, attr = key.rpartition(".")
        setattr(getattr(cfg, obj) if obj else cfg, attr, value)
    return cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--out", default=str(RESULTS_DIR / "ablation_small.json"))
    p.add_argument("--no-summary", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    for problem, make in PROBLEMS.items():
        for seed in args.seeds:
            train, test = make(seed)

            def model_fn(k: int = train.num_classes, d: int = train.x.shape[1]) -> torch.nn.Module:
                return make_model("mlp", k, in_features=d, hidden=(64,))

            torch.manual_seed(seed)
            model = model_fn()
            t0 = time.perf_counter()
            fit(model, make_loss("la", class_counts=train.class_counts()), train, TRAIN, seed=seed)
            la = evaluate(model, test)["balanced_error"]
            rows.append(
                {"problem": problem, "method": "la", "seed": seed, "balanced_error": la}
                | {"seconds": time.perf_counter() - t0}
            )
            for variant in args.variants:
                t0 = time.perf_counter()
                cfg = configure(seed, variant)
                res = search(cfg, model_fn, train)
                err = evaluate(res.model, test)["balanced_error"]
                method = "autobalance" if variant == "default" else f"autobalance+{variant}"
                rows.append(
                    {
                        "problem": problem,
                        "method": method,
                        "seed": seed,
                        "balanced_error": err,
                        "minus_la": err - la,
                        "seconds": time.perf_counter() - t0,
                        "fell_back": res.guard.get("fell_back"),
                        "rollbacks": res.guard.get("rollbacks"),
                        "max_hypergrad_norm": res.guard.get("max_hypergrad_norm"),
                        "train_acc_at_hyper_start": train_acc_at_hyper_start(cfg, res),
                    }
                    | {key: res.guard.get(key) for key in GUARD_SCORES}
                )
                print(
                    f"{problem:16s} seed {seed} {method:28s} {err:.3f} (LA {la:.3f}, "
                    f"{err - la:+.3f}) fell back {res.guard.get('fell_back')}",
                    flush=True,
                )
    write_json_atomic(args.out, {"environment": environment(), "rows": rows})
    if not args.no_summary:
        for problem in PROBLEMS:
            update_summary(problem, [r for r in rows if r["problem"] == problem])
    print("\nmethod                        AutoBalance − LA: mean, max (all problems and seeds)")
    for variant in args.variants:
        method = "autobalance" if variant == "default" else f"autobalance+{variant}"
        d = [r["minus_la"] for r in rows if r["method"] == method]
        print(f"{method:28s} {statistics.mean(d):+.4f}  {max(d):+.4f}")
    return {"rows": rows}


if __name__ == "__main__":
    main()
