"""Multi-layer perceptron (and, with no hidden layer, a linear model) over flattened inputs.

``features(x) = φ_L(…φ_1(flatten(x)))`` with ``φ_l(h) = dropout(relu(W_l h + b_l))``, and
``forward(x) = head(features(x))``. With ``hidden=()`` the features are the flattened input and
the model is multinomial logistic regression. Used for the tabular and feature-level benchmarks
(Waterbirds features, Adult, COMPAS, CelebA attributes) of AutoBalance (Li et al., NeurIPS 2021).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """``in_features → hidden[0] → … → hidden[-1] → num_classes``; ``head`` is the last Linear."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"layer sizes must be ≥ 1, got in_features={in_features}, "
                f"hidden={tuple(hidden)}, num_classes={num_classes}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation '{activation}', expected one of {tuple(ACTIVATIONS)}"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.feature_dim = width
        self.head = nn.Linear(width, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Last hidden activations (N, hidden[-1]), or the flattened input when linear."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def linear_model(in_features: int, num_classes: int) -> MLP:
    """Multinomial logistic regression ``x ↦ W·flatten(x) + b`` as an ``MLP`` with no hidden."""
    return MLP(in_features, num_classes, hidden=())


__all__ = ["ACTIVATIONS", "MLP", "linear_model"]
