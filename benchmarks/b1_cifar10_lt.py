"""B1, B1-fit and B1-paper: CIFAR10-LT (ρ=100), baselines against AutoBalance, seed by seed.

Protocols (../shared/PROTOCOLS.md; exact settings in ``PROTOCOLS`` below and benchmarks/README):

- ``cpu``   (B1, summary key ``b1_cpu``): 12,406 images, ResNet-8, E=30, crop + flip;
- ``fit``   (B1-fit, ``b1_fit``): n_max=500 (1,236 images), ResNet-8, E=80, no augmentation,
  so that the network fits its training split before the hyper-steps begin;
- ``paper`` (B1-paper, ``b1_paper``): the paper's protocol, ResNet-32, 300 epochs (preset
  ``cifar10-lt``), for a GPU;
- ``pda`` (B1-PDA, ``b1_pda``): the paper's Table 2 analogue at a reduced budget: B1-fit's data
  and model (n_max=500, ResNet-8, no fixed crop/flip) at E=40, one hyper-step per epoch;
  methods ``autobalance+single_policy``, ``+pda``, ``+dl``, ``+pda_dl`` (and ``ce`` for the
  time ratio; ``fixed_policy`` and ``fixed_init`` as controls: the policy rows' and the Δ&l
  row's init, unsearched).
- ``pda_cpu`` (B1-PDA at B1 CPU's scale, ``b1_pda_cpu``): the same rows and controls on B1 CPU's
  data, model and schedule (12,406 images, ResNet-8, E=30, crop + flip under the policy), the
  guard's fallback off as in ``pda``; the Table 2 analogue that issue 12 names.

The data are the LOSSY-JPEG CIFAR-10 copy in ``../shared/data`` (relative comparisons only).

    python benchmarks/b1_cifar10_lt.py --protocol fit --seeds 0 1 2 \\
        --methods ce la la+tau=2 ldam_drw autobalance autobalance+la_tau

Methods: the CLI's loss names (``ce``, ``la``, ``ldam_drw``, ``cdt``, ``vs``), ``la+tau=X`` (LA
with τ=X), ``autobalance`` (the library's default search) and ``autobalance+VARIANT`` for the
variants in ``VARIANTS`` (the ablation levers). Every (method, seed) run is written to
``results/b1/<protocol>/<method>__s<seed>.json`` as soon as it ends (``--skip-done`` reuses
them), and ``results/summary.json`` is updated from the runs of the seeds asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from autobalance import (
    SearchConfig,
    evaluate,
    fit,
    loss_from_alpha,
    make_loss,
    make_model,
    search,
)
from autobalance.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    as_batch_augment,
    build_policy,
    make_image_transform,
)
from autobalance.config import apply_overrides, from_dict, to_dict
from autobalance.data import load_cifar_lt
from autobalance.losses import set_value_checks
from autobalance.presets import load_config
from autobalance.progress import EpochLogger
from autobalance.train import TrainConfig

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.b1_cifar10_lt
    from _common import (
        SUMMARY_METRICS,
        environment,
        load_run,
        read_json,
        run_path,
        same_host,
        train_acc_at_hyper_start,
        update_summary,
        write_json_atomic,
    )
    from guard_rule import keeps, verdict_measured
except ImportError:  # pragma: no cover
    from benchmarks._common import (
        SUMMARY_METRICS,
        environment,
        load_run,
        read_json,
        run_path,
        same_host,
        train_acc_at_hyper_start,
        update_summary,
        write_json_atomic,
    )
    from benchmarks.guard_rule import keeps, verdict_measured

HERE = Path(__file__).resolve().parent
BASELINES = ("ce", "la", "ldam_drw", "cdt", "vs")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One B1 protocol: data size, model, θ schedule (from a preset), augmentation."""

    key: str
    preset: str
    arch: str
    n_max: int | None
    epochs: int
    augment: bool
    search: dict[str, Any]


