"""A search that never updated α, and a diverged training, are failures (exit status 1), not
success or bad input (issue 9, defects 4 and 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import one_line, tiny

from autobalance.cli import main
from autobalance.losses import set_value_checks
from autobalance.search import AutoBalanceSearch

SKIP_REASON = "non-finite hypergradient norm"


pytestmark = pytest.mark.usefixtures("no_figures")


def hyper_steps(out: Path) -> dict[str, int]:
    return json.loads((out / "summary.json").read_text())["hyper_steps"]


@pytest.mark.parametrize(
    "extra",
    [
        # one θ-step per epoch: never a multiple of the interval
        ["search.train.batch_size=100000", "search.hyper.interval=10", "search.train.epochs=1"],
        ["search.val_fraction=0.99", "search.hyper.interval=10", "search.train.epochs=1"],
    ],
)
def test_a_search_without_hyper_steps_exits_1_unless_allowed(
    extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none"
    assert main(["search", *tiny(out, *extra)]) == 1
    line = one_line(capsys.readouterr().err)
    assert "never updated α" in line and "no hyper-step ran" in line
    assert "--allow-no-search" in line
    assert hyper_steps(out) == {"applied": 0, "skipped": 0}
    assert (out / "alpha.json").is_file()  # the run itself is complete
    if "search.val_fraction=0.99" in extra:
        return
    allowed = tmp_path / "allowed"
    assert main(["search", *tiny(allowed, *extra), "--allow-no-search"]) == 0
    assert "warning: the search never updated α" in capsys.readouterr().err


def test_skipped_hyper_steps_are_counted_with_their_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = AutoBalanceSearch.hyper_step
    calls = {"n": 0}

    def first_skipped(self: AutoBalanceSearch, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            return {"applied": False, "reason": SKIP_REASON}
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AutoBalanceSearch, "hyper_step", first_skipped)
    out = tmp_path / "some"
    args = tiny(out)
    args.remove("--quiet")
    assert main(["search", *args]) == 0
    captured = capsys.readouterr()
    counts = hyper_steps(out)
    assert counts["skipped"] == 1 and counts["applied"] >= 1
    summary = f"{counts['applied']} applied, 1 skipped (1× {SKIP_REASON})"
    assert summary in captured.out  # the console summary
    assert "warning" in captured.err and summary in captured.err


def test_a_search_whose_hyper_steps_were_all_skipped_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def skipped(self: AutoBalanceSearch, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"applied": False, "reason": SKIP_REASON}

    monkeypatch.setattr(AutoBalanceSearch, "hyper_step", skipped)
    out = tmp_path / "skipped"
    assert main(["search", *tiny(out)]) == 1
    counts = hyper_steps(out)
    assert counts["applied"] == 0 and counts["skipped"] >= 1
    line = one_line(capsys.readouterr().err)
    assert f"all {counts['skipped']} hyper-steps were skipped" in line
    assert f"{counts['skipped']}× {SKIP_REASON}" in line


@pytest.mark.parametrize("command", [["train", "--loss", "ce"], ["search"]])
def test_divergence_exits_1_with_its_own_message(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, *tiny(tmp_path / "run", "search.train.lr=1e6")]) == 1
    line = one_line(capsys.readouterr().err)
    assert "training diverged" in line and "lower the learning rate" in line
    assert "error:" not in line and "loss parameters" not in line


def test_divergence_seen_by_the_training_loop_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = set_value_checks(False)  # the loss's own finiteness check off: the loop's fires
    try:
        code = main(["train", "--loss", "ce", *tiny(tmp_path / "run", "search.train.lr=1e6")])
    finally:
        set_value_checks(previous)
    assert code == 1
    line = one_line(capsys.readouterr().err)
    assert "training diverged: non-finite training loss" in line
    with pytest.raises(ValueError, match="NaN or infinite"):
        main(["train", "--loss", "ce", *tiny(tmp_path / "d", "search.train.lr=1e6"), "--debug"])
