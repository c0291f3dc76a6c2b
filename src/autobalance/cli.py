"""The ``autobalance`` command: demo, search, train, evaluate, compare, presets, reproduce.

Every command reads an :class:`~autobalance.experiment.ExperimentConfig` (``--config FILE`` or
``--preset NAME``, then ``--set key.sub=value`` overrides), runs through the library API and
writes a run directory (``autobalance.runs``). Every input is checked before the run directory
is created. Errors in the input (a bad config key or value, a missing data path, an unknown
preset or device, an ``--out`` that cannot be written, a full disk) print one line on stderr and
exit with status 2; a diverged training, or a search that never updated α (unless
``--allow-no-search``), exits with status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from autobalance.config import apply_overrides
from autobalance.experiment import (
    Experiment,
    ExperimentConfig,
    baseline_loss,
    build_experiment,
    loss_counts,
    resolve_device,
)
from autobalance.presets import dump_config, list_presets, load_config, preset_dict
from autobalance.runs import SUMMARY, RunDir, config_diff, default_run_path, progress_callbacks

DEMO_PRESET = "digits-demo"
DEMO_SEEDS = [10, 11, 12, 13, 14]  # not the seeds 0-6 its settings were chosen on
DEMO_QUICK = ("search.train.epochs=4",)
EXIT_USAGE = 2
EXIT_FAILURE = 1
DEVICE_TYPES = ("cpu", "cuda", "mps")
CONFIG_FLAGS = ("--preset", "--config", "--set", "--seed", "--data-dir")
MAX_DIFF_VALUES = 4  # keys shown with both values in the "config differs" error


class CLIError(ValueError):
    """A user-facing error: printed as one line, exit status 2."""


class NoSearchError(RuntimeError):
    """The search finished without updating α once: exit status 1 (see ``--allow-no-search``)."""


# ---------------------------------------------------------------------- config helpers


def _check_overrides(items: Sequence[str]) -> None:
    """A ``--set`` value that is not valid YAML, named in one line (not a YAML traceback)."""
    for item in items:
        if "=" not in item:
            continue  # apply_overrides says how an override must look
        key, raw = item.split("=", 1)
        try:
            yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise CLIError(
                f"--set {item}: the value of {key.strip()} is not valid YAML ({problem}); "
                "quote a string, close a list [a, b] or a mapping {k: v}"
            ) from None


def _check_device(device: str) -> None:
    """Refuse a device torch cannot parse, or one this machine does not have."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise CLIError(
            f"unknown device '{device}'; expected cpu, cuda, cuda:N, mps or auto"
        ) from None
    if dev.type not in DEVICE_TYPES:
        raise CLIError(
            f"device '{device}' is not supported; expected cpu, cuda, cuda:N, mps or auto"
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "no CUDA device found" if torch.version.cuda else "torch was built without CUDA"
            raise CLIError(f"device '{device}' is not available ({why}); use --device cpu or auto")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise CLIError(
                f"device '{device}' does not exist: this machine has {count} CUDA device(s)"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise CLIError(f"device '{device}' is not available here; use --device cpu or auto")


def _resolve(args: argparse.Namespace, base: dict[str, Any] | None = None) -> ExperimentConfig:
    """The ``--config``/``--preset`` (or ``base``) config with ``--set``/``--seed``/``--device``,
    parsed strictly, its device resolved and checked to exist."""
    overrides = list(args.set or [])
    _check_overrides(overrides)
    if getattr(args, "seed", None) is not None:
        overrides.append(f"search.seed={args.seed}")
    if getattr(args, "device", None) is not None:
        overrides.append(f"search.device={args.device}")
    if getattr(args, "data_dir", None) is not None:
        overrides.append(f"dataset.data_dir={args.data_dir}")
    if base is not None:
        cfg = ExperimentConfig.from_dict(apply_overrides(base, overrides))
    else:
        cfg = load_config(args.config, args.preset, overrides)
    cfg.search.device = resolve_device(cfg.search.device)
    _check_device(cfg.search.device)
    return cfg


def _config_given(args: argparse.Namespace) -> bool:
    """Whether any of ``--preset``/``--config``/``--set``/``--seed``/``--data-dir`` was given."""
    return bool(
        args.config is not None
        or args.preset is not None
        or args.set
        or args.seed is not None
        or args.data_dir is not None
    )


def _resume_config(args: argparse.Namespace) -> tuple[RunDir, ExperimentConfig]:
    """The run to continue and its own resolved config; nothing is written.

    Without config flags the run's ``config.yaml`` is used as it is (``--device`` may move it to
    another device). With ``--preset``/``--config``/``--set``/``--seed`` the config they resolve
    to (``--set``/``--seed`` on top of the run's own config, unless a preset or file is named)
    must equal the run's: a resumed run never changes its configuration half way.
    """
    if not args.out:
        raise CLIError("--resume needs --out RUN_DIR (the run to continue)")
    run = RunDir.open_for_resume(args.out)
    own = run.read_config()
    if not _config_given(args):
        return run, _resolve(args, own.to_dict())
    fresh = args.config is not None or args.preset is not None
    cfg = _resolve(args, None if fresh else own.to_dict())
    diff = config_diff(own.to_dict(), cfg.to_dict(), ignore=("search.device",))
    if diff:
        old_d, new_d = own.to_dict(), cfg.to_dict()
        shown = ", ".join(
            f"{k} (run: {_value_at(old_d, k)}, given: {_value_at(new_d, k)})"
            if i < MAX_DIFF_VALUES
            else k
            for i, k in enumerate(diff)
        )
        raise CLIError(
            f"--resume: the given config differs from {run.file('config.yaml')} in "
            f"{len(diff)} key(s): {shown}; run `autobalance search --resume --out {run.path}` "
            f"without {'/'.join(CONFIG_FLAGS)} to continue with the run's own config, or start "
            "a new run with another --out"
        )
    return run, cfg


def _value_at(data: dict[str, Any], dotted: str) -> str:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return "unset"
        node = node[part]
    return json.dumps(node, default=str)


def _out_path(args: argparse.Namespace, cfg: ExperimentConfig, method: str) -> Path:
    """``--out``, or a fresh ``runs/<name>-<method>-<time>``, checked to be creatable (nothing
    is written: the folder is made by :func:`_create_run` once every input is checked)."""
    out = Path(args.out) if args.out else default_run_path(cfg.name, method)
    return RunDir.check_new(out).path


def _is_main() -> bool:
    """Not a non-zero ``torchrun`` rank (``RANK`` unset or 0)."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def _create_run(args: argparse.Namespace, cfg: ExperimentConfig, out: Path) -> RunDir:
    """Make the (checked) run directory and write its ``config.yaml`` and ``env.json``."""
    args.run_path = out
    run = RunDir.create(out)
    run.write_config(cfg)
    run.write_env(seed=cfg.search.seed, device=cfg.search.device, argv=_argv(args))
    return run


def _continue_run(args: argparse.Namespace, run: RunDir, cfg: ExperimentConfig) -> RunDir:
    """Reopen a checked run for ``--resume``: its config.yaml is kept (rewritten only when
    ``--device`` moved it), env.json gains a ``resumed`` record."""
    args.run_path = run.path
    run = RunDir.create(run.path, resume=True)
    if run.read_config().search.device != cfg.search.device:
        run.write_config(cfg)
    run.record_resume(device=cfg.search.device, argv=_argv(args))
    return run


def _check_search(cfg: ExperimentConfig, exp: Experiment) -> None:
    """Build the search engine once (split, search space, objective) and discard it, so that
    its input errors come before the run directory exists."""
    from autobalance.runs import search_engine

    search_engine(cfg, exp)


def _argv(args: argparse.Namespace) -> list[str]:
    return ["autobalance", *getattr(args, "argv", [])]


def _say(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text, flush=True)


def _headline(summary: dict[str, Any]) -> str:
    t = summary["test"]
    parts = [f"balanced error {_f(t.get('balanced_error'))}", f"error {_f(t.get('error'))}"]
    if "deo" in t:
        parts += [f"worst group {_f(t.get('worst_group_error'))}", f"DEO {_f(t.get('deo'))}"]
    return ", ".join(parts) + f" ({summary['seconds']:.1f} s)"


def _f(v: Any) -> str:
    from autobalance.report.tables import fmt

    return fmt(v, 4)


def _report(run: RunDir) -> None:
    from autobalance.report import write_run_report

    write_run_report(run)


def _hyper_step_summary(summary: dict[str, Any], run: RunDir) -> tuple[int, int, str]:
    """(applied, skipped, the skipped hyper-steps' reasons with their counts, or "")."""
    counts = summary.get("hyper_steps") or {}
    applied, skipped = int(counts.get("applied", 0)), int(counts.get("skipped", 0))
    reasons = Counter(
        " ".join(str(h.get("reason") or "no reason recorded").split())
        for h in run.hyper_steps()
        if not h.get("applied", True)
    )
    return applied, skipped, "; ".join(f"{n}× {r}" for r, n in reasons.most_common())


def _no_search_reason(cfg: ExperimentConfig, skipped: int, why: str) -> str:
    if skipped:
        return f"all {skipped} hyper-steps were skipped: {why}"
    h = cfg.search.hyper
    every = f"hyper.per_epoch={h.per_epoch}" if h.per_epoch else f"hyper.interval={h.interval}"
    return (
        f"no hyper-step ran: the search epochs had fewer θ-steps than {every} asks for (a "
        "large search.train.batch_size or search.val_fraction leaves few θ-steps per epoch); "
        "lower search.hyper.interval, set search.hyper.per_epoch or train more epochs"
    )


# ---------------------------------------------------------------------- commands


def cmd_search(args: argparse.Namespace) -> int:
    """``autobalance search``: Algorithm 1 into a run directory.

    Every input (config, device, ``--out``, data, model, the engine's split) is checked before
    anything is written; ``--resume`` continues the run's own config and refuses a different
    one. Exit status 1 when no hyper-step updated α, unless ``--allow-no-search``.
    """
    from autobalance import distributed
    from autobalance.runs import run_search

    resumed: RunDir | None = None
    if args.resume:
        resumed, cfg = _resume_config(args)
        out = resumed.path
    else:
        cfg = _resolve(args)
        out = _out_path(args, cfg, "autobalance") if _is_main() else Path()
    # under torchrun: join the process group; rank 0's run directory is everyone's
    dinfo, cfg.search.device = distributed.init_from_env(cfg.search.device)
    out = Path(str(distributed.broadcast_object(str(out))))
    exp = build_experiment(cfg)
    _check_search(cfg, exp)
    if not dinfo.main:  # another rank: the same search, no files of its own
        from autobalance.runs import CHECKPOINTS, search_engine

        search_engine(cfg, exp, checkpoint_dir=out / CHECKPOINTS).run(resume=args.resume)
        return 0
    # every input checked: only now is anything written; a resume takes the run's lock first,
    # so that a second process is refused before it touches config.yaml or env.json
    with contextlib.ExitStack() as stack:
        if resumed is not None:
            stack.enter_context(resumed.lock())
        run = _create_run(args, cfg, out) if resumed is None else _continue_run(args, resumed, cfg)
        _say(
            args, f"search: {cfg.name} on {cfg.dataset.name} ({len(exp.train)} train) → {run.path}"
        )
        summary = run_search(
            cfg, exp, run, resume=args.resume, callbacks=progress_callbacks(args.quiet)
        )
    _report(run)
    from autobalance.report.markdown import guard_sentence

    guard = summary.get("guard") or {}
    if guard.get("would_fall_back") or guard.get("rollbacks"):
        # said even with --quiet: a fallback or rollback changes what the run means
        print(f"autobalance: warning: {guard_sentence(guard)}", file=sys.stderr)
    applied, skipped, reasons = _hyper_step_summary(summary, run)
    steps_line = f"hyper-steps on α: {applied} applied, {skipped} skipped"
    if reasons:
        steps_line += f" ({reasons})"
    _say(args, f"autobalance: {_headline(summary)}")
    _say(args, f"autobalance: {steps_line}")
    _say(args, f"run directory: {run.path} (report.md, alpha.json, model.pt)")
    if applied == 0:
        # said even with --quiet: α* is then the initial loss, not a searched one
        why = _no_search_reason(cfg, skipped, reasons)
        if not args.allow_no_search:
            raise NoSearchError(
                f"the search never updated α ({why}); alpha.json holds the initial loss "
                f"(space.init={cfg.search.space.init}); pass --allow-no-search to accept it"
            )
        print(
            f"autobalance: warning: the search never updated α ({why}); alpha.json holds the "
            f"initial loss (space.init={cfg.search.space.init})",
            file=sys.stderr,
        )
    elif skipped:
        print(f"autobalance: warning: {steps_line}", file=sys.stderr)
    return 0


def _load_alpha(path: Path, exp: Any, args: argparse.Namespace) -> Any:
    """The frozen loss in ``path``, checked against the training data's provenance record
    (:mod:`autobalance.provenance`): an α learned on another dataset is refused unless
    ``--force``; a file without the record (autobalance < 0.2) loads with a warning."""
    import warnings

    from autobalance.losses import ParametricCE
    from autobalance.provenance import ProvenanceWarning, fingerprint_of, provenance_mismatch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProvenanceWarning)  # said below, in one line
            loss = ParametricCE.load_json(path, learn=())
    except json.JSONDecodeError as exc:
        raise CLIError(f"{path}: not a JSON file ({exc.msg})") from None
    current = fingerprint_of(exp.train)
    if loss.provenance is None:
        print(
            f"autobalance train: warning: {path} does not say which dataset it was learned on "
            f"(saved before autobalance 0.2); it is not checked against '{current['dataset']}'",
            file=sys.stderr,
        )
        return loss
    reason = provenance_mismatch(loss.provenance, current)
    if reason is not None:
        if not args.force:
            raise CLIError(f"{path}: {reason}; pass --force to train with it anyway")
        print(f"autobalance train: warning (--force): {path}: {reason}", file=sys.stderr)
    return loss


def _make_loss(cfg: ExperimentConfig, exp: Any, args: argparse.Namespace) -> tuple[Any, str]:
    if args.alpha is not None:
        path = Path(args.alpha).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"alpha file not found: {path}")
        loss = _load_alpha(path, exp, args)
        shape = tuple(next(iter(loss_counts(exp.train).values())).shape)  # (K,) or (K, G)
        if tuple(loss.shape) != shape:
            raise CLIError(
                f"{path} holds a loss of shape {tuple(loss.shape)} but the dataset needs {shape}"
            )
        return loss, "learned"
    return baseline_loss(cfg, exp.train, args.loss), args.loss


def _alpha_policy(args: argparse.Namespace, exp: Any) -> Any:
    """The augmentation policy an ``--alpha`` file names (``augment_policy``), checked against
    the dataset's classes (cells), or None (:func:`autobalance.augment.load_alpha_policy`)."""
    if args.alpha is None:
        return None
    from autobalance.augment import load_alpha_policy

    path = Path(args.alpha).expanduser()
    try:
        policy = load_alpha_policy(path)
    except (json.JSONDecodeError, ValueError, KeyError) as exc:
        raise CLIError(f"{path}: its augmentation policy cannot be read ({exc})") from None
    if policy is None:
        return None
    cells = int(next(iter(loss_counts(exp.train).values())).numel())
    if policy.clusters.numel() != cells:
        raise CLIError(
            f"{path}: its augmentation policy covers {policy.clusters.numel()} classes (cells) "
            f"but the dataset has {cells}"
        )
    return policy


def cmd_train(args: argparse.Namespace) -> int:
    """``autobalance train``: one model with a baseline or a learned loss (and, with
    ``--alpha``, the learned augmentation policy the file names, if any)."""
    from autobalance.runs import run_train

    cfg = _resolve(args)
    if args.loss in ("ldam", "ldam_drw") and "norm_head" not in cfg.model.options:
        # LDAM scales logits by s=30 and expects a cosine classifier (Cao et al. 2019).
        cfg.model.options["norm_head"] = True
        _say(args, "note: LDAM uses a cosine-classifier head (model.options.norm_head=true)")
    out = _out_path(args, cfg, "learned" if args.alpha is not None else args.loss)
    exp = build_experiment(cfg)
    loss, method = _make_loss(cfg, exp, args)
    policy = _alpha_policy(args, exp)
    run = _create_run(args, cfg, out)  # every input checked: now the folder
    _say(args, f"train: {method} on {cfg.dataset.name} ({len(exp.train)} train) → {run.path}")
    summary = run_train(
        cfg, exp, run, loss, method, callbacks=progress_callbacks(args.quiet), augment=policy
    )
    if args.alpha is not None:
        summary["alpha_file"] = str(Path(args.alpha).resolve())
        if policy is not None:
            summary["augment_policy"] = policy.kind
        run.write_json(SUMMARY, summary)
    _report(run)
    _say(args, f"{method}: {_headline(summary)}")
    _say(args, f"run directory: {run.path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``autobalance evaluate RUN_DIR``: reload config + model.pt, re-evaluate on the test set."""
    import torch

    from autobalance.report.tables import text_table
    from autobalance.train import evaluate

    run = RunDir.open(args.run_dir)
    cfg = run.read_config()
    device = resolve_device(args.device or cfg.search.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        device = "cpu"
    exp = build_experiment(cfg)
    torch.manual_seed(cfg.search.seed)
    model = exp.model_fn()
    try:
        model.load_state_dict(run.load_model_state())
    except RuntimeError as exc:
        raise CLIError(f"{run.file('model.pt')} does not fit the configured model: {exc}") from None
    metrics = evaluate(model.to(device), exp.test, transform=exp.eval_transform, device=device)
    if args.json:
        from autobalance.runs import to_jsonable

        print(json.dumps(to_jsonable(metrics), indent=2))
        return 0
    scalars = [(k, v) for k, v in metrics.items() if not isinstance(v, list)]
    print(f"{run.path}: {len(exp.test)} test samples ({cfg.dataset.name})")
    print(text_table(["metric", "value"], [[k, float(v)] for k, v in scalars]), end="")
    acc = [1.0 - e for e in metrics["class_errors"]]
    names = exp.train.class_names or [str(k) for k in range(len(acc))]
    counts = exp.train.class_counts().tolist()
    rows = [[n, c, a] for n, c, a in zip(names, counts, acc)]
    print(text_table(["class", "train samples", "test accuracy"], rows), end="")
    return 0


def _expand_runs(paths: Sequence[str]) -> list[RunDir]:
    runs: list[RunDir] = []
    for p in paths:
        path = Path(p)
        if (path / "config.yaml").is_file():
            runs.append(RunDir.open(path))
            continue
        inner = sorted(d for d in path.glob("*/") if (d / "config.yaml").is_file())
        if not path.is_dir() or not inner:
            raise FileNotFoundError(f"not a run directory (no config.yaml): {path}")
        runs.extend(RunDir.open(d) for d in inner)
    return runs


def cmd_compare(args: argparse.Namespace) -> int:
    """``autobalance compare RUN_DIR...``: the runs' test metrics side by side.

    Runs on different data (dataset, options, ρ, or data seeds that do not form a seeds ×
    methods grid; :func:`~autobalance.report.tables.dataset_mismatch`) are refused with exit
    status 2 unless ``--force``; different budgets (model, epochs) are flagged on stderr and
    noted under the table, which also gives the θ-epochs each run trained.
    """
    from autobalance.presets import read_config_file
    from autobalance.report.tables import (
        budget_mismatch,
        compare_rows,
        dataset_identity,
        dataset_mismatch,
        epochs_trained,
        markdown_table,
        text_table,
    )

    runs = _expand_runs(args.run_dirs)
    summaries = []
    for r in runs:
        if not r.file(SUMMARY).is_file():
            raise FileNotFoundError(f"{r.path} has no {SUMMARY} (the run did not finish)")
        summaries.append(r.read_json(SUMMARY))
    labels = [r.path.name for r in runs]
    configs = [read_config_file(r.file("config.yaml")) or {} for r in runs]
    methods = [str(s.get("method", "?")) for s in summaries]
    notes = []
    mismatch = dataset_mismatch(configs, labels, methods)
    if mismatch is not None and not args.force:
        raise CLIError(f"{mismatch}; pass --force to compare them anyway")
    if mismatch is not None:
        print(f"autobalance compare: warning (--force): {mismatch}", file=sys.stderr)
        notes.append(f"note: NOT the same data (--force): {mismatch}")
    seeds = sorted({str(dataset_identity(c)["data seed"]) for c in configs})
    if mismatch is None and len(seeds) > 1:
        notes.append(f"note: data seeds {', '.join(seeds)}, each with the same methods")
    budget = budget_mismatch(configs, labels, methods)
    if budget:
        text = "different budgets: " + "; ".join(budget)
        print(f"autobalance compare: warning: {text}", file=sys.stderr)
        notes.append(f"note: {text}; compare with care")
    epochs = [
        epochs_trained(r.metrics(), s.get("timings"))["total"] for r, s in zip(runs, summaries)
    ]
    headers, rows = compare_rows(summaries, labels, epochs)
    print((markdown_table if args.markdown else text_table)(headers, rows), end="")
    if notes:
        print("\n" + "\n".join(notes))
    if args.plot == "pareto":
        from autobalance.report.plots import plot_pareto, plots_available

        if not plots_available():
            raise CLIError("--plot needs matplotlib (pip install 'autobalance[plots]')")
        grouped = any("deo" in s["test"] for s in summaries)
        x = args.x or ("deo" if grouped else "balanced_error")
        points = [
            {"label": lab, "method": s["method"], **s["test"]} for lab, s in zip(labels, summaries)
        ]
        out = plot_pareto(points, args.plot_out, x=x, y=args.y)
        print(f"plot: {out}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    """``autobalance presets``: the shipped YAML presets, or one in full with ``--show``."""
    if args.show:
        preset_dict(args.show)  # unknown name → one-line error
        print(dump_config(load_config(preset=args.show)), end="")
        return 0
    items = list_presets()
    width = max(len(n) for n, _ in items)
    for name, desc in items:
        print(f"{name.ljust(width)}  {desc}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``autobalance demo``: CE, LA and AutoBalance on long-tailed digits over seeds."""
    import torch

    from autobalance.report import aggregate, write_comparison_report, write_run_report
    from autobalance.report.tables import fmt_mean_std, text_table
    from autobalance.runs import run_search, run_train

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)  # tiny models: extra threads only add overhead
    out = Path(args.out)
    # The demo's settings were chosen on seeds 0-6; it reports fresh seeds by default.
    seeds = DEMO_SEEDS[:1] if args.quick and args.seeds is None else (args.seeds or DEMO_SEEDS)
    extra = list(DEMO_QUICK if args.quick else ())
    summaries: dict[str, list[dict[str, Any]]] = {}
    dirs: dict[str, list[Path]] = {}
    for stale in [*out.glob("alpha_trajectory_*.png"), *out.glob("error_curves*.png")]:
        stale.unlink()  # figures of an earlier demo in the same folder
    base = load_config(preset=DEMO_PRESET, overrides=[*extra, *(args.set or [])])
    methods = [*base.baselines, "autobalance"]
    print(
        f"demo: {', '.join(methods)} on {base.dataset.name} "
        f"(rho={base.dataset.imbalance_ratio:g}), seeds {seeds} → {out}",
        flush=True,
    )
    for seed in seeds:
        cfg = load_config(
            preset=DEMO_PRESET, overrides=[*extra, *(args.set or []), f"search.seed={seed}"]
        )
        cfg.search.device = resolve_device(cfg.search.device)
        exp = build_experiment(cfg)
        for method in methods:
            run = RunDir.create(out / "runs" / f"{method}-seed{seed}", overwrite=True)
            run.write_config(cfg)
            run.write_env(seed=seed, device=cfg.search.device, argv=_argv(args))
            cbs = progress_callbacks(True)
            if method == "autobalance":
                s = run_search(cfg, exp, run, callbacks=cbs)
            else:
                loss = baseline_loss(cfg, exp.train, method)
                s = run_train(cfg, exp, run, loss, method, callbacks=cbs)
            write_run_report(run, figures=False)  # the figures are in the demo's report
            summaries.setdefault(method, []).append(s)
            dirs.setdefault(method, []).append(run.path)
            print(
                f"  seed {seed}  {method:<12} balanced error {s['test']['balanced_error']:.4f}"
                f"  ({s['seconds']:.1f} s)",
                flush=True,
            )
    agg = aggregate(summaries)
    rows = [
        [
            m,
            fmt_mean_std([r["test"]["balanced_error"] for r in summaries[m]], 4),
            fmt_mean_std([r["test"]["error"] for r in summaries[m]], 4),
            fmt_mean_std([r["test"]["worst_class_error"] for r in summaries[m]], 4),
            fmt_mean_std([r["seconds"] for r in summaries[m]], 1),
        ]
        for m in methods
    ]
    print()
    print(f"Test set, mean ± std over seeds {seeds}:")
    print(text_table(["method", "balanced error", "error", "worst class", "time (s)"], rows))
    first = summaries[methods[0]][0]
    names = first.get("class_names") or [str(k) for k in range(len(first["class_counts"]))]
    per_class = [
        [n, first["class_counts"][k], *(agg[m]["class_accuracy"]["mean"][k] for m in methods)]
        for k, n in enumerate(names)
    ]
    print("Per-class test accuracy (mean over seeds):")
    print(text_table(["class", "train", *methods], per_class))
    mean = {m: agg[m]["balanced_error"]["mean"] for m in methods}
    claim: dict[str, bool] = {}
    paired: dict[str, list[float]] = {}
    ab = mean["autobalance"]
    for ref, op in (("la", "≤"), ("ce", "<")):
        if ref in mean:
            ok = ab <= mean[ref] if op == "≤" else ab < mean[ref]
            claim[f"autobalance {op} {ref}"] = bool(ok)
            diffs = [
                a["test"]["balanced_error"] - b["test"]["balanced_error"]
                for a, b in zip(summaries["autobalance"], summaries[ref])
            ]
            paired[ref] = diffs
            print(
                f"AutoBalance {ab:.4f} {op} {ref.upper()} {mean[ref]:.4f}: "
                f"{'yes' if ok else 'NO'} (mean balanced error over seeds {seeds}; "
                f"per seed AutoBalance − {ref.upper()}: {', '.join(f'{d:+.3f}' for d in diffs)})"
            )
    wall = time.perf_counter() - t_start
    intro = (
        f"`autobalance demo{' --quick' if args.quick else ''}`: {', '.join(methods)} on "
        f"scikit-learn's handwritten digits made long-tailed (ρ = "
        f"{base.dataset.imbalance_ratio:g}: {first['class_counts'][0]} training images of the "
        f"most frequent digit down to {first['class_counts'][-1]} of the rarest; balanced test "
        f"set of {len(exp.test)} images), model `{base.model.name}`, "
        f"seeds {seeds}. Every method uses the same schedule and initial weights "
        f"(preset `{DEMO_PRESET}`). Claims checked on the means: "
        + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in claim.items())
        + f". Total wall time {wall:.0f} s."
    )
    from autobalance.runs import to_jsonable

    (out / "metrics.json").write_text(
        json.dumps(
            to_jsonable(
                {
                    "seeds": seeds,
                    "methods": agg,
                    "claims": claim,
                    "autobalance_minus": paired,
                    "wall_seconds": wall,
                }
            ),
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    report = write_comparison_report(
        out / "report.md",
        summaries,
        dirs,
        title="AutoBalance demo: long-tailed digits",
        intro=intro,
    )
    print(f"report: {report}  (total {time.perf_counter() - t_start:.0f} s)")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``autobalance reproduce NAME``: a table or figure of the paper, ours next to the paper's."""
    from autobalance.reproduce import (
        list_reproductions,
        make_plan,
    )

    if args.name is None:
        print(list_reproductions(), end="")
        return 0
    plan = make_plan(
        args.name,
        args.scale,
        seeds=args.seeds,
        methods=args.methods,
        overrides=args.set or [],
        device=args.device,
        data_dir=args.data_dir,
        out=args.out,
        argv=getattr(args, "argv", []),
    )
    return _run_plan(args, plan)


def _run_plan(args: argparse.Namespace, plan: Any) -> int:
    """``--dry-run``: print the plan; else print it and run it (``reproduce`` and ``sweep``)."""
    from autobalance.reproduce import describe_plan, run_reproduction

    if args.dry_run:
        print(describe_plan(plan), end="")
        return 0
    _say(args, describe_plan(plan).rstrip())
    run_reproduction(plan, quiet=args.quiet)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from autobalance.sweep import make_sweep_plan

    if args.preset is None and args.config is None:
        raise CLIError("sweep needs --preset NAME or --config FILE (a dataset with groups)")
    plan = make_sweep_plan(
        preset=args.preset,
        config=args.config,
        lams=args.lams,
        regs=args.regs,
        fixed=args.fixed,
        search=not args.no_search,
        val_objective=args.val_objective,
        seeds=args.seeds,
        overrides=args.set or [],
        device=args.device,
        data_dir=args.data_dir,
        out=args.out,
        argv=getattr(args, "argv", []),
    )
    return _run_plan(args, plan)


# ---------------------------------------------------------------------- parser


def _add_common(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        src = p.add_mutually_exclusive_group()
        src.add_argument("--config", metavar="FILE", help="YAML experiment config")
        src.add_argument("--preset", metavar="NAME", help="a shipped preset (see `presets`)")
        p.add_argument(
            "--set",
            metavar="KEY=VALUE",
            nargs="+",
            action="extend",
            help="override config values, e.g. --set search.train.epochs=5 dataset.seed=1",
        )
        p.add_argument("--seed", type=int, help="shortcut for --set search.seed=N")
        p.add_argument("--device", help="cpu, cuda, cuda:1 or auto (shortcut for search.device)")
        p.add_argument(
            "--data-dir", metavar="DIR", help="dataset folder (shortcut for dataset.data_dir)"
        )
        p.add_argument("--out", metavar="DIR", help="run directory (default runs/<name>-...)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _version() -> str:
    from autobalance import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``autobalance`` (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog="autobalance",
        description="Learn the training loss for imbalanced and group-sensitive classification "
        "(AutoBalance, Li et al., NeurIPS 2021).",
    )
    parser.add_argument("--debug", dest="debug_top", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        help="CE vs LA vs AutoBalance on bundled long-tailed digits, with a report",
        description="Train CE, LA and AutoBalance on scikit-learn's digits made long-tailed for "
        f"each seed (preset {DEMO_PRESET}), print balanced error (mean ± std) and per-class "
        "accuracy, and write a report folder (report.md with plots, metrics.json, run dirs).",
    )
    p.add_argument("--out", default="demo-report", metavar="DIR", help="report folder")
    p.add_argument("--seeds", type=int, nargs="+", metavar="N", help="seeds (default 10-14)")
    p.add_argument("--quick", action="store_true", help="1 seed, 4 epochs (a smoke test)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="extend", help="overrides")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "search",
        help="run the AutoBalance search (Algorithm 1) and write a run directory",
        description="Split, warm up, search α by implicit hypergradients, retrain with α* "
        "frozen. Writes config.yaml, env.json, metrics.jsonl, alpha.json, alpha_trajectory.csv, "
        "checkpoints/, model.pt and report.md.",
    )
    _add_common(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its own config.yaml (config flags must match it)",
    )
    p.add_argument(
        "--allow-no-search",
        action="store_true",
        help="exit 0 even when no hyper-step updated α (alpha.json is then the initial loss)",
    )
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "train",
        help="train with a baseline loss or a learned alpha.json",
        description="Train one model with a fixed loss: a baseline by name (ce, la, ldam_drw, "
        "...) or the loss learned by a search (alpha.json), on the config's dataset/schedule.",
    )
    _add_common(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--loss", metavar="NAME", help="baseline loss name")
    which.add_argument("--alpha", metavar="FILE", help="alpha.json written by `search`")
    p.add_argument(
        "--force",
        action="store_true",
        help="use an --alpha learned on another dataset (its counts or name differ)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="re-evaluate a run's final model on its test set",
        description="Load RUN_DIR/config.yaml and model.pt (weights only) and print the test "
        "metrics and per-class accuracy.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", help="override the run's device")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_common(p, config=False)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "compare",
        help="compare runs side by side (optionally a Pareto plot)",
        description="One table of the runs' test metrics (balanced error, error, worst class, "
        "group metrics when present, time, θ-epochs trained). A folder of runs is expanded. "
        "Runs on different data (dataset, options, imbalance ratio, data seed) are refused "
        "unless --force; different budgets (epochs, model) are flagged.",
    )
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--force", action="store_true", help="compare runs on different data anyway (flagged)"
    )
    p.add_argument("--plot", choices=("pareto",), help="also draw a figure")
    p.add_argument("--plot-out", default="pareto.png", metavar="FILE", help="figure path")
    p.add_argument("--x", help="Pareto x metric (default deo with groups, else balanced_error)")
    p.add_argument("--y", default="error", help="Pareto y metric (default error)")
    _add_common(p, config=False)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "presets",
        help="list the shipped YAML presets",
        description="List the presets with a one-line description; --show NAME prints one.",
    )
    p.add_argument("--show", metavar="NAME", help="print the resolved YAML of a preset")
    _add_common(p, config=False)
    p.set_defaults(func=cmd_presets)

    from autobalance.reproduce import REPRODUCTIONS, SCALES

    p = sub.add_parser(
        "reproduce",
        help="rerun a table or figure of the paper and print ours next to the paper's numbers",
        description="Run the protocol of one of the paper's tables/figures "
        f"({', '.join(REPRODUCTIONS)}) through the library, print our numbers next to the "
        "published ones (with table and row), and write OUT/results.json, OUT/report.md, the "
        "figures and one run directory per method and seed (finished runs of the same config "
        "are reused). Without NAME: list the reproductions.",
    )
    p.add_argument("name", metavar="NAME", nargs="?", help=f"one of {', '.join(REPRODUCTIONS)}")
    p.add_argument(
        "--scale",
        choices=SCALES,
        default="cpu",
        help="cpu: the *-cpu preset (minutes-hours on CPU); paper: the paper's protocol (GPU)",
    )
    p.add_argument("--seeds", type=int, nargs="+", metavar="N", help="seeds (default 0)")
    p.add_argument("--methods", nargs="+", metavar="M", help="a subset of the methods")
    p.add_argument("--device", help="cpu, cuda, cuda:1 or auto (search.device)")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder (dataset.data_dir)")
    p.add_argument("--out", metavar="DIR", help="report folder (default reproduce-NAME-SCALE)")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="extend", help="overrides")
    p.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    _add_common(p, config=False)
    p.set_defaults(func=cmd_reproduce)

    from autobalance.sweep import DEFAULT_FIXED, DEFAULT_LAMS, DEFAULT_REGS, VAL_OBJECTIVES

    p = sub.add_parser(
        "sweep",
        help="accuracy–fairness trade-off: AutoBalance over λ_val vs λ-blended losses, Pareto",
        description="For each λ: AutoBalance searched against (1 − λ)·CE + λ·CE_deo, and the "
        "fixed losses (1 − λ)·CE + λ·L_reg for each --regs, plus --fixed losses; every point "
        "for every seed (one run directory each under OUT/runs, reused when the command is "
        "run again). Writes OUT/results.json, OUT/report.md, a table (mean ± std) and Pareto "
        "plots of standard error against DEO and against group-balanced error (paper Fig. 5).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", metavar="FILE", help="YAML experiment config (grouped data)")
    src.add_argument("--preset", metavar="NAME", help="a shipped preset, e.g. waterbirds-like-cpu")
    p.add_argument(
        "--lams",
        type=float,
        nargs="+",
        metavar="λ",
        default=list(DEFAULT_LAMS),
        help=f"λ values in [0, 1] (default {' '.join(f'{x:g}' for x in DEFAULT_LAMS)})",
    )
    p.add_argument(
        "--regs",
        nargs="*",
        metavar="LOSS",
        default=list(DEFAULT_REGS),
        help=f"L_reg of the blended baselines (default {' '.join(DEFAULT_REGS)})",
    )
    p.add_argument(
        "--fixed",
        nargs="*",
        metavar="LOSS",
        default=list(DEFAULT_FIXED),
        help=f"fixed losses without λ (default {' '.join(DEFAULT_FIXED)})",
    )
    p.add_argument("--no-search", action="store_true", help="only the fixed-loss points")
    p.add_argument(
        "--val-objective",
        choices=VAL_OBJECTIVES,
        default="ce_deo",
        help="AutoBalance's validation objective (1 − λ)·CE + λ·R: ce_deo (R = CE_deo, the "
        "paper's) or blend (R = class-balanced CE)",
    )
    p.add_argument("--seeds", type=int, nargs="+", metavar="N", default=[0], help="seeds")
    p.add_argument("--device", help="cpu, cuda, cuda:1 or auto (search.device)")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder (dataset.data_dir)")
    p.add_argument("--out", metavar="DIR", help="report folder (default sweep-NAME)")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="extend", help="overrides")
    p.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    _add_common(p, config=False)
    p.set_defaults(func=cmd_sweep)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        msg = str(exc.args[0])
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


def _innermost(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _diverged(exc: BaseException) -> bool:
    """A non-finite training loss: the training loop's ``FloatingPointError``, or the
    ``ValueError`` of a loss's finiteness check (``losses._common.check_finite``), which fires
    first when the logits have blown up. A diverged training, not bad input."""
    if isinstance(exc, FloatingPointError):
        return True
    if not isinstance(exc, ValueError) or isinstance(exc, CLIError):
        return False
    tb = _innermost(exc.__traceback__)
    if tb is None:
        return False
    code = tb.tb_frame.f_code
    return code.co_name == "check_finite" and Path(code.co_filename).parts[-2:] == (
        "losses",
        "_common.py",
    )


def _divergence_message(exc: BaseException) -> str:
    msg = _one_line(exc)
    if "learning rate" not in msg:
        msg += "; lower the learning rate (search.train.lr) or check the data"
    return f"training diverged: {msg}"


def _os_error_message(exc: OSError, args: argparse.Namespace) -> str:
    """One line for a file-system error: what failed, where, and what state the run is in."""
    target = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        run = getattr(args, "run_path", None)
        resumable = run is not None and (Path(run) / "checkpoints" / "last.pt").is_file()
        if args.command == "search" and resumable:
            then = f"free some space and continue with `autobalance search --resume --out {run}`"
        elif run is not None:
            then = f"free some space, remove {run} and run the command again"
        else:
            then = "free some space and run the command again"
        return (
            f"no space left on device{target}; the run's state on disk is intact (every file "
            f"is written atomically): {then}"
        )
    if exc.strerror and exc.filename:
        return f"cannot write {exc.filename}: {exc.strerror}"
    if exc.strerror:
        return exc.strerror
    return _one_line(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` (default ``sys.argv[1:]``), run the command, return its status.

    0 on success, 2 on bad input (one line on stderr: config, data, device, an ``--out`` that
    cannot be written, a full disk), 1 when training diverged or a search never updated α
    (without ``--allow-no-search``), 130 when interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): argparse already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    args.argv = argv
    debug = bool(getattr(args, "debug", False) or args.debug_top)
    import torch

    from autobalance.hypergrad import NonFiniteHypergradient

    threads = torch.get_num_threads()
    try:
        if getattr(args, "threads", None) is not None and args.command != "demo":
            torch.set_num_threads(args.threads)
        return int(args.func(args))
    except NonFiniteHypergradient as exc:  # a FloatingPointError, but not θ's divergence
        if debug:
            raise
        print(f"autobalance {args.command}: failed: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except (ValueError, FloatingPointError) as exc:
        if debug:
            raise
        if _diverged(exc):
            print(f"autobalance {args.command}: {_divergence_message(exc)}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"autobalance {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, NotADirectoryError, KeyError, ImportError, yaml.YAMLError) as exc:
        if debug:
            raise
        print(f"autobalance {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a read-only --out, a full disk: one line, the state is intact
        if debug:
            raise
        print(f"autobalance {args.command}: error: {_os_error_message(exc, args)}", file=sys.stderr)
        return EXIT_USAGE
    except NoSearchError as exc:
        if debug:
            raise
        print(f"autobalance {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(
            f"autobalance {args.command}: interrupted (a search resumes with --resume --out DIR)",
            file=sys.stderr,
        )
        return 130
    finally:
        torch.set_num_threads(threads)
        from autobalance.distributed import shutdown

        shutdown()  # leave a torchrun process group (a no-op without one)


__all__ = ["build_parser", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
