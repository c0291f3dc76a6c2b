"""Atomic checkpoints, safe loading, RNG state and the typed config."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from autobalance.checkpoint import (
    atomic_save,
    atomic_write_text,
    rng_state,
    safe_load,
    set_rng_state,
)
from autobalance.config import HyperConfig, SearchConfig, apply_overrides, from_dict, to_dict


def test_atomic_save_and_weights_only_load(tmp_path) -> None:
    path = tmp_path / "sub" / "ck.pt"
    atomic_save({"w": torch.arange(3), "meta": {"epoch": 2}}, path)
    out = safe_load(path)
    assert out["meta"]["epoch"] == 2 and torch.equal(out["w"], torch.arange(3))
    assert list(path.parent.iterdir()) == [path]  # no temp files left behind


def test_failed_save_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "ck.pt"
    atomic_save({"v": 1}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save({"v": Boom()}, path)
    assert safe_load(path)["v"] == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_safe_load_refuses_pickled_objects_and_reports_corruption(tmp_path) -> None:
    bad = tmp_path / "evil.pt"
    torch.save({"obj": random.Random()}, bad)
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        safe_load(bad)
    torn = tmp_path / "torn.pt"
    torn.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        safe_load(torn)
    with pytest.raises(FileNotFoundError):
        safe_load(tmp_path / "missing.pt")
    atomic_write_text("hello", tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text() == "hello"


def test_rng_state_round_trip(tmp_path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    atomic_save(rng_state(), tmp_path / "rng.pt")
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(safe_load(tmp_path / "rng.pt"))
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_config_from_dict_overrides_and_errors() -> None:
    data = apply_overrides(
        {"train": {"epochs": 3}},
        ["hyper.scope=head", "space.search=[additive]", "alpha.lr=0.5", "seed=4"],
    )
    cfg = from_dict(SearchConfig, data)
    assert cfg.train.epochs == 3 and cfg.hyper.scope == "head" and cfg.seed == 4
    assert cfg.space.search == ("additive",) and cfg.alpha.lr == 0.5
    again = from_dict(SearchConfig, to_dict(cfg))
    assert again == cfg
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['hyper.scoop'\]"):
        from_dict(SearchConfig, {"hyper": {"scoop": "head"}})
    with pytest.raises(ValueError, match="expected one of"):
        from_dict(SearchConfig, {"hyper": {"scope": "everything"}})
    with pytest.raises(ValueError, match="must be int"):
        from_dict(SearchConfig, {"train": {"epochs": "many"}})
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["novalue"])
    assert HyperConfig.official().train_batches == 10
