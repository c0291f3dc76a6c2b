"""The documentation: the config reference is complete and fresh, every API page resolves.

The site itself is built by ``mkdocs build --strict`` in .ci/run (the ``docs`` extra); these
checks need no mkdocs, so they also run where it is not installed.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import typing
from pathlib import Path
from types import ModuleType

import pytest

from autobalance.config import SearchConfig
from autobalance.experiment import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config", DOCS / "gen_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted config key under ``cls``, nested sections included."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        out.append(prefix + f.name)
        for sub in (hints[f.name], *typing.get_args(hints[f.name])):
            if dataclasses.is_dataclass(sub) and isinstance(sub, type):
                out += _keys(sub, f"{prefix}{f.name}.")
    return out


def test_config_reference_is_generated_from_the_current_code() -> None:
    gen = _generator()
    page = (DOCS / "config.md").read_text(encoding="utf-8")
    assert page == gen.render(), f"docs/config.md is stale: {gen.CHECK_HINT}"


@pytest.mark.parametrize(
    ("cls", "prefix"), [(ExperimentConfig, ""), (SearchConfig, "search.")], ids=["exp", "search"]
)
def test_every_config_field_is_on_the_reference_page(cls: type, prefix: str) -> None:
    page = (DOCS / "config.md").read_text(encoding="utf-8")
    missing = [k for k in _keys(cls, prefix) if f"`{k}`" not in page]
    assert not missing, f"not on docs/config.md: {missing}"


def test_config_rows_carry_type_default_and_ranges() -> None:
    page = (DOCS / "config.md").read_text(encoding="utf-8")
    assert "| `search.train.epochs` | int | `30` | ≥ 1 |" in page
    assert "| `search.val_fraction` | float \\| None | `null` | (0, 1) |" in page
    assert "one of (`neumann`, `cg`, `exact`)" in page


def _documented_objects() -> list[str]:
    names = []
    for page in sorted(DOCS.rglob("*.md")):
        names += re.findall(r"^::: ([\w.]+)", page.read_text(encoding="utf-8"), re.M)
    return names


def test_docs_reference_api_objects() -> None:
    names = _documented_objects()
    assert "autobalance.estimator.AutoBalanceClassifier" in names
    assert "autobalance.losses.parametric" in names and len(names) >= 10


@pytest.mark.parametrize("name", _documented_objects())
def test_every_documented_object_imports(name: str) -> None:
    """What mkdocstrings renders must exist: a module, or an attribute of one."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        assert obj.__doc__, f"{name} has no docstring"
        return
    pytest.fail(f"{name} does not import")


def test_mkdocs_config_names_every_page() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == set(re.findall(r":\s*([\w/]+\.md)\s*$", config, re.M))


def test_readme_layout_names_every_module_and_only_existing_ones() -> None:
    """README.md's "Layout" block lists each module and subpackage of src/autobalance (and the
    top-level folders), and nothing that is gone."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Layout\n\n```\n(.*?)```", readme, re.S | re.M)
    assert match, "README.md has no '## Layout' section with a code block"
    named = set(re.findall(r"^ {0,2}([\w.]+/?)\s", match.group(1), re.M))  # not continuations
    pkg = ROOT / "src" / "autobalance"
    present = {
        p.name + ("/" if p.is_dir() else "")
        for p in pkg.iterdir()
        if not p.name.startswith(("_", ".")) and p.name != "py.typed"
    }
    assert present - named == set(), "modules missing from the README's layout"
    top = {"src/", "autobalance/", "tests/", "benchmarks/", "examples/", "docs/"}
    assert named - present - top == set(), "the README's layout names files that do not exist"
    assert all((ROOT / d).is_dir() for d in top - {"autobalance/"})
