"""benchmarks/b1_pda_plots.py: B1-PDA's figure is drawn from the committed per-run files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import b1_pda_plots  # noqa: E402

PDA_RUNS = ROOT / "benchmarks" / "results" / "b1" / "pda_v657"


def test_load_runs_orders_seeds_and_skips_missing_runs(tmp_path: Path) -> None:
    for seed in (2, 0):
        row = {"method": "ce", "seed": seed, "balanced_error": 0.5 + seed, "seconds": 1.0}
        (tmp_path / f"ce__s{seed}.json").write_text(json.dumps(row))
    runs = b1_pda_plots.load_runs(tmp_path, [0, 1, 2])
    assert list(runs) == ["ce"]
    assert [r["seed"] for r in runs["ce"]] == [0, 2]


def test_policy_change_is_the_mean_end_minus_init_and_none_without_ends() -> None:
    rows = [
        {"policy_search_end": {"prob": [[0.2, 0.4]]}},
        {"policy_search_end": {"prob": [[0.4, 0.0]]}},
        {},
    ]
    delta = b1_pda_plots.policy_change(rows, "prob", 0.1)
    assert delta is not None
    np.testing.assert_allclose(delta, [[0.2, 0.1]])
    assert b1_pda_plots.policy_change([{}], "prob", 0.1) is None


def test_the_figure_is_written_from_the_committed_runs(tmp_path: Path) -> None:
    out = b1_pda_plots.main(["--folder", str(PDA_RUNS), "--out", str(tmp_path / "f.png")])
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = b1_pda_plots.load_runs(PDA_RUNS, [0, 1, 2])
    assert set(runs) == set(b1_pda_plots.METHODS)
    assert all(len(rows) == 3 for rows in runs.values())
