from __future__ import annotations

import numpy as np
import pytest
import torch

from autobalance.data.dataset import InMemoryDataset
from autobalance.data.longtail import long_tail_counts
from autobalance.data.synthetic import (
    WATERBIRDS_PROPORTIONS,
    long_tailed_gaussians,
    waterbirds_like_features,
)


def test_long_tailed_gaussians_shapes_and_counts() -> None:
    train = long_tailed_gaussians(num_classes=5, dim=8, n_max=100, imbalance_ratio=10, seed=1)
    test = long_tailed_gaussians(
        num_classes=5,
        dim=8,
        n_max=100,
        imbalance_ratio=10,
        seed=1,
        split="test",
        n_test_per_class=40,
    )
    assert isinstance(train, InMemoryDataset)
    assert train.x.shape == (sum(long_tail_counts(100, 5, 10)), 8)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.long
    np.testing.assert_array_equal(train.class_counts().numpy(), long_tail_counts(100, 5, 10))
    np.testing.assert_array_equal(test.class_counts().numpy(), [40] * 5)
    assert train.groups is None and train.num_classes == 5


def test_long_tailed_gaussians_determinism_and_shared_means() -> None:
    a = long_tailed_gaussians(seed=3)
    b = long_tailed_gaussians(seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x[:50], long_tailed_gaussians(seed=4).x[:50])
    test = long_tailed_gaussians(seed=3, split="test", n_test_per_class=2000)
    # class means agree across splits (same seed): empirical means within sampling noise
    for k in (0, 1):
        m_train = a.x[a.y == k].double().mean(0)
        m_test = test.x[test.y == k].double().mean(0)
        assert torch.linalg.norm(m_train - m_test) < 0.5
        assert torch.linalg.norm(m_test) == pytest.approx(2.5, abs=0.3)  # separation


def test_long_tailed_gaussians_prior_shift_helps_tail() -> None:
    # Tiny sanity check: a plain linear fit under-predicts the tail; correcting the logits
    # by the log-prior (post-hoc logit adjustment) lowers the balanced test error.
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    from autobalance.metrics import balanced_error

    train = long_tailed_gaussians(seed=0)
    test = long_tailed_gaussians(seed=0, split="test")
    model = sklearn_linear.LogisticRegression(max_iter=300).fit(train.x.numpy(), train.y.numpy())
    logits = model.decision_function(test.x.numpy())
    prior = train.class_counts().numpy() / len(train)
    plain = balanced_error(test.y, logits.argmax(1))
    adjusted = balanced_error(test.y, (logits - np.log(prior)).argmax(1))
    assert adjusted < plain - 0.03
    # the plain model predicts the tail class (9) far less often than 1/K on balanced test data
    assert np.mean(logits.argmax(1) == 9) < 0.05


def test_waterbirds_like_train_proportions() -> None:
    data = waterbirds_like_features(seed=0)
    assert data.x.shape == (4795, 512) and data.num_groups == 2 and data.num_classes == 2
    y, g = data.y.numpy(), data.groups.numpy()
    table = np.array([[np.sum((y == a) & (g == b)) for b in (0, 1)] for a in (0, 1)])
    assert table.sum() == 4795
    np.testing.assert_allclose(table / 4795, WATERBIRDS_PROPORTIONS, atol=1 / 4795)
    # paper values: π(−,1)=0.012, π(−,2)=0.22, π(+,1)=0.73, π(+,2)=0.038
    np.testing.assert_allclose(table / 4795, [[0.012, 0.22], [0.73, 0.038]], atol=1e-3)


def test_waterbirds_like_test_is_balanced_and_deterministic() -> None:
    test = waterbirds_like_features(split="test", n_test_per_cell=50, dim=64, seed=2)
    cells = (test.y * 2 + test.groups).numpy()
    np.testing.assert_array_equal(np.bincount(cells), [50] * 4)
    again = waterbirds_like_features(split="test", n_test_per_cell=50, dim=64, seed=2)
    assert torch.equal(test.x, again.x) and torch.equal(test.groups, again.groups)


def test_waterbirds_like_signals() -> None:
    data = waterbirds_like_features(split="test", n_test_per_cell=2000, dim=80, seed=0)
    x, y, g = data.x.double(), data.y, data.groups
    core = x[:, :32].sum(1) / 32**0.5  # projection on the core direction
    spurious = x[:, 32:64].sum(1) / 32**0.5
    # class-conditional means ±core_strength, group-conditional means ±spurious_strength
    assert core[y == 1].mean() == pytest.approx(2.0, abs=0.1)
    assert core[y == 0].mean() == pytest.approx(-2.0, abs=0.1)
    assert spurious[g == 1].mean() == pytest.approx(4.0, abs=0.1)
    assert spurious[g == 0].mean() == pytest.approx(-4.0, abs=0.1)
    # noise coordinates carry neither signal and have unit variance
    assert x[:, 64:].mean().abs() < 0.02
    assert x[:, 64:].var().item() == pytest.approx(1.0, abs=0.03)


def test_synthetic_validation() -> None:
    with pytest.raises(ValueError, match="Unknown split 'val'"):
        long_tailed_gaussians(split="val")
    with pytest.raises(ValueError, match="Unknown split"):
        waterbirds_like_features(split="valid")
    with pytest.raises(ValueError, match="exceeds dim"):
        waterbirds_like_features(dim=40, core_dim=32, spurious_dim=32)
    with pytest.raises(ValueError, match="sum to 1"):
        waterbirds_like_features(proportions=((0.5, 0.5), (0.5, 0.5)))
    with pytest.raises(ValueError, match="separation"):
        long_tailed_gaussians(separation=-1.0)
