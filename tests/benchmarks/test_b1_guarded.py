"""benchmarks/b1_cifar10_lt.py: what the default guard hands back, for runs made with the
fallback off (B1-PDA, the lever ablations).

Each AutoBalance row also reports the test error of the default guard's outcome: its own when
the guard keeps α*, else its init control's of the same seed (a fallback retrains exactly that
training).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import b1_cifar10_lt as b1  # noqa: E402


def _run(method: str, seed: int, err: float, guard: dict) -> dict:
    config = {"guard": {"fallback": False, "keep_z": 2.0, "fallback_margin": 0.0}}
    return {"method": method, "seed": seed, "balanced_error": err, "guard": guard, "config": config}


def test_guarded_error_is_the_run_when_kept_else_its_init_control() -> None:
    scores = {"final_val_score": 0.39, "reference_val_score": 0.40}
    rows = [
        {"method": "fixed_policy", "seed": 0, "balanced_error": 0.66},
        {"method": "fixed_init", "seed": 0, "balanced_error": 0.68},
        {"method": "ce", "seed": 0, "balanced_error": 0.70},
        _run("autobalance+pda", 0, 0.64, {**scores, "would_fall_back": False}),
        _run("autobalance+pda_dl", 0, 0.63, {**scores, "would_fall_back": True}),
        # a run older than would_fall_back: replayed from its scores (gain 0.10 > 2 × 0.04)
        _run(
            "autobalance+single_policy",
            0,
            0.65,
            scores | {"from_scratch_val_score": 0.30, "from_scratch_paired_se": 0.04},
        ),
        # ... and a gain within the noise (0.05 < 2 × 0.04): the Δ&l init, no augmentation
        _run(
            "autobalance+dl",
            0,
            0.67,
            scores | {"from_scratch_val_score": 0.35, "from_scratch_paired_se": 0.04},
        ),
        _run("autobalance+dl", 1, 0.61, {**scores, "would_fall_back": True}),  # no control
    ]
    b1.add_guarded(rows)
    got = {
        (r["method"], r["seed"]): (r.get("guard_kept"), r.get("guarded_balanced_error"))
        for r in rows
    }
    assert got[("autobalance+pda", 0)] == (1.0, 0.64)
    assert got[("autobalance+pda_dl", 0)] == (0.0, 0.66)
    assert got[("autobalance+single_policy", 0)] == (1.0, 0.65)
    assert got[("autobalance+dl", 0)] == (0.0, 0.68)
    assert got[("autobalance+dl", 1)] == (0.0, None)  # its control did not run
    assert got[("fixed_policy", 0)] == (None, None) and got[("ce", 0)] == (None, None)


def test_an_old_run_with_the_fallback_on_reports_what_the_guard_did() -> None:
    row = _run("autobalance+pda", 0, 0.64, {"fell_back": True, "final_val_score": 0.1})
    row["config"]["guard"] = {"fallback": True}  # older than keep_z: nothing to replay
    assert not b1.guard_keeps(row)
    row["guard"]["fell_back"] = False
    assert b1.guard_keeps(row)


@pytest.mark.parametrize(
    ("method", "guard", "setting"),
    [
        # the guard off
        ("autobalance+no_guard", {"fell_back": False, "reference_val_score": None}, "enabled"),
        # no reference θ: its own would_fall_back compares with the search's start, not the
        # default guard's rule
        ("autobalance+val_batch", {"would_fall_back": True, "fell_back": False}, "reference"),
    ],
)
def test_a_run_without_the_default_guards_verdict_gets_none(
    method: str, guard: dict, setting: str
) -> None:
    row = _run(method, 0, 0.7, guard)
    row["config"]["guard"][setting] = False
    rows = [row, {"method": "la", "seed": 0, "balanced_error": 0.6}]
    b1.add_guarded(rows)
    assert "guard_kept" not in row and "guarded_balanced_error" not in row


def test_every_searched_row_has_a_control_that_trains_its_init() -> None:
    for method, control in b1.INIT_CONTROLS.items():
        variant = b1.FIXED_INITS[control]
        searched = b1.VARIANTS[method.partition("+")[2]]
        init = b1.VARIANTS[variant.partition("+")[2]]
        assert searched["space.init"] == init["space.init"] == "balanced"
        # a policy row's control trains the initial policy; the Δ&l row's none
        assert ("augment.kind" in searched) == ("augment.kind" in init)
    for name in ("pda", "pda_cpu"):
        cfg = b1.protocol_config(b1.PROTOCOLS[name], None)
        assert cfg.guard.fallback is False and cfg.guard.enabled and cfg.guard.reference
    # the B1-CPU-scale analogue is B1 CPU itself, fallback aside
    cpu, pda_cpu = b1.PROTOCOLS["cpu"], b1.PROTOCOLS["pda_cpu"]
    assert (cpu.n_max, cpu.epochs, cpu.augment, cpu.arch) == (
        pda_cpu.n_max,
        pda_cpu.epochs,
        pda_cpu.augment,
        pda_cpu.arch,
    )


def test_the_default_searchs_control_is_la_read_from_the_protocols_folder(tmp_path: Path) -> None:
    (tmp_path / "la__s0.json").write_text('{"method": "la", "seed": 0, "balanced_error": 0.66}')
    scores = {"final_val_score": 0.39, "reference_val_score": 0.40}
    rows = [
        _run("autobalance", 0, 0.70, {**scores, "would_fall_back": True}),
        _run("autobalance+la_tau", 0, 0.65, {**scores, "would_fall_back": False}),
        _run("autobalance+val_batch", 1, 0.64, {**scores, "would_fall_back": True}),  # no LA
    ]
    b1.add_guarded(rows, tmp_path)
    assert [(r["guard_kept"], r.get("guarded_balanced_error")) for r in rows] == [
        (0.0, 0.66),
        (1.0, 0.65),
        (0.0, None),
    ]
    assert b1.init_control("autobalance+constant_alpha_lr") == "la"


def test_a_fallback_is_priced_by_its_control_from_a_like_host(tmp_path: Path) -> None:
    """The run's own folder first, then the protocol's; a control that ran on another kind of
    host is not the training the fallback would retrain there, so it is passed over."""
    import json

    here, there = {"platform": "P657", "cpu_capability": "AVX2"}, {"platform": "P669"}
    own, untagged = tmp_path / "cpu_ablation", tmp_path / "cpu"
    for folder, env, err in ((own, here, 0.3468), (untagged, there, 0.3476)):
        folder.mkdir()
        control = {"method": "la", "seed": 0, "balanced_error": err, "env": env}
        (folder / "la__s0.json").write_text(json.dumps(control))
    scores = {"final_val_score": 0.39, "reference_val_score": 0.40, "would_fall_back": True}
    row = _run("autobalance+average", 0, 0.3443, scores) | {"env": here}
    b1.add_guarded([row], untagged, own)  # the other host's control is listed first
    assert row["guarded_balanced_error"] == 0.3468
    row.pop("guarded_balanced_error")
    b1.add_guarded([row], untagged)  # only the other host's: no price, the verdict stays
    assert "guarded_balanced_error" not in row and row["guard_kept"] == 0.0
