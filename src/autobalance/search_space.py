"""Search spaces for the loss hyper-parameters α (AutoBalance §2.2).

The search space maps a handful of raw parameters α′ to the *effective* per-class (or per
(class, group) cell) weight ``w``, additive logit offset ``l`` and multiplicative logit scale
``Δ`` of the parametric cross-entropy (Li et al. 2021, arXiv 2201.01212, eq. 2.2 / 4.2).

Frequency-aware dictionary D_π. Cells (classes, or (class, group) cells) are sorted by their
training count and cut into clusters of consecutive frequency rank; D_π ∈ {0, 1}^{cells × m} is
the one-hot cluster membership. Every searched quantity is an offset shared by a cluster, on top
of a fixed per-cell initialisation::

    log w = log w₀ + D_π ω′,    l = l₀ + D_π l′,    Δ = s·σ(logit(Δ₀ / s) + D_π d′)

with α′ = (ω′, l′, d′) = 0 at the start, so the initial loss is exactly the chosen init (for a
cluster-constant init this is the paper's l = D_π l′). The clustering reads the counts, so labels
need not be sorted by frequency.

Kinds:
- ``clusters``: D_π with clusters of ``cluster_size`` cells (or ``num_clusters`` clusters);
- ``full``: one parameter per cell (cluster size 1);
- ``la_tau``: the scalar logit-adjustment space l = τ·log π (Menon et al. 2021), one parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from autobalance.losses import parametric_cross_entropy

KINDS = ("clusters", "full", "la_tau")
INITS = ("balanced", "la", "cdt", "vs", "ce", "group_la")
COMPONENTS = ("weight", "additive", "multiplicative")
# The buffers the effective values are computed from (part of the cache key of ``loss``).
_KEY_BUFFERS = ("base_log_weight", "base_additive", "base_delta_logit", "clusters", "log_prior")


def frequency_clusters(
    counts: Tensor, *, cluster_size: int | None = None, num_clusters: int | None = None
) -> Tensor:
    """Cluster id of each cell, grouping cells of similar frequency (paper §2.2, D_π).

    Cells are ranked by count, largest first (ties broken by index), and consecutive ranks are
    grouped: cluster c holds ranks [c·C, (c+1)·C) for cluster size C, or the ranks are cut into
    ``num_clusters`` near-equal parts. Cluster 0 is therefore always the most frequent.

    Args:
        counts: (cells,) training counts, in any order.
        cluster_size: cells per cluster C ≥ 1.
        num_clusters: number of clusters m ≥ 1 (alternative to ``cluster_size``).

    Returns:
        int64 (cells,) cluster ids in [0, m).
    """
    counts = torch.as_tensor(counts).flatten()
    n = counts.numel()
    if n == 0:
        raise ValueError("frequency_clusters: counts is empty")
    if (cluster_size is None) == (num_clusters is None):
        raise ValueError("frequency_clusters: give exactly one of cluster_size or num_clusters")
    order = torch.argsort(-counts.to(torch.float64) + torch.arange(n) * 1e-9 / n, stable=True)
    rank = torch.empty(n, dtype=torch.long)
    rank[order] = torch.arange(n)
    if cluster_size is not None:
        if cluster_size < 1:
            raise ValueError(f"cluster_size must be ≥ 1, got {cluster_size}")
        return rank // cluster_size
    assert num_clusters is not None
    if not 1 <= num_clusters <= n:
        raise ValueError(f"num_clusters must lie in [1, {n}], got {num_clusters}")
    return (rank * num_clusters) // n


def _checked_counts(counts: Sequence[int] | Tensor) -> Tensor:
    """Training counts per class (K,) or per cell (K, G), float64, every entry > 0."""
    counts_t = torch.as_tensor(counts, dtype=torch.float64)
    if counts_t.dim() not in (1, 2):
        raise ValueError(f"counts must be (K,) or (K, G), got shape {tuple(counts_t.shape)}")
    if bool((counts_t <= 0).any()):
        empty = torch.nonzero(counts_t <= 0).tolist()
        raise ValueError(f"every class/cell needs training samples; empty cells: {empty}")
    return counts_t


def initial_values(
    counts: Tensor, init: str, *, tau: float = 1.0, gamma: float = 0.2
) -> dict[str, Tensor]:
    """Effective (w₀, l₀, Δ₀) per cell for an initialisation named ``init``.

    - ``balanced``: consistent with a balanced-CE validation objective, w ∝ 1/π
      (normalised so Σ π·w = 1), l = 0, Δ = 1;
    - ``la``: logit adjustment (Menon et al. 2021), l = τ·log π, w = 1, Δ = 1;
    - ``cdt``: class-dependent temperature (Ye et al. 2020), Δ = (n / n_max)^γ;
    - ``vs``: vector scaling (Kini et al. 2021), Δ = (n / n_max)^γ and l = τ·log π;
    - ``ce``: plain CE, w = 1, l = 0, Δ = 1;
    - ``group_la``: the Group-LA loss of AutoBalance §4, for (class, group) counts only:
      w_{y,g} = 1 / (G π̄_g), l_{y,g} = τ·log π(y | g), Δ = 1 (``la`` on cells has the same
      softmax over classes, l = τ·log π_{y,g}, but not the group weights).

    For (class, group) counts (K, G) the frequencies are cell frequencies.
    """
    if init not in INITS:
        raise ValueError(f"Unknown init '{init}', expected one of {INITS}")
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if bool((counts <= 0).any()):
        raise ValueError("initial_values: every class/cell needs at least one training sample")
    if init == "group_la":
        if counts.ndim != 2:
            raise ValueError("init 'group_la' needs (class, group) counts (K, G)")
        from autobalance.losses.groups import group_la_parameters

        w, l = group_la_parameters(counts, tau)
        return {"weight": w, "additive": l, "multiplicative": torch.ones_like(w)}
    pi = counts / counts.sum()
    one = torch.ones_like(pi)
    w, l, d = one.clone(), torch.zeros_like(pi), one.clone()
    if init == "balanced":
        w = 1.0 / (pi.numel() * pi)
    if init in ("la", "vs"):
        l = tau * torch.log(pi)
    if init in ("cdt", "vs"):
        d = (counts / counts.max()) ** gamma
    return {"weight": w, "additive": l, "multiplicative": d}


class SearchSpace(nn.Module):
    """Learnable α′ and the map α′ ↦ effective (w, l, Δ) (AutoBalance eq. 2.2 / 4.2, §2.2).

    Args:
        counts: training counts per class (K,) or per (class, group) cell (K, G).
        kind: one of ``clusters``, ``full``, ``la_tau``.
        search: which of ``weight``, ``additive``, ``multiplicative`` are learned; the others
            stay at their init.
        init: one of ``balanced``, ``la``, ``cdt``, ``vs``, ``ce`` (see :func:`initial_values`).
        cluster_size / num_clusters: D_π granularity for ``kind="clusters"``.
        delta_scale: s in Δ = s·σ(·); s=2 makes Δ=1 the midpoint.
        bounds: box for each raw α′ component, ``{"additive": (lo, hi), ...}``; α′ is clamped
            into it by :meth:`clamp_`.
        tau, gamma: init constants for ``la``/``cdt``/``vs``.
    """

    clusters: Tensor
    counts: Tensor
    log_prior: Tensor
    base_log_weight: Tensor
    base_additive: Tensor
    base_delta_logit: Tensor

    def __init__(
        self,
        counts: Sequence[int] | Tensor,
        *,
        kind: str = "clusters",
        search: Sequence[str] = ("additive", "multiplicative"),
        init: str = "la",
        cluster_size: int | None = None,
        num_clusters: int | None = None,
        delta_scale: float = 2.0,
        bounds: dict[str, tuple[float, float]] | None = None,
        tau: float = 1.0,
        gamma: float = 0.2,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"Unknown search-space kind '{kind}', expected one of {KINDS}")
        bad = [c for c in search if c not in COMPONENTS]
        if bad or not search:
            raise ValueError(f"search must be a non-empty subset of {COMPONENTS}, got {search}")
        if kind == "la_tau" and tuple(search) != ("additive",):
            search = ("additive",)
        counts_t = _checked_counts(counts)
        if delta_scale <= 0:
            raise ValueError(f"delta_scale must be > 0, got {delta_scale}")
        self.kind = kind
        self.search = tuple(search)
        self.init = init
        self.tau, self.gamma = float(tau), float(gamma)
        self.delta_scale = float(delta_scale)
        self.shape = tuple(counts_t.shape)
        self.bounds = dict(bounds or {})
        unknown = set(self.bounds) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"Unknown bounds keys {sorted(unknown)}, expected {COMPONENTS}")

        flat = counts_t.flatten()
        if kind == "full":
            clusters = torch.arange(flat.numel())
        elif kind == "clusters":
            if cluster_size is None and num_clusters is None:
                num_clusters = min(flat.numel(), 10)
            clusters = frequency_clusters(
                flat, cluster_size=cluster_size, num_clusters=num_clusters
            )
        else:
            clusters = torch.zeros(flat.numel(), dtype=torch.long)
        self.num_clusters = int(clusters.max()) + 1
        self.register_buffer("clusters", clusters)
        for name, value in self._init_buffers(counts_t).items():
            self.register_buffer(name, value)

        self.raw = nn.ParameterDict()
        if kind == "la_tau":
            # l = τ·log π: α′ is τ itself, starting from the init's τ (0 unless la/vs).
            tau0 = tau if init in ("la", "vs") else 0.0
            self.raw["additive"] = nn.Parameter(torch.tensor([tau0]))
        else:
            for comp in self.search:
                self.raw[comp] = nn.Parameter(torch.zeros(self.num_clusters))
        self._cache: tuple[tuple[Any, ...], dict[str, Tensor | None], tuple[Tensor, ...]] | None
        self._cache = None
        # an augmentation policy A_y that joins α (AutoBalance §2, PDA): see attach_policy
        self.policy: nn.Module | None = None
        self.search_loss = True

    def _init_buffers(self, counts: Tensor) -> dict[str, Tensor]:
        """The count-dependent buffers: counts, log π and the init (w₀, l₀, Δ₀) they give."""
        flat = counts.flatten()
        init0 = initial_values(counts, self.init, tau=self.tau, gamma=self.gamma)
        additive = init0["additive"].flatten().float()
        if self.kind == "la_tau":
            additive = torch.zeros_like(additive)  # l = τ·log π lives in α′ alone
        return {
            "counts": counts,
            "log_prior": torch.log(flat / flat.sum()).to(torch.float32),
            "base_log_weight": torch.log(init0["weight"]).flatten().float(),
            "base_additive": additive,
            "base_delta_logit": clamp_delta_init(init0["multiplicative"], self.delta_scale)
            .flatten()
            .float(),
        }

    @torch.no_grad()
    def rebase_(self, counts: Sequence[int] | Tensor) -> None:
        """Re-centre the init on other class (or cell) ``counts``, keeping α′ and the clusters.

        The effective values stay ``init(counts) + D_π α′`` (:meth:`effective`): only the
        count-dependent part moves, e.g. l₀ = τ·log π. The search learns α′ over the counts of
        its training split S_T; the retrain on all of S re-centres on S's counts, so that α′ = 0
        (a fallback) is exactly the init loss of S, as a fixed-loss training would use it.
        """
        counts_t = _checked_counts(counts)
        if tuple(counts_t.shape) != self.shape:
            raise ValueError(f"counts of shape {tuple(counts_t.shape)}, expected {self.shape}")
        for name, value in self._init_buffers(counts_t).items():
            getattr(self, name).copy_(value.to(getattr(self, name).device))
        self.clear_cache()

    # ------------------------------------------------------------------ mapping α′ → (w, l, Δ)
    def dictionary(self) -> Tensor:
        """D_π as a dense (cells, m) one-hot matrix (for reports; the map uses indexing)."""
        return nn.functional.one_hot(self.clusters, self.num_clusters).float()

    def _expand(self, comp: str) -> Tensor | None:
        if comp not in self.raw:
            return None
        if self.kind == "la_tau":
            return self.raw[comp] * self.log_prior
        return self.raw[comp][self.clusters]  # D_π α′ as a gather

    def _component(self, comp: str) -> Tensor:
        """Effective value of one component, differentiable in α′, with the counts' shape."""
        base = {
            "weight": self.base_log_weight,
            "additive": self.base_additive,
            "multiplicative": self.base_delta_logit,
        }[comp]
        e = self._expand(comp)
        value = base if e is None else base + e
        if comp == "weight":
            value = torch.exp(value)
        elif comp == "multiplicative":
            value = self.delta_scale * torch.sigmoid(value)
        return value.reshape(self.shape)

    def effective(self) -> dict[str, Tensor]:
        """Effective ``weight``, ``additive``, ``multiplicative`` with the counts' shape.

        w = exp(log w₀ + D_π ω′), l = l₀ + D_π l′, Δ = s·σ(logit(Δ₀/s) + D_π d′) (§2.2).
        """
        return {comp: self._component(comp) for comp in COMPONENTS}

    # ------------------------------------------------------------------ cached constant α
    def _key_tensors(self) -> tuple[Tensor, ...]:
        """α′ and the buffers that the effective values are computed from."""
        # Read the module's dicts directly: this runs on every training step.
        buffers = self._buffers
        params = cast(dict[str, Tensor], self.raw._parameters)
        return (*params.values(), *(cast(Tensor, buffers[name]) for name in _KEY_BUFFERS))

    def _cache_key(self, dtype: torch.dtype, device: torch.device) -> tuple[Any, ...] | None:
        """What the detached effective values depend on; None when it cannot be read."""
        try:
            state = tuple((t._version, t.data_ptr()) for t in self._key_tensors())
        except RuntimeError:  # e.g. inference tensors or torch.func wrappers: no cache
            return None
        return (dtype, device, self.delta_scale, state)

    def _detached_effective(
        self, dtype: torch.dtype, device: torch.device
    ) -> dict[str, Tensor | None]:
        """Detached effective (w, l, Δ) in ``dtype`` on ``device``; None marks an identity.

        The result is cached and reused while α′ and the buffers are unchanged: the key holds
        each tensor's version counter, which every in-place write through the tensor bumps
        (optimizer steps, :meth:`clamp_`, ``load_state_dict``), and its storage address, which
        ``.to()`` changes. Writes through ``.data`` bypass the counter: call
        :meth:`clear_cache` after them. A component that is not searched and is the identity
        (w = 1, l = 0 or Δ = 1 exactly) is returned as None, so the loss skips its work; the
        loss value is bitwise the same.
        """
        inference = torch.is_inference_mode_enabled()
        key = None if inference else self._cache_key(dtype, device)
        if key is not None and self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        identity = {"weight": 1.0, "additive": 0.0, "multiplicative": 1.0}
        out: dict[str, Tensor | None] = {}
        with torch.no_grad():
            for comp, value in self.effective().items():
                value = value.to(device=device, dtype=dtype, copy=True)
                constant = comp not in self.raw
                out[comp] = None if constant and bool((value == identity[comp]).all()) else value
        if key is not None:
            # The detached views keep the keyed storages alive, so no new tensor can reuse
            # their addresses while this entry stands.
            self._cache = (key, out, tuple(t.detach() for t in self._key_tensors()))
        return out

    def clear_cache(self) -> None:
        """Forget the cached detached (w, l, Δ) of :meth:`loss`.

        Needed only after writes through ``.data`` to α′ or to the buffers, which the version
        counters do not see.
        """
        self._cache = None

    def loss(
        self,
        logits: Tensor,
        targets: Tensor,
        groups: Tensor | None = None,
        reduction: str = "mean",
        *,
        detach: bool = False,
    ) -> Tensor:
        """Parametric CE (eq. 2.2, or 4.2 with groups) under the current effective α.

        ``detach=True`` treats α as a constant (the θ-steps): no α-gradient work, and the
        effective (w, l, Δ) are computed once per change of α′ and reused. Without it, the
        searched components are recomputed with their graph to α′ on every call.
        """
        if len(self.shape) == 2 and groups is None:
            raise ValueError("this search space is per (class, group) cell: pass groups")
        eff = self._detached_effective(logits.dtype, logits.device)
        if not detach:
            eff = {
                comp: self._component(comp).to(logits.dtype) if comp in self.raw else value
                for comp, value in eff.items()
            }
        return parametric_cross_entropy(
            logits,
            targets,
            weight=eff["weight"],
            additive=eff["additive"],
            multiplicative=eff["multiplicative"],
            groups=groups if len(self.shape) == 2 else None,
            reduction=reduction,
        )

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project each raw α′ component into its configured box."""
        for comp, (lo, hi) in self.bounds.items():
            if comp in self.raw:
                self.raw[comp].clamp_(lo, hi)

    def hparams(self) -> list[Tensor]:
        """The learnable tensors α′, in a fixed order: the loss's raw components (unless
        ``search_loss`` is off), then the attached policy's parameters."""
        out = [self.raw[c] for c in self.raw] if self.search_loss else []
        if self.policy is not None:
            out += self.policy.hparams()  # type: ignore[operator]
        return out

    def attach_policy(self, policy: nn.Module | None, *, search_loss: bool = True) -> None:
        """Make an augmentation policy (:class:`autobalance.augment.policy.BatchPolicy`) part
        of α: α = [w, l, Δ, param(A)] (paper §2). Its parameters follow the loss's in
        :meth:`hparams`, :meth:`searched` and the state dict. ``search_loss=False`` keeps the
        loss at its init: only the policy is learned."""
        self.policy = policy
        self.search_loss = bool(search_loss)

    def searched(self) -> dict[str, Tensor]:
        """Every tensor that the search may change, by name: the raw loss components, then
        ``policy.<name>`` for each policy parameter (the guard snapshots and restores these)."""
        out: dict[str, Tensor] = dict(self.raw.items())
        if self.policy is not None:
            named = self.policy.named_hparams()  # type: ignore[operator]
            out.update({f"policy.{k}": v for k, v in named.items()})
        return out

    @torch.no_grad()
    def load_searched(self, values: dict[str, Tensor]) -> None:
        """Copy values saved from :meth:`searched` back in place."""
        current = self.searched()
        for k, v in values.items():
            current[k].copy_(v)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the effective loss and of α′."""
        eff = self.effective()
        return {
            "shape": list(self.shape),
            "kind": self.kind,
            "init": self.init,
            "search": list(self.search),
            "clusters": self.clusters.tolist(),
            "weight": eff["weight"].detach().cpu().tolist(),
            "additive": eff["additive"].detach().cpu().tolist(),
            "multiplicative": eff["multiplicative"].detach().cpu().tolist(),
            "raw": {k: v.detach().cpu().tolist() for k, v in self.raw.items()},
        }

    def extra_repr(self) -> str:
        return (
            f"shape={self.shape}, kind={self.kind}, clusters={self.num_clusters}, "
            f"search={self.search}, init={self.init}"
        )


def clamp_delta_init(delta: Tensor, scale: float, eps: float = 1e-4) -> Tensor:
    """Raw d with s·σ(d) ≈ Δ, clamping Δ/s into [eps, 1 − eps] so the logit stays finite."""
    return torch.logit((delta / scale).clamp(eps, 1 - eps))


__all__ = [
    "COMPONENTS",
    "INITS",
    "KINDS",
    "SearchSpace",
    "clamp_delta_init",
    "frequency_clusters",
    "initial_values",
]
