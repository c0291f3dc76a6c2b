from __future__ import annotations

import pytest
import torch

from autobalance.models import MLP, MODEL_NAMES, CifarResNet, make_model


def test_names_build_the_right_models() -> None:
    r = make_model("resnet20", 10, in_shape=(3, 32, 32))
    assert isinstance(r, CifarResNet) and r.depth == 20
    m = make_model("mlp", 4, in_shape=(1, 8, 8), hidden=(5,))
    assert isinstance(m, MLP) and m.body[1].in_features == 64
    lin = make_model("linear", 2, in_features=512)
    assert isinstance(lin, MLP) and lin.feature_dim == 512
    assert make_model("mlp", 3, in_features=6).feature_dim == 256  # default hidden=(256,)


def test_every_model_has_features_and_head() -> None:
    torch.manual_seed(0)
    for name, shape in (("resnet8", (3, 32, 32)), ("mlp", (20,)), ("linear", (20,))):
        model = make_model(name, 5, in_shape=shape).eval()
        x = torch.randn(2, *shape)
        assert isinstance(model.head, torch.nn.Linear)
        assert torch.allclose(model(x), model.head(model.features(x)))


def test_channels_last_flag() -> None:
    model = make_model("resnet8", 10, channels_last=True)
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown model 'vgg'.*resnet8.*resnet50"):
        make_model("vgg", 10)
    with pytest.raises(ValueError, match="in_features or in_shape"):
        make_model("mlp", 10)
    assert "resnet50" in MODEL_NAMES
