"""Report tables against independent computations (statistics, brute force)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from autobalance.report.tables import (
    compare_rows,
    fmt,
    fmt_mean_std,
    markdown_table,
    mean_std,
    pareto_front,
    text_table,
)


def test_mean_std_is_the_bessel_corrected_sample_std() -> None:
    values = [0.21, 0.18, 0.25, 0.2]
    m, s, n = mean_std(values)
    assert m == pytest.approx(statistics.fmean(values))
    assert s == pytest.approx(statistics.stdev(values))
    assert n == 4
    assert mean_std([0.3, math.nan, None]) == (0.3, 0.0, 1)
    m, s, n = mean_std([])
    assert math.isnan(m) and math.isnan(s) and n == 0


def test_formatting() -> None:
    assert fmt(0.12345) == "0.123"
    assert fmt(0.12345, percent=True) == "12.3"
    assert fmt(None) == fmt(math.nan) == "n/a"
    assert fmt_mean_std([0.1, 0.3]) == f"0.200 ± {statistics.stdev([0.1, 0.3]):.3f}"
    assert fmt_mean_std([0.1]) == "0.100"
    assert fmt_mean_std([]) == "n/a"


def test_pareto_front_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    pts = [tuple(p) for p in rng.random((40, 2)).round(2)]
    pts.append((math.nan, 0.0))
    front = pareto_front(pts)
    for i, (x, y) in enumerate(pts):
        finite = math.isfinite(x) and math.isfinite(y)
        dominated = any(
            (a <= x and b <= y and (a < x or b < y))
            for j, (a, b) in enumerate(pts)
            if j != i and math.isfinite(a) and math.isfinite(b)
        )
        assert (i in front) == (finite and not dominated)
    xs = [pts[i][0] for i in front]
    ys = [pts[i][1] for i in front]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)
    # duplicates are not dominated by each other
    assert pareto_front([(1.0, 1.0), (1.0, 1.0), (2.0, 2.0)]) == [0, 1]


def test_markdown_and_text_tables() -> None:
    md = markdown_table(["a", "b"], [["x|y", 0.5], ["z", None]])
    assert md == "| a | b |\n|---|---|\n| x\\|y | 0.500 |\n| z | n/a |\n"
    txt = text_table(["name", "value"], [["ce", 0.25], ["autobalance", 0.125]])
    lines = txt.splitlines()
    assert lines[0] == "name         value"
    assert lines[2] == "ce           0.250"
    assert lines[3] == "autobalance  0.125"


def test_compare_rows_adds_group_columns_only_with_groups() -> None:
    plain = {
        "method": "ce",
        "seconds": 1.25,
        "test": {"balanced_error": 0.2, "error": 0.1, "worst_class_error": 0.5},
    }
    headers, rows = compare_rows([plain], ["run-a"])
    assert headers == ["run", "method", "bal.err", "err", "worst class", "time (s)"]
    assert rows == [["run-a", "ce", 0.2, 0.1, 0.5, "1.2"]]
    grouped = {
        "method": "autobalance",
        "seconds": 2.0,
        "test": {
            **plain["test"],
            "group_balanced_error": 0.3,
            "worst_group_error": 0.6,
            "deo": 0.05,
        },
    }
    headers, rows = compare_rows([plain, grouped], ["a", "b"])
    assert headers[-4:] == ["group bal.err", "worst group", "DEO", "time (s)"]
    assert rows[0][5:8] == [None, None, None] and rows[1][5:8] == [0.3, 0.6, 0.05]


def test_the_guard_sentence_says_what_the_keep_rule_saw() -> None:
    from autobalance.report.markdown import guard_sentence

    guard = {
        "fell_back": True,
        "fallback_reason": "a θ trained from scratch with α* scored 0.30 …",
        "start_val_score": 0.40,
        "final_val_score": 0.31,
        "reference_val_score": 0.33,
        "from_scratch_val_score": 0.30,
        "from_scratch_paired_se": 0.05,
        "min_keepable_gain": 0.12,
    }
    text = guard_sentence(guard)
    assert text.startswith("**The search fell back to its initialisation.**")
    assert "scored 0.3000 against 0.3300" in text and "paired standard error 0.0500" in text
    assert "at least 12.0 pt" in text
    kept_off = guard_sentence({**guard, "fell_back": False, "would_fall_back": True})
    assert "because the fallback is off; the guard would have reset it" in kept_off
    quiet = guard_sentence({"fell_back": False, "min_keepable_gain": 0.01})
    assert quiet.startswith("The search kept") and "at least" not in quiet