PROTOCOLS = {
    "cpu": Protocol("b1_cpu", "cifar10-lt-cpu", "resnet8", None, 30, True, {}),
    # B1-fit: 1,236 images, 100 epochs. ResNet-8 under LA passes 98 % running training
    # accuracy at epoch 35 and stays at 99.7-100 % from epoch 38 (measured, seed 100), before
    # the hyper-steps start at 40 % = epoch 40. With 8 θ-steps per epoch, one hyper-step each.
    "fit": Protocol("b1_fit", "cifar10-lt-cpu", "resnet8", 500, 100, False, {"hyper.per_epoch": 1}),
    "paper": Protocol("b1_paper", "cifar10-lt", "resnet32", None, 300, True, {}),
    # B1-PDA (issue 12, paper Table 2): B1-fit at E=40 (B1-fit's E=100 costs ~20-40 min per
    # AutoBalance run on the shared 2-core CPU; 4 rows x 3 seeds would not fit). The guard's
    # fallback is off, so each row is what its search found (S_V's rarest classes hold 1-2
    # images: the keep rule could keep α* only for a gain of ~20 pt, and every row would be its
    # init's control); what the default guard hands back is in guarded_balanced_error.
    "pda": Protocol(
        "b1_pda",
        "cifar10-lt-cpu",
        "resnet8",
        500,
        40,
        False,
        {"hyper.per_epoch": 1, "guard.fallback": False},
    ),
    # B1-PDA at B1 CPU's scale (issue 12's "Table 2 analogue on B1-CPU"): B1 CPU as it is, the
    # policy applied after its fixed crop + flip (as AutoAugment-style policies are used on top of
    # the standard augmentation); fallback off as in "pda", the guard's verdict still measured
    "pda_cpu": Protocol(
        "b1_pda_cpu", "cifar10-lt-cpu", "resnet8", None, 30, True, {"guard.fallback": False}
    ),
}

# The ablation levers: each variant turns one lever of the default off (or on).
VARIANTS: dict[str, dict[str, Any]] = {
    # scalar τ of LA, searched (paper Table 1, "AutoBalance: τ of LA")
    "la_tau": {"space.kind": "la_tau"},
    # the library's upper level before issue 8: constant α lr 0.05, no weight decay, Δ = 2σ(d)
    # on its own, Neumann step estimated once, one balanced val batch, no guard
    "old_default": {
        "alpha.schedule": "constant",
        "alpha.weight_decay": 0.0,
        "alpha.average": 0.0,
        "hyper.rescale": "once",
        "hyper.val_sampling": "balanced",
        "guard.enabled": False,
    },
    # the old upper level with the guard on (its collapses caught, its moves kept)
    "old_upper_guarded": {
        "alpha.schedule": "constant",
        "alpha.weight_decay": 0.0,
        "hyper.rescale": "once",
        "hyper.val_sampling": "balanced",
    },
    # the same with the fallback off: α* is always kept and the guard's S_V scores and paired
    # SEs are still recorded, so benchmarks/guard_rule.py can replay any keep/fall-back rule
    # (a fallback retrains exactly the LA row of the seed)
    "old_upper_keep": {
        "alpha.schedule": "constant",
        "alpha.weight_decay": 0.0,
        "hyper.rescale": "once",
        "hyper.val_sampling": "balanced",
        "guard.fallback": False,
    },
    "no_guard": {"guard.enabled": False},
    "constant_alpha_lr": {"alpha.schedule": "constant"},
    "no_alpha_wd": {"alpha.weight_decay": 0.0},
    # a strong pull of α′ towards its init (a ridge prior on the learned loss around LA): the
    # default since 2026-11-28; the paper's 1e-4 with the keep rule of before is the lever
    "alpha_wd_0.1": {"alpha.weight_decay": 0.1},
    "paper_alpha_wd": {"alpha.weight_decay": 1e-4, "guard.keep_z": 2.0},
    "rescale_once": {"hyper.rescale": "once"},
    "val_batch": {"hyper.val_sampling": "balanced"},
    "no_average": {"alpha.average": 0.0},
    "average": {"alpha.average": 0.5},
    "soft_error": {"objective": "balanced_soft_error"},
    "late_start": {"hyper_start": 0.75},
    # paper Table 2 (issue 12), from the "consistent weighted-CE" init as Table 1's Δ&l row:
    # Δ&l alone; a learned augmentation policy with the loss kept at its init, one for all
    # classes (MADAO-like) or one per D_π cluster (PDA); PDA and Δ&l searched together
    "dl": {"space.init": "balanced", "space.search": "[additive, multiplicative]"},
    "single_policy": {
        "space.init": "balanced",
        "augment.kind": "single",
        "augment.search_loss": "false",
    },
    "pda": {"space.init": "balanced", "augment.kind": "pda", "augment.search_loss": "false"},
    "pda_dl": {
        "space.init": "balanced",
        "space.search": "[additive, multiplicative]",
        "augment.kind": "pda",
    },
}


