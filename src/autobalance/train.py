"""The one training loop: baselines, the search's θ-steps and the retrain phase all use it.

Schedule (PROTOCOLS B1, after Cao et al. 2019): SGD with momentum, a linear learning-rate
warm-up over the first ``warmup_epochs``, then a step decay by ``lr_decay`` at each fraction of
the epochs in ``milestones``. The schedule is evaluated per iteration:

    lr(t) = lr · min(1, (t + 1) / T_warm) · decay^{#{m : t ≥ m·T}}

``schedule: cosine`` replaces the step factor by ½(1 + cos(π t / T)) (the paper's ImageNet-LT and
iNaturalist protocol), ``constant`` by 1. ``optimizer`` picks SGD (default), Adam, AdamW or any
``torch.optim.Optimizer`` by dotted path, with ``optimizer_options`` as extra keywords; the API
also takes factories (:func:`make_optimizer`'s ``factory``). ``precision: bf16 | fp16`` runs the
θ-steps' forward and loss under ``torch.autocast`` (fp16 with a ``GradScaler``); the search's
hyper-step is always computed in fp32, outside autocast. ``grad_clip`` clips ‖∇θ‖₂ per step.

Prediction is always argmax of the raw logits f(x); logit adjustments belong to the loss only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from autobalance import distributed
from autobalance.data.adapters import LabelledData
from autobalance.data.loader import DEVICE_RESIDENT_MAX_BYTES, TensorLoader, device_copy
from autobalance.data.streaming import StreamingDataset, StreamLoader
from autobalance.losses import scoped_value_checks
from autobalance.metrics import evaluate_predictions
from autobalance.validation import Rule, StrictConfig, at_least, greater_than, within

LossFn = Callable[[Tensor, Tensor, Tensor | None], Tensor]
Transform = Callable[[Tensor, torch.Generator | None], Tensor]
StepHook = Callable[[int, int], dict[str, Any] | None]
# (x, y, groups, generator) ↦ A_y(x) after the batch transform: a label-dependent augmentation
# (a learned policy of ``autobalance.augment``, AutoBalance §2)
BatchAugment = Callable[[Tensor, Tensor, Tensor | None, torch.Generator | None], Tensor]


OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
SCHEDULES: tuple[str, ...] = ("step", "cosine", "constant")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


def _optimizer_name(value: str) -> str | None:
    if value in OPTIMIZERS or ("." in value and all(p.isidentifier() for p in value.split("."))):
        return None
    return f"must be one of {OPTIMIZERS} or a dotted path such as torch.optim.RMSprop"


@dataclass
class TrainConfig(StrictConfig):
    """Lower-level (θ) optimisation settings; defaults follow PROTOCOLS B1 / LDAM-DRW.

    Every field is checked when set (type, finite, range; ``validation.StrictConfig``):
    ``epochs``, ``batch_size``, ``eval_batch_size``, ``eval_every`` ≥ 1; ``lr`` > 0;
    ``momentum`` in [0, 1) (> 0 with ``nesterov``); ``weight_decay``, ``warmup_epochs`` ≥ 0;
    ``milestones`` in (0, 1]; ``lr_decay`` in (0, 1] (a factor the lr is multiplied by).
    """

    SECTION: ClassVar[str] = "train."
    RULES: ClassVar[dict[str, tuple[Rule, ...]]] = {
        "epochs": (at_least(1),),
        "batch_size": (at_least(1),),
        "lr": (greater_than(0),),
        "momentum": (within(0, 1, hi_open=True),),
        "weight_decay": (at_least(0),),
        "warmup_epochs": (at_least(0),),
        "milestones": (
            lambda ms: (
                None if all(0 < m <= 1 for m in ms) else "are fractions of the epochs in (0, 1]"
            ),
        ),
        "lr_decay": (within(0, 1, lo_open=True),),
        "eval_batch_size": (at_least(1),),
        "eval_every": (at_least(1),),
        "optimizer": (_optimizer_name,),
        "schedule": (lambda v: None if v in SCHEDULES else f"must be one of {SCHEDULES}",),
        "precision": (lambda v: None if v in PRECISIONS else f"must be one of {PRECISIONS}",),
        "grad_clip": (greater_than(0),),
    }

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 2e-4
    warmup_epochs: float = 2.0
    milestones: tuple[float, ...] = (0.75, 0.9)
    lr_decay: float = 0.1
    eval_batch_size: int = 1024
    eval_every: int = 1
    drop_last: bool = False
    optimizer: str = "sgd"
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    schedule: str = "step"
    precision: str = "fp32"
    grad_clip: float | None = None

    def steps_per_epoch(self, num_samples: int) -> int:
        """θ-steps in one pass over ``num_samples`` samples; under ``torchrun`` with W ranks,
        each rank's ⌈N / W⌉ samples in batches of B / W (:mod:`autobalance.distributed`)."""
        from autobalance.distributed import info

        world = info().world
        n, b = -(-num_samples // world), self.local_batch_size(world)
        return n // b if self.drop_last else math.ceil(n / b)

    def local_batch_size(self, world: int) -> int:
        """B / W: one rank's share of the global batch ``batch_size`` (B must divide by W)."""
        if self.batch_size % world:
            raise ValueError(
                f"train.batch_size {self.batch_size} must be divisible by the {world} processes "
                "(it is the global batch; each process takes batch_size / processes)"
            )
        return self.batch_size // world

    def __post_init__(self) -> None:
        if self.nesterov and self.momentum <= 0:
            raise ValueError("train.nesterov needs train.momentum > 0")


OptimizerFactory = Callable[[nn.Module, "TrainConfig"], torch.optim.Optimizer]
SchedulerFactory = Callable[
    [torch.optim.Optimizer, "TrainConfig", int], torch.optim.lr_scheduler.LRScheduler
]


def _optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    if name == "sgd":
        return torch.optim.SGD
    if name in ("adam", "adamw"):
        return torch.optim.Adam if name == "adam" else torch.optim.AdamW
    import importlib

    module, _, attr = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"train.optimizer '{name}' cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ValueError(f"train.optimizer '{name}' is not a torch.optim.Optimizer subclass")
    return cls


def make_optimizer(
    model: nn.Module, cfg: TrainConfig, factory: OptimizerFactory | None = None
) -> torch.optim.Optimizer:
    """The θ optimiser: ``factory(model, cfg)`` when given, else ``cfg.optimizer`` on all of θ.

    SGD uses ``lr``, ``momentum``, ``nesterov`` and ``weight_decay`` (L2); every other optimiser
    gets ``lr`` and ``weight_decay``; ``optimizer_options`` add keywords (e.g. ``betas``).
    """
    if factory is not None:
        return factory(model, cfg)
    cls = _optimizer_class(cfg.optimizer)
    opts: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cls is torch.optim.SGD:
        opts.update(momentum=cfg.momentum, nesterov=cfg.nesterov)
    opts.update(cfg.optimizer_options)
    try:
        return cls(model.parameters(), **opts)
    except TypeError as exc:
        raise ValueError(f"train.optimizer '{cfg.optimizer}': {exc}") from None


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    steps_per_epoch: int,
    factory: SchedulerFactory | None = None,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-iteration warm-up + step (or cosine, constant) schedule (see the module docstring);
    ``factory(optimizer, cfg, steps_per_epoch)`` when given. It is stepped once per θ-step."""
    if factory is not None:
        return factory(optimizer, cfg, steps_per_epoch)
    warm = max(1, round(cfg.warmup_epochs * steps_per_epoch))

    def factor(t: int) -> float:
        f = min(1.0, (t + 1) / warm) if cfg.warmup_epochs > 0 else 1.0
        return f * decay_factor(cfg, steps_per_epoch, t)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def decay_factor(cfg: TrainConfig, steps_per_epoch: int, t: int) -> float:
    """The decay part of the schedule at θ-step t (no warm-up), T the total steps:
    decay^{#{m : t ≥ ⌊m·T⌋}} (``step``), ½(1 + cos(π t / T)) (``cosine``) or 1
    (``constant``). The search's α learning rate follows it (``alpha.schedule='follow'``, as in
    the paper, where α decays at θ's epochs 220 and 260)."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(t, total) / max(total, 1)))
    if cfg.schedule == "constant":
        return 1.0
    return float(cfg.lr_decay ** sum(t >= math.floor(m * total) for m in cfg.milestones))


def identity_transform(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Features pass through unchanged (cast to float)."""
    return x if x.is_floating_point() else x.float()


@torch.no_grad()
def predict(
    model: nn.Module,
    x: Tensor,
    *,
    batch_size: int = 1024,
    transform: Transform = identity_transform,
    device: torch.device | str = "cpu",
) -> Tensor:
    """argmax of the raw logits f(x), batched, in eval mode (the mode is restored after).

    On an accelerator, ``x`` is copied there once and kept while it lives (``device_copy``: an
    evaluation set scored every epoch is not sent again), and the predictions come back to the
    host in one copy at the end, not one per batch.
    """
    dev = torch.device(device)
    if dev.type != "cpu" and x.numel() * x.element_size() <= DEVICE_RESIDENT_MAX_BYTES:
        x = device_copy(x, dev)
    batches = (x[i : i + batch_size] for i in range(0, x.shape[0], batch_size))
    return _argmax_batches(model, batches, transform, dev)


@torch.no_grad()
def predict_stream(
    model: nn.Module,
    data: StreamingDataset,
    *,
    batch_size: int = 1024,
    transform: Transform = identity_transform,
    device: torch.device | str = "cpu",
) -> Tensor:
    """:func:`predict` over a streamed dataset (its ``eval_dataset`` items, in order)."""
    batches = (xb for xb, _, _ in data.batches(batch_size, train=False))
    return _argmax_batches(model, batches, transform, torch.device(device))


def _argmax_batches(
    model: nn.Module, batches: Iterable[Tensor], transform: Transform, dev: torch.device
) -> Tensor:
    """argmax f(transform(x)) of each batch, in eval mode (restored after), as one host tensor:
    on an accelerator the predictions stay there until a single copy at the end."""
    was_training = model.training
    model.eval()
    on_host = dev.type == "cpu"
    out = []
    for xb in batches:
        pred = model(transform(xb.to(dev), None)).argmax(dim=1)
        out.append(pred.cpu() if on_host else pred)
    model.train(was_training)
    return torch.cat(out).cpu() if out else torch.empty(0, dtype=torch.long)


def make_loader(
    data: LabelledData,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world: int = 1,
) -> TensorLoader | StreamLoader:
    """The epoch loader of ``data``: :class:`TensorLoader` in memory (the fast path), else a
    :class:`StreamLoader` (``DataLoader`` workers); both visit epoch e in the order
    ``randperm(N)`` seeded with ``seed + e``."""
    cls = StreamLoader if isinstance(data, StreamingDataset) else TensorLoader
    return cls(
        data,  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        seed=seed,
        device=device,
        rank=rank,
        world=world,
    )


def predict_data(
    model: nn.Module,
    data: LabelledData,
    *,
    batch_size: int = 1024,
    transform: Transform = identity_transform,
    device: torch.device | str = "cpu",
    sharded: bool = False,
) -> Tensor:
    """Predicted labels (argmax of raw logits) of ``model`` on every row of ``data``, in order,
    on the CPU; in memory or streamed. ``sharded``: as in :func:`evaluate`."""
    d = distributed.info()
    part = data
    if sharded and d.active:
        part = data.subset(distributed.share(torch.arange(len(data))))
    if isinstance(part, StreamingDataset):
        pred = predict_stream(
            model, part, batch_size=batch_size, transform=transform, device=device
        )
    else:
        pred = predict(model, part.x, batch_size=batch_size, transform=transform, device=device)
    if sharded and d.active:
        dev = next(iter(model.parameters()), torch.empty(0)).device
        pred = distributed.gather_shares(pred.to(dev), len(data)).cpu()
    return pred


def evaluate(
    model: nn.Module,
    data: LabelledData,
    *,
    batch_size: int = 1024,
    transform: Transform = identity_transform,
    device: torch.device | str = "cpu",
    sharded: bool = False,
) -> dict[str, Any]:
    """All applicable metrics of ``model`` on ``data`` (argmax of raw logits).

    ``sharded`` (for calls that every torchrun rank makes in step: the training loop's epoch
    evaluations, the guard's scores): each rank predicts its share of the rows and the
    predictions are all-gathered. A call made by one rank alone must leave it False."""
    pred = predict_data(
        model, data, batch_size=batch_size, transform=transform, device=device, sharded=sharded
    )
    return prediction_metrics(data, pred)


def prediction_metrics(
    data: LabelledData, pred: Tensor, rows: Tensor | None = None
) -> dict[str, Any]:
    """:func:`autobalance.metrics.evaluate_predictions` of ``pred`` against ``data``'s labels,
    groups and cell weights, over the rows ``rows`` of ``data`` (all rows when None; ``pred``
    then holds the predictions of those rows, in that order)."""
    y, groups = data.y, data.groups
    if rows is not None:
        y = y[rows]
        groups = None if groups is None else groups[rows]
    return evaluate_predictions(
        y,
        pred,
        groups=groups,
        num_classes=data.num_classes,
        num_groups=data.num_groups if data.groups is not None else None,
        cell_weights=data.error_weights,
    )


@dataclass
class EpochState:
    """What one epoch of training produced.

    ``accuracy`` is the running training accuracy: argmax of the raw logits of each θ-step's
    (augmented) batch, taken before that step, so it costs no extra forward pass.
    """

    loss: float
    steps: int
    accuracy: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


def train_epoch(
    model: nn.Module,
    loss_fn: LossFn,
    loader: TensorLoader | StreamLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    transform: Transform = identity_transform,
    generator: torch.Generator | None = None,
    step_hook: StepHook | None = None,
    augment: BatchAugment | None = None,
    global_step: int = 0,
    sync_every_step: bool | None = None,
    precision: str = "fp32",
    grad_clip: float | None = None,
    scaler: torch.amp.GradScaler | None = None,
    value_checks: bool | None = None,
) -> EpochState:
    """One pass over ``loader``: θ ← θ − η∇θ L_train(θ, α) per batch.

    ``step_hook(global_step, local_step)`` runs after every θ-step; the search uses it for its
    hyper-steps on α. A non-finite training loss raises ``FloatingPointError``.
    ``augment(x, y, groups, generator)``, when given, follows ``transform`` on every batch: the
    label-dependent augmentation A_y of a learned policy (AutoBalance §2, ``autobalance.augment``).

    ``sync_every_step`` (default: only when the loss lives on the CPU, where it costs nothing)
    reads the loss on the host at every step, and the error is raised before θ changes. Else the
    loss sum and a non-finite flag stay on the device and are read once at the end of the epoch
    (so a step never waits for the device); a non-finite loss then raises there, naming its
    step, after the epoch's remaining steps ran. The returned mean loss is the same either way:
    both add the losses in float64, in the same order.

    ``value_checks`` sets the losses' value checks (:func:`autobalance.losses.set_value_checks`:
    label range, finite loss; one device→host read per call) for this epoch and restores the
    previous setting after it; None leaves the global setting. :func:`run_epochs` turns them off
    where the loss is read deferred (:func:`hot_loop_value_checks`).
    """
    with scoped_value_checks(value_checks):
        model.train()
        total, n = 0.0, 0
        correct: Tensor | int = 0  # stays on the device: no sync per step
        seen = 0
        total_dev: Tensor | None = None  # Σ loss in float64, on the device (deferred mode)
        first_bad: Tensor | None = None  # first local step with a non-finite loss, else -1
        bad_loss: Tensor | None = None  # its loss value
        if augment is not None:  # A_y(x) needs the labels: the batch transform runs first, here
            base_transform, transform = transform, _passthrough
        amp = autocast_context(precision, next(iter(model.parameters()), torch.empty(0)).device)
        for xb, yb, gb in loader:
            if augment is not None:
                xb = augment(base_transform(xb, generator), yb, gb, generator)
            with amp():
                logits = model(transform(xb, generator))
                loss = loss_fn(logits, yb, gb)
            loss = loss.float()
            correct = correct + (logits.detach().argmax(dim=1) == yb).sum()
            seen += int(yb.shape[0])
            eager = loss.device.type == "cpu" if sync_every_step is None else sync_every_step
            if eager:
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite training loss ({loss.item()}) at step {global_step + n}; "
                        "lower the learning rate or check the data"
                    )
            else:
                value = loss.detach()
                if first_bad is None or bad_loss is None:
                    first_bad = torch.full((), -1, dtype=torch.long, device=value.device)
                    bad_loss = torch.zeros_like(value)
                new_bad = (first_bad < 0) & ~torch.isfinite(value)
                first_bad = torch.where(new_bad, n, first_bad)
                bad_loss = torch.where(new_bad, value, bad_loss)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if eager:
                total += float(loss.detach())
            else:
                step_loss = loss.detach().to(torch.float64)
                total_dev = step_loss if total_dev is None else total_dev + step_loss
            n += 1
            if step_hook is not None:
                step_hook(global_step + n, n)
        if first_bad is not None and bad_loss is not None:
            bad = int(first_bad)
            if bad >= 0:
                raise FloatingPointError(
                    f"non-finite training loss ({float(bad_loss)}) at step {global_step + bad}; "
                    "lower the learning rate or check the data"
                )
        if total_dev is not None:
            total += float(total_dev)
        return EpochState(loss=total / max(n, 1), steps=n, accuracy=int(correct) / max(seen, 1))


def hot_loop_value_checks(device: torch.device | str) -> bool | None:
    """The losses' value checks inside :func:`run_epochs`' θ-steps on ``device``.

    On a CPU they cost nothing and stay as set (None). On an accelerator each one is a
    device→host synchronisation per θ-step, and both are redundant there: ``LabelledData`` and
    ``StreamingDataset`` validate their label and group ids when built, and a non-finite loss is
    caught by the epoch's deferred flag (:func:`train_epoch`). So they are off (False).
    """
    return None if torch.device(device).type == "cpu" else False


def autocast_context(precision: str, device: torch.device) -> Callable[[], Any]:
    """A context factory: ``torch.autocast`` in ``bf16``/``fp16`` on ``device``'s type, a null
    context in ``fp32``. The loss is cast back to fp32 after it (the backward stays mixed)."""
    import contextlib

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device | str) -> torch.amp.GradScaler | None:
    """A ``GradScaler`` for ``fp16`` (loss scaling against fp16 underflow), else ``None``."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


def _passthrough(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return x


def seeded_generator(seed: int, *salt: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator seeded from ``seed`` and the ``salt`` integers (phase, epoch …)."""
    g = torch.Generator(device=device)
    mixed = seed
    for s in salt:
        mixed = (mixed * 1_000_003 + s + 1) % (2**63 - 1)
    g.manual_seed(mixed)
    return g


def as_loss_fn(loss: nn.Module | Callable[..., Tensor]) -> LossFn:
    """Adapt a loss module (``forward(logits, targets, groups=None)``) to the loop's form.

    The adapter forwards ``set_epoch`` (DRW, LDAM-DRW) when the loss has it.
    """

    class _Adapter:
        def __call__(self, logits: Tensor, targets: Tensor, groups: Tensor | None) -> Tensor:
            # without groups, the plain (logits, targets) call: any torch loss works
            if groups is None:
                return loss(logits, targets)
            return loss(logits, targets, groups=groups)

    fn = _Adapter()
    if hasattr(loss, "set_epoch"):
        fn.set_epoch = loss.set_epoch  # type: ignore[attr-defined]
    return fn


__all__ = [
    "BatchAugment",
    "EpochState",
    "LossFn",
    "TrainConfig",
    "Transform",
    "as_loss_fn",
    "autocast_context",
    "decay_factor",
    "evaluate",
    "fit",
    "grad_scaler",
    "hot_loop_value_checks",
    "identity_transform",
    "make_loader",
    "make_optimizer",
    "make_scheduler",
    "predict",
    "predict_data",
    "predict_stream",
    "prediction_metrics",
    "run_epochs",
    "seeded_generator",
    "train_epoch",
]


EpochCallback = Callable[[int, dict[str, Any]], None]


def _batch_events(
    hook: StepHook | None, callbacks: Any, phase: str, epoch: int, steps_per_epoch: int
) -> StepHook | None:
    """``hook``, then ``callbacks.on_batch_end(phase, global_step, info)`` after every θ-step
    (progress bars); ``info`` holds plain ints only, so no device sync is added."""
    on_batch = getattr(callbacks, "on_batch_end", None)
    if on_batch is None:
        return hook

    def step(global_step: int, local_step: int) -> dict[str, Any] | None:
        out = hook(global_step, local_step) if hook is not None else None
        on_batch(phase, global_step, {"epoch": epoch, "steps_per_epoch": steps_per_epoch})
        return out

    return step


def run_epochs(
    phase: str,
    model: nn.Module,
    loss_fn: LossFn,
    train_data: LabelledData,
    cfg: TrainConfig,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    seed: int,
    start_epoch: int = 0,
    end_epoch: int | None = None,
    eval_sets: Mapping[str, LabelledData] | None = None,
    transform: Transform = identity_transform,
    eval_transform: Transform = identity_transform,
    device: torch.device | str = "cpu",
    callbacks: Any = None,
    step_hook: StepHook | None = None,
    augment: BatchAugment | None = None,
    epoch_extra: Callable[[int], dict[str, Any]] | None = None,
    on_epoch_done: EpochCallback | None = None,
    phase_id: int = 0,
) -> list[dict[str, Any]]:
    """Run epochs [start_epoch, end_epoch) of one phase; returns one record per epoch.

    Every source of randomness is seeded from (seed, phase_id, epoch): the sampler order and the
    augmentation draws. So a run resumed from an end-of-epoch checkpoint replays exactly.
    ``on_epoch_done(epoch, record)`` is where the caller checkpoints.
    """
    end = cfg.epochs if end_epoch is None else end_epoch
    dist_info = distributed.info()
    loader = make_loader(
        train_data,
        batch_size=cfg.local_batch_size(dist_info.world),
        shuffle=True,
        drop_last=cfg.drop_last,
        seed=seed * 7919 + phase_id,
        device=device,
        rank=dist_info.rank,
        world=dist_info.world,
    )
    # θ-steps through DistributedDataParallel under torchrun; hooks and evaluation see ``model``
    train_model = distributed.wrap(model)
    records: list[dict[str, Any]] = []
    steps_per_epoch = len(loader)
    scaler = grad_scaler(cfg.precision, device)
    for epoch in range(start_epoch, end):
        loader.set_epoch(epoch)
        if hasattr(loss_fn, "set_epoch"):
            loss_fn.set_epoch(epoch)
        gen = seeded_generator(seed, phase_id, epoch, device=device)
        state = train_epoch(
            train_model,
            loss_fn,
            loader,
            optimizer,
            scheduler,
            transform=transform,
            generator=gen,
            step_hook=_batch_events(step_hook, callbacks, phase, epoch, steps_per_epoch),
            augment=augment,
            global_step=epoch * steps_per_epoch,
            precision=cfg.precision,
            grad_clip=cfg.grad_clip,
            scaler=scaler,
            value_checks=hot_loop_value_checks(device),
        )
        distributed.sync_buffers(model)  # rank 0's BatchNorm statistics everywhere
        record: dict[str, Any] = {
            "phase": phase,
            "epoch": epoch,
            "train_loss": state.loss,
            "train_acc": state.accuracy,
            "lr": optimizer.param_groups[0]["lr"],
        }
        last = epoch == end - 1
        if eval_sets and (last or (epoch + 1) % cfg.eval_every == 0):
            for name, data in eval_sets.items():
                m = evaluate(
                    model,
                    data,
                    batch_size=cfg.eval_batch_size,
                    transform=eval_transform,
                    device=device,
                    sharded=True,
                )
                record.update({f"{name}/{k}": v for k, v in m.items()})
        if epoch_extra is not None:
            record.update(epoch_extra(epoch))
        records.append(record)
        if callbacks is not None:
            callbacks.on_epoch_end(phase, epoch, record)
        if on_epoch_done is not None:
            on_epoch_done(epoch, record)
    return records


def fit(
    model: nn.Module,
    loss: nn.Module | Callable[..., Tensor],
    train_data: LabelledData,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    eval_sets: Mapping[str, LabelledData] | None = None,
    transform: Transform = identity_transform,
    eval_transform: Transform = identity_transform,
    device: torch.device | str = "cpu",
    callbacks: Any = None,
    optimizer_factory: OptimizerFactory | None = None,
    scheduler_factory: SchedulerFactory | None = None,
    augment: BatchAugment | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` with a fixed ``loss`` (a baseline, or a learned α* loaded from JSON;
    ``augment``: a learned policy A_y of ``autobalance.augment``, applied after ``transform``).

    ``train_data``: anything :func:`autobalance.data.as_dataset` takes."""
    from autobalance.data.adapters import as_dataset

    train_data = as_dataset(train_data, name="train")
    model.to(device)
    if isinstance(loss, nn.Module):
        loss.to(device)
    optimizer = make_optimizer(model, cfg, optimizer_factory)
    steps = cfg.steps_per_epoch(len(train_data))
    scheduler = make_scheduler(optimizer, cfg, steps, scheduler_factory)
    if callbacks is not None:
        callbacks.on_phase_start("train", {"epochs": cfg.epochs})
    records = run_epochs(
        "train",
        model,
        as_loss_fn(loss),
        train_data,
        cfg,
        optimizer=optimizer,
        scheduler=scheduler,
        seed=seed,
        eval_sets=eval_sets,
        transform=transform,
        eval_transform=eval_transform,
        device=device,
        callbacks=callbacks,
        augment=augment,
    )
    if callbacks is not None:
        callbacks.on_phase_end("train", {})
    return records
