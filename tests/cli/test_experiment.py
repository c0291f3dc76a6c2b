"""ExperimentConfig parsing, presets and build_experiment, checked against hand computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autobalance.config import SearchConfig
from autobalance.experiment import (
    DatasetConfig,
    ExperimentConfig,
    build_experiment,
    build_transforms,
    dataset_options,
    default_data_dir,
    load_dataset,
    loss_counts,
)
from autobalance.presets import dump_config, load_config, read_yaml_text


def test_defaults_nest_the_engine_config_unchanged() -> None:
    cfg = ExperimentConfig()
    assert cfg.search == SearchConfig()
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_keys_name_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"dataset\.nmae.*valid.*'name'"):
        ExperimentConfig.from_dict({"dataset": {"nmae": "digits_lt"}})
    with pytest.raises(ValueError, match=r"search\.train\.epoch'\].*'epochs'"):
        ExperimentConfig.from_dict({"search": {"train": {"epoch": 3}}})


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"dataset": {"name": "mnist"}}, "Unknown dataset 'mnist'"),
        ({"model": {"name": "vgg"}}, "Unknown model 'vgg'"),
        ({"baselines": ["ce", "bogus"]}, "Unknown loss 'bogus'"),
        ({"search": {"train": {"epochs": "many"}}}, "search.train.epochs must be int"),
        ({"dataset": {"options": [1, 2]}}, "dataset.options must be a mapping"),
        ({"dataset": {"imbalance_ratio": 0.5}}, "imbalance_ratio must be ≥ 1"),
    ],
)
def test_bad_values_raise_value_error(data: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        ExperimentConfig.from_dict(data)


def test_overrides_and_yaml_round_trip() -> None:
    cfg = load_config(
        preset="gaussians-cpu",
        overrides=["search.train.epochs=3", "dataset.options.dim=5", "baselines=[ce]"],
    )
    assert cfg.search.train.epochs == 3 and cfg.dataset.options["dim"] == 5
    assert cfg.baselines == ("ce",)
    assert cfg.dataset.options["num_classes"] == 10  # untouched sibling keys survive
    again = ExperimentConfig.from_dict(read_yaml_text(dump_config(cfg), "dump"))
    assert again == cfg


def test_invalid_yaml_is_a_one_line_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [unclosed\n")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_config(config=bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        load_config(config=bad)
    with pytest.raises(ValueError, match="either a config file or a preset"):
        load_config(config=bad, preset="digits-demo")


def test_gaussians_experiment_matches_the_loader() -> None:
    cfg = ExperimentConfig.from_dict(
        {
            "dataset": {
                "name": "gaussians_lt",
                "imbalance_ratio": 10,
                "options": {"num_classes": 3, "dim": 4, "n_max": 50},
            },
            "model": {"name": "mlp", "hidden": [8]},
            "search": {"seed": 7},
        }
    )
    train, test, model_fn, transform, eval_transform = build_experiment(cfg)
    # LDAM-DRW profile: n_k = int(50 · 10^(−k/2))
    expected = [int(50 * 10 ** (-k / 2)) for k in range(3)]
    assert train.class_counts().tolist() == expected
    assert test.class_counts().tolist() == [200, 200, 200]
    model = model_fn()
    assert model(train.x[:5]).shape == (5, 3)
    assert sum(p.numel() for p in model.parameters()) == 4 * 8 + 8 + 8 * 3 + 3
    x = torch.randn(2, 4)
    assert torch.equal(transform(x, None), x) and torch.equal(eval_transform(x, None), x)
    # dataset.seed falls back to search.seed: another seed draws other samples
    other = load_dataset(cfg.dataset, seed=8)[0]
    assert not torch.equal(other.x[:5], train.x[:5])


def test_dataset_options_are_validated() -> None:
    assert "test_per_class" in dataset_options("digits_lt")
    with pytest.raises(ValueError, match=r"Unknown dataset option\(s\) \['colour'\]"):
        load_dataset(DatasetConfig(name="digits_lt", options={"colour": 1}))
    with pytest.raises(ValueError, match="has no imbalance_ratio"):
        load_dataset(DatasetConfig(name="waterbirds_like", imbalance_ratio=10))


def test_missing_data_path_is_a_clear_file_not_found(tmp_path: Path) -> None:
    cfg = DatasetConfig(name="adult", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"dataset 'adult': .*nowhere/adult not found"):
        load_dataset(cfg)
    cfg = DatasetConfig(name="cifar10_jpeg_lt", path=str(tmp_path / "x.npz"))
    with pytest.raises(FileNotFoundError, match=r"dataset\.path"):
        load_dataset(cfg)


def test_default_data_dir_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOBALANCE_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("AUTOBALANCE_DATA")
    monkeypatch.delenv("AUTOBALANCE_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)  # never relative to the working directory
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "autobalance" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "autobalance" / "data"
    monkeypatch.setenv("AUTOBALANCE_CACHE", str(tmp_path / "cache"))
    assert default_data_dir() == tmp_path / "cache" / "data"


def test_image_transforms_normalise_with_the_cifar_statistics() -> None:
    cfg = ExperimentConfig.from_dict(
        {"dataset": {"name": "cifar10_lt"}, "model": {"name": "resnet8"}}
    )
    train_t, eval_t = build_transforms(cfg, seed=0)
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    mean = np.array([0.4914, 0.4822, 0.4465])[None, :, None, None]
    std = np.array([0.2023, 0.1994, 0.2010])[None, :, None, None]
    expected = (x.numpy() / 255.0 - mean) / std
    np.testing.assert_allclose(eval_t(x, None).numpy(), expected, rtol=1e-5, atol=1e-5)
    out = train_t(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.float32
    with pytest.raises(ValueError, match="augment=true needs an image dataset"):
        build_transforms(ExperimentConfig.from_dict({"augment": True}), seed=0)


def test_loss_counts_give_cells_with_groups() -> None:
    cfg = ExperimentConfig.from_dict(
        {"dataset": {"name": "waterbirds_like", "options": {"n": 400, "dim": 70}}}
    )
    train = load_dataset(cfg.dataset)[0]
    table = loss_counts(train)["group_counts"]
    y, g = train.y.numpy(), train.groups.numpy()
    hand = [[int(((y == k) & (g == j)).sum()) for j in range(2)] for k in range(2)]
    assert table.tolist() == hand and table.sum() == 400
