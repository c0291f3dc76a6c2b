from __future__ import annotations

import pytest
import torch

from autobalance.models import MLP, linear_model


def test_linear_model_is_affine() -> None:
    torch.manual_seed(0)
    model = linear_model(12, 3)
    x = torch.randn(5, 3, 4)  # flattened to 12
    w, b = model.head.weight, model.head.bias
    assert torch.allclose(model(x), x.reshape(5, 12) @ w.T + b, atol=1e-6)
    assert torch.equal(model.features(x), x.reshape(5, 12))
    assert sum(p.numel() for p in model.parameters()) == 12 * 3 + 3


def test_mlp_features_head() -> None:
    torch.manual_seed(0)
    model = MLP(64, 10, hidden=(32, 16), dropout=0.1).eval()
    x = torch.randn(4, 64)
    feats = model.features(x)
    assert feats.shape == (4, 16) and model.feature_dim == 16
    assert torch.allclose(model(x), model.head(feats))
    n = 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == n


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="Unknown activation 'swish'"):
        MLP(4, 2, activation="swish")
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, 2, dropout=1.0)
    with pytest.raises(ValueError, match="layer sizes"):
        MLP(4, 2, hidden=(0,))
