"""Atomic checkpoints and safe loading.

A checkpoint is written to a temporary file in the target directory, flushed and fsync'ed, then
renamed over the target, so a kill at any point leaves either the old or the new file, never a
torn one. Loading uses ``torch.load(weights_only=True)``: checkpoints hold only tensors and plain
Python containers, never pickled objects.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(
    path: str | os.PathLike[str], binary: bool, write: Callable[[IO[Any]], object]
) -> Path:
    """Write through ``write(fh)`` to a temp file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        fh: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _umask_mode())  # mkstemp makes 0600; follow the umask like open() does
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``obj`` with ``torch.save`` to ``path`` atomically (temp file + fsync + rename)."""
    return _atomic_write(path, True, lambda fh: torch.save(obj, fh))


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return _atomic_write(path, False, lambda fh: fh.write(text))


def safe_load(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``; a clear error if it is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU, numpy, python) as weights_only-loadable data."""
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
        },
        "python": torch.tensor(
            [x for x in random.getstate()[1]], dtype=torch.int64
        ),  # Mersenne state words
        "python_version": int(random.getstate()[0]),
        "python_gauss": random.getstate()[2],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the global RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    words = tuple(int(x) for x in state["python"].tolist())
    random.setstate((state["python_version"], words, state["python_gauss"]))


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """``last.pt`` in ``directory`` if it exists."""
    p = Path(directory) / "last.pt"
    return p if p.is_file() else None


__all__ = [
    "atomic_save",
    "atomic_write_text",
    "latest_checkpoint",
    "rng_state",
    "safe_load",
    "set_rng_state",
]
