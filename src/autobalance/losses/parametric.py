"""The parametric cross-entropy of AutoBalance (Li et al. 2021, arXiv 2201.01212).

Class form, eq. (2.1)/(2.2), with per-class weight w, additive logit offset l and multiplicative
logit scale Δ::

    ℓ(x, y) = w_y · CE(Δ ⊙ f(x) + l, y) = −w_y · log softmax(Δ ⊙ f(x) + l)_y

(Class, group) form, eq. (4.2): w, l, Δ are (K, G) tables and a sample of group g uses
w_{y, g}, l[:, g] and Δ[:, g] over all K logits. The training loss (eq. 2.3) is the plain
average (1/N) Σ_i ℓ(x_i, y_i); it is *not* normalised by Σ_i w_{y_i}.

Logit adjustment (LA), CDT and VS losses are special cases; see ``baselines.py``.

Speed: on CPU the loss runs through a fused autograd function (the reduction inside it, one
(N, K) buffer reused in the backward; double backward, ``torch.func.grad`` and forward-mode AD
are supported, ``vmap`` is not). On other devices, and under ``torch.compile`` (which fuses by
itself), plain autograd ops are used, which is faster where kernel launches dominate. Pass
detached w, l, Δ when only ∂/∂logits is needed: the α gradients cost extra (N, K) passes.

Drop-in for ``nn.CrossEntropyLoss``: :class:`ParametricCE` is called as ``loss(input, target)``
(also by keyword, ``loss(input=logits, target=y)``) on (N, K) logits and (N,) class indices, and
with ``groups=`` for the (class, group) form. Its forward reads nothing back from the device
except in the optional value checks (labels in range, a finite loss;
``losses.set_value_checks``, or ``check_values=False`` per loss), which never run under
``torch.compile``: a compiled model + loss is one graph.

Saved losses (:meth:`ParametricCE.save_json`, a run's ``alpha.json``) carry ``data``: the class
(and group) counts and fingerprint of the dataset α was learned on
(:mod:`autobalance.provenance`), which ``autobalance train --alpha`` checks.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from os import PathLike
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autobalance.losses._common import (
    check_finite,
    check_groups,
    check_logits_targets,
    check_reduction,
    is_compiling,
    reduce_loss,
)
from autobalance.provenance import ProvenanceWarning

COMPONENTS: tuple[str, ...] = ("weight", "additive", "multiplicative")
_FORMAT = "autobalance.ParametricCE"
# version 2 added "data" (the dataset α was learned on); version 1 files load with a warning
_VERSION = 2
_DELTA_EPS = 1e-6
# Device types on which the fused autograd function is used. It saves (N, K) memory passes, which
# pays on CPU; on GPUs at these sizes launch overhead dominates and plain autograd ops are faster.
FUSED_DEVICE_TYPES: set[str] = {"cpu"}

try:  # private pieces of torch's ``Function.apply``; without them the stock apply is used
    from torch._functorch.utils import unwrap_dead_wrappers

    _transforms_active = torch._C._are_functorch_transforms_active
    _FAST_APPLY = True
except (ImportError, AttributeError):  # pragma: no cover - older torch
    _FAST_APPLY = False


def _check_component(value: Any, name: str, k: int, grouped: bool, like: Tensor) -> Tensor | None:
    """Return ``value`` as a tensor of shape (K,) or, if ``grouped``, (K,) or (K, G)."""
    if value is None:
        return None
    t = value if isinstance(value, Tensor) else torch.as_tensor(value, dtype=like.dtype)
    if t.device != like.device or t.dtype != like.dtype:
        t = t.to(device=like.device, dtype=like.dtype)
    if t.dim() == 1 and t.shape[0] == k:
        return t
    if t.dim() == 2 and t.shape[0] == k:
        if not grouped:
            raise ValueError(
                f"parametric_cross_entropy: {name} has shape {tuple(t.shape)} (K, G) "
                "but groups is None; pass groups=(N,) group ids for the (class, group) loss"
            )
        return t
    expected = f"({k},) or ({k}, G)" if grouped else f"({k},)"
    raise ValueError(
        f"parametric_cross_entropy: {name} must have shape {expected}, got {tuple(t.shape)}"
    )


def _adjust(x: Tensor, l: Tensor | None, d: Tensor | None) -> Tensor:
    """z = Δ ⊙ x + l, skipping the identity parts."""
    if d is not None and l is not None:
        return torch.addcmul(l, x, d)
    if d is not None:
        return x * d
    if l is not None:
        return x + l
    return x


def _scaled(t: Tensor, scale: Tensor | None, copy: bool = False) -> Tensor:
    """``t · scale`` as a new tensor, or ``t`` (a copy if asked) when there is no scale."""
    if scale is None:
        return t.clone() if copy else t
    return t * scale


def _sum_to(grad: Tensor, like: Tensor) -> Tensor:
    """Sum a (N, K) gradient down to the (K,) or (N, K) shape of ``like``."""
    return grad.sum(0) if like.dim() == 1 else grad


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    """(1/N) Σ_i ℓ_i, Σ_i ℓ_i or ℓ itself."""
    if reduction == "mean":
        return per_sample.mean()
    return per_sample.sum() if reduction == "sum" else per_sample


def _per_sample_grad(g_loss: Tensor, reduction: str, n: int) -> Tensor:
    """∂L/∂ℓ_i as an (N,) tensor, from the gradient of the reduced loss L."""
    if reduction == "none":
        return g_loss
    return (g_loss / n if reduction == "mean" else g_loss).expand(n)


class _FusedParametricCE(torch.autograd.Function):
    """Reduced ``w_i · CE(Δ ⊙ x + l, y_i)`` with a fused backward (and the log-softmax).

    ∂ℓ_i/∂z_ik = w_i (p_ik − [k = y_i]) with p = softmax(z); then ∂/∂x = Δ ⊙ ∂/∂z,
    ∂/∂Δ = Σ_i x ⊙ ∂/∂z, ∂/∂l = Σ_i ∂/∂z and ∂ℓ_i/∂w_i = CE_i. Plain autograd would write
    three extra (N, K) tensors; here the backward reuses one buffer in place. The reduction is
    done inside, so for ``mean``/``sum`` without w the gradient scale c = ∂L/∂ℓ_i is one number
    and ∂/∂x = (p − onehot) ⊙ (c·Δ) takes a single pass after the exp. When the backward itself
    is differentiated (``create_graph=True``, ``torch.func``), it recomputes the same formulas
    with differentiable ops from the saved inputs, so Hessian-vector products are exact.
    ``jvp`` gives forward-mode AD.
    """

    @staticmethod
    def forward(
        x: Tensor,
        t: Tensor,
        w: Tensor | None,
        l: Tensor | None,
        d: Tensor | None,
        reduction: str,
    ) -> tuple[Tensor, Tensor]:
        logp = torch.log_softmax(_adjust(x, l, d), dim=1)
        nll = -logp.gather(1, t.unsqueeze(1)).squeeze(1)
        return _reduce(nll if w is None else nll * w, reduction), logp

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
        x, t, w, l, d, reduction = inputs
        ctx.set_materialize_grads(False)
        ctx.reduction = reduction
        ctx.save_for_backward(x, t, w, l, d, output[1])
        ctx.save_for_forward(x, t, w, l, d, output[1])

    @staticmethod
    def backward(ctx: Any, g_loss: Tensor | None, g_logp: Tensor | None) -> tuple[Any, ...]:
        if g_loss is None and g_logp is None:
            return None, None, None, None, None, None
        if torch.is_grad_enabled():
            return _FusedParametricCE._backward_differentiable(ctx, g_loss, g_logp)
        # Fast path, in place where possible.
        x, t, w, l, d, logp = ctx.saved_tensors
        need_x, _, need_w, need_l, need_d, _ = ctx.needs_input_grad
        n, t1 = logp.shape[0], t.unsqueeze(1)
        gw = gl = gd = gx = None
        if need_w and g_loss is not None:
            gw = _per_sample_grad(g_loss, ctx.reduction, n) * -logp.gather(1, t1).squeeze(1)
        gz = logp.exp()  # p, in a fresh buffer that is updated in place below
        scale = None  # c = ∂L/∂ℓ_i when it is one number: applied late, to the smallest tensors
        if g_loss is not None:
            gz.scatter_add_(1, t1, torch.full_like(t1, -1, dtype=gz.dtype))  # p − onehot
            coef = g_loss / n if ctx.reduction == "mean" else g_loss  # ∂L/∂ℓ_i
            if w is not None:
                coef = coef * w
            if coef.dim() == 0 and g_logp is None:
                scale = coef
            else:
                gz.mul_(coef.unsqueeze(1) if coef.dim() == 1 else coef)
                if g_logp is not None:
                    gz.add_(g_logp - logp.exp() * g_logp.sum(1, keepdim=True))
        else:
            assert g_logp is not None  # backward runs with at least one incoming gradient
            gz = g_logp - gz * g_logp.sum(1, keepdim=True)
        # At most one new (N, K) tensor besides gz, which is reused in place.
        if need_l:
            gl = _scaled(gz.sum(0), scale) if l.dim() == 1 else _scaled(gz, scale, copy=True)
        if need_x:  # c·Δ ⊙ ∂ℓ/∂z; a new tensor only when gz is still needed for ∂/∂Δ
            factor = d if scale is None else (scale if d is None else d * scale)
            gx = gz if factor is None else (gz * factor if need_d else gz.mul_(factor))
        if need_d:
            gd = _scaled(_sum_to(gz.mul_(x), d), scale)  # Σ_i x ⊙ ∂ℓ/∂z
        return gx, None, gw, gl, gd, None

    @staticmethod
    def _backward_differentiable(
        ctx: Any, g_loss: Tensor | None, g_logp: Tensor | None
    ) -> tuple[Any, ...]:
        """The backward in differentiable ops, recomputed from the inputs (double backward)."""
        x, t, w, l, d, _ = ctx.saved_tensors
        need_x, _, need_w, need_l, need_d, _ = ctx.needs_input_grad
        logp = torch.log_softmax(_adjust(x, l, d), dim=1)
        p = logp.exp()
        gz = torch.zeros_like(logp)
        gw = None
        if g_loss is not None:
            g = _per_sample_grad(g_loss, ctx.reduction, logp.shape[0])
            coef = g if w is None else g * w
            onehot = F.one_hot(t, logp.shape[1]).to(logp.dtype)
            gz = gz + (p - onehot) * coef.unsqueeze(1)
            if need_w:
                gw = g * -logp.gather(1, t.unsqueeze(1)).squeeze(1)
        if g_logp is not None:
            gz = gz + g_logp - p * g_logp.sum(1, keepdim=True)
        gx = (gz if d is None else gz * d) if need_x else None
        gl = _sum_to(gz, l) if need_l else None
        gd = _sum_to(gz * x, d) if need_d else None
        return gx, None, gw, gl, gd, None

    @staticmethod
    def jvp(
        ctx: Any,
        x_t: Tensor | None,
        t_t: Any,
        w_t: Tensor | None,
        l_t: Tensor | None,
        d_t: Tensor | None,
        reduction_t: Any,
    ) -> tuple[Tensor, Tensor]:
        x, t, w, _, d, logp = ctx.saved_tensors
        dz = torch.zeros_like(logp)
        if x_t is not None:
            dz = dz + (x_t if d is None else x_t * d)
        if d_t is not None:
            dz = dz + x * d_t
        if l_t is not None:
            dz = dz + l_t
        p = logp.exp()
        p_dz = (p * dz).sum(1)
        nll = -logp.gather(1, t.unsqueeze(1)).squeeze(1)
        d_nll = p_dz - dz.gather(1, t.unsqueeze(1)).squeeze(1)
        d_loss = d_nll if w is None else d_nll * w
        if w_t is not None:
            d_loss = d_loss + w_t * nll
        return _reduce(d_loss, ctx.reduction), dz - p_dz.unsqueeze(1)


def _fused_apply(*args: Any) -> Any:
    """``_FusedParametricCE.apply`` without its per-call ``inspect.signature`` binding.

    Every argument is passed positionally and none has a default, so that binding changes
    nothing, yet on CPU it costs about 50 µs a call, as much as the rest of the loss at
    N·K = 256·1000. Under ``torch.func`` transforms the stock path runs (``torch.compile``
    never gets here: dynamo cannot trace a custom ``jvp``, and it fuses the plain ops itself).
    """
    if not _FAST_APPLY or _transforms_active():
        return _FusedParametricCE.apply(*args)
    # What the stock ``Function.apply`` does next, minus the binding.
    args = unwrap_dead_wrappers(args)
    return super(torch.autograd.Function, _FusedParametricCE).apply(*args)


def parametric_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    *,
    weight: Tensor | None = None,
    additive: Tensor | None = None,
    multiplicative: Tensor | None = None,
    groups: Tensor | None = None,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    """Parametric CE ``w_y · CE(Δ ⊙ f(x) + l, y)`` (Li et al. 2021, arXiv 2201.01212, eq. 2.2).

    Args:
        logits: (N, K) model outputs f(x).
        targets: (N,) labels in [0, K).
        weight: effective w, (K,) or (K, G); None means w = 1.
        additive: effective l, (K,) or (K, G); None means l = 0.
        multiplicative: effective Δ, (K,) or (K, G); None means Δ = 1.
        groups: (N,) group ids in [0, G). With groups, (K, G) tables select column g_i for
            sample i (eq. 4.2): w_{y_i, g_i}, l[:, g_i], Δ[:, g_i]; (K,) tensors are shared by
            all groups.
        reduction: ``mean`` = (1/N) Σ_i ℓ_i (eq. 2.3, not divided by Σ w), ``sum`` or ``none``.
        check_values: run the value checks (labels and group ids in range, a finite loss), each
            a device→host read; None follows ``losses.set_value_checks`` (on by default). They
            never run under ``torch.compile``. Shape checks always run.

    Returns:
        The reduced loss, or (N,) per-sample losses for ``none``.
    """
    name = "parametric_cross_entropy"
    check_reduction(reduction)
    n, k = check_logits_targets(logits, targets, name=name, values=check_values)
    grouped = groups is not None
    w = _check_component(weight, "weight", k, grouped, logits)
    l = _check_component(additive, "additive", k, grouped, logits)
    d = _check_component(multiplicative, "multiplicative", k, grouped, logits)
    targets = targets.long()
    if grouped:
        sizes = {int(t.shape[1]) for t in (w, l, d) if t is not None and t.dim() == 2}
        if len(sizes) > 1:
            raise ValueError(f"{name}: (K, G) tables disagree on G: {sorted(sizes)}")
        groups = check_groups(
            groups, n, sizes.pop() if sizes else None, name=name, values=check_values
        ).long()
        # Row i of the gathered table is column g_i of the (K, G) table.
        if d is not None and d.dim() == 2:
            d = d.t()[groups]
        if l is not None and l.dim() == 2:
            l = l.t()[groups]
    sample_weight = None
    if w is not None:
        sample_weight = w[targets, groups] if w.dim() == 2 else w[targets]
    identity = w is None and l is None and d is None
    if logits.device.type in FUSED_DEVICE_TYPES and not identity and not is_compiling():
        out, _ = _fused_apply(logits, targets, sample_weight, l, d, reduction)
    elif sample_weight is None:
        out = F.cross_entropy(_adjust(logits, l, d), targets, reduction=reduction)
    else:
        per_sample = F.cross_entropy(_adjust(logits, l, d), targets, reduction="none")
        out = reduce_loss(per_sample, reduction, sample_weight)
    check_finite(out, logits, name=name, values=check_values)
    return out


def _broadcast_init(value: Any, name: str, shape: tuple[int, ...]) -> Tensor | None:
    """An initial effective value as a float64 tensor of ``shape`` (scalars and (K,) broadcast)."""
    if value is None:
        return None
    t = torch.as_tensor(value.detach().cpu() if isinstance(value, Tensor) else value)
    t = t.to(torch.float64)
    if t.dim() == 1 and len(shape) == 2 and t.shape[0] == shape[0]:
        t = t[:, None]  # a per-class value shared by every group
    try:
        return t.expand(shape).clone()
    except RuntimeError as exc:
        raise ValueError(
            f"ParametricCE: {name} must be a scalar, ({shape[0]},) or {shape}, "
            f"got shape {tuple(t.shape)}"
        ) from exc


class ParametricCE(nn.Module):
    """Learnable parametric CE (Li et al. 2021, arXiv 2201.01212, eq. 2.2 and 4.2).

    The module holds RAW tensors and maps them to the effective loss parameters::

        w = exp(log_weight),     l = additive,     Δ = delta_scale · σ(delta_logit)

    so w > 0 and 0 < Δ < delta_scale; with ``delta_scale = 2`` the identity Δ = 1 is
    ``delta_logit = 0``. Components named in ``learn`` are ``nn.Parameter``; the others are
    buffers, and a non-learned component left at ``None`` is the identity and costs nothing.

    A drop-in for ``nn.CrossEntropyLoss`` on (N, K) logits and (N,) class indices:
    ``loss(input, target)`` or ``loss(input=..., target=...)``, plus ``groups=`` for the
    (class, group) form; with every component at its identity it equals
    ``F.cross_entropy``. ``provenance`` (None, or :func:`autobalance.provenance.data_fingerprint`
    of the data α was learned on) is saved with :meth:`save_json`.

    Args:
        num_classes: K.
        num_groups: G; with G > 1 the tables are (K, G) and ``forward`` needs ``groups``.
        weight, additive, multiplicative: initial EFFECTIVE values (scalar, (K,) or the full
            shape); None means w = 1, l = 0, Δ = 1. Δ must lie in (0, delta_scale]; it is clamped
            into the open interval by a relative 1e-6 before the logit.
        delta_scale: the scale s of Δ = s·σ(d).
        learn: which of ``("weight", "additive", "multiplicative")`` are learnable.
        reduction: ``mean`` (eq. 2.3, plain average), ``sum`` or ``none``.
        check_values: the forward's value checks (labels in range, a finite loss; each a
            device→host read): None follows ``losses.set_value_checks`` (on by default), False
            never runs them. They never run under ``torch.compile``.
    """

    log_weight: Tensor | None
    additive_raw: Tensor | None
    delta_logit: Tensor | None

    def __init__(
        self,
        num_classes: int,
        num_groups: int = 1,
        *,
        weight: Any = None,
        additive: Any = None,
        multiplicative: Any = None,
        delta_scale: float = 2.0,
        learn: Iterable[str] = COMPONENTS,
        reduction: str = "mean",
        check_values: bool | None = None,
    ) -> None:
        super().__init__()
        if int(num_classes) < 1 or int(num_groups) < 1:
            raise ValueError(
                f"ParametricCE: num_classes and num_groups must be ≥ 1, "
                f"got {num_classes} and {num_groups}"
            )
        if not (math.isfinite(delta_scale) and delta_scale > 0):
            raise ValueError(f"ParametricCE: delta_scale must be > 0, got {delta_scale}")
        learn = (learn,) if isinstance(learn, str) else tuple(learn)
        unknown = [c for c in learn if c not in COMPONENTS]
        if unknown:
            raise ValueError(
                f"ParametricCE: unknown learn {unknown}, expected a subset of {COMPONENTS}"
            )
        self.num_classes = int(num_classes)
        self.num_groups = int(num_groups)
        self.delta_scale = float(delta_scale)
        self.learn = tuple(c for c in COMPONENTS if c in learn)
        self.reduction = check_reduction(reduction)
        self.check_values = check_values
        self.provenance: dict[str, Any] | None = None
        shape = self.shape
        raw = {
            "weight": self._weight_to_raw(_broadcast_init(weight, "weight", shape)),
            "additive": _broadcast_init(additive, "additive", shape),
            "multiplicative": self._delta_to_raw(
                _broadcast_init(multiplicative, "multiplicative", shape)
            ),
        }
        for comp, attr in zip(COMPONENTS, ("log_weight", "additive_raw", "delta_logit")):
            value = raw[comp]
            if comp in self.learn:
                init = torch.zeros(shape, dtype=torch.float64) if value is None else value
                self.register_parameter(attr, nn.Parameter(init.to(torch.get_default_dtype())))
            else:
                buf = None if value is None else value.to(torch.get_default_dtype())
                self.register_buffer(attr, buf)

    # -- maps between effective and raw values -------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """(K,) for the class loss, (K, G) for the (class, group) loss."""
        if self.num_groups == 1:
            return (self.num_classes,)
        return (self.num_classes, self.num_groups)

    @staticmethod
    def _weight_to_raw(w: Tensor | None) -> Tensor | None:
        if w is None:
            return None
        if not bool(torch.isfinite(w).all()) or bool((w <= 0).any()):
            raise ValueError("ParametricCE: weight must be finite and > 0 (w = exp(log_weight))")
        return w.log()

    def _delta_to_raw(self, delta: Tensor | None) -> Tensor | None:
        if delta is None:
            return None
        if not bool(torch.isfinite(delta).all()) or bool(
            ((delta <= 0) | (delta > self.delta_scale)).any()
        ):
            raise ValueError(
                f"ParametricCE: multiplicative must lie in (0, delta_scale={self.delta_scale}]"
            )
        # d = logit(Δ / s), with Δ / s clamped into the open interval (0, 1).
        return torch.logit((delta / self.delta_scale).clamp(_DELTA_EPS, 1 - _DELTA_EPS))

    def _effective(self, comp: str) -> Tensor | None:
        """Effective value of ``comp``, or None when it is the identity and not learned."""
        if comp == "weight":
            raw = self.log_weight
            return None if raw is None else raw.exp()
        if comp == "additive":
            return self.additive_raw
        raw = self.delta_logit
        return None if raw is None else self.delta_scale * torch.sigmoid(raw)

    def _effective_or_identity(self, comp: str, fill: float) -> Tensor:
        value = self._effective(comp)
        if value is not None:
            return value
        ref = next(iter([*self.parameters(), *self.buffers()]), None)
        kwargs: dict[str, Any] = {} if ref is None else {"dtype": ref.dtype, "device": ref.device}
        return torch.full(self.shape, fill, **kwargs)

    @property
    def effective_weight(self) -> Tensor:
        """w = exp(log_weight), shape (K,) or (K, G)."""
        return self._effective_or_identity("weight", 1.0)

    @property
    def effective_additive(self) -> Tensor:
        """l, shape (K,) or (K, G)."""
        return self._effective_or_identity("additive", 0.0)

    @property
    def effective_multiplicative(self) -> Tensor:
        """Δ = delta_scale · σ(delta_logit), shape (K,) or (K, G)."""
        return self._effective_or_identity("multiplicative", 1.0)

    # -- loss -------------------------------------------------------------------------------------
    def forward(self, input: Tensor, target: Tensor, groups: Tensor | None = None) -> Tensor:
        """ℓ = w_y · CE(Δ ⊙ f(x) + l, y) (eq. 2.2; eq. 4.2 with ``groups``), reduced by
        ``self.reduction``; ``input`` = f(x), (N, K) logits, ``target`` = y, (N,) class
        indices, as for ``nn.CrossEntropyLoss``."""
        if self.num_groups > 1 and groups is None:
            raise ValueError(
                f"ParametricCE: num_groups={self.num_groups}, so forward needs groups=(N,) ids"
            )
        if input.dim() == 2 and input.shape[1] != self.num_classes:
            raise ValueError(
                f"ParametricCE: expected logits with {self.num_classes} classes, "
                f"got shape {tuple(input.shape)}"
            )
        return parametric_cross_entropy(
            input,
            target,
            weight=self._effective("weight"),
            additive=self._effective("additive"),
            multiplicative=self._effective("multiplicative"),
            groups=groups if self.num_groups > 1 else None,
            reduction=self.reduction,
            check_values=self.check_values,
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, num_groups={self.num_groups}, "
            f"delta_scale={self.delta_scale}, learn={self.learn}, reduction={self.reduction!r}"
        )

    # -- serialisation: "train once, reuse the loss" ---------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready effective values (None for an untouched identity) and metadata; ``data``
        is :attr:`provenance`, the dataset α was learned on (None when unknown)."""
        out: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "num_classes": self.num_classes,
            "num_groups": self.num_groups,
            "delta_scale": self.delta_scale,
            "learn": list(self.learn),
            "reduction": self.reduction,
        }
        with torch.no_grad():
            for comp in COMPONENTS:
                value = self._effective(comp)
                out[comp] = None if value is None else value.detach().cpu().double().tolist()
        out["data"] = None if self.provenance is None else dict(self.provenance)
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, learn: Iterable[str] | None = None
    ) -> ParametricCE:
        """Rebuild a loss from :meth:`to_dict` output; ``learn`` overrides the stored one.

        A dict without ``data`` (written before version 2) loads with a
        :class:`~autobalance.provenance.ProvenanceWarning`: nothing says which dataset it
        belongs to, and :attr:`provenance` is None.
        """
        if data.get("format") != _FORMAT:
            raise ValueError(f"ParametricCE.from_dict: expected format {_FORMAT!r}")
        required = ("num_classes", "num_groups", "delta_scale", "learn", "reduction", *COMPONENTS)
        missing = [key for key in required if key not in data]
        if missing:
            raise ValueError(f"ParametricCE.from_dict: missing keys {missing}")
        provenance = data.get("data")
        if "data" not in data:
            warnings.warn(
                "this ParametricCE was saved without the dataset it was learned on (format "
                "version 1): it cannot be checked against the data it is used with",
                ProvenanceWarning,
                stacklevel=2,
            )
        elif provenance is not None and not isinstance(provenance, Mapping):
            raise ValueError("ParametricCE.from_dict: 'data' must be a mapping or null")
        loss = cls(
            int(data["num_classes"]),
            int(data["num_groups"]),
            weight=data["weight"],
            additive=data["additive"],
            multiplicative=data["multiplicative"],
            delta_scale=float(data["delta_scale"]),
            learn=tuple(data["learn"]) if learn is None else learn,
            reduction=str(data["reduction"]),
        )
        loss.provenance = None if provenance is None else dict(provenance)
        return loss

    def save_json(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_dict` to ``path`` as JSON, atomically (temp file, fsync, rename)."""
        from autobalance.checkpoint import atomic_write_text

        atomic_write_text(json.dumps(self.to_dict(), indent=2), path)

    @classmethod
    def load_json(
        cls, path: str | PathLike[str], *, learn: Iterable[str] | None = None
    ) -> ParametricCE:
        """Load a loss saved by :meth:`save_json`; pass ``learn=()`` to freeze it. Its
        :attr:`provenance` says which dataset it was learned on (see :meth:`from_dict`)."""
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a JSON object written by ParametricCE.save_json")
        return cls.from_dict(data, learn=learn)


__all__ = ["COMPONENTS", "ParametricCE", "parametric_cross_entropy"]
