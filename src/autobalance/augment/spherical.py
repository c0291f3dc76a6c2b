"""Spherical augmentation A_y(x) = x + ε_y·u, u uniform in the unit ℓ2 ball (AutoBalance Lemma 2).

Lemma 2 of AutoBalance (Li et al., NeurIPS 2021, arXiv 2201.01212, §2): on linearly separable
binary data, for any parametric loss (2.1) there are per-class radii (ε₀, ε₁) such that the
logistic loss trained on inputs drawn uniformly from the ℓ2 balls B(x, ε_y) returns the same
classifier; a larger radius on the minority class moves the boundary away from it, as the
margin of the parametric loss does (paper Fig. 2).

Sampling u uniformly in the unit ball of R^d (Muller 1959; Marsaglia 1972): a direction from a
normalised Gaussian and a radius with the ball's radial law P(‖u‖ ≤ r) = r^d::

    g ~ N(0, I_d),   U ~ U(0, 1),   u = (g / ‖g‖₂) · U^{1/d}.

The radius ε_c = ε_max · σ(logit(ε₀/ε_max) + ρ′_c) is learnable per cluster (or per class),
with ρ′ = 0 at the start; the augmentation is linear in ε, so its gradient is u. It works on
any input shape (features, tabular rows, images: d = the number of entries per sample).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from autobalance.augment.policy import BatchPolicy


def sample_unit_ball(
    n: int,
    d: int,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """n points uniform in the unit ℓ2 ball of R^d: u = g/‖g‖₂ · U^{1/d}, g ~ N(0, I_d),
    U ~ U(0, 1) (drawn in that order from ``generator``, on its device, then moved to
    ``device``)."""
    if n < 0 or d < 1:
        raise ValueError(f"need n ≥ 0 and d ≥ 1, got n={n}, d={d}")
    draw = generator.device if generator is not None else torch.device(device or "cpu")
    g = torch.randn((n, d), generator=generator, device=draw, dtype=torch.float64)
    r = torch.rand((n, 1), generator=generator, device=draw, dtype=torch.float64) ** (1.0 / d)
    u = g / g.norm(dim=1, keepdim=True).clamp_min(1e-300) * r
    return u.to(device=device if device is not None else draw, dtype=dtype)


class SphericalPolicy(BatchPolicy):
    """A_y(x) = x + ε_{c(y)}·u with u uniform in the unit ball (module docstring).

    Args:
        clusters, num_groups, kind, per: see :class:`~autobalance.augment.policy.BatchPolicy`.
        init_radius: ε₀ of every policy, in (0, ``max_radius``).
        max_radius: ε_max, the upper end of the radius range.
    """

    base_radius_logit: Tensor

    def __init__(
        self,
        clusters: Tensor,
        *,
        num_groups: int = 1,
        init_radius: float = 0.5,
        max_radius: float = 4.0,
        kind: str = "spherical",
        per: str = "cluster",
    ) -> None:
        super().__init__(clusters, num_groups=num_groups, kind=kind, per=per)
        if not 0 < init_radius < max_radius:
            raise ValueError(
                f"need 0 < init_radius < max_radius, got {init_radius} and {max_radius}"
            )
        self.init_radius, self.max_radius = float(init_radius), float(max_radius)
        q = init_radius / max_radius
        self.register_buffer("base_radius_logit", torch.tensor(math.log(q) - math.log1p(-q)))
        self.radius = nn.Parameter(torch.zeros(self.num_policies))

    def radii(self) -> Tensor:
        """ε = ε_max·σ(logit(ε₀/ε_max) + ρ′), one per policy."""
        return self.max_radius * torch.sigmoid(self.base_radius_logit + self.radius)

    def effective(self) -> dict[str, Tensor]:
        """``radius``: ε per policy."""
        return {"radius": self.radii()}

    def sample_noise(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """u (N, d) uniform in the unit ball, d = entries per sample (:func:`sample_unit_ball`)."""
        n, d = x.shape[0], int(math.prod(x.shape[1:]))
        dtype = x.dtype if x.is_floating_point() else torch.float32
        return sample_unit_ball(n, d, generator, device=x.device, dtype=dtype)

    def augment(
        self, x: Tensor, y: Tensor, groups: Tensor | None, noise: Any, mode: str = "hard"
    ) -> Tensor:
        """x + ε_{c(y)}·u (``mode`` is ignored: the augmentation is differentiable in ε)."""
        if not x.is_floating_point():
            x = x.float()
        eps = self.radii()[self.cluster_of(y, groups)].to(x.dtype)
        u = torch.as_tensor(noise).to(device=x.device, dtype=x.dtype).reshape(x.shape)
        return x + eps.view(-1, *([1] * (x.dim() - 1))) * u

    def to_dict(self) -> dict[str, Any]:
        """Settings, raw ρ′ and the radii ε, JSON-ready."""
        return {
            **self._base_dict(),
            "init_radius": self.init_radius,
            "max_radius": self.max_radius,
            **self.record(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SphericalPolicy:
        """Rebuild a policy saved by :meth:`to_dict` (raw values copied exactly)."""
        policy = cls(
            torch.as_tensor(data["clusters"]),
            num_groups=int(data["num_groups"]),
            init_radius=float(data["init_radius"]),
            max_radius=float(data["max_radius"]),
            kind=str(data["kind"]),
            per=str(data["per"]),
        )
        policy.load_raw(data["raw"])
        return policy

    def extra_repr(self) -> str:
        return f"policies={self.num_policies}, eps0={self.init_radius}, eps_max={self.max_radius}"


__all__ = ["SphericalPolicy", "sample_unit_ball"]