# the B1-PDA controls: each trains the init of the variant it names, unsearched
FIXED_INITS = {"fixed_policy": "autobalance+single_policy", "fixed_init": "autobalance+dl"}
# the control whose training an AutoBalance row's fallback retrains exactly (the row's init):
# the B1-PDA rows start from the balanced init, every other variant from the default's LA
INIT_CONTROLS = {
    "autobalance+single_policy": "fixed_policy",
    "autobalance+pda": "fixed_policy",
    "autobalance+pda_dl": "fixed_policy",
    "autobalance+dl": "fixed_init",
}


def init_control(method: str) -> str:
    """The fixed-loss method whose training is ``method``'s fallback (``INIT_CONTROLS``, else
    ``la``: the library's default init, which every ablation lever keeps)."""
    return INIT_CONTROLS.get(method, "la")


def guard_keeps(row: dict[str, Any]) -> bool:
    """The guard's verdict on a run: its recorded ``would_fall_back``; for runs older than that
    field, what the guard did when its fallback was on, else the verdict replayed from the run's
    S_V scores and paired SE (:func:`guard_rule.keeps`, at its keep_z and fallback_margin)."""
    guard, cfg = row["guard"], row["config"]["guard"]
    if "would_fall_back" in guard:
        return not guard["would_fall_back"]
    if cfg.get("fallback", True):
        return not guard["fell_back"]
    return keeps(guard, cfg["keep_z"], cfg["fallback_margin"])


def add_guarded(rows: list[dict[str, Any]], *folders: Path) -> None:
    """Set each AutoBalance row's ``guard_kept`` (1 or 0) and ``guarded_balanced_error``, the
    test error that the default guard (fallback on) hands back: the row's own when the guard
    keeps α*, else that of its init's control of the same seed (:func:`init_control`; a fallback
    retrains exactly that training, ``tests/engine/test_guard.py``), taken from ``rows`` or
    else from the first of ``folders`` (the run's own, then the protocol's untagged runs) that
    holds it **from a like host** (``_common.same_host``: on another kind of host the control's
    training is not the one the fallback would retrain). Rows whose control has not run get
    only ``guard_kept``. A run with the guard off (``guard.enabled: false``), or made without
    the reference θ (``guard.reference: false``, the cheaper lever runs: α* is the same,
    ``tests/augment/test_pda_search.py``), has no verdict of the default guard and gets
    neither."""
    controls = {(r["method"], r["seed"]): r for r in rows}
    for r in rows:
        if not r["method"].startswith("autobalance") or not r.get("guard"):
            continue
        if not verdict_measured(r["config"]["guard"]):
            continue
        kept = guard_keeps(r)
        r["guard_kept"] = float(kept)
        if kept:
            r["guarded_balanced_error"] = r["balanced_error"]
            continue
        key = (init_control(r["method"]), r["seed"])
        on_disk = (load_run(f, *key) for f in dict.fromkeys(folders))
        found = itertools.chain(
            [controls[key]] if key in controls else [],
            (c for c in on_disk if c is not None),
        )
        env = r.get("env")
        control = next((c for c in found if same_host(env, c.get("env")) is not False), None)
        if control is not None:
            r["guarded_balanced_error"] = control["balanced_error"]


