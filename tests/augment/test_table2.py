"""`autobalance reproduce table2`: the registry entry, its plan, and a tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_pda_search import _fake_cifar10

from autobalance.cli import main
from autobalance.reproduce import REPRODUCTIONS, make_plan

# ../shared/paper/README.md, Table 2 (balanced error, %): CIFAR10-LT, CIFAR100-LT, ImageNet-LT
TABLE2 = {
    "autobalance+single_policy": ("MADAO (one policy)", (24.39, 59.10, 55.31)),
    "autobalance+pda": ("AutoBalance: PDA", (22.53, 58.55, 54.47)),
    "autobalance+dl": ("AutoBalance: Δ&l", (21.39, 56.84, 51.74)),
    "autobalance+pda_dl": ("AutoBalance: PDA, Δ&l", (20.76, 56.49, 51.50)),
}


def test_table2_paper_numbers_as_read() -> None:
    rep = REPRODUCTIONS["table2"]
    assert rep.methods == ("ce", *TABLE2)
    for method, (label, values) in TABLE2.items():
        row = rep.paper_row(method, "balanced_error")
        assert [p.value for p in row] == list(values)
        assert [p.dataset for p in row] == ["cifar10_lt", "cifar100_lt", "imagenet_lt"]
        assert all(p.label == label for p in row)
    assert rep.paper_value("ce", "balanced_error") is not None  # a row without a number
    assert rep.paper_value("ce", "balanced_error").value is None  # type: ignore[union-attr]


def test_table2_rows_map_to_their_configs() -> None:
    plan = make_plan("table2", "cpu")
    expect = {
        "autobalance+single_policy": ("single", False, ("additive", "multiplicative")),
        "autobalance+pda": ("pda", False, ("additive", "multiplicative")),
        "autobalance+dl": ("none", True, ("additive", "multiplicative")),
        "autobalance+pda_dl": ("pda", True, ("additive", "multiplicative")),
    }
    for method, (kind, search_loss, comps) in expect.items():
        cfg = plan.config(method, 0).search
        assert cfg.augment.kind == kind and cfg.augment.search_loss is search_loss, method
        assert cfg.space.init == "balanced" and cfg.space.search == comps
    assert plan.config("ce", 0).search.augment.kind == "none"


def test_table2_dry_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["reproduce", "table2", "--dry-run", "--out", str(tmp_path / "t2")]) == 0
    text = capsys.readouterr().out
    assert "AutoBalance: PDA, Δ&l" in text and "paper 'AutoBalance: PDA, Δ&l' bal.err 20.76" in text
    assert "CIFAR100-LT 56.49, ImageNet-LT 51.50" in text


def test_table2_tiny_run_has_the_time_ratio(tmp_path: Path) -> None:
    data = _fake_cifar10(tmp_path / "data")
    out = tmp_path / "t2"
    args = [
        "reproduce",
        "table2",
        "--out",
        str(out),
        "--quiet",
        "--threads",
        "1",
        "--methods",
        "ce",
        "autobalance+pda",
        "--set",
        "dataset.name=cifar10_lt",
        f"dataset.path={data}",
        "dataset.options={verify: false, n_max: 7}",
        "dataset.imbalance_ratio=3",
        "model.name=mlp",
        "model.hidden=[16]",
        "search.train.epochs=2",
        "search.train.batch_size=16",
        "search.train.warmup_epochs=0",
        "search.hyper.interval=1",
        "search.hyper_start=0.5",
        "search.space.num_clusters=3",
        "search.augment.ops=[rotate, flip]",
    ]
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    headers = res["table"]["headers"]
    assert "time / CE" in headers
    rows = {r[0]: r for r in res["table"]["rows"]}
    ratio = res["results"]["methods"]["autobalance+pda"]["time_ratio_to_ce"]
    seconds = {
        m: json.loads((out / "runs" / f"{m.replace('+', '-')}-seed0" / "summary.json").read_text())[
            "seconds"
        ]
        for m in ("ce", "autobalance+pda")
    }
    assert ratio == pytest.approx(seconds["autobalance+pda"] / seconds["ce"])
    assert rows["CE"][headers.index("time / CE")] == "1.00"
    assert rows["AutoBalance: PDA"][headers.index("time / CE")] == f"{ratio:.2f}"
    assert rows["AutoBalance: PDA"][headers.index("paper bal.err (%)")] == "22.53"
    assert res["results"]["methods"]["ce"]["time_ratio_to_ce"] == pytest.approx(1.0)
    policy = json.loads(
        (out / "runs" / "autobalance-pda-seed0" / "augment_policy.json").read_text()
    )
    assert policy["ops"] == ["rotate", "flip"] and policy["kind"] == "pda"
