"""B4 — hypergradient cost and fidelity (PROTOCOLS.md, B4).

Implicit hypergradient (Lorraine, Vicol & Duvenaud 2020, arXiv 1911.02590, eq. 3), as used by
AutoBalance (Li et al., NeurIPS 2021, arXiv 2111.00111):

    dL_val/dα = ∂L_val/∂α − (∂²L_train/∂α∂θ)(∂²L_train/∂θ² + δI)⁻¹ ∇_θ L_val.

Parts (``--parts``, default all; each merges its key into the JSON file):

- ``convex``: L2-regularised multinomial logistic regression in float64 (d=20, K=10, N≈2000
  long-tailed, ρ=100, balanced validation set), α = per-class (l, Δ) of the parametric CE in the
  ``full`` search space with LA init. The inner problem is solved by L-BFGS plus Newton steps to
  ‖∇‖ < 1e-10; the exact IFT hypergradient is a dense solve written here independently of the
  package (``torch.autograd.functional.hessian`` / ``jacobian`` + ``torch.linalg.solve``) and
  checked against central finite differences of the re-solved inner problem. Each mode of
  ``autobalance.hypergrad.implicit_hypergradient`` is compared with it (cosine, relative error),
  for λ ∈ {1e-1, 1e-2, 1e-3}.
- ``torchopt``: the same convex problem through TorchOpt's implicit differentiation
  (``torchopt.diff.implicit.custom_root`` with CG / Neumann), cosine to the exact one and wall
  ratio to ours, interleaved in this process. TorchOpt is not a dependency: the part runs only
  if ``import torchopt`` works (``--torchopt-site DIR`` appends a throwaway venv's
  site-packages to ``sys.path``).
- ``train``: ResNet-8 on CIFAR10-LT (ρ=100; 80/20 stratified split) with the LA-initialised
  parametric loss, the first ``--epochs`` epochs of the B1 30-epoch schedule. Checkpoints go to
  the cache folder, one per epoch, so later runs resume.
- ``cost``: one bilevel iteration (a plain SGD step plus one ``AutoBalanceSearch.hyper_step``)
  in each cheap mode, relative to one plain SGD step, interleaved (median of rounds); batch 128,
  CPU. The amortised per-epoch factor is (plain·k + hyper)/(plain·k) for intervals k = 20, 40.
- ``fidelity``: hypergradients w.r.t. (l′, d′) of the trained ResNet-8 in each mode, all modes
  on the same pre-drawn batches (the 1-batch modes on the first of the 10), by the engine's own
  ``hyper_step`` (only its batch source is replaced). Cosine to the official hyper-step
  (``HyperConfig.official()``), head vs full, and batch noise (the same mode on other batches).
  Each mode is also timed once against plain SGD steps around it: the official mode's cost comes
  from here. Hypergradients are cached per mode, so a run stopped by ``--budget-s`` resumes.

The CIFAR-10 data are the lossy-JPEG copy: numbers are for relative comparison only, not
CIFAR-10 results. Run::

    python benchmarks/b4_hypergrad.py [--data-dir DIR] [--quick] [--out PATH] [--parts ...]
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import (
    RESULTS_DIR,
    environment,
    format_table,
    make_parser,
    ratio_timer,
    set_threads,
    write_json,
)
from torch import Tensor, nn

from autobalance.augment import make_image_transform
from autobalance.checkpoint import atomic_save, safe_load
from autobalance.config import HyperConfig, SearchConfig
from autobalance.data.cifar import default_cache_dir, load_cifar_lt
from autobalance.hypergrad import estimate_max_eigenvalue, implicit_hypergradient
from autobalance.models import resnet8
from autobalance.objectives import make_objective
from autobalance.search import AutoBalanceSearch
from autobalance.search_space import SearchSpace
from autobalance.train import (
    TrainConfig,
    make_optimizer,
    make_scheduler,
    run_epochs,
    seeded_generator,
)

PARTS = ("convex", "torchopt", "train", "cost", "fidelity", "descent")
HERE = Path(__file__).resolve().parent
NPZ_NAME = Path("cifar10_jpeg_lossy") / "cifar10_jpeg_yoongikim.npz"
LOSSY_NOTE = (
    "CIFAR-10 here is a lossy JPEG (quality 75) copy: relative comparisons only, not CIFAR-10 "
    "numbers comparable to papers."
)
WEIGHT_DECAY = 2e-4  # B1
BATCH = 128
QUICK_BATCH = 32  # --quick: smoke run only
PLAIN_PER_SAMPLE = 3  # the cost baseline is 3 plain steps in a row (steadier on a shared CPU)


def save_cache(obj: Any, path: Path) -> None:
    """Save a cache entry atomically; it holds only tensors and plain Python data."""
    atomic_save(obj, path)


def load_cache(path: Path) -> Any:
    """Load a cache entry with ``weights_only=True`` (no pickled objects are ever run)."""
    return safe_load(path)


# =============================================================================== small helpers
def cosine(a: Tensor, b: Tensor) -> float:
    """⟨a, b⟩ / (‖a‖‖b‖) in float64; NaN when either is not finite or zero."""
    a, b = a.double().flatten(), b.double().flatten()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return math.nan
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else math.nan


def rel_error(a: Tensor, ref: Tensor) -> float:
    """‖a − ref‖ / ‖ref‖ (NaN when a is not finite)."""
    a, ref = a.double().flatten(), ref.double().flatten()
    if not torch.isfinite(a).all():
        return math.nan
    return float((a - ref).norm() / ref.norm())


def norm_ratio(a: Tensor, ref: Tensor) -> float:
    """‖a‖ / ‖ref‖ (NaN when a is not finite)."""
    a, ref = a.double().flatten(), ref.double().flatten()
    if not torch.isfinite(a).all():
        return math.nan
    return float(a.norm() / ref.norm())


def flat(ts: Any) -> Tensor:
    return torch.cat([t.detach().reshape(-1) for t in ts])


def fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(v)


class Budget:
    """Wall-clock budget of a run: work units check :meth:`left` before they start."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.t0 = time.perf_counter()

    def left(self) -> bool:
        return self.seconds <= 0 or time.perf_counter() - self.t0 < self.seconds


# =============================================================================== part: convex
@dataclasses.dataclass
class ConvexProblem:
    """Long-tailed Gaussian-mixture classification data for the convex benchmark."""

    x: Tensor
    y: Tensor
    xv: Tensor
    yv: Tensor
    counts: Tensor
    d: int
    k: int


def convex_problem(
    seed: int,
    d: int = 20,
    k: int = 10,
    n: int = 2000,
    rho: float = 100.0,
    n_val: int = 100,
    feature_scale: float = 1.0,
) -> ConvexProblem:
    """x = s·(μ_y + ε), μ_c ~ N(0, (2²/d) I), ε ~ N(0, I); n_c ∝ ρ^(−c/(K−1)), Σ n_c ≈ n.

    The feature scale s multiplies the data Hessian by s²: s = 3 puts λ_max(H) above 2, where a
    Neumann series at step 1.0 diverges (as on ResNet-8)."""
    g = torch.Generator().manual_seed(seed)
    p = rho ** (-torch.arange(k, dtype=torch.float64) / (k - 1))
    counts = torch.floor(n * p / p.sum()).clamp(min=2).long()
    means = torch.randn(k, d, generator=g, dtype=torch.float64) * 2.0 / math.sqrt(d)
    y = torch.repeat_interleave(torch.arange(k), counts)
    x = feature_scale * (means[y] + torch.randn(len(y), d, generator=g, dtype=torch.float64))
    yv = torch.arange(k).repeat_interleave(n_val)
    xv = feature_scale * (means[yv] + torch.randn(len(yv), d, generator=g, dtype=torch.float64))
    return ConvexProblem(x, y, xv, yv, counts, d, k)


