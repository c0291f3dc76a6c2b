"""Algorithm 1 of AutoBalance (Li et al. 2021, arXiv 2201.01212): search α, then retrain θ.

Phases:
1. split S into S_T / S_V, stratified (80/20; 50/50 by (class, group) cell with groups);
2. ``warmup``: t₁ epochs of SGD on θ with the init loss ℓ(α₀);
3. ``search``: SGD on θ with ℓ(α); every k θ-steps a hyper-step on α along the implicit
   hypergradient  dL_val/dα = ∂L_val/∂α − ∂²L_train/∂α∂θ · [∂²L_train/∂θ²]⁻¹ ∇θ L_val;
4. ``retrain``: θ reset, SGD on all of S with α* frozen.

The loop only emits events (``autobalance.events``); progress, files and plots are callbacks.
A checkpoint is written at the end of every epoch (every ``checkpoint_every`` epochs, and at
each phase end); :meth:`AutoBalanceSearch.run` resumes from it and replays the remaining epochs
exactly (all randomness is seeded per (phase, epoch)). In the checkpoint directory: ``last.pt``
(checksummed), ``prev.pt`` (the one before, used when ``last.pt`` is damaged) and
``journal.jsonl``, the append-only history, trajectory and hyper-step log, whose prefix each
checkpoint pins by size and SHA-256 (so a checkpoint's cost does not grow with the run).

Learned augmentation (``SearchConfig.augment``, paper §2 "PDA"): a policy A_y
(:mod:`autobalance.augment`) joins α = [w, l, Δ, param(A)]. The θ-steps of every phase augment
their batches with it (exact sampling, no graph); the hyper-step augments its training batch
inside the graph, so ∂²L_train/∂φ∂θ exists and the same implicit hypergradient updates the
policy's parameters φ (``augment.hypergrad: unrolled`` takes a one-step unrolled form for φ).

Stability (``SearchConfig.guard``, :class:`autobalance.guard.SearchGuard`): hypergradient
spikes are clipped, a search whose validation score runs away is rolled back with a
smaller α step, and an α* that ends worse on S_V than its initialisation falls back to it; the
result's ``guard`` report says what happened.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from autobalance import distributed
from autobalance.augment.factory import as_batch_augment, build_policy
from autobalance.checkpoint import (
    LAST,
    PREV,
    RecordLog,
    fault_point,
    load_latest,
    remove_orphan_temps,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from autobalance.config import SearchConfig
from autobalance.data.adapters import LabelledData, as_dataset
from autobalance.data.counts import group_counts
from autobalance.data.samplers import ClassBalancedSampler, class_index
from autobalance.data.splits import stratified_split
from autobalance.data.streaming import StreamingDataset
from autobalance.events import Callback, CallbackList
from autobalance.guard import (
    KEEPABLE_GAIN_WARNING,
    ReferenceTrajectory,
    SearchGuard,
    guard_score,
    guard_score_name,
    paired_balanced_error_se,
    paired_score_se,
)
from autobalance.hypergrad import NonFiniteHypergradient, implicit_hypergradient
from autobalance.hypergrad.eigen import power_iteration
from autobalance.losses import ParametricCE
from autobalance.objectives import make_objective
from autobalance.search_space import SearchSpace
from autobalance.train import (
    OptimizerFactory,
    SchedulerFactory,
    Transform,
    decay_factor,
    identity_transform,
    make_optimizer,
    make_scheduler,
    predict_data,
    prediction_metrics,
    run_epochs,
    seeded_generator,
)

PHASES = ("warmup", "search", "retrain")
log = logging.getLogger("autobalance")
# the retrain draws the batches (and augmentations) of ``fit(..., seed=seed)``: a search that
# falls back retrains exactly the fixed-loss training of its seed, and a kept α* is compared
# with that training on the same batch order
_PHASE_ID = {"warmup": 1, "search": 1, "retrain": 0}
JOURNAL = "journal.jsonl"
_CHECKPOINT_KEYS = frozenset(
    {"phase", "epoch", "model", "optimizer", "scheduler", "space", "alpha_opt", "alpha_sched"}
    | {"timings", "rng"}
)


@contextmanager
def preserved_buffers(model: nn.Module) -> Iterator[None]:
    """Restore every buffer (BatchNorm running stats, counters) on exit.

    The hyper-step's extra forward passes must not move BatchNorm statistics.
    """
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])


def _sample_shape(data: Any) -> tuple[int, ...] | None:
    """One in-memory sample's shape (None when the data are streamed)."""
    x = getattr(data, "x", None)
    return tuple(int(d) for d in x.shape[1:]) if isinstance(x, Tensor) else None


def split_dataset(
    data: LabelledData, val_fraction: float | None, seed: int
) -> tuple[LabelledData, LabelledData]:
    """Stratified S_T / S_V: 80/20 by class, or 50/50 by (class, group) cell with groups."""
    frac = val_fraction
    if frac is None:
        frac = 0.5 if data.groups is not None else 0.2
    tr, va = stratified_split(
        data.y.numpy(),
        val_fraction=frac,
        seed=seed,
        groups=None if data.groups is None else data.groups.numpy(),
    )
    return data.subset(torch.as_tensor(tr)), data.subset(torch.as_tensor(va))


def _counts(data: LabelledData) -> Tensor:
    if data.groups is None:
        return data.class_counts()
    table = group_counts(
        data.y.numpy(),
        data.groups.numpy(),
        num_classes=data.num_classes,
        num_groups=data.num_groups,
    )
    return torch.as_tensor(table)


