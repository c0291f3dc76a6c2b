"""benchmarks/_common.update_summary: the shared results file every benchmark script updates."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _common import update_summary


def test_rows_merge_by_method_and_seed_and_keep_other_protocols(tmp_path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"b6": {"autobalance": {"seeds": [0], "balanced_error": [0.2]}}}))
    rows = [
        {"method": "la", "seed": 2, "balanced_error": 0.32, "seconds": 10.0},
        {"method": "la", "seed": 0, "balanced_error": 0.30, "seconds": 11.0},
        {"method": "autobalance", "seed": 0, "balanced_error": 0.29, "seconds": 30.0},
    ]
    update_summary("b1_fit", rows, path)
    # a rerun of one seed replaces its value; new seeds are inserted in seed order
    update_summary("b1_fit", [{"method": "la", "seed": 1, "balanced_error": 0.31}], path)
    update_summary("b1_fit", [{"method": "la", "seed": 2, "balanced_error": 0.33}], path)
    out = json.loads(path.read_text())
    assert out["b6"] == {"autobalance": {"seeds": [0], "balanced_error": [0.2]}}
    la = out["b1_fit"]["la"]
    assert la["seeds"] == [0, 1, 2]
    assert la["balanced_error"] == [0.30, 0.31, 0.33]
    assert la["seconds"] == [11.0, None, None]  # the reruns did not report seconds
    assert out["b1_fit"]["autobalance"]["balanced_error"] == [0.29]


def test_a_metric_no_seed_of_a_method_has_is_left_out(tmp_path) -> None:
    path = tmp_path / "summary.json"
    rows = [
        {"method": "la", "seed": 0, "balanced_error": 0.30},
        {"method": "autobalance", "seed": 0, "balanced_error": 0.29, "guard_kept": 0.0},
        {"method": "autobalance", "seed": 1, "balanced_error": 0.28},
    ]
    update_summary("b1_fit", rows, path, metrics=("balanced_error", "guard_kept"))
    out = json.loads(path.read_text())["b1_fit"]
    assert out["la"] == {"seeds": [0], "balanced_error": [0.30]}
    assert out["autobalance"]["guard_kept"] == [0.0, None]
