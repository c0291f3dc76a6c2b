"""The README's "A CSV file → a report" steps, run as written on a long-tailed CSV file.

The block after the ``csv-steps`` marker is read from README.md. Its set-up lines (the virtual
environment and the two ``pip install`` commands) are checked, not run: the test runs inside an
environment where the package is already installed that way, and pip must not change it
mid-test. Every ``autobalance`` line runs as written, through ``autobalance.cli.main`` (the
console script's function), in a folder holding ``my.csv``, with one torch thread.
"""

from __future__ import annotations

import csv
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from autobalance.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- csv-steps:"


def readme_steps() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(MARKER)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block is not None, "no ```bash block after the csv-steps marker"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def write_my_csv(path: Path) -> None:
    """3 classes of 150 / 40 / 10 rows; two numeric columns and a text column."""
    rng = np.random.default_rng(0)
    rows = []
    for k, (name, n) in enumerate((("common", 150), ("uncommon", 40), ("rare", 10))):
        centre = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])[k]
        for (a, b), city in zip(rng.normal(centre, 1.0, (n, 2)), rng.choice(["n", "s"], n)):
            rows.append([f"{a:.3f}", f"{b:.3f}", city, name])
    rng.shuffle(rows)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x1", "x2", "city", "label"])
        writer.writerows(rows)


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_readme_setup_lines_install_this_package_with_plots() -> None:
    steps = readme_steps()
    assert steps[0].startswith("python3 -m venv .venv && . .venv/bin/activate")
    assert 'pip install ".[plots]"' in steps[1] and "pip install torch" in steps[1]
    assert all(s.startswith("autobalance ") for s in steps[2:])


@pytest.mark.slow
def test_readme_csv_steps_give_a_report(tmp_path: Path, monkeypatch, one_thread) -> None:
    monkeypatch.chdir(tmp_path)
    write_my_csv(tmp_path / "my.csv")
    for step in readme_steps()[2:]:
        argv = shlex.split(step)
        assert main(argv[1:]) == 0, step
    report = (tmp_path / "runs" / "my-csv" / "report.md").read_text(encoding="utf-8")
    assert "rare" in report and "uncommon" in report  # the per-class table names them
    assert "few-shot" in report
    assert (tmp_path / "runs" / "my-csv-la" / "report.md").is_file()
