"""B6 — bilevel AutoBalance against black-box HPO (Optuna TPE, SMAC3, random) at equal wall time.

Dataset: the ``digits-demo`` preset (scikit-learn digits made long-tailed, ρ = 50, via
``data.load_digits_lt``; the subsample is redrawn per seed, as in ``autobalance demo``), its MLP
and its AutoBalance settings (Li et al. 2021, arXiv 2201.01212, Algorithm 1).

Search space, shared by every method: the preset's clustered (l, Δ) space. α′ = (l′, d′), one
offset per frequency cluster on top of the LA init,

    l = l₀ + D_π l′,    Δ = s·σ(logit(Δ₀/s) + D_π d′)

(``SearchSpace``, built from the S_T counts exactly as the search builds it), each raw offset in
the preset's box [−b, b] (b = 5 unless ``--box``).

Per seed:
1. AutoBalance runs once (split S → S_T/S_V, warm-up, search with hyper-steps, retrain on S).
   T = wall time of its **search phase** (construction + warm-up + search epochs + hyper-steps,
   up to the start of the retrain phase). The run is repeated ``--ab-repeats`` times (it is
   deterministic: the same α* and model each time) and T is the median, to damp machine noise.
2. Each black-box method gets max(f)·T of wall time (``--budget-factor``). One trial = set α′,
   train a fresh model (same initial θ, same data order, same epochs as the search phase) on S_T
   with the frozen loss, score the balanced error on S_V. The proposer's own time (ask/tell)
   counts against the budget. Every method's first trial is the init α′ = 0. A trial that ends
   after the budget is discarded.
3. For each factor f, the incumbent (lowest S_V balanced error among the trials finished within
   f·T; ties to the earliest) is retrained on all of S with α′ frozen — the same retrain as
   AutoBalance's phase 4, checked to reproduce its model — and scored on the test set.

Samplers do not depend on the budget (TPE, random; SMAC's initial-design size is set from the
largest budget), so the prefix of one run at max(f)·T is what a run stopped at f·T would give.

Run: ``python benchmarks/b6_blackbox.py [--seeds 0 1 2] [--budget-factor 1 10 50] [--out PATH]``.

Each run also merges one row per (method, seed) into ``results/summary.json`` (``--summary``;
``--no-summary`` for trial runs), under ``b6`` for the preset's box and ``b6_box{b}`` for another
``--box``. ``--summary-only [JSON ...]`` rebuilds those rows from results files already written
(default: ``--out``) without running anything. Methods: ``autobalance``, ``la_init`` (α′ = 0, no
search), ``optuna_tpe``, ``optuna_random``, ``smac_hpo`` at f = 1 (equal wall time) and
``<name>_{f}x`` at the other factors. Per seed: ``balanced_error`` (test, after the retrain on S),
``val_balanced_error`` (S_V, α scored as a trial), ``seconds`` (search wall time: T, or the
budget f·T; the retrain every method shares is left out), ``trials``, ``budget_factor``.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from _common import (
    RESULTS_DIR,
    environment,
    format_table,
    make_parser,
    read_json,
    set_threads,
    update_summary,
    write_json,
)
from torch import Tensor, nn

from autobalance.config import SearchConfig
from autobalance.data.dataset import InMemoryDataset
from autobalance.events import Callback
from autobalance.experiment import Experiment, build_experiment
from autobalance.presets import load_config
from autobalance.search import AutoBalanceSearch, split_dataset
from autobalance.search_space import SearchSpace
from autobalance.train import evaluate, make_optimizer, make_scheduler, predict, run_epochs

PRESET = "digits-demo"
METHODS = ("tpe", "random", "smac")
LABELS = {
    "autobalance": "AutoBalance (bilevel)",
    "tpe": "Optuna TPE",
    "random": "Optuna random",
    "smac": "SMAC3 (HPO facade, RF)",
    "init": "init α′=0 (LA), no search",
}
# summary.json method names: each peer prefixed with its library
SUMMARY_NAMES = {"tpe": "optuna_tpe", "random": "optuna_random", "smac": "smac_hpo"}
SUMMARY_METRICS = ("balanced_error", "val_balanced_error", "seconds", "trials", "budget_factor")
# Phase ids of the engine's loader/augmentation seeds (autobalance.search._PHASE_ID).
SEARCH_PHASE, RETRAIN_PHASE = 1, 2


# ---------------------------------------------------------------------------- the problem
@dataclass
class Problem:
    """One seed's data, model factory, settings and the shared search space."""

    cfg: SearchConfig
    exp: Experiment
    s_train: InMemoryDataset
    s_val: InMemoryDataset
    space: SearchSpace
    box: float

    @property
    def names(self) -> list[str]:
        """Black-box parameter names: ``l{j}`` (additive) and ``d{j}`` (multiplicative)."""
        prefix = {"additive": "l", "multiplicative": "d", "weight": "w"}
        return [f"{prefix[c]}{j}" for c in self.space.raw for j in range(self.space.num_clusters)]

    def set_alpha(self, params: dict[str, float]) -> None:
        """Write α′ (by name) into the space's raw offsets."""
        prefix = {"additive": "l", "multiplicative": "d", "weight": "w"}
        with torch.no_grad():
            for comp, p in self.space.raw.items():
                vals = [params[f"{prefix[comp]}{j}"] for j in range(self.space.num_clusters)]
                p.copy_(torch.tensor(vals, dtype=p.dtype))

    def alpha_of(self, space: SearchSpace) -> dict[str, float]:
        """α′ of another space (AutoBalance's α*) by name."""
        prefix = {"additive": "l", "multiplicative": "d", "weight": "w"}
        return {
            f"{prefix[c]}{j}": float(v)
            for c, p in space.raw.items()
            for j, v in enumerate(p.detach().cpu().tolist())
        }

    def train(self, params: dict[str, float], *, retrain: bool) -> nn.Module:
        """θ trained with α′ frozen: on S_T with the search schedule (a trial), or on all of S
        with the retrain schedule (Algorithm 1, phase 4); θ₀ from ``torch.manual_seed(seed)``."""
        self.set_alpha(params)
        tcfg = self.cfg.retrain_config() if retrain else self.cfg.train
        data = self.exp.train if retrain else self.s_train
        torch.manual_seed(self.cfg.seed)
        model = self.exp.model_fn()
        opt = make_optimizer(model, tcfg)
        steps = math.ceil(len(data) / tcfg.batch_size)
        if tcfg.drop_last:
            steps = len(data) // tcfg.batch_size
        sched = make_scheduler(opt, tcfg, steps)
        space = self.space

        def loss_fn(logits: Tensor, y: Tensor, g: Tensor | None) -> Tensor:
            return space.loss(logits, y, g, detach=True)

        run_epochs(
            "retrain" if retrain else "trial",
            model,
            loss_fn,
            data,
            tcfg,
            optimizer=opt,
            scheduler=sched,
            seed=self.cfg.seed,
            transform=self.exp.transform,
            eval_transform=self.exp.eval_transform,
            phase_id=RETRAIN_PHASE if retrain else SEARCH_PHASE,
        )
        return model

    def val_error(self, params: dict[str, float]) -> float:
        """The black-box objective: S_V balanced error of a model trained on S_T."""
        model = self.train(params, retrain=False)
        return float(self._eval(model, self.s_val)["balanced_error"])

    def test_error(self, params: dict[str, float]) -> float:
        """Test balanced error after the retrain on all of S."""
        return float(self._eval(self.train(params, retrain=True), self.exp.test)["balanced_error"])

    def _eval(self, model: nn.Module, data: InMemoryDataset) -> dict[str, Any]:
        return evaluate(model, data, transform=self.exp.eval_transform)


