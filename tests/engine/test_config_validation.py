"""Config values that would silently corrupt a run are refused where they are set (issue 9)."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from autobalance.config import (
    AlphaConfig,
    GuardConfig,
    HyperConfig,
    SearchConfig,
    SpaceConfig,
    apply_overrides,
    from_dict,
    to_dict,
)
from autobalance.data.waterbirds import read_waterbirds_metadata
from autobalance.experiment import ExperimentConfig
from autobalance.presets import load_config, preset_names
from autobalance.train import TrainConfig

BAD = [
    # (section, field, value, message)
    ("alpha", "clip_norm", -1, r"alpha\.clip_norm must be > 0, got -1"),
    ("alpha", "clip_norm", 0, r"alpha\.clip_norm must be > 0"),
    ("alpha", "lr", math.nan, r"alpha\.lr must be finite, got nan"),
    ("alpha", "lr", math.inf, r"alpha\.lr must be finite"),
    ("alpha", "momentum", 1.0, r"alpha\.momentum must lie in \[0, 1\)"),
    ("alpha", "weight_decay", -1e-4, r"alpha\.weight_decay must be ≥ 0"),
    ("alpha", "step_every", 0, r"alpha\.step_every must be ≥ 1"),
    ("alpha", "step_gamma", 0.0, r"alpha\.step_gamma must lie in \(0, 1\]"),
    ("alpha", "average", 1.0, r"alpha\.average must lie in \[0, 1\)"),
    ("alpha", "normalize", 1, r"alpha\.normalize must be true or false"),
    ("space", "bound_additive", -1, r"space\.bound_additive must be > 0, got -1"),
    ("space", "bound_multiplicative", 0, r"space\.bound_multiplicative must be > 0"),
    ("space", "bound_weight", math.nan, r"space\.bound_weight must be finite"),
    ("space", "delta_scale", 0, r"space\.delta_scale must be > 0"),
    ("space", "num_clusters", 0, r"space\.num_clusters must be ≥ 1"),
    ("space", "cluster_size", 2.5, r"space\.cluster_size must be an integer"),
    ("space", "tau", -1, r"space\.tau must be ≥ 0"),
    ("space", "gamma", -0.2, r"space\.gamma must be ≥ 0"),
    ("space", "search", (), r"space\.search must not be empty"),
    ("train", "lr_decay", -1, r"train\.lr_decay must lie in \(0, 1\], got -1"),
    ("train", "lr_decay", 0, r"train\.lr_decay must lie in \(0, 1\]"),
    ("train", "lr_decay", 10, r"train\.lr_decay must lie in \(0, 1\]"),
    ("train", "epochs", True, r"train\.epochs must be an integer, got True"),
    ("train", "epochs", 0, r"train\.epochs must be ≥ 1"),
    ("train", "eval_every", 0, r"train\.eval_every must be ≥ 1, got 0"),
    ("train", "batch_size", 1.5, r"train\.batch_size must be an integer"),
    ("train", "eval_batch_size", 0, r"train\.eval_batch_size must be ≥ 1"),
    ("train", "lr", -0.1, r"train\.lr must be > 0"),
    ("train", "lr", math.nan, r"train\.lr must be finite"),
    ("train", "momentum", -0.5, r"train\.momentum must lie in \[0, 1\)"),
    ("train", "weight_decay", -1, r"train\.weight_decay must be ≥ 0"),
    ("train", "warmup_epochs", -2, r"train\.warmup_epochs must be ≥ 0"),
    ("train", "milestones", (0.5, 1.5), r"train\.milestones are fractions"),
    ("train", "milestones", (0.5, math.nan), r"train\.milestones must be finite"),
    ("hyper", "interval", 0, r"hyper\.interval must be ≥ 1, got 0"),
    ("hyper", "interval", True, r"hyper\.interval must be an integer"),
    ("hyper", "per_epoch", 0, r"hyper\.per_epoch must be ≥ 1"),
    ("hyper", "val_batch_size", 0, r"hyper\.val_batch_size must be ≥ 1"),
    ("hyper", "power_iterations", 0, r"hyper\.power_iterations must be ≥ 1"),
    ("hyper", "scale", math.inf, r"hyper\.scale must be finite"),
    ("hyper", "damping", -1e-3, r"hyper\.damping must be ≥ 0"),
    ("guard", "margin", -0.1, r"guard\.margin must be ≥ 0"),
    ("guard", "fallback_margin", math.nan, r"guard\.fallback_margin must be finite"),
    ("guard", "spike", 1.0, r"guard\.spike must be > 1"),
    ("guard", "shrink", 1.0, r"guard\.shrink must lie in \(0, 1\)"),
    ("guard", "max_rollbacks", -1, r"guard\.max_rollbacks must be ≥ 0"),
    ("guard", "enabled", "yes", r"guard\.enabled must be true or false"),
    ("", "seed", -1, r"seed must be ≥ 0"),
    ("", "seed", True, r"seed must be an integer"),
    ("", "hyper_start", math.nan, r"hyper_start must be finite"),
    ("", "objective_lam", 1.5, r"objective_lam must lie in \[0, 1\]"),
    ("", "objective_temperature", 0, r"objective_temperature must be > 0"),
    ("", "checkpoint_every", 0, r"checkpoint_every must be ≥ 1"),
]
CLASSES = {
    "alpha": AlphaConfig,
    "space": SpaceConfig,
    "train": TrainConfig,
    "hyper": HyperConfig,
    "guard": GuardConfig,
    "": SearchConfig,
}


@pytest.mark.parametrize(("section", "name", "value", "message"), BAD)
def test_bad_values_are_refused_when_built_and_when_set(section, name, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        CLASSES[section](**{name: value})
    cfg = SearchConfig()
    target = getattr(cfg, section) if section else cfg
    before = getattr(target, name)
    with pytest.raises(ValueError, match=message):
        setattr(target, name, value)
    assert getattr(target, name) == before  # the refused value was not stored


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=true", r"train\.epochs must be int, got True"),
        ("train.epochs=2.5", r"train\.epochs must be an integer"),
        ("alpha.lr=.nan", r"alpha\.lr must be finite"),
        ("alpha.clip_norm=-1", r"alpha\.clip_norm must be > 0"),
        ("space.bound_additive=-1", r"space\.bound_additive must be > 0"),
        ("train.lr_decay=-1", r"train\.lr_decay must lie in \(0, 1\]"),
        ("train.eval_every=0", r"train\.eval_every must be ≥ 1"),
        ("hyper.interval=0", r"hyper\.interval must be ≥ 1"),
        ("guard.window=false", r"guard\.window must be int, got False"),
    ],
)
def test_bad_overrides_are_refused_in_one_line(override, message) -> None:
    with pytest.raises(ValueError, match=message) as err:
        from_dict(SearchConfig, apply_overrides({}, [override]))
    assert "\n" not in str(err.value)


def test_unknown_attributes_cannot_be_set() -> None:
    cfg = SearchConfig()
    with pytest.raises(AttributeError, match=r"no setting 'train\.epoch'.*'epochs'"):
        cfg.train.epoch = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=r"no setting 'hyper\.intervall'"):
        cfg.hyper.intervall = 2  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no setting 'warmup_fraction'"):
        cfg.warmup_fraction = 0.4  # type: ignore[attr-defined]
    assert not hasattr(cfg.train, "epoch")


def test_valid_settings_still_work_and_are_normalised() -> None:
    cfg = SearchConfig()
    cfg.train.epochs = np.int64(5)  # numpy integers and integral floats are integers
    cfg.train.batch_size = 64.0
    cfg.alpha.lr = 1  # an int where a float is meant
    cfg.alpha.clip_norm = None
    cfg.hyper.damping = 0.0
    cfg.space.search = ["additive"]
    cfg.train.milestones = [0.5, 1]
    cfg.retrain_train = TrainConfig(epochs=3)
    assert type(cfg.train.epochs) is int and cfg.train.epochs == 5
    assert type(cfg.train.batch_size) is int and type(cfg.alpha.lr) is float
    assert cfg.space.search == ("additive",) and cfg.train.milestones == (0.5, 1.0)
    again = from_dict(SearchConfig, to_dict(cfg))
    assert again == cfg and copy.deepcopy(cfg) == cfg
    assert dataclasses.replace(cfg.train, epochs=7).epochs == 7
    with pytest.raises(ValueError, match="retrain_train must be a TrainConfig"):
        cfg.retrain_train = {"epochs": 3}  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"nesterov needs train\.momentum > 0"):
        TrainConfig(nesterov=True, momentum=0.0)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_passes_validation(name) -> None:
    cfg = load_config(preset=name)
    assert isinstance(cfg, ExperimentConfig)


def test_fractional_waterbirds_label_is_an_error(tmp_path: Path) -> None:
    lines = [
        "img_id,img_filename,y,split,place,place_filename",
        "1,a/a.jpg,1,0,1,x.jpg",
        "2,b/b.jpg,0.5,0,0,y.jpg",
    ]
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"column 'y' must hold integers, got '0\.5'") as err:
        read_waterbirds_metadata(tmp_path)
    assert "\n" not in str(err.value) and "data row 2" in str(err.value)
    lines[2] = "2,b/b.jpg,1.0,0,,y.jpg"  # "1.0" is the integer 1; a blank place is an error
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="column 'place' must hold integers, got ''"):
        read_waterbirds_metadata(tmp_path)
    lines[2] = "2,b/b.jpg,1.0,0,0,y.jpg"
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    assert read_waterbirds_metadata(tmp_path)["y"].tolist() == [1, 1]