@dataclass
class SearchResult:
    """What Algorithm 1 returns.

    ``alpha``: effective (w, l, Δ) per class (K,) or per cell (K, G) at the end of the search;
    ``trajectory``: α per epoch; ``history``: metrics per epoch; ``model``: the retrained θ
    (or the searched one when retraining is off); ``space``: the search space holding α*;
    ``guard``: the stability report (rollbacks, clipped spikes, whether α* fell back to its
    initialisation and why; see :class:`autobalance.guard.SearchGuard`); ``policy``: the
    learned augmentation policy of α* (:mod:`autobalance.augment`), None without one.
    ``rejected_alpha`` / ``rejected_policy``: when the guard fell back, the effective (w, l, Δ)
    and policy the search had ended with, on the retrain's counts, so that a user can still
    train with them (:meth:`rejected_loss_module`); None otherwise.
    """

    alpha: dict[str, Tensor]
    trajectory: list[dict[str, Any]]
    history: list[dict[str, Any]]
    hyper_steps: list[dict[str, Any]]
    model: nn.Module
    space: SearchSpace
    timings: dict[str, float] = field(default_factory=dict)
    guard: dict[str, Any] = field(default_factory=dict)
    policy: Any = None
    rejected_alpha: dict[str, Tensor] | None = None
    rejected_policy: Any = None

    def loss_module(self) -> ParametricCE:
        """α* as a plain, frozen ``nn.Module`` loss for any training loop."""
        return loss_from_alpha(self.alpha)

    def rejected_loss_module(self) -> ParametricCE | None:
        """The loss the guard rejected (the search's own α*, before the fallback), or None."""
        return None if self.rejected_alpha is None else loss_from_alpha(self.rejected_alpha)


def loss_from_alpha(alpha: dict[str, Tensor]) -> ParametricCE:
    """Build a :class:`ParametricCE` holding the effective (w, l, Δ) of ``alpha``."""
    w = alpha["weight"]
    num_groups = 1 if w.dim() == 1 else w.shape[1]
    loss = ParametricCE(
        w.shape[0],
        num_groups=num_groups,
        weight=alpha["weight"],
        additive=alpha["additive"],
        multiplicative=alpha["multiplicative"],
        delta_scale=max(2.0, float(alpha["multiplicative"].detach().max()) * 1.01),
    )
    loss.requires_grad_(False)
    return loss


def _batch_mean_loss(
    loss: Callable[[Tensor, Tensor, Tensor | None], Tensor],
    logits_fn: Callable[[Tensor], Tensor],
    batches: list[tuple[Tensor, Tensor, Tensor | None]],
    fuse: bool,
) -> Tensor:
    """Mean of ``loss`` over the (x, y, groups) ``batches``, one forward each; ``fuse``
    (``hyper.fuse_batches``): one forward over their concatenation, in order."""
    if fuse:
        xs, ys, gs = zip(*batches, strict=True)
        groups = None if gs[0] is None else torch.cat(gs)
        batches = [(torch.cat(xs), torch.cat(ys), groups)]
    total = torch.zeros((), device=batches[0][1].device)
    for x, y, g in batches:
        total = total + loss(logits_fn(x), y, g) / len(batches)
    return total


class _StepEvents(Callback):
    """Forwards only the θ-step events (``on_batch_end``) to ``target``: a training whose
    epochs belong to no phase record (the guard's from-scratch check) still moves the bars."""

    def __init__(self, target: Callback) -> None:
        self.target = target

    def on_batch_end(self, phase: str, step: int, info: dict[str, Any]) -> None:
        self.target.on_batch_end(phase, step, info)


