"""Typed configuration of a search run, loadable from nested dicts / YAML with overrides.

Every knob of Algorithm 1 lives here with a documented default; the loop reads only these
fields. Unknown keys and bad values raise ``ValueError`` naming the valid choices. Each field is
checked whenever it is set (its type — ``true`` is not an integer —, finite floats, its range;
:class:`autobalance.validation.StrictConfig`), and a field the class does not declare cannot be
set (``cfg.train.epoch = 1`` raises AttributeError).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, get_args, get_origin, get_type_hints

from autobalance.augment.factory import AUGMENT_KINDS, PER
from autobalance.augment.ops import OPS, check_ops
from autobalance.objectives import OBJECTIVES
from autobalance.search_space import COMPONENTS, INITS, KINDS, SearchSpace
from autobalance.train import TrainConfig
from autobalance.validation import Rule, StrictConfig, at_least, greater_than, nonempty, within

METHODS = ("neumann", "cg", "exact")
SCOPES = ("full", "head")
ALPHA_OPTIMIZERS = ("sgd", "adam")
ALPHA_SCHEDULES = ("constant", "cosine", "step", "follow")
VAL_SAMPLING = ("uniform", "balanced", "full")
RESCALE = ("once", "epoch", "step")
AUGMENT_GATES = ("straight_through", "relaxed")
AUGMENT_HYPERGRADS = ("implicit", "unrolled")
# Keys that were renamed: a config using the old name gets one clear error naming the new one.
RENAMED = {"warmup_fraction": "hyper_start"}


def _choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ValueError(f"Unknown {name} '{value}', expected one of {choices}")


@dataclass
class SpaceConfig(StrictConfig):
    """Search space (``autobalance.search_space.SearchSpace``) settings.

    ``cluster_size`` / ``num_clusters`` ≥ 1 or null; ``delta_scale`` > 0; ``tau``, ``gamma``
    ≥ 0; the half-widths ``bound_*`` of the boxes on α′ > 0.
    """

    SECTION: ClassVar[str] = "space."
    RULES: ClassVar[dict[str, tuple[Rule, ...]]] = {
        "search": (nonempty,),
        "cluster_size": (at_least(1),),
        "num_clusters": (at_least(1),),
        "delta_scale": (greater_than(0),),
        "tau": (at_least(0),),
        "gamma": (at_least(0),),
        "bound_additive": (greater_than(0),),
        "bound_multiplicative": (greater_than(0),),
        "bound_weight": (greater_than(0),),
    }

    kind: str = "clusters"
    search: tuple[str, ...] = ("additive", "multiplicative")
    init: str = "la"
    cluster_size: int | None = None
    num_clusters: int | None = None
    delta_scale: float = 2.0
    tau: float = 1.0
    gamma: float = 0.2
    bound_additive: float = 5.0
    bound_multiplicative: float = 5.0
    bound_weight: float = 3.0

    def __post_init__(self) -> None:
        _choice("space kind", self.kind, KINDS)
        _choice("init", self.init, INITS)
        self.search = tuple(self.search)
        for c in self.search:
            _choice("searched component", c, COMPONENTS)

    def build(self, counts: Any) -> SearchSpace:
        """The :class:`SearchSpace` these settings describe, over training ``counts``."""
        return SearchSpace(
            counts,
            kind=self.kind,
            search=self.search,
            init=self.init,
            cluster_size=self.cluster_size,
            num_clusters=self.num_clusters,
            delta_scale=self.delta_scale,
            bounds=self.bounds(),
            tau=self.tau,
            gamma=self.gamma,
        )

    def bounds(self) -> dict[str, tuple[float, float]]:
        """Symmetric boxes on the raw α′ components (offsets from the init)."""
        return {
            "additive": (-self.bound_additive, self.bound_additive),
            "multiplicative": (-self.bound_multiplicative, self.bound_multiplicative),
            "weight": (-self.bound_weight, self.bound_weight),
        }


@dataclass
class HyperConfig(StrictConfig):
    """The hyper-step: how often, on how much data, and how the inverse Hessian is applied.

    The official implementation's hyper-step is ``interval=20, train_batches=10,
    val_batches=10, method="neumann"`` with 5 Hessian-vector products (6 series terms,
    ``iterations=6``) at step 1.0 over the full network; see :meth:`official`. Our default
    differs where measurements said so (README, "Differences from the paper").

    - ``interval``: θ-steps between hyper-steps; ``per_epoch`` (when set) overrides it with a
      number of hyper-steps per epoch, so that small data sets still get enough of them.
    - ``val_sampling``: ``uniform`` or class-``balanced`` batches of ``val_batch_size``, or
      ``full``: the whole validation split S_V at every hyper-step (the lowest-variance
      estimate of the upper objective; cheap when S_V is small). Above ``val_full_max``
      samples, whose graph is held at once, a class-balanced sample of that many.
    - ``rescale``: when the Neumann step 1/λ̂_max is re-estimated by power iteration
      (``auto_scale``): ``once`` (first hyper-step only), every ``epoch`` or every ``step``.
      The curvature grows as training approaches interpolation and after each learning-rate
      drop, so a step sized once can make the series diverge later (issue 8).
    - ``fuse_batches``: one forward over the hyper-step's ``train_batches`` training batches,
      concatenated (and one over its ``val_batches`` validation batches, or over all of S_V
      with ``val_sampling='full'``), instead of one per batch. The same rows and augmentation
      draws; the losses become the loss of the union rather than the mean of per-batch
      losses, and a BatchNorm in training mode normalises with the union's statistics. For a
      mean-reduced loss on a model without BatchNorm the hypergradient is unchanged. On a GPU
      the hyper-step's cost is kernel launches, linear in the number of batches (B1-paper:
      3.7 s for 10 + 10 batches, 0.38 s for 1 + 1, on an H200), so fusing is the speed
      lever; off by default and in the paper presets, whose official hyper-step runs the
      batches one by one.

    Counts (``interval``, ``per_epoch``, batches, ``iterations``, ``power_iterations``,
    ``val_full_max``, ``val_batch_size``) are ≥ 1; ``scale`` > 0; ``damping`` ≥ 0 or null.
    """

    SECTION: ClassVar[str] = "hyper."
    RULES: ClassVar[dict[str, tuple[Rule, ...]]] = {
        "interval": (at_least(1),),
        "per_epoch": (at_least(1),),
        "train_batches": (at_least(1),),
        "val_batches": (at_least(1),),
        "val_batch_size": (at_least(1),),
        "val_full_max": (at_least(1),),
        "iterations": (at_least(1),),
        "scale": (greater_than(0),),
        "power_iterations": (at_least(1),),
        "damping": (at_least(0),),
    }

    interval: int = 20
    per_epoch: int | None = None
    train_batches: int = 1
    val_batches: int = 1
    val_batch_size: int | None = None
    val_sampling: str = "full"
    val_full_max: int = 4096
    method: str = "neumann"
    iterations: int = 5
    scale: float = 1.0
    auto_scale: bool = True
    rescale: str = "epoch"
    power_iterations: int = 8
    damping: float | None = None
    scope: str = "full"
    fuse_batches: bool = False

    def __post_init__(self) -> None:
        _choice("hypergradient method", self.method, METHODS)
        _choice("hypergradient scope", self.scope, SCOPES)
        _choice("val_sampling", self.val_sampling, VAL_SAMPLING)
        _choice("hyper.rescale", self.rescale, RESCALE)

    def interval_for(self, steps_per_epoch: int) -> int:
        """θ-steps between hyper-steps: ``interval``, or ⌊steps/epoch ÷ per_epoch⌋ (≥ 1)."""
        if self.per_epoch is None:
            return self.interval
        return max(1, steps_per_epoch // self.per_epoch)

    @classmethod
    def official(cls) -> HyperConfig:
        """The hyper-step of the official AutoBalance code: full network, 10+10 batches, 5
        Hessian-vector products (6 Neumann series terms) at step 1.0, every 20 iterations,
        uniform validation batches, no damping, the step never rescaled."""
        return cls(
            interval=20,
            train_batches=10,
            val_batches=10,
            val_sampling="uniform",
            method="neumann",
            iterations=6,
            scale=1.0,
            auto_scale=False,
            damping=0.0,
            scope="full",
        )


@dataclass
class AlphaConfig(StrictConfig):
    """Upper-level optimiser on α′.

    The paper's (§3, "Implementation"): SGD, lr 0.05, momentum 0.9, weight decay 1e-4, decayed
    with θ's milestones (``schedule="follow"``: α's lr is multiplied by θ's ``lr_decay`` at each
    of θ's milestones). Weight decay acts on α′, the offsets from the init, so it pulls the
    loss back toward its initialisation: a ridge prior centred on the init loss (e.g. LA), whose
    fixed point balances the hypergradient, α′ ≈ −∇α′/``weight_decay``. The default, 0.1, is
    1000× the paper's: with a few validation images per rare class the hypergradient is noisy,
    and the paper's 1e-4 let α* fit that noise (benchmarks/README.md, "α weight decay and a
    harm-only guard"); the paper presets keep 1e-4.

    ``average``: α* is the mean of α′ over the epoch-end snapshots of the last ``average``
    fraction of the search epochs (tail averaging, a variance reduction: Polyak–Ruppert
    averaging of the upper-level iterate, ᾱ′ = (1/n) Σ_{e > E_s − n} α′_e); 0 keeps the last
    α′. The default, 0.5, is not in the paper (which keeps the last α): it was adopted on
    2026-11-28 by a rule fixed before its fresh runs (benchmarks/README.md, "Tail averaging of
    α: the default since 2026-11-28"); the paper presets keep 0.

    ``lr`` > 0; ``momentum`` in [0, 1); ``weight_decay`` ≥ 0; ``step_every`` ≥ 1;
    ``step_gamma`` in (0, 1]; ``clip_norm`` > 0 or null; ``average`` in [0, 1).
    """

    SECTION: ClassVar[str] = "alpha."
    RULES: ClassVar[dict[str, tuple[Rule, ...]]] = {
        "lr": (greater_than(0),),
        "momentum": (within(0, 1, hi_open=True),),
        "weight_decay": (at_least(0),),
        "step_every": (at_least(1),),
        "step_gamma": (within(0, 1, lo_open=True),),
        "clip_norm": (greater_than(0),),
        "average": (within(0, 1, hi_open=True),),
    }

    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.1
    schedule: str = "follow"
    step_every: int = 10
    step_gamma: float = 0.5
    normalize: bool = False
    clip_norm: float | None = None
    average: float = 0.5

    def __post_init__(self) -> None:
        _choice("alpha optimizer", self.optimizer, ALPHA_OPTIMIZERS)
        _choice("alpha schedule", self.schedule, ALPHA_SCHEDULES)


@dataclass
class GuardConfig(StrictConfig):
    """Divergence detection and response for the search (issue 8: no silent collapse).

    At every hyper-step, a hypergradient whose norm exceeds ``spike`` × the median of the last
    ``window`` applied norms is clipped to that bound (logged as ``spike``). At the end of every
    search epoch the whole validation split S_V is scored; the search has *diverged* when its
    balanced error exceeds the value at the start of the search by more than
    max(``margin``, noise), or when every searched α′ entry sits on a bound of its box. On
    divergence, θ, α′ and both optimisers are rolled back to the last healthy epoch end and α's
    lr is multiplied by ``shrink``; after ``max_rollbacks`` rollbacks α is frozen. At the end,
    when the final validation score (the error the objective stands for, e.g. balanced error,
    or (1 − λ)·error + λ·DEO for ``ce_deo``: :func:`autobalance.guard.guard_score`) is worse
    than at the start of the search by more
    than ``fallback_margin`` + noise, α* falls back to its initialisation, and the run's summary
    says so. noise = ``z`` × the worst-case standard error of a balanced error on S_V
    (:func:`autobalance.guard.balanced_error_se`); ``z = 0`` gives the literal rules.

    ``reference``: also train, from the start of the search, a reference θ with the init loss
    on the same batches (:class:`autobalance.guard.ReferenceTrajectory`; the θ-steps of the
    search epochs once more, no hyper-steps). The fallback then compares the searched θ with
    it, allowing only ``fallback_margin``: α* is never worse on S_V than its initialisation.

    ``check_from_scratch``: when the searched θ passes, also train θ from its initial weights on
    S_T with α* frozen (one more training, no hyper-steps) and fall back when that θ scores
    worse on S_V than the reference. The searched θ saw the whole α trajectory, the retrain
    sees α* alone, and the two can disagree.

    ``keep_z``: with the reference, the last check (the from-scratch θ's, or the searched θ's
    when ``check_from_scratch`` is off) keeps α* only when its θ beats the reference by at
    least ``keep_z`` standard errors of the paired score difference on S_V
    (:func:`autobalance.guard.paired_balanced_error_se` for a balanced error, otherwise
    :func:`autobalance.guard.paired_score_se`): the allowance becomes ``fallback_margin`` −
    ``keep_z`` · SE. α* was tuned on S_V, so a gain within S_V's noise is more likely luck than
    a better loss. ``keep_z = 0``: any gain keeps α*. A negative ``keep_z`` turns the rule
    around: α* is kept unless S_V shows harm, i.e. unless the searched θ *or* the from-scratch θ
    scores worse than the reference by more than ``|keep_z|`` paired SEs (each check with its
    own SE). It catches a collapse and hands back what the search found when S_V cannot tell.
    The default, −1, is that harm-only rule: with one or two validation images in the rarest
    classes S_V cannot certify a gain of a few points (``keep_z = 2``, the previous default,
    handed back the init on every B1 and small-problem run), while the α weight decay keeps
    α* near its init, so what S_V cannot judge is a small move (benchmarks/README.md).

    ``fallback``: false keeps α* whatever the scores say (they are still measured and reported,
    and ``would_fall_back`` in the run's guard summary says whether the guard would have reset it).

    ``spike`` > 1; ``window`` ≥ 1; ``margin``, ``z`` ≥ 0; ``shrink`` in (0, 1);
    ``max_rollbacks`` ≥ 0; ``fallback_margin`` and ``keep_z`` any finite number
    (``fallback_margin`` < 0 demands a gain).
    """

    SECTION: ClassVar[str] = "guard."
    RULES: ClassVar[dict[str, tuple[Rule, ...]]] = {
        "spike": (greater_than(1),),
        "window": (at_least(1),),
        "margin": (at_least(0),),
        "shrink": (within(0, 1, lo_open=True, hi_open=True),),
        "max_rollbacks": (at_least(0),),
        "z": (at_least(0),),
    }

    enabled: bool = True
    spike: float = 10.0
    window: int = 20
    margin: float = 0.1
    shrink: float = 0.5
    max_rollbacks: int = 3
    fallback: bool = True
    fallback_margin: float = 0.0
    z: float = 2.0
    reference: bool = True
    check_from_scratch: bool = True
    keep_z: float = -1.0


@dataclass
class AugmentConfig(StrictConfig):
    """Learned augmentation policies that join α (AutoBalance §2, PDA; Lemma 2; Table 2).

    The training loss becomes ℓ(y, f(A_y(x)); α) with a policy A_y per class cluster, and the
    policy parameters φ are updated by the same hypergradient as (l, Δ). See
    :mod:`autobalance.augment.policy` and :mod:`~.spherical`.

    - ``kind``: ``none`` (default: no policy, the search is unchanged), ``pda`` (one image
      policy per D_π cluster of the loss), ``single`` (one policy for all classes, the
      MADAO-like baseline) or ``spherical`` (x + ε_y·u, u uniform in the unit ℓ2 ball; any
      input, images, features or tables).
    - ``per``: ``cluster`` (the loss's D_π clusters) or ``class`` (one policy per class).
    - ``ops``: the image operations of a policy, applied in order, from
      :data:`autobalance.augment.ops.OPS`.
    - ``init_prob``: initial application probability of every operation, in (0, 1).
    - ``init_magnitude``: initial magnitude, as a fraction of each operation's maximum, in (0, 1).
    - ``temperature``: τ > 0 of the relaxed Bernoulli gates.
    - ``gate``: how the hyper-step's training batch is sampled, ``straight_through`` (hard gates
      forward, the relaxed gates' gradient backward: the batch has the θ-steps' distribution) or
      ``relaxed`` (soft gates).
    - ``radius``: spherical augmentation's initial radius ε, below the largest radius.
    - ``max_radius``: the largest radius ε_max of the spherical policy (ε = ε_max·σ(r), so a
      learned radius stays in (0, ε_max)).
    - ``hypergrad``: ``implicit`` (default) differentiates L_val through the training loss with
      the same implicit-function-theorem solve as l and Δ (one shared v = H⁻¹∇θL_val, so the
      policy costs one more mixed product, no extra Hessian work); ``unrolled`` uses one
      unrolled SGD step, dL_val(θ − η∇θL_train)/dφ ≈ −η·∂²L_train/∂φ∂θ·∇θL_val with η the
      current θ learning rate (DARTS/DADA's first-order form: the implicit one with H⁻¹
      replaced by ηI); it skips the Neumann solve only when the loss is not searched.
    - ``lr``: learning rate of the policy parameters (null: ``alpha.lr``); the rest of the α
      optimiser (momentum, weight decay toward the init, schedule) is shared.
    - ``search_loss``: ``false`` keeps the loss at its init (``space.init``) and searches the
      policy only (Table 2's "PDA" and single-policy rows).

    A policy needs ``hyper.scope: full`` (the head scope holds the features constant, so no
    gradient would reach it).
    """

    SECTION: ClassVar[str] = "augment."
    RULES: ClassVar[dict[str, tuple[Rule, ...]]] = {
        "ops": (nonempty,),
        "init_prob": (within(0, 1, lo_open=True, hi_open=True),),
        "init_magnitude": (within(0, 1, lo_open=True, hi_open=True),),
        "temperature": (greater_than(0),),
        "radius": (greater_than(0),),
        "max_radius": (greater_than(0),),
        "lr": (greater_than(0),),
    }

    kind: str = "none"
    per: str = "cluster"
    ops: tuple[str, ...] = OPS
    init_prob: float = 0.2
    init_magnitude: float = 0.3
    temperature: float = 0.5
    gate: str = "straight_through"
    radius: float = 0.5
    max_radius: float = 4.0
    hypergrad: str = "implicit"
    lr: float | None = None
    search_loss: bool = True

    def __post_init__(self) -> None:
        _choice("augment kind", self.kind, AUGMENT_KINDS)
        _choice("augment.per", self.per, PER)
        _choice("augment.gate", self.gate, AUGMENT_GATES)
        _choice("augment.hypergrad", self.hypergrad, AUGMENT_HYPERGRADS)
        self.ops = check_ops(self.ops)
        if self.radius >= self.max_radius:
            raise ValueError(
                f"augment.radius must be < augment.max_radius, got {self.radius} and "
                f"{self.max_radius}"
            )
        if self.kind == "none" and not self.search_loss:
            raise ValueError("augment.search_loss=false needs a policy (augment.kind != none)")


@dataclass
class SearchConfig(StrictConfig):
    """Algorithm 1 end to end: split, warm-up, search, retrain.

    ``hyper_start``: the fraction of the search epochs trained with the init loss before the
    hyper-steps begin (Algorithm 1's warm-up; the paper's 120 of 300 epochs is 0.4). It was
    called ``warmup_fraction``, which clashed with the learning-rate warm-up
    ``train.warmup_epochs``.

    ``checkpoint_every``: with a checkpoint directory, the engine checkpoints every this many
    epochs, and always at the end of the search and of the retrain phase (a resume replays the
    epochs since the last checkpoint exactly).

    ``seed`` ≥ 0; ``val_fraction`` in (0, 1) or null; ``objective_lam`` in [0, 1] or null;
    ``objective_temperature`` > 0 or null; ``hyper_start`` in [0, 1); ``checkpoint_every`` ≥ 1.
    """

    SECTION: ClassVar[str] = ""
    RULES: ClassVar[dict[str, tuple[Rule, ...]]] = {
        "seed": (at_least(0),),
        "val_fraction": (within(0, 1, lo_open=True, hi_open=True),),
        "objective_lam": (within(0, 1),),
        "objective_temperature": (greater_than(0),),
        "hyper_start": (within(0, 1, hi_open=True),),
        "checkpoint_every": (at_least(1),),
    }

    seed: int = 0
    val_fraction: float | None = None
    objective: str = "balanced_ce"
    objective_lam: float | None = None
    objective_temperature: float | None = None
    hyper_start: float = 0.4
    retrain: bool = True
    eval_train: bool = False
    device: str = "cpu"
    space: SpaceConfig = field(default_factory=SpaceConfig)
    hyper: HyperConfig = field(default_factory=HyperConfig)
    alpha: AlphaConfig = field(default_factory=AlphaConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    retrain_train: TrainConfig | None = None
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        _choice("objective", self.objective, OBJECTIVES)
        if self.augment.kind != "none" and self.hyper.scope == "head":
            raise ValueError(
                "search.augment needs hyper.scope=full: with the head scope the features are "
                "held constant and no hypergradient reaches the augmentation policy"
            )

    def retrain_config(self) -> TrainConfig:
        return self.retrain_train if self.retrain_train is not None else self.train


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a mapping, got {type(value).__name__}")
        return from_dict(hint, value, prefix=where + ".")
    args = get_args(hint)
    if origin is tuple or hint is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where} must be a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_convert(v, inner, where) for v in value)
    if args and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        others = [a for a in args if a is not type(None)]
        return _convert(value, others[0], where)
    if hint is bool:
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
        if isinstance(value, bool):
            return value
        raise ValueError(f"{where} must be true/false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ValueError(f"{where} must be {hint.__name__}, got {value!r}")
        try:
            out = hint(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be {hint.__name__}, got {value!r}") from None
        if hint is int and isinstance(value, float) and value != out:
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return out
    if hint is str:
        return str(value)
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys with the valid ones."""
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for old, new in RENAMED.items():
        if old in data and old not in names:
            raise ValueError(f"config key '{prefix}{old}' was renamed to '{prefix}{new}'")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"Unknown config key(s) {[prefix + u for u in unknown]}; valid: {names}")
    kwargs = {k: _convert(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (tuples become lists), ready for YAML/JSON."""

    def conv(v: Any) -> Any:
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return conv(dataclasses.asdict(cfg))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings to a nested dict (values parsed as YAML scalars)."""
    import yaml

    out = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override '{item}' must look like key=value (e.g. train.epochs=5)")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            child = dict(child) if isinstance(child, dict) else {}
            node[p] = child
            node = child
        node[parts[-1]] = yaml.safe_load(raw)
    return out


__all__ = [
    "ALPHA_OPTIMIZERS",
    "ALPHA_SCHEDULES",
    "AUGMENT_GATES",
    "AUGMENT_HYPERGRADS",
    "METHODS",
    "RESCALE",
    "SCOPES",
    "AlphaConfig",
    "AugmentConfig",
    "GuardConfig",
    "HyperConfig",
    "SearchConfig",
    "SpaceConfig",
    "apply_overrides",
    "from_dict",
    "to_dict",
]
