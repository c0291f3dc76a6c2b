"""benchmarks/lever_table.py: the issue-8 lever table computed from per-run JSON."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from lever_table import lever_row, main, markdown, paired  # noqa: E402


def _write(folder: Path, method: str, seed: int, error: float, **guard: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    run = {"method": method, "seed": seed, "balanced_error": error, "seconds": 10.0 * (seed + 1)}
    if guard:
        run["guard"] = guard
    (folder / f"{method}__s{seed}.json").write_text(json.dumps(run))


def test_paired_is_the_one_sample_t_statistic() -> None:
    mean, t = paired([-0.02, -0.01, -0.03])
    assert mean == pytest.approx(-0.02)
    assert t == pytest.approx(-0.02 / (0.01 / math.sqrt(3)))
    assert math.isnan(paired([0.1])[1]) and math.isnan(paired([0.1, 0.1])[1])


def test_a_row_pairs_each_seed_with_its_own_baselines(tmp_path: Path) -> None:
    runs, la = tmp_path / "runs", tmp_path / "la"
    for seed, (err, base, best) in enumerate([(0.60, 0.65, 0.62), (0.70, 0.66, 0.64)]):
        verdict = seed == 0
        _write(runs, "autobalance+x", seed, err, would_fall_back=verdict, final_val_score=0.5)
        _write(la, "la", seed, base)
        _write(la, "la+tau=1.5", seed, best)
    _write(runs, "autobalance+x", 2, 0.1)  # no baselines for seed 2: left out
    row = lever_row(runs, "autobalance+x", [0, 1, 2], la, "la+tau=1.5")
    assert row is not None
    assert row["seeds"] == [0, 1]
    assert row["minus_la"] == pytest.approx([-0.05, 0.04])
    assert row["minus_best"] == pytest.approx([-0.02, 0.06])
    assert row["reset"] == [True, False]
    assert row["seconds"] == pytest.approx(15.0)
    line = markdown(row)
    assert "0.6500 ± 0.0707" in line and "−5.00 +4.00" in line and "reset, kept" in line
    assert lever_row(runs, "autobalance+y", [0], la, "la") is None


def test_main_reads_a_method_from_the_first_folder_that_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, la = tmp_path / "a", tmp_path / "b", tmp_path / "la"
    _write(first, "autobalance", 0, 0.5)
    _write(second, "autobalance", 0, 0.9)
    _write(second, "autobalance+old", 0, 0.7)
    _write(la, "la", 0, 0.6)
    rows = main([str(first), str(second), "--la", str(la), "--seeds", "0"])
    assert [(r["method"], r["errors"]) for r in rows] == [
        ("autobalance", [0.5]),
        ("autobalance+old", [0.7]),
    ]
    out = capsys.readouterr().out
    assert "no guard" in out
    assert "| − la per seed (pt) | mean − la |" in out.splitlines()[0]


def test_the_second_comparison_may_be_a_default_run_and_the_header_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "runs"
    _write(folder, "la", 0, 0.60)
    _write(folder, "autobalance+average", 0, 0.55)
    _write(folder, "autobalance+no_average", 0, 0.57)
    rows = main([str(folder), "--la", str(folder), "--best", "autobalance+average", "--seeds", "0"])
    by_method = {r["method"]: r for r in rows}
    assert by_method["autobalance+no_average"]["minus_best"] == [pytest.approx(0.02)]
    assert by_method["autobalance+average"]["minus_best"] == [0.0]
    assert "mean − autobalance+average |" in capsys.readouterr().out.splitlines()[0]


def test_keep_z_replays_the_verdict_on_the_recorded_s_v_scores(tmp_path: Path) -> None:
    runs, la = tmp_path / "runs", tmp_path / "la"
    # recorded under keep_z = 2: the from-scratch θ is 0.3 pt worse than the reference, within
    # one paired SE (0.07): reset then, kept by the harm-only rule (keep_z = -1)
    scores = {
        "final_val_score": 0.718,
        "reference_val_score": 0.713,
        "reference_paired_se": 0.07,
        "from_scratch_val_score": 0.716,
        "from_scratch_paired_se": 0.07,
    }
    _write(runs, "autobalance", 0, 0.6, would_fall_back=True, **scores)
    # harm beyond one SE: reset under either rule
    harm = {**scores, "from_scratch_val_score": 0.80}
    _write(runs, "autobalance", 1, 0.6, would_fall_back=True, **harm)
    _write(runs, "autobalance", 2, 0.6, would_fall_back=False)  # guard off: nothing to replay
    for seed in range(3):
        _write(la, "la", seed, 0.65)
    assert lever_row(runs, "autobalance", [0, 1, 2], la, "la")["reset"] == [True, True, False]
    replayed = lever_row(runs, "autobalance", [0, 1, 2], la, "la", keep_z=-1.0)
    assert replayed["reset"] == [False, True, False]


def test_a_run_without_the_reference_theta_has_no_default_guard_verdict(tmp_path: Path) -> None:
    runs, la = tmp_path / "runs", tmp_path / "la"
    _write(runs, "autobalance+val_batch", 0, 0.6, would_fall_back=False, final_val_score=0.7)
    run = json.loads((runs / "autobalance+val_batch__s0.json").read_text())
    run["config"] = {"guard": {"reference": False}}  # the cheaper lever runs
    (runs / "autobalance+val_batch__s0.json").write_text(json.dumps(run))
    _write(la, "la", 0, 0.65)
    for keep_z in (None, -1.0):
        row = lever_row(runs, "autobalance+val_batch", [0], la, "la", keep_z=keep_z)
        assert row is not None and row["reset"] == ["not measured"]
    assert "| not measured |" in markdown(row)


def test_a_seed_whose_baseline_ran_on_another_host_is_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, la = tmp_path / "runs", tmp_path / "la"
    here = {"platform": "Linux-6.18-fc-v657-x86_64", "cpu_capability": "AVX2"}
    there = {"platform": "Linux-6.18-fc-v669-x86_64"}  # an older file: no capability recorded
    for seed, base_env in enumerate([here, there]):
        _write(runs, "autobalance", seed, 0.6)
        _write(la, "la", seed, 0.65)
        for folder, method, env in ((runs, "autobalance", here), (la, "la", base_env)):
            path = folder / f"{method}__s{seed}.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), "env": env}))
    rows = main([str(runs), "--la", str(la), "--seeds", "0", "1"])
    assert rows[0]["other_host"] == [False, True]
    out = capsys.readouterr().out
    assert "−5.00 −5.00†" in out and "unlike hosts" in out


def test_same_host_compares_capabilities_only_when_both_recorded_one() -> None:
    from _common import same_host

    a = {"platform": "P", "cpu_capability": "AVX2"}
    assert same_host(a, {"platform": "P"}) is True
    assert same_host(a, {"platform": "P", "cpu_capability": "AVX512"}) is False
    assert same_host(a, {"platform": "Q", "cpu_capability": "AVX2"}) is False
    assert same_host(a, None) is None
