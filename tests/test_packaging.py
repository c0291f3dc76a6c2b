"""Packaging: one version everywhere, the console entries, the licence, extras that are used."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import autobalance
from autobalance.cli import main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def _pyproject_value(key: str) -> str:
    found = re.search(rf'^{key} = "([^"]+)"', PYPROJECT, re.M)
    assert found is not None, key
    return found.group(1)


def _extras() -> dict[str, list[str]]:
    """The [project.optional-dependencies] table as {extra: [distribution names]}."""
    table = PYPROJECT.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras: dict[str, list[str]] = {}
    for name, body in re.findall(r"^(\w+) = \[(.*?)\]$", table, re.M | re.S):
        extras[name] = re.findall(r'"([A-Za-z0-9_.-]+)', body)
    return extras


def test_version_has_one_source() -> None:
    version = _pyproject_value("version")
    assert autobalance.__version__ == importlib.metadata.version("autobalance") == version


def test_version_flag(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"autobalance {autobalance.__version__}"


def test_python_dash_m_entry() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "autobalance", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith(autobalance.__version__)


def test_licence_file_matches_the_metadata() -> None:
    assert _pyproject_value("license") == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    classifiers = PYPROJECT.split("classifiers = [", 1)[1].split("]", 1)[0]
    assert "Programming Language :: Python :: 3.10" in classifiers


# distribution → the module it is imported as, and where its users live
_IMPORTS = {"pillow": "PIL", "scikit-learn": "sklearn", "pyyaml": "yaml"}


def test_every_extra_is_used() -> None:
    """Each optional dependency is imported by the package, the benchmarks or the tests (or is
    a tool: the docs builder, the linters, pytest plugins)."""
    tools = {"pytest", "pytest-timeout", "ruff", "mypy", "mkdocs", "mkdocstrings", "autobalance"}
    sources = "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for folder in ("src", "benchmarks", "tests", "examples")
        for p in (ROOT / folder).rglob("*.py")
    )
    unused = []
    for extra, names in _extras().items():
        for dist in names:
            if dist in tools:
                continue
            module = _IMPORTS.get(dist, dist.replace("-", "_"))
            pattern = rf"^\s*(import|from) {re.escape(module)}\b|importorskip\(\"{module}"
            if not re.search(pattern, sources, re.M):
                unused.append(f"{extra}: {dist}")
    # kornia: the augmentation policies' backend (issue 12) while they are built
    assert [u for u in unused if u != "vision: kornia" and u != "test: kornia"] == []
