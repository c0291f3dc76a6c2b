"""Observer interface of the training and search loops.

The loops never print, plot or save by themselves: they emit events, and callbacks (progress
bars, ``metrics.jsonl`` writers, checkpointers, plots) subscribe to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Callback:
    """Base class: override the events you need. ``info`` dicts are plain JSON-ready data."""

    def on_phase_start(self, phase: str, info: dict[str, Any]) -> None:
        """A phase (``warmup``, ``search``, ``retrain``, ``train``) begins. ``check``: the
        search guard's from-scratch training with α* (after the search's last epoch, before
        its end event; θ-step events only, no epoch records)."""

    def on_epoch_end(self, phase: str, epoch: int, record: dict[str, Any]) -> None:
        """An epoch ended; ``record`` holds its losses, α and metrics."""

    def on_hyper_step(self, phase: str, step: int, info: dict[str, Any]) -> None:
        """A hyper-step on α was taken (or skipped, with the reason in ``info``)."""

    def on_batch_end(self, phase: str, step: int, info: dict[str, Any]) -> None:
        """A θ-step ended (progress bars; keep handlers cheap). ``step`` is the phase's global
        θ-step (1-based); ``info`` holds ``epoch`` and ``steps_per_epoch`` (plain ints)."""

    def on_phase_end(self, phase: str, info: dict[str, Any]) -> None:
        """A phase ended. ``check``'s ``info``: ``val_score``, ``reference_val_score``,
        ``paired_se``, ``allowance`` and ``passed``, or ``skipped`` (the reason) alone."""


class CallbackList(Callback):
    """Fans every event out to several callbacks, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = [c for c in callbacks if c is not None]

    def on_phase_start(self, phase: str, info: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_phase_start(phase, info)

    def on_epoch_end(self, phase: str, epoch: int, record: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_epoch_end(phase, epoch, record)

    def on_hyper_step(self, phase: str, step: int, info: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_hyper_step(phase, step, info)

    def on_batch_end(self, phase: str, step: int, info: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_batch_end(phase, step, info)

    def on_phase_end(self, phase: str, info: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_phase_end(phase, info)


__all__ = ["Callback", "CallbackList"]