def build_space(cfg: SearchConfig, s_train: InMemoryDataset) -> SearchSpace:
    """The search space as ``AutoBalanceSearch`` builds it (S_T counts, preset settings)."""
    return cfg.space.build(s_train.class_counts())


# ---------------------------------------------------------------------------- AutoBalance
class _Clock(Callback):
    """Records when the retrain phase starts (the end of the search phase)."""

    def __init__(self) -> None:
        self.retrain_start: float | None = None

    def on_phase_start(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "retrain":
            self.retrain_start = time.perf_counter()


def run_autobalance(cfg: SearchConfig, exp: Experiment) -> dict[str, Any]:
    """Algorithm 1 once; T = wall time up to the start of the retrain phase."""
    clock = _Clock()
    t0 = time.perf_counter()
    search = AutoBalanceSearch(cfg, exp.model_fn, exp.train, callbacks=[clock])
    result = search.run()
    t_end = time.perf_counter()
    assert clock.retrain_start is not None
    test = evaluate(result.model, exp.test, transform=exp.eval_transform)
    last_search = [h for h in result.history if h["phase"] in ("warmup", "search")][-1]
    return {
        "search": search,
        "result": result,
        "search_s": clock.retrain_start - t0,
        "retrain_s": t_end - clock.retrain_start,
        "hyper_s": result.timings["hyper"],
        "hyper_steps": sum(1 for h in result.hyper_steps if h.get("applied")),
        "test_balanced_error": float(test["balanced_error"]),
        "searched_theta_val_balanced_error": float(last_search["val/balanced_error"]),
        "pred": predict(result.model, exp.test.x, transform=exp.eval_transform),
    }


# ---------------------------------------------------------------------------- black-box drivers
class Driver:
    """ask() → α′ by name; tell(value)."""

    def ask(self) -> dict[str, float]:
        raise NotImplementedError

    def tell(self, value: float) -> None:
        raise NotImplementedError


class OptunaDriver(Driver):
    """Optuna ask/tell with the init α′ = 0 enqueued as the first trial."""

    def __init__(self, method: str, names: list[str], box: float, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if method == "tpe":
            sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(seed=seed)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.study.enqueue_trial(dict.fromkeys(names, 0.0))
        self.dists = {n: optuna.distributions.FloatDistribution(-box, box) for n in names}
        self.trial: Any = None

    def ask(self) -> dict[str, float]:
        self.trial = self.study.ask(self.dists)
        return dict(self.trial.params)

    def tell(self, value: float) -> None:
        self.study.tell(self.trial, value)


class SmacDriver(Driver):
    """SMAC3 ``HyperparameterOptimizationFacade`` (random-forest surrogate, EI, Sobol initial
    design of 25 % of ``n_trials``) via ask/tell, deterministic target, default α′ = 0 first."""

    def __init__(self, names: list[str], box: float, seed: int, n_trials: int) -> None:
        from ConfigSpace import ConfigurationSpace, Float
        from smac import HyperparameterOptimizationFacade, Scenario
        from smac.initial_design import SobolInitialDesign

        class DefaultFirst(SobolInitialDesign):
            def select_configurations(self) -> list[Any]:
                configs = super().select_configurations()
                default = self._configspace.get_default_configuration()
                return [default] + [c for c in configs if c != default]

        cs = ConfigurationSpace(seed=seed)
        cs.add([Float(n, (-box, box), default=0.0) for n in names])
        self._tmp = tempfile.TemporaryDirectory(prefix="b6_smac_")
        scenario = Scenario(
            cs,
            deterministic=True,
            n_trials=max(n_trials, 4),
            seed=seed,
            output_directory=Path(self._tmp.name),
        )
        design = DefaultFirst(scenario, additional_configs=[cs.get_default_configuration()])
        self.smac = HyperparameterOptimizationFacade(
            scenario,
            lambda config, seed=0: 0.0,
            initial_design=design,
            overwrite=True,
            logging_level=40,
        )
        self.info: Any = None

    def ask(self) -> dict[str, float]:
        self.info = self.smac.ask()
        return {k: float(v) for k, v in dict(self.info.config).items()}

    def tell(self, value: float) -> None:
        from smac.runhistory.dataclasses import TrialValue

        # the RF models log(cost): keep the cost positive
        self.smac.tell(self.info, TrialValue(cost=max(value, 1e-6)))

    def close(self) -> None:
        self._tmp.cleanup()


def make_driver(method: str, problem: Problem, seed: int, n_trials: int) -> Driver:
    """The proposer named ``method`` over ``problem``'s α′ box."""
    if method in ("tpe", "random"):
        return OptunaDriver(method, problem.names, problem.box, seed)
    if method == "smac":
        return SmacDriver(problem.names, problem.box, seed, n_trials)
    raise ValueError(f"Unknown method '{method}', expected one of {METHODS}")


def run_blackbox(
    driver: Driver, objective: Callable[[dict[str, float]], float], budget: float
) -> tuple[list[dict[str, Any]], float]:
    """Trials until the wall-time budget is spent; the proposer's time counts."""
    trials: list[dict[str, Any]] = []
    overhead = 0.0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < budget:
        ta = time.perf_counter()
        params = driver.ask()
        tb = time.perf_counter()
        value = objective(params)
        tc = time.perf_counter()
        driver.tell(value)
        td = time.perf_counter()
        overhead += (tb - ta) + (td - tc)
        trials.append(
            {"end_s": td - t0, "train_s": tc - tb, "val_balanced_error": value, "params": params}
        )
    return trials, overhead


def incumbent(trials: list[dict[str, Any]], limit: float) -> int | None:
    """Index of the lowest S_V error among trials finished within ``limit`` (ties: earliest)."""
    done = [i for i, t in enumerate(trials) if t["end_s"] <= limit]
    if not done:
        return None
    return min(done, key=lambda i: (trials[i]["val_balanced_error"], i))


# ---------------------------------------------------------------------------- the benchmark
def smac_available() -> str | None:
    """None if SMAC3 imports, else the error text."""
    try:
        import smac  # noqa: F401
        from ConfigSpace import ConfigurationSpace  # noqa: F401
    except Exception as exc:  # any import failure means "not run"
        return f"{type(exc).__name__}: {exc}"
    return None


def warm_up() -> None:
    """Absorb one-time costs (lazy torch init, first-call overheads) before any timing."""
    cfg = load_config(preset=PRESET, overrides=["search.seed=0", "search.train.epochs=3"])
    exp = build_experiment(cfg)
    AutoBalanceSearch(cfg.search, exp.model_fn, exp.train).run()


def versions() -> dict[str, str | None]:
    """Installed versions of the black-box packages (None when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("optuna", "smac", "ConfigSpace"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1)."""
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def run_seed(
    seed: int, factors: list[float], methods: list[str], box_arg: float | None, ab_repeats: int
) -> dict[str, Any]:
    """AutoBalance (``ab_repeats`` identical runs; T = their median search time), the init
    reference, then each black-box method for max(f)·T."""
    full_cfg = load_config(preset=PRESET, overrides=[f"search.seed={seed}"])
    cfg = full_cfg.search
    exp = build_experiment(full_cfg)
    runs = [run_autobalance(cfg, exp) for _ in range(ab_repeats)]
    ab = runs[0]
    for other in runs[1:]:  # the engine is deterministic: same α*, same model
        assert torch.equal(other["pred"], ab["pred"]), "AutoBalance runs disagree"
    T = statistics.median(r["search_s"] for r in runs)
    s_train, s_val = split_dataset(exp.train, cfg.val_fraction, cfg.seed)
    space = build_space(cfg, s_train)
    ab_space: SearchSpace = ab["search"].space
    for name in ("clusters", "base_additive", "base_delta_logit", "base_log_weight"):
        assert torch.equal(getattr(space, name), getattr(ab_space, name)), name
    box = cfg.space.bound_additive if box_arg is None else box_arg
    problem = Problem(cfg, exp, s_train, s_val, space, box)

    # α* as a black-box trial would score it, and the retrain check against the engine's model
    alpha_star = problem.alpha_of(ab_space)
    ab_val_trial = problem.val_error(alpha_star)
    model = problem.train(alpha_star, retrain=True)
    same = torch.equal(predict(model, exp.test.x, transform=exp.eval_transform), ab["pred"])
    zero = dict.fromkeys(problem.names, 0.0)
    t = time.perf_counter()
    init_val = problem.val_error(zero)
    trial_s = time.perf_counter() - t
    init_test = problem.test_error(zero)

    out: dict[str, Any] = {
        "seed": seed,
        "box": box,
        "train_counts": exp.train.class_counts().tolist(),
        "val_counts": s_val.class_counts().tolist(),
        "budget_T_s": T,
        "one_trial_s": trial_s,
        "autobalance": {
            "search_s": T,
            "search_s_per_run": [r["search_s"] for r in runs],
            "retrain_s": ab["retrain_s"],
            "hyper_s": ab["hyper_s"],
            "hyper_steps": ab["hyper_steps"],
            "test_balanced_error": ab["test_balanced_error"],
            "val_balanced_error_as_trial": ab_val_trial,
            "searched_theta_val_balanced_error": ab["searched_theta_val_balanced_error"],
            "alpha_raw": alpha_star,
            "benchmark_retrain_reproduces_engine": same,
        },
        "init": {"val_balanced_error": init_val, "test_balanced_error": init_test},
        "methods": {},
    }
    budget = max(factors) * T
    test_cache: dict[tuple[str, int], float] = {}
    for method in methods:
        driver = make_driver(method, problem, seed, n_trials=int(budget / trial_s))
        trials, overhead = run_blackbox(driver, problem.val_error, budget)
        if isinstance(driver, SmacDriver):
            driver.close()
        # the best-so-far curve: every incumbent change, retrained and tested (after the clock)
        curve = []
        best: int | None = None
        for i, tr in enumerate(trials):
            if tr["end_s"] > budget:
                break
            if best is None or tr["val_balanced_error"] < trials[best]["val_balanced_error"]:
                best = i
                key = (method, i)
                test_cache[key] = problem.test_error(tr["params"])
                curve.append(
                    {
                        "end_s": tr["end_s"],
                        "trial": i,
                        "val_balanced_error": tr["val_balanced_error"],
                        "test_balanced_error": test_cache[key],
                        "params": tr["params"],
                    }
                )
        per_factor = {}
        for f in factors:
            i = incumbent(trials, f * T)
            n_done = sum(1 for tr in trials if tr["end_s"] <= f * T)
            if i is None:  # no trial finished: the init is what the user has
                per_factor[str(f)] = {
                    "trials": 0,
                    "val_balanced_error": init_val,
                    "test_balanced_error": init_test,
                    "incumbent": None,
                }
                continue
            per_factor[str(f)] = {
                "trials": n_done,
                "val_balanced_error": trials[i]["val_balanced_error"],
                "test_balanced_error": test_cache[(method, i)],
                "incumbent": i,
            }
        out["methods"][method] = {
            "budget_s": budget,
            "trials_total": len(trials),
            "proposer_overhead_s": overhead,
            "train_s": sum(tr["train_s"] for tr in trials),
            "per_factor": per_factor,
            "curve": curve,
            # every trial without its α′ (the incumbents' α′ are in "curve")
            "trials": [{k: v for k, v in tr.items() if k != "params"} for tr in trials],
        }
    return out


def plot(
    path: Path, per_seed: list[dict[str, Any]], methods: list[str], factors: list[float]
) -> None:
    """Best-so-far S_V and test balanced error against wall time / T (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmax = max(factors)
    grid = [fmax * 10 ** (k / 40 - 2) for k in range(0, 81)]
    grid = [g for g in grid if 0.05 <= g <= fmax]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, key in zip(axes, ("val_balanced_error", "test_balanced_error"), strict=True):
        for method in methods:
            xs, ys = [], []
            for g in grid:
                vals = []
                for s in per_seed:
                    T = s["budget_T_s"]
                    pts = [c for c in s["methods"][method]["curve"] if c["end_s"] <= g * T]
                    vals.append(pts[-1][key] if pts else s["init"][key])
                xs.append(g)
                ys.append(statistics.fmean(vals))
            ax.step(xs, ys, where="post", label=LABELS[method])
        ab_key = "val_balanced_error_as_trial" if key.startswith("val") else key
        ab = statistics.fmean(s["autobalance"][ab_key] for s in per_seed)
        ax.scatter(
            [1.0], [ab], marker="*", s=160, color="black", zorder=5, label=LABELS["autobalance"]
        )
        init = statistics.fmean(s["init"][key] for s in per_seed)
        ax.axhline(init, color="gray", ls=":", lw=1, label=LABELS["init"])
        ax.axvline(1.0, color="black", lw=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("wall time / T (T = AutoBalance search phase)")
        ax.set_ylabel(("S_V" if key.startswith("val") else "test") + " balanced error")
        ax.set_title(
            "best-so-far incumbent, " + ("validation" if key.startswith("val") else "test")
        )
    axes[0].legend(fontsize=8)
    fig.suptitle(f"B6 on digits-LT (ρ=50), mean over seeds {[s['seed'] for s in per_seed]}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------- summary.json
def summary_protocol(payload: dict[str, Any]) -> str:
    """``b6`` for the preset's α′ box, ``b6_box{b}`` for another box (a different protocol)."""
    box = float(payload["config"]["box"])
    preset_box = float(load_config(preset=PRESET).search.space.bound_additive)
    return "b6" if box == preset_box else f"b6_box{box:g}"


def summary_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (method, seed) from a B6 results payload, for ``update_summary``.

    Peers at f = 1 (equal wall time) keep their plain name; other factors get ``_{f}x``.
    ``seconds`` is the search wall time (AutoBalance: T; black box: the budget f·T; init: 0),
    without the retrain on S that every method shares.
    """
    factors = [float(f) for f in payload["config"]["budget_factors"]]
    rows: list[dict[str, Any]] = []
    for s in payload["per_seed"]:
        seed, T = s["seed"], s["budget_T_s"]
        ab = s["autobalance"]
        rows.append(
            {
                "method": "autobalance",
                "seed": seed,
                "balanced_error": ab["test_balanced_error"],
                "val_balanced_error": ab["val_balanced_error_as_trial"],
                "seconds": ab["search_s"],
                "trials": None,
                "budget_factor": 1.0,
            }
        )
        rows.append(
            {
                "method": "la_init",
                "seed": seed,
                "balanced_error": s["init"]["test_balanced_error"],
                "val_balanced_error": s["init"]["val_balanced_error"],
                "seconds": 0.0,
                "trials": None,
                "budget_factor": 0.0,
            }
        )
        for m, rec in s["methods"].items():
            for f in factors:
                pf = rec["per_factor"][str(f)]
                name = SUMMARY_NAMES[m] + ("" if f == 1.0 else f"_{f:g}x")
                rows.append(
                    {
                        "method": name,
                        "seed": seed,
                        "balanced_error": pf["test_balanced_error"],
                        "val_balanced_error": pf["val_balanced_error"],
                        "seconds": f * T,
                        "trials": pf["trials"],
                        "budget_factor": f,
                    }
                )
    return rows


def write_summary(payload: dict[str, Any], path: Path) -> str:
    """Merge ``payload``'s rows into the summary file at ``path``; return the protocol key."""
    protocol = summary_protocol(payload)
    update_summary(protocol, summary_rows(payload), path, SUMMARY_METRICS)
    return protocol


def main() -> None:
    parser = make_parser("b6_blackbox", __doc__.splitlines()[0], repeats=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--budget-factor",
        "--budget-factors",
        dest="factors",
        type=float,
        nargs="+",
        default=[1.0, 10.0, 50.0],
        help="black-box wall time as multiples of T; the run lasts max(f)·T per method",
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--box", type=float, default=None, help="raw α′ box [−b, b] (default: the preset's bound)"
    )
    parser.add_argument(
        "--ab-repeats",
        type=int,
        default=3,
        help="AutoBalance runs per seed (deterministic); T = median search-phase time",
    )
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--summary",
        type=Path,
        default=RESULTS_DIR / "summary.json",
        help="summary file that gets one row per (method, seed)",
    )
    parser.add_argument("--no-summary", action="store_true", help="leave the summary file alone")
    parser.add_argument(
        "--summary-only",
        type=Path,
        nargs="*",
        default=None,
        metavar="JSON",
        help="run nothing: merge these results files (default: --out) into the summary file",
    )
    args = parser.parse_args()
    if args.summary_only is not None:
        for src in args.summary_only or [args.out]:
            protocol = write_summary(read_json(src), args.summary)
            print(f"{src} → {args.summary} [{protocol}]")
        return
    if args.ab_repeats < 1:
        raise ValueError(f"--ab-repeats must be ≥ 1, got {args.ab_repeats}")
    if any(f <= 0 for f in args.factors):
        raise ValueError(f"budget factors must be > 0, got {args.factors}")
    factors = sorted(set(args.factors))
    threads = set_threads(args.threads)
    methods = list(dict.fromkeys(args.methods))
    smac_error = smac_available() if "smac" in methods else None
    if smac_error is not None:
        print(f"SMAC3 not run: {smac_error}")
        methods.remove("smac")

    warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
    t_start = time.perf_counter()
    warm_up()
    per_seed = []
    for seed in args.seeds:
        t = time.perf_counter()
        per_seed.append(run_seed(seed, factors, methods, args.box, args.ab_repeats))
        s = per_seed[-1]
        print(
            f"seed {seed}: T = {s['budget_T_s']:.2f} s, one trial ≈ {s['one_trial_s']:.2f} s, "
            f"AutoBalance test {s['autobalance']['test_balanced_error']:.3f}, "
            f"trials {[s['methods'][m]['trials_total'] for m in methods]} "
            f"({time.perf_counter() - t:.0f} s)",
            flush=True,
        )

    def collect(getter: Callable[[dict[str, Any]], float]) -> tuple[float, float, list[float]]:
        xs = [getter(s) for s in per_seed]
        return (*mean_std(xs), xs)

    summary: dict[str, Any] = {}
    rows: list[list[object]] = []

    def add(name: str, f: str, val_get, test_get, trials: list[int] | None) -> None:
        vm, vs, vx = collect(val_get)
        tm, ts, tx = collect(test_get)
        summary.setdefault(name, {})[f] = {
            "test_mean": tm,
            "test_std": ts,
            "test_per_seed": tx,
            "val_mean": vm,
            "val_std": vs,
            "val_per_seed": vx,
            "trials_per_seed": trials,
        }
        rows.append(
            [
                LABELS[name],
                f,
                f"{tm:.3f} ± {ts:.3f}",
                f"{vm:.3f} ± {vs:.3f}",
                "—" if trials is None else "/".join(str(n) for n in trials),
            ]
        )

    add(
        "init",
        "0",
        lambda s: s["init"]["val_balanced_error"],
        lambda s: s["init"]["test_balanced_error"],
        None,
    )
    add(
        "autobalance",
        "1 (T)",
        lambda s: s["autobalance"]["val_balanced_error_as_trial"],
        lambda s: s["autobalance"]["test_balanced_error"],
        None,
    )
    for f in factors:
        for m in methods:
            k = str(f)
            add(
                m,
                f"{f:g}",
                lambda s, m=m, k=k: s["methods"][m]["per_factor"][k]["val_balanced_error"],
                lambda s, m=m, k=k: s["methods"][m]["per_factor"][k]["test_balanced_error"],
                [s["methods"][m]["per_factor"][k]["trials"] for s in per_seed],
            )

    out = Path(args.out)
    png = out.with_suffix(".png")
    if not args.no_plot:
        plot(png, per_seed, methods, factors)
    payload = {
        "protocol": "B6",
        "description": (
            "AutoBalance (bilevel, one run) vs black-box HPO on the same clustered (l, Δ) space "
            "at equal wall time; objective = S_V balanced error of one short training per trial; "
            "incumbent retrained on S and tested like AutoBalance's retrain phase"
        ),
        "dataset": "digits-LT: sklearn digits made long-tailed (rho=50), preset digits-demo",
        "budget_definition": (
            "T = AutoBalance search-phase wall time (construction, warm-up, search epochs with "
            "hyper-steps; retrain excluded). Black-box trials run for f*T each, proposer time "
            "included; all methods then get the same retrain on S."
        ),
        "config": {
            "preset": PRESET,
            "seeds": args.seeds,
            "budget_factors": factors,
            "methods": methods,
            "box": per_seed[0]["box"],
            "threads": threads,
            "ab_repeats": args.ab_repeats,
            "smac_error": smac_error,
            "versions": versions(),
            "std": "sample std over seeds (n-1)",
            "notes": [
                "Optuna's TPE samples its first 10 trials with RandomSampler(seed): with the same "
                "seed its first trials equal the random sampler's.",
                "SMAC3: HyperparameterOptimizationFacade (RF surrogate, log cost, EI, local + "
                "random search), Sobol initial design of 25% of n_trials = max budget / one "
                "trial's time, the default alpha'=0 evaluated first, ask/tell.",
                "Every method's first trial is alpha'=0 (the init AutoBalance starts from).",
            ],
        },
        "environment": environment(),
        "summary": summary,
        "per_seed": per_seed,
        "runtime_s": time.perf_counter() - t_start,
    }
    path = write_json(out, payload)
    if not args.no_summary:
        protocol = write_summary(payload, args.summary)
        print(f"summary rows → {args.summary} [{protocol}]")
    headers = ["method", "wall time / T", "test bal. err", "S_V bal. err", "trials (per seed)"]
    print()
    print(format_table(headers, rows))
    ab_s = [s["budget_T_s"] for s in per_seed]
    print(
        f"\ndigits-LT (ρ=50, preset {PRESET}), seeds {args.seeds}, mean ± std; "
        f"T = AutoBalance search phase = {'/'.join(f'{t:.2f}' for t in ab_s)} s; "
        f"{threads} thread(s); {time.perf_counter() - t_start:.0f} s in all; written to {path}"
        + ("" if args.no_plot else f" and {png}")
    )


if __name__ == "__main__":
    main()
