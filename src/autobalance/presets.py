"""YAML presets shipped with the package (``src/autobalance/configs/*.yaml``) and config loading.

A preset is an :class:`~autobalance.experiment.ExperimentConfig` written as YAML; its
``description`` is the one line ``autobalance presets`` prints. A run's configuration is

    preset or file  →  ``--set key.sub=value`` overrides  →  strict parse

so a typo in a key fails before anything runs, naming the valid keys.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from autobalance.config import apply_overrides
from autobalance.experiment import ExperimentConfig

PRESET_PACKAGE = "autobalance"
PRESET_FOLDER = "configs"


def _preset_files() -> dict[str, Any]:
    root = resources.files(PRESET_PACKAGE) / PRESET_FOLDER
    if not root.is_dir():
        return {}
    return {
        f.name[: -len(".yaml")]: f
        for f in sorted(root.iterdir(), key=lambda t: t.name)
        if f.name.endswith(".yaml")
    }


def preset_names() -> tuple[str, ...]:
    """Names of the shipped presets, sorted."""
    return tuple(_preset_files())


def read_yaml_text(text: str, source: str) -> dict[str, Any]:
    """Parse YAML ``text`` into a mapping; a clear ``ValueError`` naming ``source`` otherwise."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{source}: invalid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a config must be a YAML mapping, got {type(data).__name__}")
    return data


def preset_dict(name: str) -> dict[str, Any]:
    """The raw mapping of preset ``name``; ``ValueError`` naming the presets when unknown."""
    files = _preset_files()
    if name not in files:
        raise ValueError(f"Unknown preset '{name}', expected one of {tuple(files)}")
    return read_yaml_text(files[name].read_text(encoding="utf-8"), f"preset '{name}'")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a YAML config file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    return read_yaml_text(p.read_text(encoding="utf-8"), str(p))


def list_presets() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped preset."""
    out = []
    for name in preset_names():
        desc = str(preset_dict(name).get("description", "")).strip().splitlines()
        out.append((name, desc[0] if desc else ""))
    return out


def load_config(
    config: str | Path | None = None,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> ExperimentConfig:
    """Resolve a config: ``config`` file or ``preset`` (neither: the defaults), then overrides."""
    if config is not None and preset is not None:
        raise ValueError("give either a config file or a preset, not both")
    if config is not None:
        data = read_config_file(config)
    elif preset is not None:
        data = preset_dict(preset)
    else:
        data = {}
    data = apply_overrides(data, list(overrides))
    return ExperimentConfig.from_dict(data)


def dump_config(cfg: ExperimentConfig) -> str:
    """YAML text of the fully resolved config (every field, defaults included)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True, width=1000)


__all__ = [
    "dump_config",
    "list_presets",
    "load_config",
    "preset_dict",
    "preset_names",
    "read_config_file",
    "read_yaml_text",
]
