"""benchmarks/b1_cpu_table.py: B1 CPU's table reports what the library returns, guard included."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import b1_cpu_table  # noqa: E402

HOST = {"platform": "Linux-6.18-fc-v657-x86_64", "cpu_capability": "AVX2"}


def _write(folder: Path, method: str, seed: int, err: float, **extra: object) -> None:
    row = {
        "method": method,
        "seed": seed,
        "balanced_error": err,
        "error": err,
        "worst_class_error": err + 0.1,
        "seconds": 100.0,
        "env": HOST,
        **extra,
    }
    (folder / f"{method}__s{seed}.json").write_text(json.dumps(row))


def _searched(folder: Path, method: str, seed: int, err: float, falls_back: bool, **guard):
    config = {"guard": {"enabled": True, "reference": True, "fallback": False, **guard}}
    _write(folder, method, seed, err, config=config, guard={"would_fall_back": falls_back})


def test_a_reset_seed_returns_its_la_and_keeps_the_searched_error(tmp_path: Path) -> None:
    for seed in (0, 1):
        for method, err in (("ce", 0.49), ("la", 0.35), ("ldam_drw", 0.36)):
            _write(tmp_path, method, seed, err + seed / 100)
    _searched(tmp_path, "autobalance+average", 0, 0.344, falls_back=True)
    _searched(tmp_path, "autobalance+average", 1, 0.341, falls_back=False)
    _searched(tmp_path, "autobalance+la_tau", 0, 0.345, falls_back=False)  # seed 1 missing
    summary = tmp_path / "summary.json"
    b1_cpu_table.main(["--runs", str(tmp_path), "--seeds", "0", "1", "--summary", str(summary)])
    block = json.loads(summary.read_text())["b1_cpu"]
    assert sorted(block) == ["autobalance", "ce", "la", "ldam_drw"]  # la_tau incomplete
    ab = block["autobalance"]
    assert ab["balanced_error"] == pytest.approx([0.35, 0.341])  # seed 0: LA's training
    assert ab["searched_balanced_error"] == pytest.approx([0.344, 0.341])
    assert ab["guard_kept"] == [0.0, 1.0]
    assert ab["worst_class_error"] == pytest.approx([0.45, 0.441])
    assert block["la"]["balanced_error"] == pytest.approx([0.35, 0.36])
    assert "guard_kept" not in block["la"]


def test_a_run_without_a_verdict_or_with_another_hosts_la_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "la", 0, 0.35)
    _searched(tmp_path, "autobalance+la_tau", 0, 0.34, falls_back=False, reference=False)
    with pytest.raises(ValueError, match="no verdict"):
        b1_cpu_table.table_rows(tmp_path, [0])
    _searched(tmp_path, "autobalance+la_tau", 0, 0.34, falls_back=False)
    la = json.loads((tmp_path / "la__s0.json").read_text())
    la["env"] = {"platform": "Linux-6.18-fc-v669-x86_64"}
    (tmp_path / "la__s0.json").write_text(json.dumps(la))
    with pytest.raises(ValueError, match="another host"):
        b1_cpu_table.table_rows(tmp_path, [0])