def default_npz() -> Path:
    root = Path(os.environ.get("AUTOBALANCE_DATA", HERE.parents[1] / "shared" / "data"))
    return root / "cifar10_jpeg_lossy" / "cifar10_jpeg_yoongikim.npz"


def protocol_config(protocol: Protocol, epochs: int | None) -> SearchConfig:
    """The preset's search config with the protocol's epochs and search settings."""
    cfg = load_config(preset=protocol.preset).search
    e = epochs or protocol.epochs
    if cfg.retrain_train is not None:  # the paper preset retrains on its own schedule
        r = cfg.retrain_train
        r_epochs = r.epochs if epochs is None else max(1, round(r.epochs * e / cfg.train.epochs))
        cfg.retrain_train = dataclasses.replace(r, epochs=r_epochs, eval_every=max(1, e // 10))
    cfg.train = dataclasses.replace(cfg.train, epochs=e, eval_every=max(1, e // 10))
    data = apply_overrides(to_dict(cfg), [f"{k}={v}" for k, v in protocol.search.items()])
    return from_dict(SearchConfig, data)


def drw_epoch(tc: TrainConfig) -> int:
    """LDAM-DRW's re-weighting epoch on schedule ``tc``: its first lr decay (0.75·E without
    milestones)."""
    first = min(tc.milestones) if tc.milestones else 0.75
    return int(first * tc.epochs)


def method_config(base: SearchConfig, method: str, seed: int, device: str, sets: list[str]):
    """The SearchConfig of ``autobalance`` / ``autobalance+VARIANT`` plus ``--set`` overrides."""
    _, _, variant = method.partition("+")
    if variant and variant not in VARIANTS:
        raise SystemExit(f"unknown variant '{variant}', expected one of {sorted(VARIANTS)}")
    pairs = [f"{k}={v}" for k, v in VARIANTS.get(variant, {}).items()] + list(sets)
    data = apply_overrides(to_dict(base), [*pairs, f"seed={seed}", f"device={device}"])
    return from_dict(SearchConfig, data)


def run_one(
    method: str,
    seed: int,
    *,
    protocol: Protocol,
    base: SearchConfig,
    train,
    test,
    device: str,
    sets: list[str],
    log_every: int = 0,
) -> dict[str, Any]:
    """Train one (method, seed) and return its row (test metrics, seconds, α, guard).

    ``log_every`` > 0: one progress line per that many epochs of every phase (a run stopped by
    a time limit still shows how far it got, and at what pace)."""
    # a fixed loss trains on the final model's schedule (the paper preset's retrain_train),
    # as `autobalance train` does; the cpu/fit/pda protocols have one schedule
    tc: TrainConfig = base.retrain_config()
    tf_train = make_image_transform(protocol.augment, CIFAR10_MEAN, CIFAR10_STD)
    tf_eval = make_image_transform(False, CIFAR10_MEAN, CIFAR10_STD)

    def model_fn() -> torch.nn.Module:
        return make_model(protocol.arch, 10)

    def fit_fixed(model: torch.nn.Module, loss: torch.nn.Module, augment: Any = None) -> float:
        """Train ``model`` with a fixed loss on all of S (the final schedule ``tc``); returns
        the last epoch's running training accuracy."""
        hist = fit(
            model,
            loss,
            train,
            tc,
            seed=seed,
            transform=tf_train,
            eval_transform=tf_eval,
            device=device,
            augment=as_batch_augment(augment),
            callbacks=EpochLogger(log_every) if log_every else None,
        )
        return float(hist[-1]["train_acc"])

    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if method.startswith("autobalance"):
        cfg = method_config(base, method, seed, device, sets)
        res = search(
            cfg,
            model_fn,
            train,
            test_data=None,
            transform=tf_train,
            eval_transform=tf_eval,
            callbacks=[EpochLogger(log_every)] if log_every else None,
        )
        model = res.model
        extra = {
            "config": to_dict(cfg),
            "alpha": {k: v.tolist() for k, v in res.alpha.items()},
            "timings": res.timings,
            "hyper_steps": len(res.hyper_steps),
            "guard": res.guard,
            "train_acc_at_hyper_start": train_acc_at_hyper_start(cfg, res),
            "max_hypergrad_norm": max(
                (h.get("hypergrad_norm", 0.0) for h in res.hyper_steps), default=0.0
            ),
            "policy": None if res.policy is None else res.policy.to_dict(),
            # the policy at the end of the search, before the guard's fallback / averaging
            "policy_search_end": next(
                (r.get("augment") for r in reversed(res.trajectory) if r["phase"] == "search"),
                None,
            ),
            "max_policy_hypergrad_norm": max(
                (h.get("policy_hypergrad_norm", 0.0) for h in res.hyper_steps), default=None
            ),
        }
    elif method in FIXED_INITS:
        # controls of the B1-PDA rows (issue 12): their init, never searched, trained on all of
        # S by fit, which is exactly the retrain of a row whose guard fell back. fixed_policy:
        # the balanced-init loss (space.init=balanced) and the initial policy (every cluster's
        # is the same, so one policy), the policy rows' init; fixed_init: the same loss without
        # augmentation, the Δ&l row's init.
        cfg = method_config(base, FIXED_INITS[method], seed, device, sets)
        space = cfg.space.build(train.class_counts())
        policy = build_policy(cfg.augment, space.clusters, transform=tf_train)
        torch.manual_seed(seed)
        model = make_model(protocol.arch, 10)
        acc = fit_fixed(
            model,
            loss_from_alpha(space.effective()),
            None if policy is None else policy.to(device),
        )
        extra = {"final_train_acc": acc, "policy": policy and policy.to_dict()}
    else:
        name, _, opt = method.partition("+")
        if name not in BASELINES or (opt and not opt.startswith("tau=")):
            raise SystemExit(f"unknown method '{method}'")
        opts: dict[str, Any] = {
            # DRW re-weights from the schedule's first lr decay, as in LDAM-DRW (160 of 200):
            # 0.75·E on B1 CPU/fit, 160 of the paper protocol's 200-epoch final schedule
            "ldam_drw": {"drw_epoch": drw_epoch(tc)},
            "vs": {"gamma": 0.2, "tau": 1.2},
            "cdt": {"gamma": 0.2},
        }.get(name, {})
        if opt:
            opts["tau"] = float(opt.split("=", 1)[1])
        torch.manual_seed(seed)
        # LDAM's s=30 scales cosine logits: its paper and code use a normed head.
        model = make_model(protocol.arch, 10, norm_head=name == "ldam_drw")
        acc = fit_fixed(model, make_loss(name, class_counts=train.class_counts(), **opts))
        extra = {"final_train_acc": acc}
    seconds = time.perf_counter() - t0
    m = evaluate(model, test, transform=tf_eval, device=device)
    return {
        "method": method,
        "seed": seed,
        "balanced_error": m["balanced_error"],
        "error": m["error"],
        "worst_class_error": max(m["class_errors"]),
        "class_accuracy": [1 - e for e in m["class_errors"]],
        "seconds": seconds,
        **extra,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="cpu")
    p.add_argument("--data", type=Path, default=default_npz(), help="lossy-JPEG CIFAR-10 .npz")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=None, help="override E (smoke runs)")
    p.add_argument("--n-max", type=int, default=None, help="override n_max (smoke runs)")
    p.add_argument(
        "--augment", choices=("on", "off"), default=None, help="override crop + flip (new tag)"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--methods", nargs="+", default=["ce", "la", "ldam_drw", "autobalance"])
    p.add_argument("--set", nargs="*", default=[], help="AutoBalance overrides key=value")
    p.add_argument("--results", type=Path, default=HERE / "results", help="results folder")
    p.add_argument(
        "--tag",
        default="",
        help="store runs under <protocol>_<tag>; summary key <key>_<tag> (e.g. b1_fit_fresh)",
    )
    p.add_argument("--skip-done", action="store_true", help="reuse finished per-run files")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--log-every", type=int, default=0, help="a progress line per N epochs (0: none)"
    )
    args = p.parse_args(argv)
    if args.log_every:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        set_value_checks(False)  # the losses' label/finiteness checks sync the host every step
        torch.backends.cudnn.benchmark = True
    if not args.data.is_file():
        raise SystemExit(f"B1 needs the lossy-JPEG CIFAR-10 npz; not found: {args.data}")
    protocol = PROTOCOLS[args.protocol]
    if args.n_max is not None:
        protocol = dataclasses.replace(protocol, n_max=args.n_max)
    if args.augment is not None and (args.augment == "on") != protocol.augment:
        if not args.tag:
            raise SystemExit("--augment changes the protocol: give a --tag for its results")
        protocol = dataclasses.replace(protocol, augment=args.augment == "on")
    base = protocol_config(protocol, args.epochs)
    smoke = args.epochs is not None or args.n_max is not None
    folder = args.results / "b1" / (args.protocol + (f"_{args.tag}" if args.tag else ""))
    train, test = load_cifar_lt(args.data, imbalance_ratio=100, seed=0, n_max=protocol.n_max)
    env = environment()
    env["device_name"] = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or platform.machine()
    )
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            path = run_path(folder, method, seed)
            if args.skip_done and path.is_file():
                rows.append(read_json(path))
                print(f"seed {seed} {method:28s} (done) {rows[-1]['balanced_error']:.4f}")
                continue
            row = run_one(
                method,
                seed,
                protocol=protocol,
                base=base,
                train=train,
                test=test,
                device=args.device,
                sets=args.set,
                log_every=args.log_every,
            )
            row.update(
                protocol=protocol.key,
                data="LOSSY JPEG CIFAR-10 (relative only)",
                n_train=len(train),
                arch=protocol.arch,
                epochs=base.train.epochs,
                final_epochs=base.retrain_config().epochs,  # a fixed loss trains on these
                augment=protocol.augment,
                overrides=args.set,
                env=env,
            )
            write_json_atomic(path, row)
            rows.append(row)
            print(
                f"seed {seed} {method:28s} bal.err {row['balanced_error']:.4f}  "
                f"{row['seconds']:7.1f}s",
                flush=True,
            )
    if not smoke:
        # what the default guard hands back, also for runs made with its fallback off
        add_guarded(rows, folder, args.results / "b1" / args.protocol)
        metrics = (*SUMMARY_METRICS, "guard_kept", "guarded_balanced_error")
        if protocol.key.startswith("b1_pda"):  # Table 2: each run's wall time over CE's (seed)
            ce = {r["seed"]: r["seconds"] for r in rows if r["method"] == "ce"}
            for r in rows:
                if r["seed"] in ce:
                    r["time_ratio_to_ce"] = r["seconds"] / ce[r["seed"]]
            metrics = (*metrics, "time_ratio_to_ce")
        key = protocol.key + (f"_{args.tag}" if args.tag else "")
        update_summary(key, rows, args.results / "summary.json", metrics=metrics)
    print(f"\n{protocol.key} ({protocol.arch}, E={base.train.epochs}, n={len(train)}; lossy JPEG)")
    for method in args.methods:
        errs = [r["balanced_error"] for r in rows if r["method"] == method]
        mean = sum(errs) / len(errs)
        std = (sum((e - mean) ** 2 for e in errs) / max(1, len(errs) - 1)) ** 0.5
        print(f"{method:28s} {mean:.4f} ± {std:.4f}  ({len(errs)} seeds)")
    return {"rows": rows}


if __name__ == "__main__":
    main()
