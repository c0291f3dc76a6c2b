"""Progress output: tqdm bars per phase advancing per θ-step with the run's ETA, epoch lines
through `logging`, the library's `verbose=` and the CLI's choice of bar or log lines."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import pytest
from cli_helpers import TINY, tiny

import autobalance
from autobalance.cli import main
from autobalance.events import Callback, CallbackList
from autobalance.experiment import build_experiment
from autobalance.losses import ParametricCE
from autobalance.presets import load_config
from autobalance.progress import (
    PROGRESS_LOGGER,
    EpochLogger,
    ProgressBar,
    headline_errors,
    progress_callbacks,
    verbose_callbacks,
)
from autobalance.train import fit


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _last_render(stream: io.StringIO) -> str:
    return stream.getvalue().split("\r")[-1]


def test_headline_puts_validation_before_test() -> None:
    rec = {"test/balanced_error": 0.2, "val/balanced_error": 0.3, "train/balanced_error": 0.1}
    assert headline_errors(rec) == [("val", 0.3), ("test", 0.2)]
    assert headline_errors({"train/balanced_error": 0.1}) == [("train", 0.1)]


def test_cli_choice_depends_on_the_terminal() -> None:
    plain = io.StringIO()
    cbs = progress_callbacks(quiet=False, stream=plain)
    assert len(cbs) == 1 and isinstance(cbs[0], EpochLogger)
    assert progress_callbacks(quiet=True, stream=plain) == []
    assert isinstance(progress_callbacks(quiet=False, stream=FakeTerminal())[0], ProgressBar)
    bar = ProgressBar(True, plain)  # not a terminal and not forced: every event is a no-op
    bar.on_phase_start("train", {"epochs": 3})
    bar.on_batch_end("train", 1, {"steps_per_epoch": 2})
    assert not bar.enabled and bar.bar is None


def test_epoch_lines_go_through_logging(caplog: pytest.LogCaptureFixture) -> None:
    log = EpochLogger()
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    log.on_phase_start("search", {"epochs": 3})
    log.on_hyper_step("search", 5, {"applied": True})
    log.on_hyper_step("search", 10, {"applied": False})  # skipped: not counted
    rec = {
        "phase": "search",
        "train_loss": 0.25,
        "test/balanced_error": 0.125,
        "val/balanced_error": 0.25,
    }
    log.on_epoch_end("search", 1, rec)
    log.on_phase_start("retrain", {"epochs": 2})
    log.on_epoch_end("retrain", 0, {"phase": "retrain", "train_loss": 1.0})
    lines = [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]
    assert re.fullmatch(
        r"\[search\] epoch 2/3  \d\d:\d\d elapsed  val bal\.err 0\.2500  test bal\.err 0\.1250  "
        r"loss 0\.2500  hyper-steps 1",
        lines[0],
    ), lines[0]
    assert lines[1].startswith("[retrain] epoch 1/2  ") and "hyper" not in lines[1]


def _steps(bar: ProgressBar, phase: str, n: int, spe: int) -> None:
    for i in range(n):
        bar.on_batch_end(phase, i + 1, {"epoch": i // spe, "steps_per_epoch": spe})


def test_bar_per_phase_advances_per_step_with_the_run_eta() -> None:
    term = FakeTerminal()
    bar = ProgressBar(True, term)
    bar.set_plan({"search": 2 * 5, "retrain": 2 * 6})
    bar.on_phase_start("search", {"epochs": 2, "start_epoch": 0})
    _steps(bar, "search", 3, 5)
    assert bar.bar.n == 3 and bar.bar.total == 10  # per θ-step, not per epoch
    eta = bar.run_eta()
    assert eta is not None and eta >= 0  # 19 steps left at the rate so far
    bar.on_hyper_step("search", 3, {"applied": True})
    _steps(bar, "search", 2, 5)
    bar.on_epoch_end("search", 0, {"phase": "warmup", "train_loss": 0.5})
    _steps(bar, "search", 5, 5)
    rec = {"phase": "search", "train_loss": 0.4, "val/balanced_error": 0.3}
    bar.on_epoch_end("search", 1, {**rec, "test/balanced_error": 0.2})
    bar.on_phase_end("search", {})
    final = _last_render(term)
    assert final.startswith("search: 100%") and "10/10" in final
    assert final.index("val bal.err=0.300") < final.index("test bal.err=0.200")
    assert "epoch=2/2" in final and "hyper=1" in final and "run ETA=" in final
    # the retrain bar: its own θ-steps from 0, no hyper-step count carried over
    bar.on_phase_start("retrain", {"epochs": 2, "start_epoch": 0})
    _steps(bar, "retrain", 6, 6)
    assert bar.bar.n == 6 and bar.bar.total == 12
    bar.on_epoch_end("retrain", 0, {"phase": "retrain", "train_loss": 0.3})
    bar.on_phase_end("retrain", {})
    final = _last_render(term)
    assert final.startswith("retrain:  50%") and "6/12" in final and "hyper" not in final


def test_the_check_phase_gets_its_own_bar_and_the_search_counts_as_done() -> None:
    """The guard's from-scratch check starts before the search's end event: its bar closes the
    search's (all θ-steps done) and the run ETA counts the search as finished."""
    term = FakeTerminal()
    bar = ProgressBar(True, term)
    bar.set_plan({"search": 10, "check": 10, "retrain": 12})
    bar.on_phase_start("search", {"epochs": 2, "start_epoch": 0})
    _steps(bar, "search", 10, 5)
    bar.on_phase_start("check", {"epochs": 2})
    assert "search" in bar._finished and bar.bar.total == 10 and bar.bar.n == 0
    _steps(bar, "check", 4, 5)
    eta = bar.run_eta()
    assert eta is not None and eta > 0
    bar.on_phase_end("check", {"val_score": 0.3, "reference_val_score": 0.3, "paired_se": 0.0})
    bar.on_phase_end("search", {})
    assert bar.bar is None and {"search", "check"} <= bar._finished
    assert "check: " in term.getvalue()


