"""Stability guard of the search: spike clipping, rollback on divergence, fallback to the init.

The bilevel search can fail without a sign: near interpolation the Hessian's top eigenvalue
grows, a Neumann step sized for the old curvature diverges, and the hypergradient explodes
(norms of 10⁵–10⁸ were measured, issue 8); α′ then runs to its box and the model to chance.
:class:`SearchGuard` watches three signals and answers each:

- **spikes**: a hypergradient norm ‖g‖ above ``spike`` × median of the last ``window`` norms is
  scaled down to that bound (robust clipping; the median adapts to the scale of the problem);
- **divergence**: at an epoch end, the validation score on all of S_V exceeds its value at the
  start of the search by more than max(``margin``, noise), or every searched α′ entry sits on
  its box. θ,
  α′ and both optimisers go back to the last healthy epoch end, α's learning rate is multiplied
  by ``shrink``, and after ``max_rollbacks`` rollbacks α is frozen;
- **fallback**: at the end, α* is reset to its initialisation (e.g. LA) when S_V's score is
  worse than that of a *reference* θ trained with the init loss α₀ from the start of
  the search on the same batches (:class:`ReferenceTrajectory`, ``reference``), by more than
  ``fallback_margin``; and (``check_from_scratch``) when a θ trained from scratch with α* does
  not beat the reference by ``keep_z`` standard errors of the paired difference
  (:func:`paired_balanced_error_se`, :func:`paired_score_se`): α* is tuned on S_V, and with a
  few validation images per rare class a better S_V score is weak evidence. A negative
  ``keep_z`` (the default, −1) turns the rule around: α* falls back only when either check is
  worse than the reference by more than |keep_z| paired SEs, i.e. on evidence of harm. Without the
  reference (it costs the θ-steps of the search epochs once more), the comparison is with the
  start of the search, allowing ``fallback_margin`` + noise. The search's retrain then trains
  α₀ exactly as a fixed-loss training of the same seed would: a fallback *is* that model.

The score is the error the validation objective stands for (:func:`guard_score`): balanced
error for the class objectives, ``(1 − λ)·error + λ·DEO`` for the fairness blend, and so on.

"noise" is ``z`` standard errors of a balanced error measured on S_V, at its worst case
(every per-class error at 1/2): SE = √(Σ_k 1/(4 n_k)) / K for the validation counts n_k. With a
validation split of one or two images in the tail classes a balanced error moves by several
points between two equally good models; ``z = 0`` gives the literal rules.

Tail averaging of α′ (``alpha.average``) also lives here, since it reads the same epoch-end
snapshots. Everything the guard did is in :meth:`SearchGuard.report`.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from autobalance.config import GuardConfig
from autobalance.search_space import SearchSpace


def balanced_error_se(counts: Tensor) -> float:
    """Worst-case standard error of a balanced error measured on ``counts`` samples per cell.

    SE = √(Σ_k p_k(1 − p_k)/n_k) / K ≤ √(Σ_k 1/(4 n_k)) / K (binomial per-cell errors, p = ½).
    """
    n = torch.as_tensor(counts, dtype=torch.float64).flatten()
    n = n[n > 0]
    if n.numel() == 0:
        return 0.0
    return float(torch.sqrt((0.25 / n).sum()) / n.numel())


def paired_balanced_error_se(y: Tensor, pred_a: Tensor, pred_b: Tensor) -> float:
    """Standard error of BE(a) − BE(b), two models' balanced errors on the same rows ``y``.

    With d_i = 1[a wrong on i] − 1[b wrong on i] and n_k rows of class k,
    BE(a) − BE(b) = (1/K) Σ_k mean_k(d), so Var = (1/K²) Σ_k Var_k(d)/n_k. Var_k(d) is
    estimated with one prior pseudo-row added to the class (d = 0, d² = ½, Jeffreys' rate):
    v_k = (m_k + ½)/(n_k + 1) − (s_k/(n_k + 1))², with m_k the rows where exactly one model is
    right and s_k = Σ_k d_i. A class of one validation image then counts as uncertain (its error
    flips by 1/K with one prediction), where the plug-in variance and the stratified bootstrap
    say 0; for large n_k, v_k is the sample variance.
    """
    y = torch.as_tensor(y).flatten()
    wrong_a, wrong_b = torch.as_tensor(pred_a) != y, torch.as_tensor(pred_b) != y
    classes = torch.unique(y)
    var = 0.0
    for c in classes:
        rows = y == c
        n = int(rows.sum())
        d = wrong_a[rows].double() - wrong_b[rows].double()
        m, total = float(d.abs().sum()), float(d.sum())
        var += ((m + 0.5) / (n + 1) - (total / (n + 1)) ** 2) / n
    return math.sqrt(var) / max(1, classes.numel())


# above this smallest keepable gain (5 pt of balanced error) the search warns before it starts
# and the report says so: the validation split is too small for the keep rule to keep much
KEEPABLE_GAIN_WARNING = 0.05


def min_keepable_gain(counts: Tensor, keep_z: float) -> float:
    """The smallest balanced-error gain on S_V that the keep rule can accept: ``keep_z`` × the
    paired SE of :func:`paired_balanced_error_se` when the two models agree on every image
    (m_k = s_k = 0, so v_k = ½/(n_k + 1)): (keep_z/K)·√(Σ_k ½/((n_k + 1)·n_k)).

    A property of the validation counts alone, known before the search runs: with one or two
    validation images in a class it is several points, and α* can only be kept by a gain that
    large.
    """
    n = torch.as_tensor(counts, dtype=torch.float64).flatten()
    n = n[n > 0]
    if n.numel() == 0:
        return 0.0
    return float(keep_z * torch.sqrt((0.5 / ((n + 1) * n)).sum()) / n.numel())


BOOTSTRAP_DRAWS = 200  # resamples of S_V behind :func:`paired_score_se`


def paired_score_se(
    score: Callable[[Tensor, Tensor], float],
    pred_a: Tensor,
    pred_b: Tensor,
    strata: Tensor,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> float:
    """Standard error of score(a) − score(b), two models' scores on the same validation rows.

    A stratified paired bootstrap: each draw resamples the rows of every stratum (a class, or a
    class × group cell) with replacement, keeping the stratum sizes, and scores *both* models'
    predictions on the same resample; the SE is the standard deviation of the differences
    D_b = score(pred_a[I_b], I_b) − score(pred_b[I_b], I_b) over the draws. Pairing removes the
    rows both models get right or wrong alike, so two models that differ on few rows have a small
    SE even on a small split. ``score(pred, idx)`` scores predictions of the rows ``idx``.
    The guard uses it to ask whether α* beats its init by more than S_V's noise (``keep_z``).
    """
    strata = torch.as_tensor(strata).flatten()
    if draws < 2 or strata.numel() == 0:
        return 0.0
    gen = torch.Generator().manual_seed(seed)
    groups = [torch.nonzero(strata == s).flatten() for s in torch.unique(strata)]
    diffs = []
    for _ in range(draws):
        idx = torch.cat(
            [rows[torch.randint(len(rows), (len(rows),), generator=gen)] for rows in groups]
        )
        diffs.append(score(pred_a[idx], idx) - score(pred_b[idx], idx))
    return float(statistics.stdev(diffs))


# The 0–1 metric counterpart of each validation objective: what the guard compares. The
# objectives are smooth surrogates (CE-based); the guard judges the model by the error they
# stand for, measured on all of S_V. ``lam`` weights the second term as in the objective.
_SCORES: dict[str, tuple[str, str | None]] = {
    "ce": ("error", None),
    "balanced_ce": ("balanced_error", None),
    "balanced_soft_error": ("balanced_error", None),
    "blend": ("error", "balanced_error"),
    "deo": ("deo", None),
    "ce_deo": ("error", "deo"),
    "group_balanced_ce": ("group_balanced_error", None),
    "worst_group": ("worst_group_error", None),
}
DEFAULT_LAM = 0.5  # the objectives' default λ (autobalance.objectives.blend / ce_deo)


def guard_score_name(objective: str, lam: float | None = None) -> str:
    """Human name of the score the guard compares for ``objective``, e.g. ``balanced error``
    or ``0.9·error + 0.1·deo``."""
    first, second = _SCORES.get(objective, ("balanced_error", None))
    if second is None:
        return first.replace("_", " ")
    w = DEFAULT_LAM if lam is None else float(lam)
    return f"{1 - w:g}·{first.replace('_', ' ')} + {w:g}·{second.replace('_', ' ')}"


def guard_score(metrics: Any, objective: str, lam: float | None = None) -> float:
    """The guard's score of a model from its S_V ``metrics`` (``evaluate``'s dict): the error
    the validation objective is a surrogate of. ``ce`` → error, ``balanced_ce`` /
    ``balanced_soft_error`` → balanced error, ``blend`` → (1 − λ)·error + λ·balanced error,
    ``ce_deo`` → (1 − λ)·error + λ·DEO (eq. 4.1 on errors), ``deo`` → DEO,
    ``group_balanced_ce`` → group-balanced error, ``worst_group`` → worst-group error."""
    first, second = _SCORES.get(objective, ("balanced_error", None))
    if second is None:
        return float(metrics[first])
    w = DEFAULT_LAM if lam is None else float(lam)
    return (1 - w) * float(metrics[first]) + w * float(metrics[second])


class SearchGuard:
    """Watches one search and keeps what it needs to roll back (see the module docstring).

    Args:
        cfg: the :class:`GuardConfig`.
        space: the search space whose raw α′ the guard snapshots and restores.
        val_counts: S_V's samples per class (or cell), for the noise level.
        score_name: what the scores passed in are (:func:`guard_score_name`).
    """

    def __init__(
        self,
        cfg: GuardConfig,
        space: SearchSpace,
        val_counts: Tensor,
        score_name: str = "balanced error",
    ) -> None:
        self.cfg = cfg
        self.score_name = score_name
        self.space = space
        self.noise = cfg.z * balanced_error_se(val_counts)
        self.min_keepable_gain = (
            min_keepable_gain(val_counts, cfg.keep_z)
            if score_name == "balanced error" and cfg.reference and cfg.check_from_scratch
            else None
        )
        self.alpha0 = self._raw_copy()
        self.norms: list[float] = []
        self.start_score: float | None = None
        self.last_score: float | None = None
        self.healthy: dict[str, Any] | None = None
        self.snapshots: list[tuple[int, dict[str, Tensor]]] = []
        self.events: list[dict[str, Any]] = []
        self.rollbacks = 0
        self.spikes = 0
        self.frozen = False
        self.reference_score: float | None = None
        self.paired_se: float | None = None
        # α′ as the search ended, when a fallback replaced it by α₀: kept, not lost
        self.rejected: dict[str, Tensor] | None = None

    # ------------------------------------------------------------------ per hyper-step
    def spike_bound(self, norm: float) -> float | None:
        """Record ‖g‖; return the clip bound ``spike``·median(recent ‖g‖) when ‖g‖ exceeds it.

        The norms kept for the median are the clipped ones, so one spike does not raise the
        bound for the next. At least three earlier norms are needed before anything is clipped.
        """
        bound = None
        recent = self.norms[-self.cfg.window :]
        if self.cfg.enabled and len(recent) >= 3:
            limit = self.cfg.spike * statistics.median(recent)
            if norm > limit > 0:
                bound = limit
                self.spikes += 1
        self.norms.append(norm if bound is None else bound)
        return bound

    # ------------------------------------------------------------------ per epoch
    def pinned_fraction(self) -> float:
        """Fraction of the searched α′ entries that sit on a bound of their box."""
        total, pinned = 0, 0
        for comp, raw in self.space.raw.items():
            if comp not in self.space.bounds:
                continue
            lo, hi = self.space.bounds[comp]
            r = raw.detach()
            pinned += int(((r - lo).abs() < 1e-6).sum() + ((r - hi).abs() < 1e-6).sum())
            total += r.numel()
        return pinned / total if total else 0.0

    def start(self, score: float) -> None:
        """The validation score when the hyper-steps begin: the reference score."""
        self.start_score = score
        self.last_score = score

    def end_of_epoch(
        self,
        epoch: int,
        score: float,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        alpha_opt: torch.optim.Optimizer,
        alpha_sched: Any,
        reference_score: float | None = None,
    ) -> dict[str, Any] | None:
        """Check one search epoch's end; roll back on divergence. Returns the event, if any.

        ``reference_score``: S_V score of the reference θ (trained with α₀) at this epoch. The
        searched θ is then said to diverge only when it is worse than both the start of the
        search and the reference by the margin: θ alone (without any α step) also drifts on
        S_V, and that drift is not the search's doing (B3, CelebA: the reference itself ended
        0.1 above the start)."""
        self.last_score = score
        pinned = self.pinned_fraction()
        if self.start_score is None:
            self.start_score = score
        diverged = None
        if self.cfg.enabled and not self.frozen:
            margin = max(self.cfg.margin, self.noise)
            against, what = self.start_score, "start"
            if reference_score is not None and reference_score > against:
                against, what = reference_score, "reference θ"
            if score > against + margin:
                diverged = (
                    f"validation {self.score_name} {score:.4f} > {what} {against:.4f} "
                    f"+ margin {margin:.4f}"
                )
            elif pinned >= 1.0:
                diverged = "every searched α′ entry is on a bound of its box"
        if diverged is None:
            raw = self._raw_copy()
            self.snapshots.append((epoch, raw))  # for the tail average
            if self.cfg.enabled:  # what a rollback returns to; never read when disabled
                self.healthy = {
                    "epoch": epoch,
                    "model": copy.deepcopy(model.state_dict()),
                    "optimizer": copy.deepcopy(optimizer.state_dict()),
                    "raw": raw,
                    "alpha_opt": copy.deepcopy(alpha_opt.state_dict()),
                }
            return None
        event: dict[str, Any] = {
            "epoch": epoch,
            "event": "rollback",
            "reason": diverged,
            "pinned_fraction": pinned,
        }
        if self.healthy is None:
            # nothing healthy to return to (diverged in the first search epoch): reset α′
            self._load_raw(self.alpha0)
            event["to_epoch"] = None
        else:
            model.load_state_dict(self.healthy["model"])
            optimizer.load_state_dict(copy.deepcopy(self.healthy["optimizer"]))
            alpha_opt.load_state_dict(copy.deepcopy(self.healthy["alpha_opt"]))
            self._load_raw(self.healthy["raw"])
            event["to_epoch"] = self.healthy["epoch"]
        self.rollbacks += 1
        alpha_sched.base_lrs = [b * self.cfg.shrink for b in alpha_sched.base_lrs]
        for group in alpha_opt.param_groups:
            group["lr"] *= self.cfg.shrink
        if self.rollbacks >= self.cfg.max_rollbacks:
            self.frozen = True
            event["frozen"] = True
        self.events.append(event)
        return event

    # ------------------------------------------------------------------ end of the search
    def finish(
        self,
        *,
        average: float,
        search_epochs: int,
        start_epoch: int,
        reference_score: float | None = None,
        paired_se: float | None = None,
    ) -> dict[str, Any]:
        """Set α* in the space: tail-averaged if asked, or the init on fallback; report.

        ``reference_score``: S_V score of the reference θ trained with α₀; when given,
        α* falls back if the searched θ scores worse than it by more than ``fallback_margin``,
        less ``keep_z`` · ``paired_se`` (the SE of the searched − reference difference) when
        this is the last check (``check_from_scratch`` off).
        """
        averaged = 0
        if average > 0 and self.snapshots:
            n_avg = max(1, math.ceil(average * max(1, search_epochs - start_epoch)))
            tail = [raw for ep, raw in self.snapshots if ep >= search_epochs - n_avg]
            if tail:
                self._load_raw({k: torch.stack([r[k] for r in tail]).mean(0) for k in tail[0]})
                averaged = len(tail)
        self.reference_score = reference_score
        self.paired_se = paired_se
        against: float | None
        if reference_score is not None:
            against, what = reference_score, "the reference θ trained with the init loss"
            # keep_z ≥ 0 weighs the last check's evidence (the from-scratch θ's, when it runs);
            # keep_z < 0 (fall back only on harm) tolerates |keep_z| SEs in every check
            last = not self.cfg.check_from_scratch or self.cfg.keep_z < 0
            allowance = self.allowance(paired_se if last else None)
        else:
            against, what = self.start_score, "the start of the search"
            allowance = self.cfg.fallback_margin + self.noise
        failed = (
            self.cfg.enabled
            and not self.at_init()
            and against is not None
            and self.last_score is not None
            and self.last_score > against + allowance
        )
        reason = None
        if failed:
            reason = (
                f"final validation {self.score_name} {self.last_score:.4f} is worse than "
                f"{against:.4f} of {what} (allowance {allowance:.4f}): "
                + ("α* reset to the init" if self.cfg.fallback else "α* kept (fallback off)")
            )
        fell_back = failed and self.cfg.fallback
        if fell_back:
            self.reset_to_init()
        return self.report(
            fell_back=fell_back, reason=reason, averaged=averaged, would_fall_back=failed
        )

    def allowance(self, paired_se: float | None) -> float:
        """How much worse than the reference θ a θ trained with α* may score on S_V and keep α*:
        ``fallback_margin`` − ``keep_z`` · SE of the paired difference (negative demands a gain;
        a negative ``keep_z`` tolerates a loss within |keep_z| SEs)."""
        return self.cfg.fallback_margin - self.cfg.keep_z * (paired_se or 0.0)

    def report(
        self,
        *,
        fell_back: bool = False,
        reason: str | None = None,
        averaged: int = 0,
        would_fall_back: bool = False,
    ) -> dict[str, Any]:
        """What the guard saw and did, for the run's summary. ``would_fall_back`` is its
        verdict, also with ``guard.fallback`` off (``fell_back`` is whether it acted on it)."""
        return {
            "fell_back": fell_back,
            "would_fall_back": would_fall_back,
            "fallback_reason": reason,
            "rollbacks": self.rollbacks,
            "frozen": self.frozen,
            "spikes_clipped": self.spikes,
            "max_hypergrad_norm": max(self.norms) if self.norms else None,
            "val_score": self.score_name,
            "start_val_score": self.start_score,
            "final_val_score": self.last_score,
            "reference_val_score": self.reference_score,
            "reference_paired_se": self.paired_se,
            "pinned_fraction": self.pinned_fraction(),
            "noise": self.noise,
            "min_keepable_gain": self.min_keepable_gain,
            "averaged_snapshots": averaged,
            "events": list(self.events),
        }

    def at_init(self) -> bool:
        """Whether α′ is still exactly its initialisation (nothing to check or fall back from)."""
        current = self.space.searched()
        return all(torch.equal(current[k].detach().cpu(), v.cpu()) for k, v in self.alpha0.items())

    def reset_to_init(self) -> None:
        """α′ ← α₀ (the fallback); the α′ it replaces is kept in :attr:`rejected`."""
        self.rejected = self._raw_copy()
        self._load_raw(self.alpha0)

    # ------------------------------------------------------------------ state
    def _raw_copy(self) -> dict[str, Tensor]:
        # α′ of the loss and, when a policy joined α, its parameters (space.searched)
        return {k: v.detach().clone() for k, v in self.space.searched().items()}

    def _load_raw(self, raw: dict[str, Tensor]) -> None:
        self.space.load_searched(raw)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the guard exactly (tensors and plain data only)."""
        return {
            "norms": list(self.norms),
            "start_score": self.start_score,
            "last_score": self.last_score,
            "healthy": self.healthy,
            "snapshots": [(ep, raw) for ep, raw in self.snapshots],
            "events": list(self.events),
            "rollbacks": self.rollbacks,
            "spikes": self.spikes,
            "frozen": self.frozen,
            "alpha0": self.alpha0,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.norms = list(state["norms"])
        self.start_score = state["start_score"]
        self.last_score = state["last_score"]
        self.healthy = state["healthy"]
        self.snapshots = [(int(ep), raw) for ep, raw in state["snapshots"]]
        self.events = list(state["events"])
        self.rollbacks = int(state["rollbacks"])
        self.spikes = int(state["spikes"])
        self.frozen = bool(state["frozen"])
        self.alpha0 = state["alpha0"]


class ReferenceTrajectory:
    """θ trained on from the start of the search with the init loss α₀, on the same batches.

    Forked from the searched θ (weights, momentum, schedule) when the hyper-steps begin, it
    then takes the same θ-steps as the search, on the same batches and augmentations (every
    epoch's randomness is seeded by (seed, phase, epoch)), with α frozen at α₀. At the end its
    validation score is what "the init would have given" (paired with the search's: the
    two models differ only by α), the reference of the guard's fallback.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        rebuild: Callable[[nn.Module], tuple[torch.optim.Optimizer, Any]],
        loss: Any,
    ) -> None:
        """``rebuild(model)`` makes the (optimizer, scheduler) pair of the search's θ."""
        self.model = copy.deepcopy(model)
        self.optimizer, self.scheduler = rebuild(self.model)
        # a deep copy: load_state_dict would share the search's momentum buffers
        self.optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        self.scheduler.load_state_dict(scheduler.state_dict())
        self.loss = loss

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


__all__ = [
    "KEEPABLE_GAIN_WARNING",
    "ReferenceTrajectory",
    "SearchGuard",
    "balanced_error_se",
    "guard_score",
    "guard_score_name",
    "min_keepable_gain",
    "paired_balanced_error_se",
    "paired_score_se",
]
