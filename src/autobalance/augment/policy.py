"""Learnable, per-class-cluster augmentation policies A_y (AutoBalance §2, "PDA").

The training loss of AutoBalance (Li et al., NeurIPS 2021, arXiv 2201.01212, eq. 2.2) is

    ℓ_train(y, x, f; α) = E_A[ w_y · CE(Δ ⊙ f(A_y(x)) + l, y) ],   α = [w, l, Δ, param(A)],

with A_y the augmentation policy of label y. Here a policy is picked by the sample's label:
``clusters[cell]`` maps each class (or (class, group) cell, index k·G + g) to one of m
policies; the search uses the D_π frequency clusters of the loss
(:class:`autobalance.search_space.SearchSpace`), "single" maps every class to one policy (the
MADAO-like baseline, Hataya et al. 2022, arXiv 2006.07965; the paper's reference [24]).

:class:`BatchPolicy` is the interface the search engine uses; :class:`ImagePolicy` is the
differentiable image policy, :class:`autobalance.augment.spherical.SphericalPolicy` the ℓ2-ball
augmentation of Lemma 2.

Image policy. For each of its operations o (:mod:`autobalance.augment.ops`) a policy c has an
application probability p_{c,o} = σ(logit p₀ + π′_{c,o}) and a magnitude
m_{c,o} = σ(logit m₀ + μ′_{c,o}) ∈ (0, 1) (the fraction of the operation's maximum); the raw
π′, μ′ start at 0 (so weight decay pulls them back to the init, like α′ of the loss). A sample
x of cluster c goes through the operations in order:

    x ← x + b_o · (o(x; m_{c,o}) − x),   b_o ∈ {0, 1} ~ Bernoulli(p_{c,o}).

The gate b_o is sampled by the relaxed Bernoulli (binary Concrete; Maddison et al. 2017,
arXiv 1611.00712; Jang et al. 2017, arXiv 1611.01144) with logistic noise L = log u − log(1 − u),
u ~ U(0, 1):

    soft b = σ((logit p + L)/τ),    hard b = 1[logit p + L > 0]  (exactly Bernoulli(p)),

``mode="hard"`` (the θ-steps: the exact distribution, no graph), ``"straight_through"`` (the
hyper-step: the hard gate forward, the soft gate's gradient backward) or ``"relaxed"`` (the soft
gate; with the noise fixed the output is a smooth function of π′ and μ′, which the gradient
checks use). Images normalised by ``(x − mean)/std`` are mapped back to pixels in [0, 1] first
(when ``mean``/``std`` are given) and normalised again after the operations.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from autobalance.augment.ops import MAGNITUDE_OPS, MAX_MAGNITUDE, OP_FUNCTIONS, check_ops

GATE_MODES: tuple[str, ...] = ("hard", "straight_through", "relaxed")
POLICY_FORMAT = "autobalance.AugmentPolicy"
_MASK_MODE = {"hard": "hard", "straight_through": "straight_through", "relaxed": "soft"}
_EPS = 1e-6


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def draw_uniform(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """U(0, 1) draws of ``shape`` from ``generator`` (on its device), moved to ``like``'s device
    and dtype; the global generator of ``like``'s device when ``generator`` is None."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    return u.to(device=like.device, dtype=like.dtype)


def relaxed_bernoulli(logit_p: Tensor, u: Tensor, temperature: float, mode: str) -> Tensor:
    """Gate b of a relaxed Bernoulli with probability σ(logit_p) and noise ``u`` ~ U(0, 1).

    L = log u − log(1 − u) (logistic); soft b = σ((logit_p + L)/τ); hard b = 1[logit_p + L > 0],
    distributed exactly as Bernoulli(σ(logit_p)). ``mode``: ``hard``, ``relaxed`` (soft) or
    ``straight_through`` (hard + soft − stop_grad(soft): the hard value with the soft gradient).
    Maddison et al. 2017 (arXiv 1611.00712), Jang et al. 2017 (arXiv 1611.01144).
    """
    if mode not in GATE_MODES:
        raise ValueError(f"Unknown gate mode {mode!r}, expected one of {GATE_MODES}")
    u = u.clamp(_EPS, 1 - _EPS)
    z = logit_p + torch.log(u) - torch.log1p(-u)
    hard = (z > 0).to(logit_p.dtype)
    if mode == "hard":
        return hard
    soft = torch.sigmoid(z / temperature)
    return soft if mode == "relaxed" else hard + soft - soft.detach()


