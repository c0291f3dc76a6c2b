"""benchmarks/guard_rule.py replays the guard's keep/fall-back decision as the search makes it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from guard_rule import b1_rows, keeps, replay  # noqa: E402


def _row(seed: int, minus_la: float, searched: float, scratch: float, se: float) -> dict:
    return {
        "problem": "p",
        "method": "autobalance+keep",
        "seed": seed,
        "minus_la": minus_la,
        "final_val_score": searched,
        "reference_val_score": 0.40,
        "from_scratch_val_score": scratch,
        "from_scratch_paired_se": se,
    }


def test_keeps_follows_the_guard() -> None:
    # the searched θ must not be worse; the from-scratch θ must gain keep_z paired SEs
    assert keeps(_row(0, 0, 0.39, 0.30, 0.04), keep_z=2.0)  # gain 0.10 > 2 × 0.04
    assert not keeps(_row(0, 0, 0.39, 0.35, 0.04), keep_z=2.0)  # gain 0.05 < 0.08
    assert keeps(_row(0, 0, 0.39, 0.35, 0.04), keep_z=1.0)
    assert not keeps(_row(0, 0, 0.41, 0.10, 0.0), keep_z=0.0)  # searched θ worse: fall back
    # keep_z < 0: fall back only on harm beyond |keep_z| SEs, in either check
    harm = _row(0, 0, 0.43, 0.44, 0.05) | {"reference_paired_se": 0.05}
    assert keeps(harm, keep_z=-1.0) and not keeps(harm, keep_z=0.0)
    assert not keeps(harm | {"final_val_score": 0.46}, keep_z=-1.0)  # searched θ: 0.06 > 0.05
    assert not keeps(harm | {"from_scratch_val_score": 0.46}, keep_z=-1.0)


def test_replay_counts_a_fallback_as_the_la_row() -> None:
    rows = [{"problem": "p", "method": "la", "seed": s, "balanced_error": 0.5} for s in (0, 1)] + [
        _row(0, -0.02, 0.39, 0.30, 0.04),
        _row(1, +0.06, 0.39, 0.36, 0.04),
    ]
    strict, loose = replay(rows, "autobalance+keep", 2.0), replay(rows, "autobalance+keep", 0.0)
    assert strict["kept"] == 1 and strict["mean"] == pytest.approx(-0.01) and strict["worst"] == 0
    assert loose["kept"] == 2 and loose["worst"] == pytest.approx(0.06)


def test_b1_rows_pair_each_run_with_the_la_run_of_its_seed(tmp_path: Path) -> None:
    runs, la = tmp_path / "runs", tmp_path / "la"
    runs.mkdir()
    la.mkdir()
    guard = {"final_val_score": 0.6, "reference_val_score": 0.62}
    guard |= {"from_scratch_val_score": 0.58, "from_scratch_paired_se": 0.01}
    run = {"method": "autobalance+old_upper_keep", "seed": 3, "balanced_error": 0.64}
    (runs / "autobalance+old_upper_keep__s3.json").write_text(json.dumps(run | {"guard": guard}))
    (la / "la__s3.json").write_text(json.dumps({"balanced_error": 0.66}))
    rows = b1_rows(runs, la)
    assert [r["method"] for r in rows] == ["la", "autobalance+old_upper_keep"]
    assert rows[1]["minus_la"] == pytest.approx(-0.02) and keeps(rows[1], keep_z=2.0)
