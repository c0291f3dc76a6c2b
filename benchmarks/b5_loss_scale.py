"""B5 — loss at scale: forward+backward of the parametric loss against ``F.cross_entropy``.

For K ∈ {10, 1000, 8142} classes and a float32 batch of 256 on the CPU, each case below is timed
as one forward+backward, interleaved with ``F.cross_entropy`` forward+backward in the same
process, and reported as the median ratio of the two (see ``_common.ratio_timer``):

- ``a_fixed``: ``parametric_cross_entropy`` with constant w, l, Δ (eq. 2.2 of Li et al. 2021,
  arXiv 2201.01212), gradient to the logits;
- ``b_la``: logit adjustment only, constant l = log π (Menon et al. 2021);
- ``c_theta_step``: ``SearchSpace.loss(logits, y, detach=True)``, gradient to the logits: the loss
  of every training step of the search (α held constant);
- ``d_alpha_grad``: ``SearchSpace.loss(logits, y)``, gradients to the logits and to α′: what a
  hyper-step differentiates.

The search space is the frequency-clustered one (cluster size 40) with LA init, searching l and
Δ; at K = 10 it is the per-class (``full``) space. α′ is set to small random values, as after
some hyper-steps. Before timing, every case is checked against a plain-autograd float64
reference. Run: ``python benchmarks/b5_loss_scale.py [--repeats N] [--out PATH]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from _common import environment, format_table, make_parser, ratio_timer, set_threads, write_json
from torch import Tensor

from autobalance.losses import parametric_cross_entropy
from autobalance.search_space import SearchSpace

TARGET = 1.3
CASES = ("a_fixed", "b_la", "c_theta_step", "d_alpha_grad")


def long_tail_counts(k: int, imbalance: float = 100.0, head: int = 500) -> Tensor:
    """n_k = max(1, ⌊head · ρ^(−k/(K−1))⌋), a long-tailed count table."""
    ranks = torch.arange(k, dtype=torch.float64) / max(k - 1, 1)
    return (head * imbalance ** (-ranks)).floor().clamp(min=1)


def make_space(counts: Tensor, gen: torch.Generator) -> SearchSpace:
    """The B5 search space, with α′ moved off its initial zeros."""
    k = counts.numel()
    kind = "full" if k <= 40 else "clusters"
    space = SearchSpace(
        counts,
        kind=kind,
        cluster_size=40 if kind == "clusters" else None,
        search=("additive", "multiplicative"),
        init="la",
    )
    with torch.no_grad():
        for p in space.hparams():
            p.copy_(torch.empty_like(p).uniform_(-0.3, 0.3, generator=gen))
    return space


def reference_loss(x: Tensor, y: Tensor, w: Tensor | None, l: Tensor, d: Tensor | None) -> Tensor:
    """(1/N) Σ_i w_{y_i} · −log softmax(Δ ⊙ x_i + l)_{y_i} with plain autograd ops."""
    z = x * d + l if d is not None else x + l
    nll = -torch.log_softmax(z, 1).gather(1, y[:, None]).squeeze(1)
    return (nll if w is None else nll * w[y]).mean()


def check_cases(
    x: Tensor, y: Tensor, consts: dict[str, Tensor], space: SearchSpace
) -> dict[str, float]:
    """Max relative gradient error of each case against a float64 autograd reference."""
    errors: dict[str, float] = {}

    def rel(a: Tensor, b: Tensor) -> float:
        return float((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-30))

    x64 = x.detach().double().requires_grad_()
    w, l, d = (consts[c].double() for c in ("weight", "additive", "multiplicative"))
    fixed = {c: consts[c] for c in ("weight", "additive", "multiplicative")}
    got = torch.autograd.grad(parametric_cross_entropy(x, y, **fixed), x)[0]
    errors["a_fixed"] = rel(got, torch.autograd.grad(reference_loss(x64, y, w, l, d), x64)[0])
    got = torch.autograd.grad(parametric_cross_entropy(x, y, additive=consts["la"]), x)[0]
    ref = torch.autograd.grad(reference_loss(x64, y, None, consts["la"].double(), None), x64)[0]
    errors["b_la"] = rel(got, ref)

    alphas = space.hparams()
    eff = space.effective()
    ref_loss = reference_loss(
        x64, y, eff["weight"].double(), eff["additive"].double(), eff["multiplicative"].double()
    )
    ref = torch.autograd.grad(ref_loss, [x64, *alphas])
    got = torch.autograd.grad(space.loss(x, y, detach=True), x)[0]
    errors["c_theta_step"] = rel(got, ref[0])
    got_all = torch.autograd.grad(space.loss(x, y), [x, *alphas])
    errors["d_alpha_grad"] = max(rel(g, r) for g, r in zip(got_all, ref))
    return errors


def build_cases(k: int, n: int, seed: int) -> tuple[dict[str, Callable[[], object]], Any]:
    """The baseline and the four cases for K = ``k`` classes and batch ``n``."""
    gen = torch.Generator().manual_seed(seed)
    counts = long_tail_counts(k)
    log_prior = (counts / counts.sum()).log().float()
    y = torch.multinomial(counts / counts.sum(), n, replacement=True, generator=gen)
    x = (2 * torch.randn(n, k, generator=gen)).requires_grad_()
    consts = {
        "weight": torch.rand(k, generator=gen) + 0.5,
        "additive": log_prior,
        "multiplicative": torch.rand(k, generator=gen) * 0.5 + 0.75,
        "la": log_prior,
    }
    space = make_space(counts, gen)
    alphas = space.hparams()
    wrt = [x, *alphas]

    fns: dict[str, Callable[[], object]] = {
        "cross_entropy": lambda: torch.autograd.grad(F.cross_entropy(x, y), x),
        "a_fixed": lambda: torch.autograd.grad(
            parametric_cross_entropy(
                x,
                y,
                weight=consts["weight"],
                additive=consts["additive"],
                multiplicative=consts["multiplicative"],
            ),
            x,
        ),
        "b_la": lambda: torch.autograd.grad(parametric_cross_entropy(x, y, additive=log_prior), x),
        "c_theta_step": lambda: torch.autograd.grad(space.loss(x, y, detach=True), x),
        "d_alpha_grad": lambda: torch.autograd.grad(space.loss(x, y), wrt),
    }
    info = {
        "space": space.extra_repr(),
        "errors": check_cases(x, y, consts, space),
    }
    return fns, info


def main() -> None:
    parser = make_parser("b5_loss_scale", __doc__.splitlines()[0], repeats=150)
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 1000, 8142])
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    torch.manual_seed(args.seed)

    results: list[dict[str, Any]] = []
    rows: list[list[object]] = []
    for k in args.ks:
        fns, info = build_cases(k, args.batch, args.seed)
        bad = {c: e for c, e in info["errors"].items() if not e < 1e-4}
        if bad:
            raise RuntimeError(f"K={k}: gradients disagree with the reference: {bad}")
        timing = ratio_timer(fns, "cross_entropy", repeats=args.repeats, min_sample_s=0.01)
        base_ms = timing["cross_entropy"]["median_s"] * 1e3
        for case in CASES:
            t = timing[case]
            meets = t["ratio"] <= TARGET
            results.append(
                {
                    "K": k,
                    "batch": args.batch,
                    "case": case,
                    "ratio": t["ratio"],
                    "ratio_q25": t["ratio_q25"],
                    "ratio_q75": t["ratio_q75"],
                    "ratio_of_min": t["ratio_of_min"],
                    "median_ms": t["median_s"] * 1e3,
                    "cross_entropy_ms": base_ms,
                    "calls_per_sample": t["number"],
                    "meets_target": meets,
                    "max_rel_grad_error": info["errors"][case],
                    "space": info["space"],
                }
            )
            iqr = f"{t['ratio_q25']:.2f}–{t['ratio_q75']:.2f}"
            rows.append([k, case, t["ratio"], iqr, t["ratio_of_min"], "yes" if meets else "no"])

    payload = {
        "protocol": "B5",
        "description": "forward+backward time relative to F.cross_entropy, same process",
        "target_ratio": TARGET,
        "config": {
            "ks": args.ks,
            "batch": args.batch,
            "dtype": "float32",
            "device": "cpu",
            "threads": threads,
            "repeats": args.repeats,
            "seed": args.seed,
        },
        "environment": environment(),
        "results": results,
    }
    path = write_json(args.out, payload)
    headers = ["K", "case", "× F.cross_entropy (median)", "IQR", "ratio of minima", f"≤ {TARGET}×"]
    print(format_table(headers, rows))
    print(f"\n{threads} thread(s), batch {args.batch}, float32, CPU; written to {path}")


if __name__ == "__main__":
    main()