def _split_theta(theta: Tensor, prob: ConvexProblem) -> tuple[Tensor, Tensor]:
    dk = prob.d * prob.k
    return theta[:dk].view(prob.d, prob.k), theta[dk:]


def inner_objective(theta: Tensor, alpha: Tensor, prob: ConvexProblem, lam: float) -> Tensor:
    """(1/N) Σ CE(Δ ⊙ (xW + b) + l, y) + (λ/2)‖θ‖², l = log π + a′, Δ = 2σ(d′).

    Written independently of ``autobalance`` (LA init: l₀ = log π, Δ₀ = 1 = 2σ(0)).
    """
    w, b = _split_theta(theta, prob)
    k = prob.k
    log_prior = torch.log(prob.counts.double() / prob.counts.sum())
    l = log_prior + alpha[:k]
    delta = 2.0 * torch.sigmoid(alpha[k:])
    z = (prob.x @ w + b) * delta + l
    return F.cross_entropy(z, prob.y) + 0.5 * lam * (theta @ theta)


def outer_objective(theta: Tensor, prob: ConvexProblem) -> Tensor:
    """Balanced validation CE on the raw logits: mean over classes of the class-mean CE."""
    w, b = _split_theta(theta, prob)
    ce = F.cross_entropy(prob.xv @ w + b, prob.yv, reduction="none")
    per_class = torch.stack([ce[prob.yv == c].mean() for c in range(prob.k)])
    return per_class.mean()


def solve_inner(
    prob: ConvexProblem,
    alpha: Tensor,
    lam: float,
    theta0: Tensor | None = None,
    newton: int = 3,
) -> tuple[Tensor, float]:
    """θ*(α) by L-BFGS (strong Wolfe), then ``newton`` Newton steps with the dense Hessian."""
    n_theta = (prob.d + 1) * prob.k
    theta = torch.zeros(n_theta, dtype=torch.float64) if theta0 is None else theta0.clone()
    theta.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=500,
        tolerance_grad=1e-11,
        tolerance_change=1e-14,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = inner_objective(theta, alpha, prob, lam)
        loss.backward()
        return loss

    opt.step(closure)
    theta = theta.detach()

    def f(t: Tensor) -> Tensor:
        return inner_objective(t, alpha, prob, lam)

    for _ in range(newton):
        g = torch.func.grad(f)(theta)
        if float(g.norm()) < 1e-13:
            break
        h = torch.autograd.functional.hessian(f, theta, vectorize=True)
        theta = theta - torch.linalg.solve(h, g)
    gnorm = float(torch.func.grad(f)(theta).norm())
    return theta, gnorm


def exact_ift(prob: ConvexProblem, theta: Tensor, alpha: Tensor, lam: float) -> dict[str, Any]:
    """Exact IFT hypergradient −Jᵀ H⁻¹ ∇_θ L_val by dense matrices (L_val has no direct α term).

    H = ∂²f/∂θ² (``torch.autograd.functional.hessian``), J = ∂²f/∂θ∂α (``jacobian`` of ∇_θ f),
    then ``torch.linalg.solve``. Also returns H's extreme eigenvalues.
    """

    def f(t: Tensor) -> Tensor:
        return inner_objective(t, alpha, prob, lam)

    h = torch.autograd.functional.hessian(f, theta, vectorize=True)

    def grad_theta(a: Tensor) -> Tensor:
        return torch.func.grad(lambda t: inner_objective(t, a, prob, lam))(theta)

    jac = torch.autograd.functional.jacobian(grad_theta, alpha, vectorize=True)  # (P, A)
    gv = torch.func.grad(lambda t: outer_objective(t, prob))(theta)
    hg = -jac.T @ torch.linalg.solve(h, gv)
    eig = torch.linalg.eigvalsh(h)
    eig_data = torch.linalg.eigvalsh(h - lam * torch.eye(h.shape[0], dtype=h.dtype))
    return {
        "hypergrad": hg,
        "lambda_max": float(eig[-1]),
        "lambda_min": float(eig[0]),
        "lambda_max_without_l2": float(eig_data[-1]),
        "condition": float(eig[-1] / eig[0]),
    }


def finite_difference(
    prob: ConvexProblem, theta: Tensor, alpha: Tensor, lam: float, eps: float = 1e-4
) -> Tensor:
    """Central differences of L_val(θ*(α ± ε e_j)), re-solving the inner problem each time."""
    out = torch.zeros_like(alpha)
    for j in range(alpha.numel()):
        vals = []
        for sgn in (1.0, -1.0):
            a = alpha.clone()
            a[j] += sgn * eps
            th, _ = solve_inner(prob, a, lam, theta0=theta, newton=1)
            vals.append(float(outer_objective(th, prob)))
        out[j] = (vals[0] - vals[1]) / (2 * eps)
    return out


@dataclasses.dataclass(frozen=True)
class ConvexMode:
    """One way of calling ``implicit_hypergradient`` on the convex problem."""

    name: str
    method: str
    iterations: int
    auto_scale: bool = True
    scale: float = 1.0
    damped: bool = True  # δ = λ (the engine's default damping = weight decay); else δ = 0


# The official AutoBalance hyper-step: HyperConfig.official() counts Neumann series *terms*;
# n terms take n − 1 Hessian-vector products (the official code's 5 HVPs = 6 terms).
OFFICIAL_HYPER = HyperConfig.official()
OFFICIAL_TERMS = OFFICIAL_HYPER.iterations
OFFICIAL_HVPS = f"{OFFICIAL_TERMS} terms ({OFFICIAL_TERMS - 1} HVPs)"

CONVEX_MODES = (
    ConvexMode("default: neumann 5 terms, auto-scale", "neumann", 5),
    ConvexMode("neumann 1 term, auto-scale", "neumann", 1),
    ConvexMode("neumann 50 terms, auto-scale", "neumann", 50),
    ConvexMode("neumann 5 terms, step 1/λ̂ uncapped (hyper.scale=∞)", "neumann", 5, True, math.inf),
    ConvexMode("neumann 5 terms, scale 1.0, δ=λ", "neumann", 5, auto_scale=False),
    ConvexMode(
        f"official: neumann {OFFICIAL_HVPS}, scale {OFFICIAL_HYPER.scale:.1f}, δ=0",
        "neumann",
        OFFICIAL_TERMS,
        OFFICIAL_HYPER.auto_scale,
        OFFICIAL_HYPER.scale,
        OFFICIAL_HYPER.damping != 0.0,  # official: δ = 0
    ),
    ConvexMode("cg 5", "cg", 5),
    ConvexMode("cg 20", "cg", 20),
    ConvexMode("exact (engine's dense solver)", "exact", 1),
)