class AutoBalanceSearch:
    """Algorithm 1 with explicit phases, events, checkpoints and resume.

    Args:
        config: the :class:`SearchConfig`.
        model_fn: builds a fresh model (called under the run's seed; for the retrain phase the
            same seed gives the same initial θ: "reset θ").
        train_data: the full training set S (split internally).
        test_data: optional held-out set, evaluated every epoch for reports only.
        transform / eval_transform: batch transforms (augmentation, normalisation).
        callbacks: observers.
        checkpoint_dir: where ``last.pt`` (and ``prev.pt``, ``journal.jsonl``) are written;
            ``None`` disables checkpoints.
    """

    def __init__(
        self,
        config: SearchConfig,
        model_fn: Callable[[], nn.Module],
        train_data: LabelledData | Any,
        *,
        test_data: LabelledData | Any | None = None,
        transform: Transform = identity_transform,
        eval_transform: Transform = identity_transform,
        callbacks: list[Callback] | None = None,
        checkpoint_dir: str | Path | None = None,
        optimizer_factory: OptimizerFactory | None = None,
        scheduler_factory: SchedulerFactory | None = None,
    ) -> None:
        self.cfg = config
        self.optimizer_factory = optimizer_factory
        self.scheduler_factory = scheduler_factory
        self.model_fn = model_fn
        train_data = as_dataset(train_data, name="train")
        test_data = None if test_data is None else as_dataset(test_data, name="test")
        self.full = train_data
        self.test = test_data
        self.transform = transform
        self.eval_transform = eval_transform
        self.callbacks = CallbackList(callbacks or [])
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self._journal = (
            RecordLog(self.checkpoint_dir / JOURNAL) if self.checkpoint_dir is not None else None
        )
        self.device = torch.device(config.device)
        if train_data.groups is None and config.objective in ("deo", "ce_deo", "group_balanced_ce"):
            raise ValueError(f"objective '{config.objective}' needs a dataset with groups")
        self.s_train, self.s_val = split_dataset(train_data, config.val_fraction, config.seed)
        counts = _counts(self.s_train)
        self.space = config.space.build(counts).to(self.device)
        self.policy = build_policy(
            config.augment,
            self.space.clusters,
            num_groups=self.space.shape[1] if len(self.space.shape) == 2 else 1,
            transform=transform,
            input_shape=_sample_shape(train_data),
        )
        if self.policy is not None:  # α = [w, l, Δ, param(A)] (paper §2)
            self.policy.to(self.device)
            self.space.attach_policy(self.policy, search_loss=config.augment.search_loss)
        self._policy0: Any = None
        self.objective = make_objective(
            config.objective,
            **({"lam": config.objective_lam} if config.objective in ("blend", "ce_deo") else {}),
            **(
                {"temperature": config.objective_temperature}
                if config.objective in ("worst_group", "balanced_soft_error")
                else {}
            ),
            **(
                {"num_groups": train_data.num_groups}
                if train_data.groups is not None
                and config.objective in ("deo", "ce_deo", "group_balanced_ce", "worst_group")
                else {}
            ),
        )
        self._val_index = self._val_sampler_index()
        self._neumann_scale: float | None = None
        self._scale_epoch = -1
        self._eigvec: tuple[Tensor, ...] | None = None
        self.guard = SearchGuard(
            config.guard,
            self.space,
            _counts(self.s_val),
            score_name=guard_score_name(config.objective, config.objective_lam),
        )
        floor = self.guard.min_keepable_gain
        if (
            config.guard.enabled
            and config.guard.fallback
            and floor is not None
            and floor > KEEPABLE_GAIN_WARNING
        ):
            log.warning(
                "the validation split is small (rarest classes: %s images): the guard can keep "
                "α* only if it beats the init by ≥ %.1f pt of balanced error on S_V "
                "(guard.keep_z = %g); otherwise the search hands back the init. A larger "
                "val_fraction or a lower keep_z changes that.",
                sorted(int(c) for c in _counts(self.s_val).flatten())[:3],
                100 * floor,
                config.guard.keep_z,
            )

    # ------------------------------------------------------------------ helpers
    def _new_model(self) -> nn.Module:
        torch.manual_seed(self.cfg.seed)
        return self.model_fn().to(self.device)

    def _alpha_optimizer(self) -> torch.optim.Optimizer:
        a = self.cfg.alpha
        params: Any = self.space.hparams()
        if self.policy is not None and self.cfg.augment.lr is not None:
            n_pol = len(self.policy.hparams())  # the policy's own lr (augment.lr)
            groups = [
                {"params": params[: len(params) - n_pol]},
                {"params": params[len(params) - n_pol :], "lr": self.cfg.augment.lr},
            ]
            params = [gr for gr in groups if gr["params"]]
        if a.optimizer == "adam":
            return torch.optim.Adam(params, lr=a.lr, weight_decay=a.weight_decay)
        return torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)

    def _alpha_scheduler(
        self, opt: torch.optim.Optimizer, total_steps: int
    ) -> torch.optim.lr_scheduler.LRScheduler:
        a = self.cfg.alpha
        if a.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, total_steps))
        if a.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(opt, a.step_every, a.step_gamma)
        # constant, or "follow": the hook sets lr = base · θ's decay factor before each step
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    def _val_sampler_index(self) -> list[Tensor]:
        return class_index(self.s_val.y, self.s_val.groups, self.s_val.num_groups)

    def _sample(self, data: LabelledData, n: int, gen: torch.Generator, balanced: bool) -> Tensor:
        """Positions of one hyper-step batch: uniform with replacement, or class- (cell-)
        balanced from S_V's label index (:class:`ClassBalancedSampler`); never the images."""
        if balanced:
            return ClassBalancedSampler(self._val_index, n, gen).draw()
        return torch.randint(len(data), (n,), generator=gen)

    def _batch(
        self, data: LabelledData, index: Tensor, gen: torch.Generator | None, *, train: bool = True
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """(x, y, groups) of ``index`` on the device; training batches are augmented, validation
        batches (``train=False``) get the evaluation transform: L_val scores clean inputs. A
        streamed dataset loads the rows through its ``DataLoader`` (its ``eval_dataset`` for
        validation batches)."""
        tf = self.transform if train else self.eval_transform
        if isinstance(data, StreamingDataset):
            # the items' random transforms: seeded from the rows drawn (not from ``gen``, whose
            # draws must stay those of the in-memory path)
            seed = (self.cfg.seed * 1_000_003 + int(index.sum()) * 7919 + len(index)) % 2**62
            xb, yb, gb = data.fetch(index, train=train, seed=seed)
            x = tf(xb.to(self.device), gen)
            return x, yb.to(self.device), None if gb is None else gb.to(self.device)
        x = tf(data.x[index].to(self.device), gen)
        g = None if data.groups is None else data.groups[index].to(self.device)
        return x, data.y[index].to(self.device), g

    def _scope_params(self, model: nn.Module) -> list[Tensor]:
        if self.cfg.hyper.scope == "head":
            head = getattr(model, "head", None)
            if not isinstance(head, nn.Module):
                raise ValueError("hyper.scope='head' needs a model with a `.head` module")
            return [p for p in head.parameters() if p.requires_grad]
        return [p for p in model.parameters() if p.requires_grad]

    def _logits_fn(self, model: nn.Module) -> Callable[[Tensor], Tensor]:
        if self.cfg.hyper.scope == "head":

            def head_logits(x: Tensor) -> Tensor:
                with torch.no_grad():
                    feats = model.features(x)  # type: ignore[operator]
                return model.head(feats)  # type: ignore[operator]

            return head_logits
        return model

    # ------------------------------------------------------------------ the hyper-step
    def hyper_step(
        self,
        model: nn.Module,
        alpha_opt: torch.optim.Optimizer,
        gen: torch.Generator,
        weight_decay: float,
        epoch: int = 0,
        theta_lr: float | None = None,
    ) -> dict[str, Any]:
        """One step on α along the implicit hypergradient (Algorithm 1, line "update α").

        With an augmentation policy the training batch is A_y(x) built inside the graph
        (``augment.gate``), so the mixed term ∂²L_train/∂φ∂θ reaches the policy's φ.
        ``theta_lr``: θ's current learning rate η, the step of ``augment.hypergrad=unrolled``.
        """
        h = self.cfg.hyper
        bs = self.cfg.train.batch_size
        vbs = h.val_batch_size or bs
        params = self._scope_params(model)
        hparams = self.space.hparams()
        # augment.hypergrad=unrolled: the policy's part of α takes the one-step unrolled form
        n_unrolled = self._unrolled_count()
        n_implicit = len(hparams) - n_unrolled
        logits_fn = self._logits_fn(model)
        damping = weight_decay if h.damping is None else h.damping
        # torchrun: average the validation gradient, the HVPs and the mixed product over ranks
        reduce = distributed.all_reduce_mean if distributed.info().active else None
        with preserved_buffers(model):
            was_training = model.training
            model.train()
            batches = []
            for _ in range(h.train_batches):
                # under torchrun each rank takes its share of the batch (distributed.share)
                idx = distributed.share(self._sample(self.s_train, bs, gen, balanced=False))
                x, y, g = self._batch(self.s_train, idx, gen)
                if self.policy is not None:  # A_y(x) in the graph: ∂L_train/∂φ exists
                    x = self.policy(x, y, g, generator=gen, mode=self.cfg.augment.gate)
                batches.append((x, y, g))
            train_loss = _batch_mean_loss(self.space.loss, logits_fn, batches, h.fuse_batches)
            val_loss = self._val_loss(logits_fn, gen, vbs)
            model.train(was_training)
            train_grads = torch.autograd.grad(train_loss, params, create_graph=True)
            scale = h.scale
            if h.method == "neumann" and h.auto_scale and n_implicit:
                stale = h.rescale == "step" or (h.rescale == "epoch" and epoch != self._scale_epoch)
                if self._neumann_scale is None or stale:
                    self._scale_epoch = epoch

                    def matvec(v: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
                        hv = torch.autograd.grad(train_grads, params, v, retain_graph=True)
                        hv = tuple(a.detach() for a in hv)
                        if reduce is not None:
                            hv = reduce(hv)
                        return tuple(a + damping * b for a, b in zip(hv, v, strict=True))

                    if self._eigvec is None:  # random start, all power iterations
                        gen0 = seeded_generator(self.cfg.seed, 99, device=self.device)
                        start = tuple(
                            torch.randn(p.shape, generator=gen0, dtype=p.dtype, device=p.device)
                            for p in params
                        )
                        n_power = h.power_iterations
                    else:  # warm start from the last top eigenvector: a quarter of them
                        start, n_power = self._eigvec, max(2, h.power_iterations // 4)
                    lam, vec = power_iteration(matvec, start, n_power)
                    self._eigvec = vec
                    # |λ̂|: on an indefinite Hessian the power iteration can return λ̂ < 0
                    self._neumann_scale = 1.0 / max(abs(float(lam)), 1e-8)
                scale = min(h.scale, self._neumann_scale)
            try:
                hg = (
                    implicit_hypergradient(
                        train_loss,
                        val_loss,
                        params,
                        hparams[:n_implicit],
                        method=h.method,
                        iterations=h.iterations,
                        scale=scale,
                        damping=damping,
                        train_grads=train_grads,
                        reduce=reduce,
                    )
                    if n_implicit
                    else ()
                )
                if n_unrolled:
                    eta = self.cfg.train.lr if theta_lr is None else theta_lr
                    hg = hg + implicit_hypergradient(
                        None,
                        val_loss,
                        params,
                        hparams[n_implicit:],
                        solver=lambda _matvec, b: tuple(eta * t for t in b),
                        train_grads=train_grads,
                        reduce=reduce,
                    )
            except NonFiniteHypergradient as exc:
                return {"applied": False, "reason": str(exc), "val_loss": float(val_loss.detach())}
        alpha_opt.zero_grad(set_to_none=True)
        norm = math.sqrt(sum(float((g * g).sum()) for g in hg))
        policy_norm: dict[str, float] = {}
        if self.policy is not None:  # ‖dL_val/dφ‖ of the policy's part of α (the last tensors)
            tail = hg[len(hg) - len(self.policy.hparams()) :]
            policy_norm["policy_hypergrad_norm"] = math.sqrt(
                sum(float((g * g).sum()) for g in tail)
            )
        if not math.isfinite(norm):
            return {"applied": False, "reason": "non-finite hypergradient norm"}
        factor = 1.0
        if self.cfg.alpha.normalize and norm > 0:
            factor = 1.0 / norm
        elif self.cfg.alpha.clip_norm is not None and norm > self.cfg.alpha.clip_norm:
            factor = self.cfg.alpha.clip_norm / norm
        spike_bound = self.guard.spike_bound(norm)
        if spike_bound is not None:
            factor = min(factor, spike_bound / norm)
        for p, g in zip(hparams, hg, strict=True):
            p.grad = g.detach() * factor
        alpha_opt.step()
        self.space.clamp_()
        return {
            "applied": True,
            "val_loss": float(val_loss.detach()),
            "train_loss": float(train_loss.detach()),
            "hypergrad_norm": norm,
            **policy_norm,
            "spike_clipped": spike_bound is not None,
            "alpha_lr": float(alpha_opt.param_groups[0]["lr"]),
            "neumann_scale": scale if h.method == "neumann" else None,
        }

    def _unrolled_count(self) -> int:
        """How many of the last tensors of α take the one-step unrolled hypergradient
        dL_val(θ − η∇θL_train)/dφ ≈ −η·(∂²L_train/∂φ∂θ)·∇θL_val, the implicit formula with
        (H + δI)⁻¹ replaced by ηI: the policy's with ``augment.hypergrad='unrolled'``, else 0."""
        if self.policy is None or self.cfg.augment.hypergrad != "unrolled":
            return 0
        return len(self.policy.hparams())

    def _initial_policy(self) -> Any:
        """A frozen copy of the policy at its initialisation α₀ (the reference θ's)."""
        if self.policy is None:
            return None
        if self._policy0 is None:
            frozen = copy.deepcopy(self.space)
            frozen.load_searched(self.guard.alpha0)
            self._policy0 = frozen.policy
        return self._policy0

    def _val_loss(
        self, logits_fn: Callable[[Tensor], Tensor], gen: torch.Generator, batch_size: int
    ) -> Tensor:
        """The upper objective L_val on ``val_batches`` sampled batches, or on all of S_V.

        With ``val_sampling='full'`` the logits of S_V are computed in chunks and the objective
        is applied once to all of them (a balanced objective is not a mean of chunk values).
        The rows are visited in a fresh random order: the model is in training mode, so a
        BatchNorm normalises each chunk with its own statistics, and both S_V's rows (a
        long-tailed set is built class by class and the split keeps the order) and a
        class-balanced sample come grouped by class; chunks in that order hold one or two classes
        each, and their statistics erase the class signal.
        """
        h = self.cfg.hyper
        if h.val_sampling == "full":
            n = len(self.s_val)
            # all of S_V; above val_full_max samples (memory: one graph holds them all), a fresh
            # class-balanced sample of that size at each hyper-step. Either way, shuffled
            index = (
                torch.arange(n)
                if n <= h.val_full_max
                else self._sample(self.s_val, h.val_full_max, gen, balanced=True)
            )
            index = index[torch.randperm(len(index), generator=gen)]
            index = distributed.share(index)  # this rank's share (torchrun)
            # every chunk's graph is held until the backward anyway: fusing costs no memory
            chunk = max(1, len(index)) if h.fuse_batches else batch_size
            parts = [
                self._batch(self.s_val, index[i : i + chunk], None, train=False)
                for i in range(0, len(index), chunk)
            ]
            logits = torch.cat([logits_fn(x) for x, _, _ in parts])
            y = torch.cat([y for _, y, _ in parts])
            gs = [g for _, _, g in parts if g is not None]
            groups = torch.cat(gs) if gs else None
            return self.objective(logits, y, groups)
        batches = []
        for _ in range(h.val_batches):
            idx = self._sample(self.s_val, batch_size, gen, balanced=h.val_sampling == "balanced")
            batches.append(self._batch(self.s_val, distributed.share(idx), None, train=False))
        return _batch_mean_loss(self.objective, logits_fn, batches, h.fuse_batches)

    def _val_predictions(self, model: nn.Module) -> Tensor:
        """``model``'s predicted labels on every row of S_V (argmax of the raw logits)."""
        return predict_data(
            model,
            self.s_val,
            batch_size=self.cfg.train.eval_batch_size,
            transform=self.eval_transform,
            device=self.device,
            sharded=True,
        )

    def _score_predictions(self, pred: Tensor, rows: Tensor | None = None) -> float:
        """The guard's score (:func:`guard_score`) of predictions of S_V's ``rows`` (all rows
        when None)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # empty cells already warned about once
            metrics = prediction_metrics(self.s_val, pred, rows)
        return guard_score(metrics, self.cfg.objective, self.cfg.objective_lam)

    def _val_score(self, model: nn.Module) -> float:
        """The guard's score of ``model`` on all of S_V (:func:`guard_score`: the error the
        validation objective stands for, argmax of the raw logits)."""
        return self._score_predictions(self._val_predictions(model))

    def _paired_se(self, pred_a: Tensor, pred_b: Tensor) -> float:
        """SE of score(a) − score(b) on S_V: :func:`paired_balanced_error_se` when the score is
        the balanced error, else :func:`paired_score_se` (strata: classes, or class × group
        cells when S_V has groups)."""
        v = self.s_val
        if self.guard.score_name == "balanced error" and v.error_weights is None:
            return paired_balanced_error_se(v.y, pred_a, pred_b)
        strata = v.y if v.groups is None else v.y * max(1, v.num_groups or 1) + v.groups
        return paired_score_se(self._score_predictions, pred_a, pred_b, strata, seed=self.cfg.seed)

    def _check_from_scratch(
        self,
        ref_pred: Tensor,
        rebuild: Callable[[nn.Module], tuple[torch.optim.Optimizer, Any]],
        report: dict[str, Any],
    ) -> dict[str, Any]:
        """Train θ from its initial weights on S_T with α* frozen, on the search's batches, and
        fall back to the init when it scores worse on S_V than the reference θ (which is the
        same training with α₀), less the allowance (``fallback_margin`` − ``keep_z`` · paired
        SE). The searched θ saw the whole α trajectory; the retrain will see only α*, and the
        two can disagree (issue 8: τ-only search on B1-fit)."""
        cfg = self.cfg
        model = self._new_model()
        optimizer, scheduler = rebuild(model)
        # a whole training without evaluation: progress bars see its θ-steps (phase "check");
        # the epoch records stay out of metrics.jsonl, which holds the search and retrain
        self.callbacks.on_phase_start("check", {"epochs": cfg.train.epochs})
        self._train_on_s_train(
            "check",
            model,
            self._theta_loss,
            optimizer,
            scheduler,
            0,
            None,
            augment=as_batch_augment(self.policy),
            step_events=True,
        )
        pred = self._val_predictions(model)
        score, ref_score = self._score_predictions(pred), self._score_predictions(ref_pred)
        se = self._paired_se(pred, ref_pred)
        allowance = self.guard.allowance(se)
        report = {**report, "from_scratch_val_score": score, "from_scratch_paired_se": se}
        fell_back = score > ref_score + allowance
        self.callbacks.on_phase_end(
            "check",
            {
                "val_score": score,
                "reference_val_score": ref_score,
                "paired_se": se,
                "allowance": allowance,
                "passed": not fell_back,
            },
        )
        if cfg.guard.enabled and fell_back:
            act = cfg.guard.fallback
            if act:
                self.guard.reset_to_init()
            report["fell_back"] = act
            report["would_fall_back"] = True
            report["fallback_reason"] = (
                f"a θ trained from scratch with α* scored {score:.4f} on S_V, not better than "
                f"{ref_score:.4f} of the reference θ trained with the init loss by the required "
                f"margin (allowance {allowance:+.4f} = fallback_margin − keep_z × paired SE "
                f"{se:.4f}): " + ("α* reset to the init" if act else "α* kept (fallback off)")
            )
        return report

    def _reference_epoch(self, reference: ReferenceTrajectory, epoch: int) -> None:
        """One epoch of the reference θ: the search's batches, α frozen at its init."""
        self._train_on_s_train(
            "reference",
            reference.model,
            reference.loss,
            reference.optimizer,
            reference.scheduler,
            epoch,
            epoch + 1,
            augment=as_batch_augment(self._initial_policy()),
        )

    def _theta_loss(self, logits: Tensor, y: Tensor, g: Tensor | None) -> Tensor:
        """The θ-step loss ℓ(α) with α a constant (no α-gradient work)."""
        return self.space.loss(logits, y, g, detach=True)

    def _train_on_s_train(
        self,
        phase: str,
        model: nn.Module,
        loss: Callable[[Tensor, Tensor, Tensor | None], Tensor],
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        start_epoch: int,
        end_epoch: int | None,
        augment: Any = None,
        step_events: bool = False,
    ) -> None:
        """θ-steps only on S_T over the search's batches and augmentations (its seed and phase),
        without evaluation: the reference θ and the from-scratch check (``augment``: their
        augmentation policy, the init's or α*'s). ``step_events``: emit ``on_batch_end`` to the
        callbacks (progress), and no epoch events."""
        run_epochs(
            phase,
            model,
            loss,
            self.s_train,
            self.cfg.train,
            optimizer=optimizer,
            scheduler=scheduler,
            seed=self.cfg.seed,
            start_epoch=start_epoch,
            end_epoch=end_epoch,
            transform=self.transform,
            device=self.device,
            phase_id=_PHASE_ID["search"],
            augment=augment,
            callbacks=_StepEvents(self.callbacks) if step_events else None,
        )

    # ------------------------------------------------------------------ checkpoint
    def _save(self, state: dict[str, Any], lists: dict[str, list[dict[str, Any]]]) -> None:
        """Journal the new records of ``lists``, then write ``state`` pinning them (rank 0 only
        under torchrun)."""
        if (
            self.checkpoint_dir is not None
            and self._journal is not None
            and distributed.info().main
        ):
            state["journal"] = self._journal.sync(lists)
            save_checkpoint(state, self.checkpoint_dir / LAST)

    def _check_checkpoint(self, ckpt: Any) -> None:
        """ValueError unless ``ckpt`` is a search checkpoint whose journal prefix is intact."""
        if not isinstance(ckpt, dict) or not set(ckpt) >= _CHECKPOINT_KEYS:
            raise ValueError("not an autobalance search checkpoint")
        if "journal" in ckpt:
            assert self._journal is not None
            self._journal.read(ckpt["journal"])
        elif "history" not in ckpt:  # neither journaled nor an older self-contained one
            raise ValueError("not an autobalance search checkpoint (no history)")

    def _load_checkpoint(self, resume: bool) -> dict[str, Any] | None:
        """The checkpoint to resume from (``last.pt``, else ``prev.pt``), or None: start over.

        Under torchrun rank 0 prepares the folder (and deletes stale files on a fresh start);
        the other ranks wait for it, then read the same checkpoint and write nothing."""
        if self.checkpoint_dir is None or self._journal is None:
            return None
        if not distributed.info().main:
            distributed.barrier()  # rank 0 has prepared the folder
            if not resume:
                return None
            found = load_latest(
                self.checkpoint_dir, map_location=self.device, check=self._check_checkpoint
            )
            return None if found is None else found[0]
        try:
            return self._load_checkpoint_main(resume)
        finally:
            distributed.barrier()

    def _load_checkpoint_main(self, resume: bool) -> dict[str, Any] | None:
        assert self.checkpoint_dir is not None and self._journal is not None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        remove_orphan_temps(self.checkpoint_dir)
        if resume:
            found = load_latest(
                self.checkpoint_dir, map_location=self.device, check=self._check_checkpoint
            )
            if found is not None:
                ckpt: dict[str, Any] = found[0]
                if "journal" not in ckpt:
                    self._journal.reset()  # an older checkpoint: its lists are journaled anew
                return ckpt
        for name in (LAST, PREV):  # a fresh start: no stale checkpoint to fall back to
            (self.checkpoint_dir / name).unlink(missing_ok=True)
        self._journal.reset()
        return None

    def _alpha_record(self) -> dict[str, Any]:
        eff = self.space.effective()
        record: dict[str, Any] = {k: v.detach().cpu().tolist() for k, v in eff.items()}
        if self.policy is not None:  # per-cluster probabilities and magnitudes (or radii)
            record["augment"] = self.policy.record()
        return record

    # ------------------------------------------------------------------ Algorithm 1
    def run(self, resume: bool = False) -> SearchResult:
        """Run (or resume) all phases and return the :class:`SearchResult`."""
        cfg = self.cfg
        e_search = cfg.train.epochs
        t1 = round(cfg.hyper_start * e_search)
        steps_per_epoch = cfg.train.steps_per_epoch(len(self.s_train))
        interval = cfg.hyper.interval_for(steps_per_epoch)
        n_hyper_total = max(1, (e_search - t1) * steps_per_epoch // interval)

        model = self._new_model()
        optimizer = make_optimizer(model, cfg.train, self.optimizer_factory)
        scheduler = make_scheduler(optimizer, cfg.train, steps_per_epoch, self.scheduler_factory)
        alpha_opt = self._alpha_optimizer()
        alpha_sched = self._alpha_scheduler(alpha_opt, n_hyper_total)
        trajectory: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        hyper_log: list[dict[str, Any]] = []
        timings = {"search": 0.0, "retrain": 0.0, "hyper": 0.0}
        phase, start_epoch = "search", 0
        retrain_model: nn.Module | None = None
        guard_report: dict[str, Any] = {}
        reference: ReferenceTrajectory | None = None
        use_reference = cfg.guard.enabled and cfg.guard.reference

        def rebuild(m: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
            opt = make_optimizer(m, cfg.train, self.optimizer_factory)
            return opt, make_scheduler(opt, cfg.train, steps_per_epoch, self.scheduler_factory)

        def init_loss_fn() -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
            frozen = copy.deepcopy(self.space)  # α′ ← α₀: the init loss, never stepped
            frozen.load_searched(self.guard.alpha0)
            frozen.clear_cache()

            def fn(logits: Tensor, y: Tensor, g: Tensor | None) -> Tensor:
                return frozen.loss(logits, y, g, detach=True)

            return fn

        ckpt = self._load_checkpoint(resume)
        if ckpt is not None:
            phase, start_epoch = ckpt["phase"], int(ckpt["epoch"]) + 1
            self.space.load_state_dict(ckpt["space"])
            alpha_opt.load_state_dict(ckpt["alpha_opt"])
            alpha_sched.load_state_dict(ckpt["alpha_sched"])
            if "journal" in ckpt and self._journal is not None:
                # rank 0 cuts the journal back to the checkpoint; other ranks only read it
                journaled = (
                    self._journal.restore(ckpt["journal"])
                    if distributed.info().main
                    else self._journal.read(ckpt["journal"])
                )
                trajectory, history = journaled["trajectory"], journaled["history"]
                hyper_log = journaled["hyper_log"]
            else:  # an older checkpoint carries the lists itself
                trajectory, history = list(ckpt["trajectory"]), list(ckpt["history"])
                hyper_log = list(ckpt["hyper_log"])
            timings.update(ckpt["timings"])
            sc = ckpt.get("neumann_scale")
            self._neumann_scale = None if sc is None or sc < 0 else float(sc)
            self._scale_epoch = int(ckpt.get("scale_epoch", -1))
            eig = ckpt.get("eigvec")
            self._eigvec = None if eig is None else tuple(eig)
            if ckpt.get("guard") is not None:
                self.guard.load_state_dict(ckpt["guard"])
            if ckpt.get("reference") is not None:
                reference = ReferenceTrajectory(
                    model, optimizer, scheduler, rebuild, init_loss_fn()
                )
                reference.load_state_dict(ckpt["reference"])
            guard_report = dict(ckpt.get("guard_report") or {})
            self.guard.rejected = ckpt.get("rejected")
            set_rng_state(ckpt["rng"])
            if phase == "search":
                model.load_state_dict(ckpt["model"])
                optimizer.load_state_dict(ckpt["optimizer"])
                scheduler.load_state_dict(ckpt["scheduler"])
                # after the last search epoch the loop below is empty, but the end of the
                # search (the guard's fallback / averaging, the "final" α row) still runs
            else:
                retrain_model = self._new_model()
                retrain_model.load_state_dict(ckpt["model"])
        else:
            trajectory.append({"phase": "init", "epoch": -1, **self._alpha_record()})

        def make_state(ph: str, epoch: int, m, opt, sch) -> dict[str, Any]:
            return {
                "phase": ph,
                "epoch": epoch,
                "model": m.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sch.state_dict(),
                "space": self.space.state_dict(),
                "alpha_opt": alpha_opt.state_dict(),
                "alpha_sched": alpha_sched.state_dict(),
                "timings": timings,
                "neumann_scale": -1.0 if self._neumann_scale is None else self._neumann_scale,
                "scale_epoch": self._scale_epoch,
                "eigvec": None if self._eigvec is None else list(self._eigvec),
                "guard": self.guard.state_dict() if ph == "search" else None,
                "reference": None
                if reference is None or ph != "search"
                else reference.state_dict(),
                "guard_report": guard_report,
                "rejected": self.guard.rejected,
                "rng": rng_state(),
            }

        def lists() -> dict[str, list[dict[str, Any]]]:  # journaled, not in the checkpoint
            return {"trajectory": trajectory, "history": history, "hyper_log": hyper_log}

        def due(epoch: int, end: int) -> bool:  # checkpoint every k epochs and at phase ends
            return (epoch + 1) % cfg.checkpoint_every == 0 or epoch == end - 1

        eval_sets: dict[str, LabelledData] = {"val": self.s_val}
        if cfg.eval_train:
            eval_sets = {"train": self.s_train, **eval_sets}
        if self.test is not None:
            eval_sets["test"] = self.test

        # ---- phases 2 + 3: warm-up, then search (one θ trajectory; hyper-steps from t₁ on)
        if phase == "search":
            self.callbacks.on_phase_start(
                "search", {"epochs": e_search, "warmup_epochs": t1, "start_epoch": start_epoch}
            )
            hyper_gen: dict[str, Any] = {}

            def step_hook(global_step: int, local_step: int) -> None:
                epoch = hyper_gen["epoch"]
                if epoch < t1 or global_step % interval != 0 or self.guard.frozen:
                    return
                if cfg.alpha.schedule == "follow":
                    f = decay_factor(cfg.train, steps_per_epoch, global_step)
                    for group, base in zip(alpha_opt.param_groups, alpha_sched.base_lrs):
                        group["lr"] = base * f
                t0 = time.perf_counter()
                info = self.hyper_step(
                    model,
                    alpha_opt,
                    hyper_gen["gen"],
                    cfg.train.weight_decay,
                    epoch,
                    theta_lr=float(optimizer.param_groups[0]["lr"]),
                )
                if info["applied"]:
                    alpha_sched.step()
                dt = time.perf_counter() - t0
                timings["hyper"] += dt
                info.update({"epoch": epoch, "step": global_step, "seconds": dt})
                hyper_log.append(info)
                self.callbacks.on_hyper_step("search", global_step, info)

            def extra(epoch: int) -> dict[str, Any]:
                rec = {"phase": "warmup" if epoch < t1 else "search", "epoch": epoch}
                rec.update(self._alpha_record())
                trajectory.append(rec)
                return {"alpha": self._alpha_record()}

            def done(epoch: int, record: dict[str, Any]) -> None:
                nonlocal reference
                if epoch >= t1 - 1:
                    if "val/balanced_error" in record:
                        val = {k[4:]: v for k, v in record.items() if k.startswith("val/")}
                        score = guard_score(val, cfg.objective, cfg.objective_lam)
                    else:
                        score = self._val_score(model)
                    if epoch == t1 - 1:
                        self.guard.start(float(score))
                        if use_reference:
                            reference = ReferenceTrajectory(
                                model, optimizer, scheduler, rebuild, init_loss_fn()
                            )
                    else:
                        ref_score = None
                        if reference is not None:
                            t_ref = time.perf_counter()
                            self._reference_epoch(reference, epoch)
                            ref_score = self._val_score(reference.model)
                            timings["reference"] = timings.get("reference", 0.0) + (
                                time.perf_counter() - t_ref
                            )
                        event = self.guard.end_of_epoch(
                            epoch,
                            float(score),
                            model=model,
                            optimizer=optimizer,
                            alpha_opt=alpha_opt,
                            alpha_sched=alpha_sched,
                            reference_score=ref_score,
                        )
                        if event is not None:
                            record["guard"] = event
                            log.warning("search epoch %d: %s; rolled back", epoch, event["reason"])
                history.append(record)
                timings["search"] += time.perf_counter() - hyper_gen["t0"]
                fault_point(f"{record['phase']}:epoch:{epoch}")  # testing hook (no-op)
                if due(epoch, e_search):
                    self._save(make_state("search", epoch, model, optimizer, scheduler), lists())
                hyper_gen["t0"] = time.perf_counter()

            for epoch in range(start_epoch, e_search):
                hyper_gen["epoch"] = epoch
                hyper_gen["gen"] = seeded_generator(cfg.seed, 3, epoch)
                hyper_gen["t0"] = time.perf_counter()
                run_epochs(
                    "warmup" if epoch < t1 else "search",
                    model,
                    self._theta_loss,
                    self.s_train,
                    cfg.train,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    seed=cfg.seed,
                    start_epoch=epoch,
                    end_epoch=epoch + 1,
                    eval_sets=eval_sets,
                    transform=self.transform,
                    eval_transform=self.eval_transform,
                    device=self.device,
                    callbacks=self.callbacks,
                    step_hook=step_hook,
                    augment=as_batch_augment(self.policy),
                    epoch_extra=extra,
                    on_epoch_done=done,
                    phase_id=_PHASE_ID["search"],
                )
            ref_score = ref_pred = paired_se = None
            if reference is not None:
                ref_pred = self._val_predictions(reference.model)
                ref_score = self._score_predictions(ref_pred)
                paired_se = self._paired_se(self._val_predictions(model), ref_pred)
            guard_report = self.guard.finish(
                average=cfg.alpha.average,
                search_epochs=e_search,
                start_epoch=t1,
                reference_score=ref_score,
                paired_se=paired_se,
            )
            if ref_pred is not None and cfg.guard.check_from_scratch:
                if guard_report["fell_back"] or self.guard.at_init():
                    # α* = α₀ (fallback or unmoved): the reference θ is that training
                    why = "fell back" if guard_report["fell_back"] else "alpha at its init"
                    self.callbacks.on_phase_end("check", {"skipped": why})
                else:
                    t_chk = time.perf_counter()
                    guard_report = self._check_from_scratch(ref_pred, rebuild, guard_report)
                    timings["check"] = time.perf_counter() - t_chk
            if guard_report["fell_back"]:
                log.warning("search fell back: %s", guard_report["fallback_reason"])
            if guard_report["fell_back"] or guard_report["averaged_snapshots"]:
                # α* is not the last epoch's α: record it as its own trajectory row
                trajectory.append({"phase": "final", "epoch": e_search, **self._alpha_record()})
            self.callbacks.on_phase_end(
                "search", {"alpha": self._alpha_record(), "guard": guard_report}
            )
            phase, start_epoch = "retrain", 0

        if cfg.retrain:
            # α′ was learned over S_T's counts; the retrain on S re-centres the init part on
            # S's counts, so a fallback (α′ = α′₀) is exactly the fixed-loss training of S
            self.space.rebase_(_counts(self.full))
            # α* as the retrain uses it ends the trajectory (one row, also after a resume)
            final = {"phase": "final", "epoch": e_search, **self._alpha_record()}
            if trajectory and trajectory[-1]["phase"] == "final":
                trajectory[-1] = final
            else:
                trajectory.append(final)
        alpha_star = {k: v.detach().clone() for k, v in self.space.effective().items()}
        rejected = self._rejected()
        if not cfg.retrain:
            return SearchResult(
                alpha_star,
                trajectory,
                history,
                hyper_log,
                model,
                self.space,
                timings,
                guard_report,
                policy=self.policy,
                rejected_alpha=rejected[0],
                rejected_policy=rejected[1],
            )

        # ---- phase 4: reset θ, retrain on all of S with α* frozen
        rcfg = cfg.retrain_config()
        if retrain_model is None:
            retrain_model = self._new_model()
        r_opt = make_optimizer(retrain_model, rcfg, self.optimizer_factory)
        r_steps = rcfg.steps_per_epoch(len(self.full))
        r_sched = make_scheduler(r_opt, rcfg, r_steps, self.scheduler_factory)
        if ckpt is not None and ckpt["phase"] == "retrain":
            r_opt.load_state_dict(ckpt["optimizer"])
            r_sched.load_state_dict(ckpt["scheduler"])

        r_eval = {"test": self.test} if self.test is not None else {}
        self.callbacks.on_phase_start(
            "retrain", {"epochs": rcfg.epochs, "start_epoch": start_epoch}
        )
        clock = {"t0": time.perf_counter()}

        def r_done(epoch: int, record: dict[str, Any]) -> None:
            history.append(record)
            timings["retrain"] += time.perf_counter() - clock["t0"]
            fault_point(f"retrain:epoch:{epoch}")  # testing hook (no-op)
            if due(epoch, rcfg.epochs):
                self._save(make_state("retrain", epoch, retrain_model, r_opt, r_sched), lists())
            clock["t0"] = time.perf_counter()

        run_epochs(
            "retrain",
            retrain_model,
            self._theta_loss,  # α* is no longer stepped
            self.full,
            rcfg,
            optimizer=r_opt,
            scheduler=r_sched,
            seed=cfg.seed,
            start_epoch=start_epoch,
            eval_sets=r_eval,
            transform=self.transform,
            eval_transform=self.eval_transform,
            device=self.device,
            callbacks=self.callbacks,
            on_epoch_done=r_done,
            augment=as_batch_augment(self.policy),  # α*'s policy, frozen
            phase_id=_PHASE_ID["retrain"],
        )
        self.callbacks.on_phase_end("retrain", {})
        return SearchResult(
            alpha_star,
            trajectory,
            history,
            hyper_log,
            retrain_model,
            self.space,
            timings,
            guard_report,
            policy=self.policy,
            rejected_alpha=rejected[0],
            rejected_policy=rejected[1],
        )

    def _rejected(self) -> tuple[dict[str, Tensor] | None, Any]:
        """The effective α and the policy that the guard's fallback replaced (on the space's
        current counts, i.e. the retrain's), or (None, None) when nothing was rejected. The
        space is left holding α₀."""
        raw = self.guard.rejected
        if raw is None:
            return None, None
        kept = {k: v.detach().clone() for k, v in self.space.searched().items()}
        self.space.load_searched(raw)
        alpha = {k: v.detach().clone() for k, v in self.space.effective().items()}
        policy = None if self.policy is None else copy.deepcopy(self.policy)
        self.space.load_searched(kept)
        return alpha, policy


def search(
    config: SearchConfig,
    model_fn: Callable[[], nn.Module],
    train_data: LabelledData | Any,
    *,
    verbose: int = 0,
    **kwargs: Any,
) -> SearchResult:
    """Functional form of :class:`AutoBalanceSearch` ``(...).run()``.

    ``verbose``: 0 silent, 1 a progress bar per phase (``tqdm.auto``: terminals and
    notebooks), 2 the bars and one ``logging`` line per epoch (:mod:`autobalance.progress`).

    ``train_data`` / ``test_data``: anything :func:`autobalance.data.as_dataset` takes: an
    :class:`~autobalance.data.InMemoryDataset`, a torch ``TensorDataset`` or any map-style
    ``Dataset`` of ``(x, y[, group])`` items (streamed), or ``(X, y)`` / ``(X, y, groups)`` as
    numpy arrays or a pandas DataFrame with ``(frame, label_column)``.
    """
    train_data = _tuple_data(train_data, "train")
    if kwargs.get("test_data") is not None:
        kwargs["test_data"] = _tuple_data(kwargs["test_data"], "test")
    resume = kwargs.pop("resume", False)
    engine = AutoBalanceSearch(config, model_fn, train_data, **kwargs)
    from autobalance.progress import attach_progress

    attach_progress(engine, verbose)
    return engine.run(resume=resume)


def _tuple_data(data: Any, name: str) -> LabelledData:
    """``(X, y)`` / ``(X, y, groups)`` tuples (numpy, tensors, a DataFrame and a column name)
    through :func:`as_dataset`; anything else as is."""
    if isinstance(data, tuple) and len(data) in (2, 3):
        return as_dataset(*data, name=name)
    return as_dataset(data, name=name)


__all__ = [
    "PHASES",
    "AutoBalanceSearch",
    "SearchResult",
    "loss_from_alpha",
    "preserved_buffers",
    "search",
    "split_dataset",
]
