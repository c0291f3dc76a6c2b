"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """report.md without its plots (test_cli.py checks them): about 1.5 s less per run."""
    from autobalance.report import write_run_report

    monkeypatch.setattr("autobalance.cli._report", lambda run: write_run_report(run, figures=False))