class OursConvex:
    """The convex problem expressed with the package: SearchSpace loss + implicit_hypergradient."""

    def __init__(self, prob: ConvexProblem, theta: Tensor, alpha: Tensor, lam: float) -> None:
        self.prob, self.lam = prob, lam
        w, b = _split_theta(theta, prob)
        self.w = w.clone().requires_grad_(True)
        self.b = b.clone().requires_grad_(True)
        space = SearchSpace(
            prob.counts, kind="full", init="la", search=("additive", "multiplicative")
        ).double()
        with torch.no_grad():
            space.raw["additive"].copy_(alpha[: prob.k])
            space.raw["multiplicative"].copy_(alpha[prob.k :])
        self.space = space
        self.objective = make_objective("balanced_ce")
        self._lam_hat: float | None = None

    def losses(self) -> tuple[Tensor, Tensor]:
        p = self.prob
        train = self.space.loss(p.x @ self.w + self.b, p.y)
        val = self.objective(p.xv @ self.w + self.b, p.yv, None)
        return train, val

    def lambda_hat(self) -> float:
        """λ̂_max of H + λI by 8 power iterations, exactly as ``AutoBalanceSearch.hyper_step``."""
        if self._lam_hat is None:
            params = [self.w, self.b]
            train, _ = self.losses()
            grads = torch.autograd.grad(train, params, create_graph=True)

            def matvec(v: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
                hv = torch.autograd.grad(grads, params, v, retain_graph=True)
                return tuple(a + self.lam * b for a, b in zip(hv, v))

            self._lam_hat = float(
                estimate_max_eigenvalue(
                    matvec,
                    tuple(p.detach() for p in params),
                    iterations=8,
                    generator=seeded_generator(0, 99),
                )
            )
        return self._lam_hat

    def scale(self, mode: ConvexMode) -> float:
        if mode.method == "neumann" and mode.auto_scale:
            return min(mode.scale, 1.0 / max(self.lambda_hat(), 1e-8))
        return mode.scale

    def hypergrad(self, mode: ConvexMode, scale: float | None = None) -> Tensor:
        """(l′, d′) hypergradient in this mode (NaN-filled when the solve is not finite)."""
        train, val = self.losses()
        hg = implicit_hypergradient(
            train,
            val,
            [self.w, self.b],
            self.space.hparams(),
            method=mode.method,
            iterations=mode.iterations,
            scale=self.scale(mode) if scale is None else scale,
            damping=self.lam if mode.damped else 0.0,
            on_nonfinite="return",
        )
        return flat(hg)


CONVEX_CASES = ((1e-1, 1.0), (1e-2, 1.0), (1e-3, 1.0), (1e-2, 3.0))


def run_convex(args: Any) -> dict[str, Any]:
    cases = [(1e-2, 1.0), (1e-2, 3.0)] if args.quick else list(CONVEX_CASES)
    out: dict[str, Any] = {"setup": {}, "cases": {}}
    for lam, fscale in cases:
        prob = convex_problem(args.seed, feature_scale=fscale)
        g = torch.Generator().manual_seed(args.seed + 1)
        alpha = 0.3 * torch.randn(2 * prob.k, generator=g, dtype=torch.float64)
        out["setup"] = {
            "d": prob.d,
            "K": prob.k,
            "N_train": len(prob.y),
            "N_val": len(prob.yv),
            "train_counts": prob.counts.tolist(),
            "alpha": "a′, d′ ~ 0.3·N(0, 1) (LA init moved off 0); l = log π + a′, Δ = 2σ(d′)",
            "inner": "L-BFGS (strong Wolfe) + Newton steps; L2 (λ/2)‖θ‖² on W and b",
            "outer": "balanced CE on a balanced validation set, raw logits",
            "engine_damping": "δ = λ (as hyper_step uses δ = weight decay), official δ = 0",
            "feature_scale": "x = s·(μ_y + ε); s = 3 makes λ_max(H) > 2",
        }
        t0 = time.perf_counter()
        theta, gnorm = solve_inner(prob, alpha, lam)
        t_inner = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = exact_ift(prob, theta, alpha, lam)
        t_exact = time.perf_counter() - t0
        exact_hg = ref.pop("hypergrad")
        rec: dict[str, Any] = {
            "lambda": lam,
            "feature_scale": fscale,
            "inner_grad_norm": gnorm,
            "inner_seconds": t_inner,
            "exact_seconds": t_exact,
            **ref,
            "exact_hypergrad": exact_hg.tolist(),
            "modes": {},
        }
        if not args.quick:
            fd = finite_difference(prob, theta, alpha, lam)
            rec["finite_difference"] = {
                "cosine": cosine(fd, exact_hg),
                "rel_error": rel_error(fd, exact_hg),
            }
        ours = OursConvex(prob, theta, alpha, lam)
        rec["lambda_hat_power_iteration"] = ours.lambda_hat()
        for mode in CONVEX_MODES:
            hg = ours.hypergrad(mode)  # also the warm-up call
            times = []
            for _ in range(1 if mode.method == "exact" else 5):
                t0 = time.perf_counter()
                ours.hypergrad(mode)
                times.append(time.perf_counter() - t0)
            rec["modes"][mode.name] = {
                "cosine": cosine(hg, exact_hg),
                "rel_error": rel_error(hg, exact_hg),
                "norm_ratio": norm_ratio(hg, exact_hg),
                "finite": bool(torch.isfinite(hg).all()),
                "scale": ours.scale(mode) if mode.method == "neumann" else None,
                "seconds": statistics.median(times),
            }
        out["cases"][f"λ={lam:g}, s={fscale:g}"] = rec
        print(
            f"[convex] λ={lam:g} s={fscale:g}: inner ‖∇‖={gnorm:.1e}, κ={ref['condition']:.3g}",
            flush=True,
        )
    return out


# =============================================================================== part: torchopt
def run_torchopt(args: Any) -> dict[str, Any]:
    """TorchOpt's implicit differentiation on the convex problem, against ours and the exact one.

    TorchOpt's Neumann solver ``ns(maxiter=m, alpha=s)`` sums m + 1 terms (m matvecs); ours with
    n terms does n − 1 products, so m = 4 ↔ 5 terms. Both get the same step s = 1/λ̂.
    """
    try:
        import torchopt  # type: ignore[import-not-found]
    except ImportError as exc:
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    lam = 1e-2
    prob = convex_problem(args.seed)
    g = torch.Generator().manual_seed(args.seed + 1)
    alpha = 0.3 * torch.randn(2 * prob.k, generator=g, dtype=torch.float64)
    theta, _ = solve_inner(prob, alpha, lam)
    exact_hg = exact_ift(prob, theta, alpha, lam)["hypergrad"]
    ours = OursConvex(prob, theta, alpha, lam)
    s = ours.scale(CONVEX_MODES[0])
    k = prob.k
    w0, b0 = _split_theta(theta, prob)

    def objective(params: tuple[Tensor, Tensor], a: Tensor, d: Tensor) -> Tensor:
        return inner_objective(
            torch.cat([params[0].reshape(-1), params[1]]), torch.cat([a, d]), prob, lam
        )

    def optimality(params: tuple[Tensor, Tensor], a: Tensor, d: Tensor) -> Any:
        return torch.func.grad(objective)(params, a, d)

    def make_topt(solve: Any) -> Callable[[], Tensor]:
        @torchopt.diff.implicit.custom_root(optimality, argnums=(1, 2), solve=solve)
        def solver(params: tuple[Tensor, Tensor], a: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
            return (w0.detach().clone(), b0.detach().clone())  # θ*(α), solved beforehand

        def run() -> Tensor:
            a = alpha[:k].clone().requires_grad_(True)
            d = alpha[k:].clone().requires_grad_(True)
            w, b = solver((torch.zeros_like(w0), torch.zeros_like(b0)), a, d)
            val = outer_objective(torch.cat([w.reshape(-1), b]), prob)
            ga, gd = torch.autograd.grad(val, (a, d))
            return torch.cat([ga, gd])

        return run

    cases = {
        "cg 20": (
            make_topt(torchopt.linear_solve.solve_cg(maxiter=20, rtol=1e-10)),
            lambda: ours.hypergrad(ConvexMode("cg", "cg", 20)),
        ),
        "neumann 5 terms, step min(1, 1/λ̂)": (
            make_topt(torchopt.linear_solve.solve_inv(ns=True, maxiter=4, alpha=s)),
            lambda: ours.hypergrad(ConvexMode("n", "neumann", 5, False, s)),
        ),
        "neumann 5 terms, step 1.0": (
            make_topt(torchopt.linear_solve.solve_inv(ns=True, maxiter=4, alpha=1.0)),
            lambda: ours.hypergrad(ConvexMode("n", "neumann", 5, False, 1.0)),
        ),
    }
    out: dict[str, Any] = {
        "available": True,
        "version": torchopt.__version__,
        "location": str(Path(torchopt.__file__).parent),
        "lambda": lam,
        "neumann_step": s,
        "cases": {},
    }
    repeats = 5 if args.quick else 30
    for name, (topt_fn, ours_fn) in cases.items():
        hg_t, hg_o = topt_fn(), ours_fn()
        timing = ratio_timer({"ours": ours_fn, "torchopt": topt_fn}, "ours", repeats=repeats)
        out["cases"][name] = {
            "torchopt_cosine": cosine(hg_t, exact_hg),
            "torchopt_rel_error": rel_error(hg_t, exact_hg),
            "ours_cosine": cosine(hg_o, exact_hg),
            "ours_rel_error": rel_error(hg_o, exact_hg),
            "torchopt_vs_ours_rel_diff": rel_error(hg_t, hg_o),
            "wall_ratio_torchopt_to_ours": timing["torchopt"]["ratio"],
            "wall_ratio_q25": timing["torchopt"]["ratio_q25"],
            "wall_ratio_q75": timing["torchopt"]["ratio_q75"],
            "ours_seconds": timing["ours"]["median_s"],
        }
    return out


# =============================================================================== ResNet-8 parts
def resolve_data(path: Path) -> Path:
    """A folder holding ``cifar10_jpeg_lossy/…npz`` → the npz; else the path as given."""
    if path.is_dir() and (path / NPZ_NAME).is_file():
        return path / NPZ_NAME
    return path


def default_data_dir() -> Path:
    return Path(os.environ.get("AUTOBALANCE_DATA", HERE.parents[1] / "shared" / "data"))


class FixedBatchSearch(AutoBalanceSearch):
    """AutoBalanceSearch whose hyper-step reads pre-drawn batches instead of sampling.

    Only ``_batch`` is replaced; ``hyper_step`` itself is the engine's. Set ``fixed`` to
    ``{"train": [(x, y, g), ...], "val": [...]}`` and call :meth:`rewind` before each step.
    """

    fixed: dict[str, list[tuple[Tensor, Tensor, Tensor | None]]] | None = None

    def rewind(self) -> None:
        self._cursor = {"train": 0, "val": 0}

    def _batch(self, data: Any, index: Tensor, gen: torch.Generator | None) -> Any:
        if self.fixed is None:
            return super()._batch(data, index, gen)
        key = "train" if data is self.s_train else "val"
        i = self._cursor[key]
        self._cursor[key] += 1
        return self.fixed[key][i]


class Bench:
    """The ResNet-8 / CIFAR10-LT setting shared by the train, cost and fidelity parts."""

    def __init__(self, args: Any) -> None:
        self.args = args
        self.npz = resolve_data(Path(args.data_dir))
        if not self.npz.exists():
            raise SystemExit(
                f"B4 needs CIFAR-10 (lossy-JPEG npz or pickle root); not found: {self.npz}"
            )
        self.train_data, _ = load_cifar_lt(self.npz, imbalance_ratio=100.0, seed=0)
        self.batch = QUICK_BATCH if args.quick else BATCH
        self.train_cfg = TrainConfig(epochs=30, batch_size=self.batch, weight_decay=WEIGHT_DECAY)
        self.transform = make_image_transform(True, seed=args.seed)
        self.eval_transform = make_image_transform(False)
        self.search = self.make_search(HyperConfig())
        self.cache = Path(args.cache_dir).expanduser()
        self.cache.mkdir(parents=True, exist_ok=True)
        self.tag = f"seed{args.seed}" + ("-quick" if args.quick else "")

    def make_search(self, hyper: HyperConfig, fixed: bool = False) -> AutoBalanceSearch:
        cfg = SearchConfig(seed=self.args.seed, train=self.train_cfg, hyper=hyper, retrain=False)
        cls = FixedBatchSearch if fixed else AutoBalanceSearch
        return cls(
            cfg,
            lambda: resnet8(10),
            self.train_data,
            transform=self.transform,
            eval_transform=self.eval_transform,
        )

    # ------------------------------------------------------------------ train
    def _ckpt(self, epoch: int) -> Path:
        return self.cache / f"resnet8-la-{self.tag}-epoch{epoch}.pt"

    def trained_model(self, epochs: int, budget: Budget) -> tuple[nn.Module | None, dict[str, Any]]:
        """ResNet-8 after ``epochs`` epochs (resuming from the cache); None if out of budget."""
        s = self.search
        torch.manual_seed(self.args.seed)
        model = resnet8(10)
        opt = make_optimizer(model, self.train_cfg)
        steps = math.ceil(len(s.s_train) / self.batch)
        sched = make_scheduler(opt, self.train_cfg, steps)
        start, info = 0, {"seconds": 0.0, "history": []}
        for e in range(epochs, 0, -1):
            if self._ckpt(e).is_file():
                state = load_cache(self._ckpt(e))
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["opt"])
                sched.load_state_dict(state["sched"])
                start, info = e, state["info"]
                break

        def loss_fn(logits: Tensor, y: Tensor, g: Tensor | None) -> Tensor:
            return s.space.loss(logits, y, g, detach=True)

        for epoch in range(start, epochs):
            if not budget.left():
                print(f"[train] budget spent after {epoch} epochs; rerun to resume", flush=True)
                return None, info
            t0 = time.perf_counter()
            rec = run_epochs(
                "warmup",
                model,
                loss_fn,
                s.s_train,
                self.train_cfg,
                optimizer=opt,
                scheduler=sched,
                seed=self.args.seed,
                start_epoch=epoch,
                end_epoch=epoch + 1,
                eval_sets={"val": s.s_val},
                transform=self.transform,
                eval_transform=self.eval_transform,
            )[0]
            info["seconds"] += time.perf_counter() - t0
            info["history"].append(
                {k: v for k, v in rec.items() if isinstance(v, int | float | str)}
            )
            state = {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "info": info,
            }
            save_cache(state, self._ckpt(epoch + 1))
            print(f"[train] epoch {epoch + 1}/{epochs} {info['history'][-1]}", flush=True)
        if not self._ckpt(epochs).is_file():  # epochs = 0 (--quick): the untrained state
            state = {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "info": info,
            }
            save_cache(state, self._ckpt(epochs))
        return model, info

    # ------------------------------------------------------------------ plain SGD step
    def plain_step_fn(self, model: nn.Module) -> Callable[[], None]:
        """One plain SGD iteration of the search loop: gather, augment, forward, backward, step."""
        s = self.search
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=WEIGHT_DECAY)
        gen = seeded_generator(self.args.seed, 77)

        def step() -> None:
            idx = torch.randint(len(s.s_train), (self.batch,), generator=gen)
            x = self.transform(s.s_train.x[idx], gen)
            loss = s.space.loss(model(x), s.s_train.y[idx], None, detach=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step


# ------------------------------------------------------------------ hyper modes
# Labels name the official term count: results and per-mode caches are keyed by label, so the
# earlier 5-term (4-HVP) official hypergradients are never reused for HyperConfig.official().
OFFICIAL = f"official: full, 10+10 batches, {OFFICIAL_HVPS}, step 1.0, δ=0 [U]"
OFFICIAL_B = f"official ({OFFICIAL_TERMS} terms) on other batches [U′]"
OFFICIAL_SCALED = "full, 10 batches, 5 terms, step 1/λ̂ [U]"
CONV_REF = "full, 10 batches, 5 terms, step 1/λ̂ [Bal]"
CONV_REF_B = "full, 10 batches, 5 terms, step 1/λ̂ on other batches [Bal′]"
DEFAULT = "default: full, 1 batch, 5 terms, auto-scale [Bal]"
DEFAULT_B = "default on other batches [Bal′]"
DEFAULT_U = "default on a uniform val batch [U]"
ONE_TERM = "full, 1 batch, 1 term [Bal]"
THREE = "full, 1 batch, 3 terms, auto-scale [Bal]"
CG5 = "full, 1 batch, CG 5 [Bal]"
CG_REF = "full, 10 batches, CG 20 [Bal]"
CG_REF_B = "full, 10 batches, CG 20 on other batches [Bal′]"
CG20_1 = "full, 1 batch, CG 20 [Bal]"
CG20_1_B = "full, 1 batch, CG 20 on other batches [Bal′]"
ONE_STEP1 = f"full, 1 batch, {OFFICIAL_HVPS}, step 1.0, δ=0 [Bal]"  # official, 1 batch
TWENTY = "full, 1 batch, 20 terms, auto-scale [Bal]"
HEAD_1 = "head, 1 batch, CG 20 [Bal]"
HEAD_10 = "head, 10 batches, CG 20 [Bal]"


def _modes(quick: bool) -> dict[str, dict[str, Any]]:
    """name → {hyper config, batch set[, scale_from]}, in the order they are computed.

    Batch sets: ``U`` = 10 uniform train batches + 10 uniform validation batches (the official
    sampling); ``Bal`` = the same train batches + 10 class-balanced validation batches (the
    engine's default sampling); primes are independent draws. 1-batch modes use the first batch
    of each list. ``scale_from``: the Neumann step is the 1/λ̂ that the named mode estimated (the
    engine would power-iterate on all 10 batches, 8 more products on the 10-batch graph).
    """
    nb = 2 if quick else 10
    official = HyperConfig.official()
    if quick:
        official = dataclasses.replace(official, train_batches=nb, val_batches=nb)
    many = {"train_batches": nb, "val_batches": nb}
    ten_scaled = HyperConfig(auto_scale=False, **many)
    return {
        OFFICIAL: {"cfg": official, "batches": "U"},
        DEFAULT: {"cfg": HyperConfig(), "batches": "Bal"},
        CONV_REF: {"cfg": ten_scaled, "batches": "Bal", "scale_from": DEFAULT},
        HEAD_1: {"cfg": HyperConfig(scope="head", method="cg", iterations=20), "batches": "Bal"},
        ONE_TERM: {"cfg": HyperConfig(iterations=1), "batches": "Bal"},
        HEAD_10: {
            "cfg": HyperConfig(scope="head", method="cg", iterations=20, **many),
            "batches": "Bal",
        },
        DEFAULT_B: {"cfg": HyperConfig(), "batches": "Bal′"},
        ONE_STEP1: {
            "cfg": dataclasses.replace(official, train_batches=1, val_batches=1),
            "batches": "Bal",
        },
        TWENTY: {"cfg": HyperConfig(iterations=20), "batches": "Bal"},
        THREE: {"cfg": HyperConfig(iterations=3), "batches": "Bal"},
        CG5: {"cfg": HyperConfig(method="cg", iterations=5), "batches": "Bal"},
        CG_REF: {"cfg": HyperConfig(method="cg", iterations=20, **many), "batches": "Bal"},
        DEFAULT_U: {"cfg": HyperConfig(), "batches": "U"},
        OFFICIAL_SCALED: {"cfg": ten_scaled, "batches": "U", "scale_from": DEFAULT},
        CONV_REF_B: {"cfg": ten_scaled, "batches": "Bal′", "scale_from": DEFAULT_B},
        OFFICIAL_B: {"cfg": official, "batches": "U′"},
        CG_REF_B: {"cfg": HyperConfig(method="cg", iterations=20, **many), "batches": "Bal′"},
        CG20_1: {"cfg": HyperConfig(method="cg", iterations=20), "batches": "Bal"},
        CG20_1_B: {"cfg": HyperConfig(method="cg", iterations=20), "batches": "Bal′"},
    }


COST_MODES = (DEFAULT, THREE, ONE_TERM, CG5, CG20_1, HEAD_1, HEAD_10)


def draw_batches(bench: Bench, n: int, salt: int, balanced_val: bool = False) -> dict[str, list]:
    """n train batches (uniform, augmented) and n validation batches, seeded by ``salt``.

    The train batches depend on ``salt`` only, so ``U`` and ``Bal`` share them.
    """
    s = bench.search
    gen = seeded_generator(bench.args.seed, 4242, salt)
    train = []
    for _ in range(n):
        idx = torch.randint(len(s.s_train), (bench.batch,), generator=gen)
        train.append((bench.transform(s.s_train.x[idx], gen), s.s_train.y[idx], None))
    vgen = seeded_generator(bench.args.seed, 4243, salt, int(balanced_val))
    val = []
    for _ in range(n):
        idx = s._sample(s.s_val, bench.batch, vgen, balanced=balanced_val)
        val.append((bench.transform(s.s_val.x[idx], None), s.s_val.y[idx], None))
    return {"train": train, "val": val}


def batch_set(bench: Bench, key: str, n: int) -> dict[str, list]:
    """``U``/``Bal`` (salt 0) and ``U′``/``Bal′`` (salt 1), see :func:`_modes`."""
    return draw_batches(bench, n, salt=int(key.endswith("′")), balanced_val=key.startswith("Bal"))


def run_train(bench: Bench, budget: Budget) -> dict[str, Any]:
    model, info = bench.trained_model(bench.args.epochs, budget)
    return {"epochs": bench.args.epochs, "complete": model is not None, **info}


def run_cost(
    bench: Bench, budget: Budget, previous: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Bilevel iteration (plain step + hyper-step) / plain step, interleaved, per cheap mode."""
    model, _ = bench.trained_model(bench.args.epochs, budget)
    if model is None:
        return None
    modes = _modes(bench.args.quick)
    plain = bench.plain_step_fn(model)

    def plains() -> None:
        for _ in range(PLAIN_PER_SAMPLE):
            plain()

    base = f"{PLAIN_PER_SAMPLE} plain SGD steps"
    fns: dict[str, Callable[[], object]] = {base: plains}
    searches = {}
    for name in COST_MODES:
        search = bench.make_search(modes[name]["cfg"])
        alpha_opt = search._alpha_optimizer()
        gen = seeded_generator(bench.args.seed, 5, len(searches))
        searches[name] = search

        def bilevel(search: Any = search, alpha_opt: Any = alpha_opt, gen: Any = gen) -> None:
            plain()
            search.hyper_step(model, alpha_opt, gen, WEIGHT_DECAY)

        fns[name] = bilevel
    # one-off cost of the power iteration (first hyper-step of a search, auto-scale modes)
    first = {}
    for name, search in searches.items():
        if search.cfg.hyper.method == "neumann" and search.cfg.hyper.auto_scale:
            t0 = time.perf_counter()
            fns[name]()
            first[name] = time.perf_counter() - t0
    repeats = 2 if bench.args.quick else bench.args.repeats
    groups = {"cheap modes": ratio_timer(fns, base, repeats=repeats, warmup=1)}
    # the official step lasts 15 s to minutes: its own interleaved group, fewer rounds
    off_repeats = 1 if bench.args.quick else bench.args.official_repeats
    if off_repeats > 0:
        off = bench.make_search(modes[OFFICIAL]["cfg"])
        off_opt, off_gen = off._alpha_optimizer(), seeded_generator(bench.args.seed, 6)

        def official() -> None:
            plain()
            off.hyper_step(model, off_opt, off_gen, WEIGHT_DECAY)

        groups["official"] = ratio_timer(
            {base: plains, OFFICIAL: official}, base, repeats=off_repeats, warmup=1
        )
    out: dict[str, Any] = {
        "baseline": base + " per round (ratios rescaled to one step)",
        "batch": bench.batch,
        "groups": {},
        "modes": {},
    }
    for group, timing in groups.items():
        plain_s = timing[base]["median_s"] / PLAIN_PER_SAMPLE
        out["groups"][group] = {
            "repeats": off_repeats if group == "official" else repeats,
            "plain_step_seconds": plain_s,
        }
        for name, t in timing.items():
            if name == base:
                continue
            ratio = t["ratio"] * PLAIN_PER_SAMPLE
            hyper = ratio - 1.0
            rec = {
                "group": group,
                "bilevel_ratio": ratio,
                "bilevel_ratio_q25": t["ratio_q25"] * PLAIN_PER_SAMPLE,
                "bilevel_ratio_q75": t["ratio_q75"] * PLAIN_PER_SAMPLE,
                "hyper_step_ratio": hyper,
                "amortised_interval_20": 1.0 + hyper / 20,
                "amortised_interval_40": 1.0 + hyper / 40,
                "median_s": t["median_s"],
                "plain_step_seconds": plain_s,
            }
            if name in first:
                rec["power_iteration_one_off_ratio"] = (first[name] - t["median_s"]) / plain_s
            out["modes"][name] = rec
    if OFFICIAL not in out["modes"] and previous and OFFICIAL in previous.get("modes", {}):
        out["modes"][OFFICIAL] = {**previous["modes"][OFFICIAL], "from_earlier_run": True}
        if "official" in previous.get("groups", {}):
            out["groups"]["official"] = previous["groups"]["official"]
    return out


def _fidelity_cache(bench: Bench) -> Path:
    return bench.cache / f"b4-fidelity-{bench.tag}-epoch{bench.args.epochs}.pt"


def run_fidelity(bench: Bench, budget: Budget) -> dict[str, Any] | None:
    """Hypergradients of every mode on fixed batches (cached per mode), compared."""
    model, _ = bench.trained_model(bench.args.epochs, budget)
    if model is None:
        return None
    modes = _modes(bench.args.quick)
    nb = 2 if bench.args.quick else 10
    cache_path = _fidelity_cache(bench)
    cache: dict[str, Any] = {}
    if cache_path.is_file():
        cache = load_cache(cache_path)
    batch_sets: dict[str, dict[str, list]] = {}
    plain_model = copy.deepcopy(model)
    plain = bench.plain_step_fn(plain_model)
    for _ in range(2):
        plain()  # warm-up
    for name, spec in modes.items():
        if name in cache:
            continue
        if not budget.left():
            print("[fidelity] budget spent; rerun to resume", flush=True)
            break
        key = spec["batches"]
        if key not in batch_sets:
            batch_sets[key] = batch_set(bench, key, nb)
        hyper = spec["cfg"]
        if "scale_from" in spec:
            if spec["scale_from"] not in cache:
                continue
            hyper = dataclasses.replace(hyper, scale=cache[spec["scale_from"]]["neumann_scale"])
        search = bench.make_search(hyper, fixed=True)
        assert isinstance(search, FixedBatchSearch)
        search.fixed = batch_sets[key]
        search.rewind()
        hparams = search.space.hparams()
        alpha_opt = torch.optim.SGD(hparams, lr=0.0)  # keeps α fixed; p.grad = hypergradient
        before = []
        for _ in range(3):
            t0 = time.perf_counter()
            plain()
            before.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        info = search.hyper_step(model, alpha_opt, torch.Generator().manual_seed(0), WEIGHT_DECAY)
        seconds = time.perf_counter() - t0
        after = []
        for _ in range(3):
            t0 = time.perf_counter()
            plain()
            after.append(time.perf_counter() - t0)
        if info["applied"]:
            hg = flat([p.grad for p in hparams])
        else:
            hg = torch.full((sum(p.numel() for p in hparams),), math.nan)
        plain_s = statistics.median(before + after)
        cache[name] = {
            "hypergrad": hg,
            "applied": info["applied"],
            "reason": info.get("reason"),
            "neumann_scale": info.get("neumann_scale"),
            "seconds": seconds,
            "plain_step_seconds": plain_s,
            "hyper_step_ratio": seconds / plain_s,
            "hyper": dataclasses.asdict(hyper),
            "batches": key,
        }
        save_cache(cache, cache_path)
        print(f"[fidelity] {name}: {seconds:.1f} s = {seconds / plain_s:.1f}× plain", flush=True)
    return summarise_fidelity(cache, modes)


def summarise_fidelity(cache: dict[str, Any], modes: dict[str, Any]) -> dict[str, Any]:
    """Cosines of every cached mode to the official step and to the 10-batch 1/λ̂ reference."""
    k = 10
    refs = {
        "official": cache.get(OFFICIAL),
        "ref10": cache.get(CONV_REF),
        "cg_ref10": cache.get(CG_REF),
    }
    out: dict[str, Any] = {
        "complete": all(m in cache for m in modes),
        "batch_sets": {
            "U": "10 uniform train + 10 uniform val batches (official sampling)",
            "Bal": "the same train batches + 10 class-balanced val batches (engine default)",
            "primes": "independent draws of the same kind",
            "1-batch modes": "first train and first val batch of the set",
        },
        "reference_ref10": CONV_REF,
        "reference_cg_ref10": CG_REF,
        "modes": {},
    }
    comparisons = {
        "noise, 1 batch: default on Bal vs Bal′": (DEFAULT, DEFAULT_B),
        "noise, 10 batches, step 1/λ̂: Bal vs Bal′": (CONV_REF, CONV_REF_B),
        "noise, official: U vs U′": (OFFICIAL, OFFICIAL_B),
        "noise, 10 batches, CG 20: Bal vs Bal′": (CG_REF, CG_REF_B),
        "noise, 1 batch, CG 20: Bal vs Bal′": (CG20_1, CG20_1_B),
        "head vs full, 1 batch: head CG 20 vs default (same batch)": (HEAD_1, DEFAULT),
        "head vs full, 10 batches: head CG 20 vs 10-batch 1/λ̂ (same data)": (HEAD_10, CONV_REF),
        "head vs full, 10 batches: head CG 20 [Bal] vs official [U]": (HEAD_10, OFFICIAL),
        "step only: official vs 10-batch 1/λ̂ on the same U data": (OFFICIAL, OFFICIAL_SCALED),
        "val sampling only: 10-batch 1/λ̂, U vs Bal": (OFFICIAL_SCALED, CONV_REF),
        "val sampling only: default, U vs Bal": (DEFAULT_U, DEFAULT),
        "solver only: 10 batches, Neumann 5 at 1/λ̂ vs CG 20": (CONV_REF, CG_REF),
    }
    for name in modes:
        if name not in cache:
            continue
        c = cache[name]
        hg = c["hypergrad"]
        rec = {kk: v for kk, v in c.items() if kk != "hypergrad"}
        rec["hypergrad"] = hg.tolist()
        rec["hypergrad_norm"] = float(hg.norm())
        rec["lambda_hat"] = 1.0 / c["neumann_scale"] if c.get("neumann_scale") else None
        rec["bilevel_ratio_single_sample"] = 1.0 + c["hyper_step_ratio"]
        for tag, ref in refs.items():
            if ref is None:
                continue
            rh = ref["hypergrad"]
            rec[f"cosine_to_{tag}"] = cosine(hg, rh)
            rec[f"cosine_to_{tag}_l"] = cosine(hg[:k], rh[:k])
            rec[f"cosine_to_{tag}_delta"] = cosine(hg[k:], rh[k:])
            rec[f"norm_ratio_to_{tag}"] = norm_ratio(hg, rh)
        out["modes"][name] = rec
    out["comparisons"] = {}
    for label, (a, b) in comparisons.items():
        if a in cache and b in cache:
            out["comparisons"][label] = cosine(cache[a]["hypergrad"], cache[b]["hypergrad"])
    return out


DESCENT_DIRECTIONS = (OFFICIAL, CONV_REF, CG_REF, DEFAULT, THREE, ONE_TERM, CG20_1, HEAD_1, HEAD_10)


def _val_metrics(bench: Bench, model: nn.Module) -> dict[str, float]:
    """Balanced CE (the search objective) and balanced error on all of S_V, eval mode."""
    s = bench.search
    model.eval()
    logits = []
    with torch.no_grad():
        for i in range(0, len(s.s_val), 1024):
            logits.append(model(bench.eval_transform(s.s_val.x[i : i + 1024], None)))
    model.train()
    z, y = torch.cat(logits), s.s_val.y
    pred = z.argmax(1)
    per_class = [float((pred[y == c] != c).float().mean()) for c in range(10)]
    return {
        "balanced_ce": float(make_objective("balanced_ce")(z, y, None)),
        "balanced_error": statistics.mean(per_class),
    }


def _retrain_from(bench: Bench, delta: Tensor, epochs: int) -> dict[str, float]:
    """From the epoch-E checkpoint, train ``epochs`` more epochs with α′ = α′₀ + delta."""
    search = bench.make_search(HyperConfig())
    with torch.no_grad():
        offset = 0
        for p in search.space.hparams():
            p.add_(delta[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
    state = load_cache(bench._ckpt(bench.args.epochs))
    model = resnet8(10)
    model.load_state_dict(state["model"])
    opt = make_optimizer(model, bench.train_cfg)
    opt.load_state_dict(state["opt"])
    steps = math.ceil(len(search.s_train) / bench.batch)
    sched = make_scheduler(opt, bench.train_cfg, steps)
    sched.load_state_dict(state["sched"])

    def loss_fn(logits: Tensor, y: Tensor, g: Tensor | None) -> Tensor:
        return search.space.loss(logits, y, g, detach=True)

    e0 = bench.args.epochs
    run_epochs(
        "search",
        model,
        loss_fn,
        search.s_train,
        bench.train_cfg,
        optimizer=opt,
        scheduler=sched,
        seed=bench.args.seed,
        start_epoch=e0,
        end_epoch=e0 + epochs,
        transform=bench.transform,
    )
    return _val_metrics(bench, model)


def run_descent(bench: Bench, budget: Budget) -> dict[str, Any] | None:
    """Which hypergradient lowers the validation objective? (PROTOCOLS B4, last paragraph.)

    For each cached hypergradient g: α′ ← α′₀ ∓ η g/‖g‖ (η = ``--descent-step``), then one epoch
    of θ-training from the epoch-E checkpoint with identical batches and augmentation for every
    probe (common random numbers), then balanced CE on all of S_V. Δ = L(probe) − L(α′₀).
    slope = (Δ(−g) − Δ(+g))/2 cancels the curvature term; three random directions give the size
    of an uninformative slope.
    """
    model, _ = bench.trained_model(bench.args.epochs, budget)
    if model is None:
        return None
    cache_path = _fidelity_cache(bench)
    if not cache_path.is_file():
        return None
    fid = load_cache(cache_path)
    step = float(bench.args.descent_step)
    dpath = bench.cache / f"b4-descent-{bench.tag}-epoch{bench.args.epochs}-step{step:g}.pt"
    done: dict[str, Any] = {}
    if dpath.is_file():
        done = load_cache(dpath)
    epochs = 1
    n = 20
    g = torch.Generator().manual_seed(bench.args.seed + 17)
    dirs: dict[str, Tensor] = {}
    for name in DESCENT_DIRECTIONS:
        hg = fid[name]["hypergrad"].float() if name in fid else None
        # a zero hypergradient (e.g. CG stopped at negative curvature on its first step) has no
        # direction; a non-finite one (a diverged series) none either
        if hg is not None and bool(torch.isfinite(hg).all()) and float(hg.norm()) > 0:
            dirs[name] = hg
    for i in range(3):
        dirs[f"random direction {i + 1}"] = torch.randn(n, generator=g)
    probes: dict[str, Tensor] = {"none": torch.zeros(n)}
    for name, d in dirs.items():
        for sign, label in ((-1.0, "−g"), (1.0, "+g")):
            probes[f"{name} | {label}"] = sign * step * d / d.norm()
    for name, delta in probes.items():
        if name in done:
            continue
        if not budget.left():
            print("[descent] budget spent; rerun to resume", flush=True)
            break
        t0 = time.perf_counter()
        done[name] = {**_retrain_from(bench, delta, epochs), "delta": delta.tolist()}
        save_cache(done, dpath)
        print(
            f"[descent] {name}: {done[name]['balanced_ce']:.4f} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    out: dict[str, Any] = {
        "step": step,
        "retrain_epochs": epochs,
        "complete": all(p in done for p in probes),
        "baseline": done.get("none"),
        "directions": {},
    }
    base = done.get("none")
    for name in dirs:
        minus, plus = done.get(f"{name} | −g"), done.get(f"{name} | +g")
        if base is None or minus is None or plus is None:
            continue
        rec: dict[str, Any] = {"minus_g": minus, "plus_g": plus}
        for metric in ("balanced_ce", "balanced_error"):
            dm, dp = minus[metric] - base[metric], plus[metric] - base[metric]
            rec[f"delta_{metric}_minus_g"] = dm
            rec[f"delta_{metric}_plus_g"] = dp
            rec[f"slope_{metric}"] = (dm - dp) / 2
        out["directions"][name] = rec
    return out


# =============================================================================== tables
def print_tables(res: dict[str, Any]) -> None:
    conv = res.get("convex")
    if conv:
        for case, rec in conv["cases"].items():
            print(
                f"\n### Convex (logistic regression, {case}): λ_max(H)={rec['lambda_max']:.3g}, "
                f"λ̂ (power it.)={rec['lambda_hat_power_iteration']:.3g}, "
                f"κ={rec['condition']:.3g}, inner ‖∇‖={rec['inner_grad_norm']:.1e}"
            )
            if "finite_difference" in rec:
                fd = rec["finite_difference"]
                print(
                    f"exact IFT vs finite differences: cos {fd['cosine']:.6f}, "
                    f"rel err {fd['rel_error']:.1e}"
                )
            rows = [
                [
                    n,
                    fmt(m["cosine"], 4),
                    fmt(m["rel_error"]),
                    fmt(m["norm_ratio"]),
                    fmt(m["scale"]) if m["scale"] is not None else "—",
                    fmt(m["seconds"] * 1e3, 2),
                ]
                for n, m in rec["modes"].items()
            ]
            hdr = ["mode", "cosine", "rel. error", "‖g‖/‖g*‖", "Neumann step", "ms (noisy)"]
            print(format_table(hdr, rows))
    topt = res.get("torchopt")
    if topt:
        print("\n### TorchOpt on the convex problem (λ=1e-2)")
        if not topt.get("available"):
            print(f"not available: {topt.get('error')}")
        else:
            rows = [
                [
                    n,
                    fmt(c["torchopt_cosine"], 4),
                    fmt(c["torchopt_rel_error"]),
                    fmt(c["ours_cosine"], 4),
                    fmt(c["ours_rel_error"]),
                    fmt(c["torchopt_vs_ours_rel_diff"]),
                    fmt(c["wall_ratio_torchopt_to_ours"], 2),
                ]
                for n, c in topt["cases"].items()
            ]
            hdr = [
                "solver",
                "TorchOpt cos",
                "TorchOpt rel err",
                "ours cos",
                "ours rel err",
                "‖TorchOpt − ours‖/‖ours‖",
                "wall TorchOpt/ours",
            ]
            print(format_table(hdr, rows))
    tr = res.get("train")
    if tr and tr.get("history"):
        last = tr["history"][-1]
        bal = last.get("val/balanced_error", last.get("val/balanced_accuracy"))
        print(
            f"\n### ResNet-8 trained {len(tr['history'])} epochs (LA init), "
            f"{tr['seconds']:.0f} s; last val metric: {fmt(bal)}"
        )
    cost = res.get("cost")
    fid = res.get("fidelity")
    if cost or fid:
        print("\n### ResNet-8 hypergradient modes (CPU; " + LOSSY_NOTE + ")")
        rows = []
        names = list(fid["modes"]) if fid else list(cost["modes"])
        for n in names:
            f = fid["modes"].get(n, {}) if fid else {}
            c = cost["modes"].get(n, {}) if cost else {}
            bil = c.get("bilevel_ratio", f.get("bilevel_ratio_single_sample", math.nan))
            src = "interleaved" if "bilevel_ratio" in c else "1 sample"
            hyper = bil - 1.0
            lam_hat = f.get("lambda_hat")
            rows.append(
                [
                    n,
                    fmt(f.get("cosine_to_official", math.nan)),
                    fmt(f.get("cosine_to_ref10", math.nan)),
                    fmt(f.get("cosine_to_ref10_l", math.nan)),
                    fmt(f.get("cosine_to_ref10_delta", math.nan)),
                    fmt(f.get("norm_ratio_to_ref10", math.nan)),
                    fmt(f.get("cosine_to_cg_ref10", math.nan)),
                    "—" if lam_hat is None else fmt(lam_hat, 2),
                    f"{fmt(bil, 1)} ({src})",
                    fmt(1 + hyper / 20, 2),
                    fmt(1 + hyper / 40, 2),
                ]
            )
        hdr = [
            "mode",
            "cos to official",
            "cos to ref10",
            "cos (l) to ref10",
            "cos (Δ) to ref10",
            "‖g‖/‖g_ref10‖",
            "cos to CG-ref10",
            "λ̂ (1/step)",
            "bilevel iter / plain step",
            "epoch factor k=20",
            "epoch factor k=40",
        ]
        print(format_table(hdr, rows))
        if fid and fid.get("comparisons"):
            print(
                format_table(
                    ["comparison", "cosine"], [[k, fmt(v)] for k, v in fid["comparisons"].items()]
                )
            )


def print_descent(res: dict[str, Any]) -> None:
    for desc in res.get("descent", {}).values():
        if isinstance(desc, dict) and desc.get("directions"):
            _print_descent(desc)


def _print_descent(desc: dict[str, Any]) -> None:
    print(
        f"\n### Validation objective on S_V after {desc['retrain_epochs']} epoch of re-training "
        f"with α′ moved by ∓{desc['step']:g}·g/‖g‖ (slope = (Δ(−g) − Δ(+g))/2; negative = the "
        f"hypergradient points uphill as it should)"
    )
    base = desc["baseline"]
    print(
        f"baseline α′₀: balanced CE {base['balanced_ce']:.4f}, "
        f"balanced error {base['balanced_error']:.4f}"
    )
    rows = [
        [
            n,
            fmt(d["delta_balanced_ce_minus_g"], 4),
            fmt(d["delta_balanced_ce_plus_g"], 4),
            fmt(d["slope_balanced_ce"], 4),
            fmt(d["slope_balanced_error"], 4),
        ]
        for n, d in desc["directions"].items()
    ]
    hdr = ["direction g", "Δ bal. CE at −g", "Δ bal. CE at +g", "slope bal. CE", "slope bal. err"]
    print(format_table(hdr, rows))


# =============================================================================== main
def main() -> None:
    parser = make_parser("b4_hypergrad", __doc__.splitlines()[0], repeats=5)
    parser.set_defaults(threads=2)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="shared data folder, the lossy-JPEG npz, or a CIFAR pickle root",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small, meaningless numbers"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument(
        "--descent-step", type=float, default=1.0, help="‖Δα′‖ of the descent probes"
    )
    parser.add_argument(
        "--official-repeats",
        type=int,
        default=3,
        help="timing rounds of the official step (0: keep the earlier run's figure)",
    )
    parser.add_argument("--epochs", type=int, default=8, help="LA-init training epochs (fidelity)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir() / "b4",
        help="checkpoints and per-mode hypergradients (resumable runs)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=0.0,
        help="stop starting ResNet work units after this many seconds (0: none)",
    )
    parser.add_argument(
        "--torchopt-site",
        type=Path,
        default=None,
        help="site-packages of a throwaway venv holding torchopt (appended)",
    )
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"Unknown part(s) {unknown}, expected a subset of {PARTS}")
    if args.quick:
        args.epochs = 0
        if args.out == RESULTS_DIR / "b4_hypergrad.json":
            args.out = RESULTS_DIR / "b4_hypergrad_quick.json"
    if args.torchopt_site is not None:
        sys.path.append(str(args.torchopt_site))
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    budget = Budget(args.budget_s)
    t_start = time.perf_counter()

    res: dict[str, Any] = {}
    if Path(args.out).is_file():
        with open(args.out, encoding="utf-8") as fh:
            res = json.load(fh)
    res.update({"protocol": "B4", "environment": environment(), "data_note": LOSSY_NOTE})
    res.setdefault("wall_seconds", {})
    bench = None
    for part in parts:
        t0 = time.perf_counter()
        if part == "convex":
            res["convex"] = run_convex(args)
        elif part == "torchopt":
            res["torchopt"] = run_torchopt(args)
        else:
            bench = bench or Bench(args)
            if part == "cost":
                out = run_cost(bench, budget, previous=res.get("cost"))
            else:
                fns = {"train": run_train, "fidelity": run_fidelity, "descent": run_descent}
                out = fns[part](bench, budget)
            if out is not None:
                out["setup"] = {
                    "data": str(bench.npz),
                    "epochs": args.epochs,
                    "threads": torch.get_num_threads(),
                    "quick": args.quick,
                }
                if part == "descent":  # one entry per probe step
                    old = res.get("descent", {})
                    old = old if "directions" not in old else {}
                    res["descent"] = {**old, f"step={args.descent_step:g}": out}
                else:
                    res[part] = out
        res["wall_seconds"][part] = time.perf_counter() - t0
        write_json(args.out, res)
    print_tables(res)
    print_descent(res)
    print(f"\nwrote {args.out} ({time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