class BatchPolicy(nn.Module):
    """A label-dependent augmentation x ↦ A_y(x) with learnable parameters (part of α).

    Args:
        clusters: (cells,) policy index of each class, or of each (class, group) cell k·G + g.
        num_groups: G when the cells are (class, group) cells, else 1.
        kind: the config's name of the policy (``pda``, ``single``, ``spherical``).
        per: ``cluster`` or ``class``: what one policy covers (informational).
    """

    clusters: Tensor

    def __init__(
        self, clusters: Tensor, *, num_groups: int = 1, kind: str = "pda", per: str = "cluster"
    ) -> None:
        super().__init__()
        clusters = torch.as_tensor(clusters, dtype=torch.long).flatten()
        if clusters.numel() == 0 or int(clusters.min()) < 0:
            raise ValueError("clusters must be a non-empty vector of policy indices ≥ 0")
        if num_groups < 1 or clusters.numel() % num_groups:
            raise ValueError(f"{clusters.numel()} cells do not split into {num_groups} groups")
        self.register_buffer("clusters", clusters)
        self.num_groups = int(num_groups)
        self.num_policies = int(clusters.max()) + 1
        self.kind = kind
        self.per = per

    def cluster_of(self, y: Tensor, groups: Tensor | None = None) -> Tensor:
        """Policy index of each sample: clusters[y·G + g] (clusters[y] without groups)."""
        cell = y.long()
        if self.num_groups > 1:
            if groups is None:
                raise ValueError("this policy is per (class, group) cell: pass groups")
            cell = cell * self.num_groups + groups.long()
        return self.clusters[cell.to(self.clusters.device)]

    def named_hparams(self) -> dict[str, Tensor]:
        """The learnable tensors of the policy (non-empty ones), by name."""
        return {n: p for n, p in self.named_parameters() if p.numel() > 0}

    def hparams(self) -> list[Tensor]:
        """The learnable tensors, in a fixed order (they join α in the search)."""
        return list(self.named_hparams().values())

    def effective(self) -> dict[str, Tensor]:
        """The policy's readable values per policy index (probabilities, magnitudes, radii)."""
        raise NotImplementedError

    def record(self) -> dict[str, Any]:
        """:meth:`effective` as JSON-ready lists (one trajectory entry)."""
        return {k: v.detach().cpu().double().tolist() for k, v in self.effective().items()}

    def sample_noise(self, x: Tensor, generator: torch.Generator | None = None) -> Any:
        """The random draws of one application to ``x``; :meth:`augment` is deterministic given
        them."""
        raise NotImplementedError

    def augment(
        self, x: Tensor, y: Tensor, groups: Tensor | None, noise: Any, mode: str = "hard"
    ) -> Tensor:
        """A_y(x) for the batch with the given noise (see the subclasses)."""
        raise NotImplementedError

    def forward(
        self,
        x: Tensor,
        y: Tensor,
        groups: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        mode: str = "hard",
    ) -> Tensor:
        """A_y(x): draw the noise from ``generator``, then :meth:`augment`."""
        return self.augment(x, y, groups, self.sample_noise(x, generator), mode)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; ``autobalance.augment.load_policy`` rebuilds it exactly."""
        raise NotImplementedError

    def _base_dict(self) -> dict[str, Any]:
        return {
            "format": POLICY_FORMAT,
            "version": 1,
            "kind": self.kind,
            "per": self.per,
            "num_groups": self.num_groups,
            "clusters": self.clusters.cpu().tolist(),
            "raw": {n: p.detach().cpu().double().tolist() for n, p in self.named_parameters()},
        }

    def load_raw(self, raw: dict[str, Any]) -> None:
        """Copy raw parameter values (as saved by :meth:`to_dict`) into the policy."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                value = torch.as_tensor(raw[name], dtype=torch.float64)
                if value.numel() == 0:
                    continue
                p.copy_(value.reshape(p.shape).to(p.dtype))


