from __future__ import annotations

import pytest
import torch

from autobalance.models import CifarResNet, cifar_resnet, resnet8, resnet20, resnet32
from autobalance.models.resnet_cifar import ShortcutA, to_channels_last


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def expected_params(depth: int, k: int, w: int = 16) -> int:
    """Hand count for option-A ResNets: convs (no bias) + BN (γ, β) + linear head."""
    n = (depth - 2) // 6
    total = 3 * w * 9 + 2 * w
    c_in = w
    for c in (w, 2 * w, 4 * w):
        for j in range(n):
            a = c_in if j == 0 else c
            total += a * c * 9 + 2 * c + c * c * 9 + 2 * c
        c_in = c
    return total + 4 * w * k + k


@pytest.mark.parametrize(("fn", "depth"), [(resnet8, 8), (resnet20, 20), (resnet32, 32)])
def test_param_counts(fn: object, depth: int) -> None:
    model = fn(10)  # type: ignore[operator]
    assert count(model) == expected_params(depth, 10)
    assert count(cifar_resnet(depth, 100)) == expected_params(depth, 100)


def test_paper_sizes() -> None:
    # He et al. 2016, Table 6: ResNet-20 0.27M, ResNet-32 0.46M parameters
    assert count(resnet20()) == 269_722
    assert count(resnet32()) == 464_154


def test_features_head_and_shapes() -> None:
    torch.manual_seed(0)
    model = resnet8(7, width=8).eval()
    x = torch.randn(3, 3, 32, 32)
    feats = model.features(x)
    assert feats.shape == (3, 32) and isinstance(model.head, torch.nn.Linear)
    assert torch.allclose(model(x), model.head(feats))
    assert model(x).shape == (3, 7)
    grey = cifar_resnet(8, 2, in_channels=1)
    assert grey(torch.randn(2, 1, 28, 28)).shape == (2, 2)


def test_shortcut_a_subsamples_and_zero_pads() -> None:
    x = torch.randn(2, 16, 8, 8)
    out = ShortcutA(16, 32, 2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    assert count(ShortcutA(16, 32, 2)) == 0


def test_channels_last_equivalence() -> None:
    torch.manual_seed(1)
    model = resnet8(10).eval()
    x = torch.randn(4, 3, 32, 32)
    ref = model(x)
    cl = to_channels_last(model)
    assert cl.channels_last  # type: ignore[union-attr]
    assert cl.conv1.weight.is_contiguous(memory_format=torch.channels_last)  # type: ignore[union-attr]
    assert torch.allclose(cl(x), ref, atol=1e-5)


def test_bad_depth() -> None:
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(21)
