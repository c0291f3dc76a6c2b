"""Progress bars and epoch logs of the training and search loops (``autobalance.events``).

- :class:`ProgressBar`: one ``tqdm.auto`` bar per phase (a terminal or a notebook widget),
  advancing per θ-step, with the epoch, the training loss, the validation then the test
  balanced error, the hyper-steps of the phase and the ETA of the whole run;
- :class:`EpochLogger`: one ``logging`` record per epoch on the ``autobalance.progress``
  logger: ``[search] epoch 3/40  00:12 elapsed  val bal.err 0.4123  test bal.err 0.4000 …``;
- :func:`progress_callbacks`: the CLI's choice (a bar on a terminal, log lines otherwise);
  :func:`verbose_callbacks`: the library's ``verbose=`` (0 silent, 1 bars, 2 bars and logs);
- :func:`search_plan` / :func:`plan_progress`: the θ-steps of every phase, for the run's ETA.

The whole-run ETA is ``remaining θ-steps × elapsed / θ-steps done`` (this process's steps).
The search guard's from-scratch check (a training of θ on S_T with α* frozen, after the
search's last epoch, before the search phase's end event) is its own phase, ``check``: it
has a bar and a start and an end line, and no epoch records; when it is skipped (the search
fell back, or α never moved) only its end is emitted, with ``skipped``. The guard's
reference θ trains one epoch per search epoch without step events, so its time is folded
into the rate of the search steps.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from autobalance.events import Callback

PROGRESS_LOGGER = "autobalance.progress"
_CONSOLE_TAG = "_autobalance_console"
_ETA_EVERY_S = 1.0  # the run-ETA postfix is refreshed at most this often


def _interval(seconds: float) -> str:
    from tqdm import tqdm

    return str(tqdm.format_interval(max(0.0, seconds)))


def headline_errors(record: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(split, balanced error) of an epoch record: validation first, then test; train only
    when neither was evaluated."""
    out = [
        (split, float(v))
        for split in ("val", "test")
        if isinstance(v := record.get(f"{split}/balanced_error"), float | int)
    ]
    if not out and isinstance(v := record.get("train/balanced_error"), float | int):
        out.append(("train", float(v)))
    return out