class PolicyNoise(NamedTuple):
    """The draws of one image-policy application: gate uniforms (N, ops) and the operations'
    direction uniforms (N, ops, 3)."""

    gate: Tensor
    params: Tensor


class ImagePolicy(BatchPolicy):
    """Differentiable image policies, one per cluster (see the module docstring).

    Args:
        clusters, num_groups, kind, per: see :class:`BatchPolicy`.
        ops: operation names from :data:`autobalance.augment.ops.OPS`, applied in this order.
        init_prob: p₀ of every (policy, operation), in (0, 1).
        init_magnitude: m₀ (fraction of each operation's maximum), in (0, 1).
        temperature: τ of the relaxed Bernoulli gates.
        mean, std: per-channel normalisation of the inputs; when given the operations run in
            pixel space [0, 1] (x·std + mean), clip there, and cutout fills with the mean.
    """

    base_prob_logit: Tensor
    base_mag_logit: Tensor
    mean: Tensor
    std: Tensor

    def __init__(
        self,
        clusters: Tensor,
        ops: tuple[str, ...] | list[str],
        *,
        num_groups: int = 1,
        init_prob: float = 0.2,
        init_magnitude: float = 0.3,
        temperature: float = 0.5,
        mean: tuple[float, ...] | list[float] | None = None,
        std: tuple[float, ...] | list[float] | None = None,
        kind: str = "pda",
        per: str = "cluster",
    ) -> None:
        super().__init__(clusters, num_groups=num_groups, kind=kind, per=per)
        self.ops = check_ops(tuple(ops))
        self.magnitude_ops = tuple(op for op in self.ops if op in MAGNITUDE_OPS)
        for name, v in (("init_prob", init_prob), ("init_magnitude", init_magnitude)):
            if not 0 < v < 1:
                raise ValueError(f"{name} must lie in (0, 1), got {v}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        self.init_prob, self.init_magnitude = float(init_prob), float(init_magnitude)
        self.temperature = float(temperature)
        n_ops, n_mag = len(self.ops), len(self.magnitude_ops)
        self.register_buffer("base_prob_logit", torch.full((n_ops,), _logit(init_prob)))
        self.register_buffer("base_mag_logit", torch.full((n_mag,), _logit(init_magnitude)))
        self.normalised = mean is not None
        stats = [] if mean is None or std is None else [list(mean), list(std)]
        if stats and (len(stats[0]) != len(stats[1]) or any(s <= 0 for s in stats[1])):
            raise ValueError(f"mean and std need one entry per channel and std > 0: {stats}")
        self.register_buffer("mean", torch.tensor(stats[0] if stats else []).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(stats[1] if stats else []).view(1, -1, 1, 1))
        self.prob = nn.Parameter(torch.zeros(self.num_policies, n_ops))
        self.magnitude = nn.Parameter(torch.zeros(self.num_policies, n_mag))

    # ------------------------------------------------------------------ values
    def probabilities(self) -> Tensor:
        """p = σ(logit p₀ + π′), (policies, ops)."""
        return torch.sigmoid(self.base_prob_logit + self.prob)

    def magnitudes(self) -> Tensor:
        """m = σ(logit m₀ + μ′) ∈ (0, 1), (policies, magnitude ops): fraction of the maximum."""
        return torch.sigmoid(self.base_mag_logit + self.magnitude)

    def effective(self) -> dict[str, Tensor]:
        """``prob`` (policies, ops) and ``magnitude`` (policies, magnitude ops, fractions)."""
        return {"prob": self.probabilities(), "magnitude": self.magnitudes()}

    # ------------------------------------------------------------------ application
    def sample_noise(self, x: Tensor, generator: torch.Generator | None = None) -> PolicyNoise:
        """Gate uniforms (N, ops) then direction uniforms (N, ops, 3), from ``generator``."""
        n, k = x.shape[0], len(self.ops)
        like = x if x.is_floating_point() else x.float()
        gate = draw_uniform((n, k), generator, like)
        return PolicyNoise(gate, draw_uniform((n, k, 3), generator, like))

    def augment(
        self, x: Tensor, y: Tensor, groups: Tensor | None, noise: Any, mode: str = "hard"
    ) -> Tensor:
        """The policy of each sample's cluster applied to ``x`` (N, C, H, W) with ``noise``.

        x ← x + b_o·(o(x; m_{c(y),o}) − x) for each operation o in order, b_o the gate of
        :func:`relaxed_bernoulli` with probability p_{c(y),o} (module docstring). In ``hard``
        mode an operation is computed only on the samples whose gate is on.
        """
        if x.dim() != 4:
            raise ValueError(f"an image policy needs images (N, C, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.float()
        noise = PolicyNoise(*noise)
        cid = self.cluster_of(y, groups)
        logit_p = (self.base_prob_logit + self.prob)[cid].to(x.dtype)
        mags = self.magnitudes()[cid].to(x.dtype)
        gates = relaxed_bernoulli(logit_p, noise.gate.to(x.dtype), self.temperature, mode)
        z = x * self.std + self.mean if self.normalised else x
        fill = self.mean.to(x.dtype) if self.normalised else None
        kw: dict[str, Any] = {"clip": self.normalised, "fill": fill, "mode": _MASK_MODE[mode]}
        for j, op in enumerate(self.ops):
            fn = OP_FUNCTIONS[op]
            k = self.magnitude_ops.index(op) if op in MAX_MAGNITUDE else None
            mag = None if k is None else mags[:, k]
            u = noise.params[:, j].to(x.dtype)
            if mode == "hard":
                idx = torch.nonzero(gates[:, j] > 0.5).flatten()
                if idx.numel():
                    part = fn(z[idx], None if mag is None else mag[idx], u[idx], **kw)
                    z = z.index_copy(0, idx, part)
                continue
            b = gates[:, j].view(-1, 1, 1, 1)
            z = z + b * (fn(z, mag, u, **kw) - z)
        return (z - self.mean) / self.std if self.normalised else z

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Settings, raw π′/μ′ and the readable p, m (fractions) and maxima, JSON-ready."""
        eff = self.record()
        return {
            **self._base_dict(),
            "ops": list(self.ops),
            "magnitude_ops": list(self.magnitude_ops),
            "max_magnitude": {op: MAX_MAGNITUDE[op] for op in self.magnitude_ops},
            "init_prob": self.init_prob,
            "init_magnitude": self.init_magnitude,
            "temperature": self.temperature,
            "mean": self.mean.flatten().cpu().double().tolist() if self.normalised else None,
            "std": self.std.flatten().cpu().double().tolist() if self.normalised else None,
            **eff,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImagePolicy:
        """Rebuild a policy saved by :meth:`to_dict` (raw values copied exactly)."""
        policy = cls(
            torch.as_tensor(data["clusters"]),
            tuple(data["ops"]),
            num_groups=int(data["num_groups"]),
            init_prob=float(data["init_prob"]),
            init_magnitude=float(data["init_magnitude"]),
            temperature=float(data["temperature"]),
            mean=data.get("mean"),
            std=data.get("std"),
            kind=str(data["kind"]),
            per=str(data["per"]),
        )
        policy.load_raw(data["raw"])
        return policy

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind}, policies={self.num_policies}, ops={list(self.ops)}, "
            f"p0={self.init_prob}, m0={self.init_magnitude}, tau={self.temperature}"
        )


__all__ = [
    "GATE_MODES",
    "POLICY_FORMAT",
    "BatchPolicy",
    "ImagePolicy",
    "PolicyNoise",
    "draw_uniform",
    "relaxed_bernoulli",
]
