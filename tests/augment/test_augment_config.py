"""``search.augment`` is validated like the other config sections; off by default."""

from __future__ import annotations

import math

import pytest

from autobalance.augment import OPS
from autobalance.config import AugmentConfig, SearchConfig, apply_overrides, from_dict, to_dict

BAD = [
    ("kind", "mixup", r"Unknown augment kind 'mixup'"),
    ("per", "sample", r"Unknown augment\.per 'sample'"),
    ("gate", "hard", r"Unknown augment\.gate 'hard'"),
    ("hypergrad", "exact", r"Unknown augment\.hypergrad 'exact'"),
    ("ops", ("translate", "zoom"), r"ops must be distinct names"),
    ("ops", (), r"augment\.ops must not be empty"),
    ("init_prob", 1.0, r"augment\.init_prob must lie in \(0, 1\)"),
    ("init_magnitude", 0.0, r"augment\.init_magnitude must lie in \(0, 1\)"),
    ("temperature", 0.0, r"augment\.temperature must be > 0"),
    ("radius", -1.0, r"augment\.radius must be > 0"),
    ("max_radius", math.inf, r"augment\.max_radius must be finite"),
    ("lr", 0.0, r"augment\.lr must be > 0"),
    ("search_loss", 1, r"augment\.search_loss must be true or false"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD)
def test_bad_augment_values_are_refused(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AugmentConfig(**{name: value})  # type: ignore[arg-type]


def test_cross_field_checks() -> None:
    with pytest.raises(ValueError, match=r"radius must be < augment\.max_radius"):
        AugmentConfig(kind="spherical", radius=2.0, max_radius=1.0)
    with pytest.raises(ValueError, match="search_loss=false needs a policy"):
        AugmentConfig(search_loss=False)
    data = apply_overrides({}, ["augment.kind=pda", "hyper.scope=head"])
    with pytest.raises(ValueError, match=r"hyper\.scope=full"):
        from_dict(SearchConfig, data)
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['augment.kindd'\]"):
        from_dict(SearchConfig, apply_overrides({}, ["augment.kindd=pda"]))


def test_defaults_leave_the_search_unchanged_and_round_trip() -> None:
    cfg = SearchConfig()
    assert cfg.augment.kind == "none" and cfg.augment.search_loss
    assert cfg.augment.hypergrad == "implicit" and cfg.augment.ops == OPS
    data = apply_overrides(
        to_dict(cfg),
        ["augment.kind=pda", "augment.ops=[flip, cutout]", "augment.lr=0.2", "augment.per=class"],
    )
    back = from_dict(SearchConfig, data)
    assert back.augment.ops == ("flip", "cutout") and back.augment.lr == 0.2
    assert from_dict(SearchConfig, to_dict(back)) == back