def _is_terminal(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class _StderrHandler(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (a test's capture, a notebook's stream),
    through ``tqdm.write`` so that an open progress bar is redrawn below the line."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging's contract: report, never raise
            self.handleError(record)


def console_logging(name: str = PROGRESS_LOGGER, level: int = logging.INFO) -> logging.Handler:
    """Show logger ``name``'s records (default: the epoch lines) from ``level`` up on stderr,
    as bare lines.

    Idempotent (one handler, tagged, on that logger); the logger's level is lowered to
    ``level`` if needed. Records still propagate to the caller's handlers. For applications
    (the CLI) and for ``verbose=2`` when the caller has configured no logging; otherwise
    configure ``logging`` as usual. The library's warnings (``autobalance``) are left alone.
    """
    logger = logging.getLogger(name)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    for h in logger.handlers:
        if getattr(h, _CONSOLE_TAG, False):
            return h
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    setattr(handler, _CONSOLE_TAG, True)
    logger.addHandler(handler)
    return handler


class ProgressBar(Callback):
    """One ``tqdm.auto`` bar per phase, advancing per θ-step (``on_batch_end``).

    The postfix holds ``epoch i/N``, the training loss, the validation then the test balanced
    error of the last evaluated epoch, the hyper-steps on α applied in this phase (search only:
    the retrain bar starts its own count) and ``run ETA`` once :meth:`set_plan` gave the θ-steps
    of every phase. Without per-step events the bar catches up at each epoch end.

    Args:
        enabled: draw at all.
        stream: where a terminal bar is drawn (default stderr).
        force: draw even when ``stream`` is not a terminal (the library's ``verbose=1``;
            ``tqdm.auto`` draws a widget in a notebook). Otherwise a non-terminal disables it.
    """

    def __init__(
        self, enabled: bool = True, stream: TextIO | None = None, *, force: bool = False
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and (force or _is_terminal(self.stream))
        self.bar: Any = None
        self.hyper = 0
        self.plan: dict[str, int] = {}
        self._phase = ""
        self._epochs = 0
        self._spe = 0  # θ-steps per epoch of the current phase (0: unknown yet)
        self._finished: set[str] = set()
        self._steps = 0  # θ-steps this process has seen (the ETA's rate)
        self._t0: float | None = None
        self._eta_at = 0.0
        self._post: dict[str, Any] = {}

    def set_plan(self, steps: Mapping[str, int]) -> None:
        """Total θ-steps of each phase of the run (:func:`search_plan`), for the run's ETA."""
        self.plan = {k: int(v) for k, v in steps.items()}

    def on_phase_start(self, phase: str, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        if self.bar is not None:  # the check starts after the search's last θ-step
            self.on_phase_end(self._phase, {})
        self._phase, self._epochs, self.hyper = phase, int(info.get("epochs", 0)), 0
        total = self.plan.get(phase)
        self._spe = total // self._epochs if total and self._epochs else 0
        self._post = {}
        self.bar = tqdm(
            total=total,
            initial=int(info.get("start_epoch", 0)) * self._spe,
            desc=phase,
            unit="step",
            file=self.stream,
            leave=True,
            dynamic_ncols=True,
        )

    def on_batch_end(self, phase: str, step: int, info: dict[str, Any]) -> None:
        if self.bar is None:
            return
        spe = int(info.get("steps_per_epoch") or 0)
        if spe and spe != self._spe:  # the loop's own count wins over the plan's estimate
            self._spe = spe
            self.bar.total = spe * self._epochs
        if self._t0 is None:
            self._t0 = time.perf_counter()
        self._steps += 1
        self.bar.update(1)
        now = time.perf_counter()
        if now - self._eta_at >= _ETA_EVERY_S:
            self._eta_at = now
            self._show()

    def on_epoch_end(self, phase: str, epoch: int, record: dict[str, Any]) -> None:
        if self.bar is None:
            return
        if self._spe and self.bar.n < (epoch + 1) * self._spe:  # no step events: catch up
            self.bar.update((epoch + 1) * self._spe - self.bar.n)
        self._post = {"epoch": f"{epoch + 1}/{self._epochs}"}
        if isinstance(record.get("train_loss"), float | int):
            self._post["loss"] = f"{record['train_loss']:.3f}"
        for split, err in headline_errors(record):
            self._post[f"{split} bal.err"] = f"{err:.3f}"
        if self._phase == "search":
            self._post["hyper"] = self.hyper
        self._show()

    def on_hyper_step(self, phase: str, step: int, info: dict[str, Any]) -> None:
        self.hyper += int(bool(info.get("applied", True)))

    def on_phase_end(self, phase: str, info: dict[str, Any]) -> None:
        if self.bar is not None:
            self._show()
            self.bar.close()
            self.bar = None
        self._finished.add(phase)

    def run_eta(self) -> float | None:
        """Seconds left in the whole run: remaining θ-steps of the plan × seconds per θ-step
        so far; None before the first step or without a plan."""
        if not self.plan or self._t0 is None or not self._steps or self.bar is None:
            return None
        done = sum(n for p, n in self.plan.items() if p in self._finished)
        done += int(self.bar.n)
        remaining = max(0, sum(self.plan.values()) - done)
        return remaining * (time.perf_counter() - self._t0) / self._steps

    def _show(self) -> None:
        post = dict(self._post)
        eta = self.run_eta()
        if eta is not None and len(self.plan) > 1:
            post["run ETA"] = _interval(eta)
        self.bar.set_postfix(post, refresh=False)


class EpochLogger(Callback):
    """One INFO record per ``every`` epochs on the ``autobalance.progress`` logger::

        [search] epoch 3/40  00:12 elapsed  val bal.err 0.4123  test bal.err 0.4000  loss 0.5321
        hyper-steps 12                                                  (one line in the log)

    ``epoch i/N`` counts the epochs of the phase (warm-up epochs belong to the search's N),
    the time is the wall time since the first phase began, the validation metric comes before
    the test metric, and ``hyper-steps`` (search epochs only) counts those applied this phase.
    """

    def __init__(self, every: int = 1, logger: logging.Logger | None = None) -> None:
        self.every = max(1, int(every))
        self.log = logger if logger is not None else logging.getLogger(PROGRESS_LOGGER)
        self.hyper = 0
        self.epochs = 0
        self.phase = ""
        self._t0: float | None = None

    def on_phase_start(self, phase: str, info: dict[str, Any]) -> None:
        self.phase, self.epochs, self.hyper = phase, int(info.get("epochs", 0)), 0
        if self._t0 is None:
            self._t0 = time.perf_counter()
        if phase == "check":
            self.log.info(
                f"[check] training θ from scratch with α* on S_T ({self.epochs} epochs): "
                "the guard keeps α* only if it beats the init loss's training"
            )

    def on_hyper_step(self, phase: str, step: int, info: dict[str, Any]) -> None:
        self.hyper += int(bool(info.get("applied", True)))

    def _elapsed(self) -> str:
        return _interval(0.0 if self._t0 is None else time.perf_counter() - self._t0)

    def on_phase_end(self, phase: str, info: dict[str, Any]) -> None:
        """The guard's from-scratch check has no epoch records: one line for its outcome."""
        if phase != "check":
            return
        if "skipped" in info:
            self.log.info(f"[check] skipped ({info['skipped']})")
            return
        verdict = "α* kept" if info.get("passed") else "α* not better: falls back"
        self.log.info(
            f"[check] θ from scratch with α*  {self._elapsed()} elapsed  "
            f"val score {info['val_score']:.4f}  reference {info['reference_val_score']:.4f}  "
            f"paired SE {info['paired_se']:.4f}  {verdict}"
        )

    def line(self, phase: str, epoch: int, record: Mapping[str, Any]) -> str:
        """The text of one epoch's record."""
        of = f"/{self.epochs}" if self.epochs else ""
        parts = [
            f"[{record.get('phase', phase)}] epoch {epoch + 1}{of}",
            f"{self._elapsed()} elapsed",
            *(f"{split} bal.err {err:.4f}" for split, err in headline_errors(record)),
        ]
        if isinstance(record.get("train_loss"), float | int):
            parts.append(f"loss {record['train_loss']:.4f}")
        if (self.phase or phase) == "search":
            parts.append(f"hyper-steps {self.hyper}")
        return "  ".join(parts)

    def on_epoch_end(self, phase: str, epoch: int, record: dict[str, Any]) -> None:
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            self.log.info(self.line(phase, epoch, record))


def progress_callbacks(quiet: bool, stream: TextIO | None = None) -> list[Callback]:
    """The CLI's progress output: a :class:`ProgressBar` when ``stream`` (default stderr) is a
    terminal, else one :class:`EpochLogger` line per epoch on stderr
    (:func:`console_logging`); nothing when ``quiet``."""
    if quiet:
        return []
    s = stream if stream is not None else sys.stderr
    if _is_terminal(s):
        return [ProgressBar(True, s)]
    console_logging()
    return [EpochLogger()]


def verbose_callbacks(verbose: int, stream: TextIO | None = None) -> list[Callback]:
    """The library's ``verbose=``: 0 nothing, 1 a :class:`ProgressBar` per phase (drawn in a
    notebook or any stream), 2 the bars and an :class:`EpochLogger` line per epoch (shown on
    stderr by :func:`console_logging` when no logging is configured)."""
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    out: list[Callback] = []
    if verbose >= 1:
        out.append(ProgressBar(True, stream, force=True))
    if verbose >= 2:
        logger = logging.getLogger(PROGRESS_LOGGER)
        if not logger.hasHandlers():  # no logging configured: show the lines on stderr
            console_logging()
        elif logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        out.append(EpochLogger(logger=logger))
    return out


def search_plan(engine: Any) -> dict[str, int]:
    """θ-steps of each phase of an :class:`~autobalance.search.AutoBalanceSearch`: the search
    (warm-up included) on S_T, the guard's from-scratch check on S_T when it is on (a skipped
    check counts as done when its end is emitted) and, when it retrains, the retrain on S."""
    cfg = engine.cfg
    search_steps = cfg.train.epochs * cfg.train.steps_per_epoch(len(engine.s_train))
    plan = {"search": search_steps}
    g = cfg.guard
    if g.enabled and g.reference and g.check_from_scratch:
        plan["check"] = search_steps
    if cfg.retrain:
        r = cfg.retrain_config()
        plan["retrain"] = r.epochs * r.steps_per_epoch(len(engine.full))
    return plan


def plan_progress(callbacks: Iterable[Callback], plan: Mapping[str, int]) -> None:
    """Give ``plan`` (θ-steps per phase) to the callbacks that take one (``set_plan``)."""
    for cb in callbacks:
        setter = getattr(cb, "set_plan", None)
        if callable(setter):
            setter(plan)


def attach_progress(engine: Any, verbose: int) -> None:
    """Add :func:`verbose_callbacks` to an engine's callbacks, with its plan."""
    cbs = verbose_callbacks(verbose)
    if not cbs:
        return
    plan_progress(cbs, search_plan(engine))
    engine.callbacks.callbacks.extend(cbs)


__all__ = [
    "PROGRESS_LOGGER",
    "EpochLogger",
    "ProgressBar",
    "attach_progress",
    "console_logging",
    "headline_errors",
    "plan_progress",
    "progress_callbacks",
    "search_plan",
    "verbose_callbacks",
]