def test_check_lines_say_the_outcome_or_why_it_was_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = EpochLogger()
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    log.on_phase_start("check", {"epochs": 4})
    info = {"val_score": 0.25, "reference_val_score": 0.3, "paired_se": 0.01, "passed": True}
    log.on_phase_end("check", info)
    log.on_phase_end("check", {**info, "passed": False})
    log.on_phase_end("check", {"skipped": "fell back"})
    log.on_phase_end("search", {})  # other phases' ends print nothing
    lines = [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]
    assert len(lines) == 4
    assert lines[0].startswith("[check] training θ from scratch with α* on S_T (4 epochs)")
    assert re.fullmatch(
        r"\[check\] θ from scratch with α\*  \d\d:\d\d elapsed  val score 0\.2500  "
        r"reference 0\.3000  paired SE 0\.0100  α\* kept",
        lines[1],
    ), lines[1]
    assert lines[2].endswith("α* not better: falls back")
    assert lines[3] == "[check] skipped (fell back)"


def test_bar_catches_up_without_step_events_and_resumes() -> None:
    term = FakeTerminal()
    bar = ProgressBar(True, term)
    bar.set_plan({"train": 3 * 4})
    bar.on_phase_start("train", {"epochs": 3, "start_epoch": 1})  # a resumed phase
    assert bar.bar.n == 4
    bar.on_epoch_end("train", 1, {"train_loss": 1.0})
    assert bar.bar.n == 8
    bar.on_phase_end("train", {})


class _Count(Callback):
    def __init__(self) -> None:
        self.steps: list[tuple[str, int, dict[str, Any]]] = []

    def on_batch_end(self, phase: str, step: int, info: dict[str, Any]) -> None:
        self.steps.append((phase, step, info))


def test_training_loop_emits_one_event_per_step() -> None:
    cfg = load_config(preset="gaussians-cpu", overrides=TINY)
    exp = build_experiment(cfg)
    count = _Count()
    fit(
        exp.model_fn(),
        ParametricCE(exp.train.num_classes),  # plain CE at its init
        exp.train,
        cfg.search.train,
        callbacks=CallbackList([count]),
    )
    spe = cfg.search.train.steps_per_epoch(len(exp.train))
    assert len(count.steps) == cfg.search.train.epochs * spe
    assert [s for _, s, _ in count.steps] == list(range(1, len(count.steps) + 1))
    assert all(i["steps_per_epoch"] == spe for _, _, i in count.steps)


def test_library_verbose(capsys: pytest.CaptureFixture[str], caplog) -> None:
    cfg = load_config(preset="gaussians-cpu", overrides=TINY)
    exp = build_experiment(cfg)
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2"):
        verbose_callbacks(3)
    autobalance.search(cfg.search, exp.model_fn, exp.train, verbose=0)
    assert capsys.readouterr().err == ""
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    autobalance.search(cfg.search, exp.model_fn, exp.train, test_data=exp.test, verbose=2)
    err = capsys.readouterr().err
    assert re.search(r"search: 100%\|.*\| (\d+)/\1 ", err)  # per-step bars, completed
    assert re.search(r"retrain: 100%\|.*\| (\d+)/\1 ", err)
    assert re.search(r"check: 100%\|.*\| (\d+)/\1 ", err)  # the guard's from-scratch check
    lines = [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]
    assert len(lines) == 6 and lines[-1].startswith("[retrain] epoch 2/2")
    assert lines[0].startswith("[warmup] epoch 1/2") and "val bal.err" in lines[0]
    assert lines[2].startswith("[check] training θ from scratch") and "[check] θ" in lines[3]


def test_cli_logs_one_line_per_epoch_off_a_terminal(tmp_path, capsys) -> None:
    args = [a for a in tiny(tmp_path / "run") if a != "--quiet"]
    assert main(["train", "--loss", "ce", *args]) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("[train] epoch")]
    assert [x.split("  ")[0] for x in lines] == ["[train] epoch 1/2", "[train] epoch 2/2"]
    assert all(" elapsed  test bal.err " in x for x in lines)
