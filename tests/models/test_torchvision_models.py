from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from autobalance.models import TorchvisionClassifier, make_model, require_torchvision

HAS_TV = importlib.util.find_spec("torchvision") is not None


def test_missing_torchvision_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    with pytest.raises(ImportError, match=r"pip install torch==2\.14\.1 torchvision==0\.29\.1"):
        require_torchvision()
    with pytest.raises(ImportError, match="torchvision"):
        make_model("resnet50", 10)


class TinyBackbone(nn.Module):
    def __init__(self, weights: object = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.fc = nn.Linear(6, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def test_wrapper_splits_fc_into_head(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(resnet50=TinyBackbone)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    model = make_model("resnet50", 4)
    assert isinstance(model, TorchvisionClassifier) and model.feature_dim == 6
    x = torch.randn(2, 3, 9, 9)
    assert model.features(x).shape == (2, 6) and model(x).shape == (2, 4)
    assert torch.allclose(model(x), model.head(model.features(x)))
    with pytest.raises(ValueError, match="no Linear 'fc'"):
        TorchvisionClassifier(nn.Conv2d(3, 3, 1), 2)


@pytest.mark.skipif(not HAS_TV, reason="torchvision not installed (optional)")
def test_real_resnet50_shapes() -> None:
    model = make_model("resnet50", 8).eval()
    x = torch.randn(1, 3, 64, 64)
    assert model.features(x).shape == (1, 2048) and model(x).shape == (1, 8)
