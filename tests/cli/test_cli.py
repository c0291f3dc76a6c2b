"""End-to-end checks of the `autobalance` command, called in-process through `main([...])`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cli_helpers import TINY
from sklearn.metrics import balanced_accuracy_score

from autobalance.cli import main
from autobalance.experiment import ExperimentConfig, build_experiment
from autobalance.losses import ParametricCE
from autobalance.presets import preset_names


def tiny_args(out: Path) -> list[str]:
    return [
        "--preset",
        "gaussians-cpu",
        "--set",
        *TINY,
        "--out",
        str(out),
        "--quiet",
        "--threads",
        "1",
    ]


@pytest.fixture(scope="module")
def search_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "search"
    assert main(["search", *tiny_args(out)]) == 0
    return out


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "train-ce"
    assert main(["train", "--loss", "ce", *tiny_args(out)]) == 0
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_search_writes_the_run_directory(search_run: Path) -> None:
    for name in (
        "config.yaml",
        "env.json",
        "metrics.jsonl",
        "hyper_steps.jsonl",
        "alpha.json",
        "search_space.json",
        "alpha_trajectory.csv",
        "model.pt",
        "summary.json",
        "report.md",
        "checkpoints/last.pt",
    ):
        assert (search_run / name).is_file(), name
    metrics = read_jsonl(search_run / "metrics.jsonl")
    # 2 search epochs (warm-up fraction 0.4 → round(0.8) = 1 warm-up epoch) then 2 retrain epochs
    assert [(m["phase"], m["epoch"]) for m in metrics] == [
        ("warmup", 0),
        ("search", 1),
        ("retrain", 0),
        ("retrain", 1),
    ]
    hyper = read_jsonl(search_run / "hyper_steps.jsonl")
    assert hyper and all(h["phase"] == "search" and h["epoch"] == 1 for h in hyper)
    env = json.loads((search_run / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["seed"] == 0
    assert env["command"][:2] == ["autobalance", "search"]
    # the SIMD level of the host: a seed reproduces bit for bit only on a like host
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    cfg = ExperimentConfig.from_dict(yaml.safe_load((search_run / "config.yaml").read_text()))
    assert cfg.search.train.epochs == 2 and cfg.dataset.options["num_classes"] == 4


def test_alpha_json_and_trajectory_agree(search_run: Path) -> None:
    loss = ParametricCE.load_json(search_run / "alpha.json", learn=())
    summary = json.loads((search_run / "summary.json").read_text())
    np.testing.assert_allclose(
        loss.effective_additive.numpy(), summary["alpha"]["additive"], rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        loss.effective_multiplicative.numpy(),
        summary["alpha"]["multiplicative"],
        rtol=1e-5,
        atol=1e-6,
    )
    lines = (search_run / "alpha_trajectory.csv").read_text().splitlines()
    assert lines[0] == "epoch,phase,class,group,cluster,w,l,delta"
    rows = [r.split(",") for r in lines[1:]]
    # init + 2 epochs + the final α* as the retrain uses it (re-centred on all of S), 4 classes
    assert len(rows) == 4 * 4
    last = [r for r in rows if r[1] == "final"]
    np.testing.assert_allclose([float(r[6]) for r in last], summary["alpha"]["additive"], atol=1e-6)
    # LA init: l_k = log π_k of the search split's counts, with π decreasing in k
    init_l = [float(r[6]) for r in rows if r[1] == "init"]
    assert init_l == sorted(init_l, reverse=True)


def test_evaluate_matches_an_independent_computation(search_run: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(search_run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    summary = json.loads((search_run / "summary.json").read_text())
    assert metrics["balanced_error"] == pytest.approx(summary["test"]["balanced_error"])
    # rebuild the model by hand and score it with scikit-learn
    cfg = ExperimentConfig.from_dict(yaml.safe_load((search_run / "config.yaml").read_text()))
    exp = build_experiment(cfg)
    model = exp.model_fn()
    model.load_state_dict(torch.load(search_run / "model.pt", weights_only=True))
    with torch.no_grad():
        pred = model(exp.test.x).argmax(1).numpy()
    expected = 1 - balanced_accuracy_score(exp.test.y.numpy(), pred)
    assert metrics["balanced_error"] == pytest.approx(expected, abs=1e-12)
    assert main(["evaluate", str(search_run)]) == 0
    out = capsys.readouterr().out
    assert "balanced_error" in out and "test accuracy" in out


def test_train_with_a_baseline_and_with_the_learned_alpha(
    search_run: Path, train_run: Path, tmp_path: Path
) -> None:
    summary = json.loads((train_run / "summary.json").read_text())
    assert summary["method"] == "ce" and summary["kind"] == "train"
    assert len(read_jsonl(train_run / "metrics.jsonl")) == 2
    out = tmp_path / "learned"
    args = ["train", "--alpha", str(search_run / "alpha.json"), *tiny_args(out)]
    assert main(args) == 0
    learned = json.loads((out / "summary.json").read_text())
    assert learned["method"] == "learned"
    assert learned["alpha_file"] == str((search_run / "alpha.json").resolve())
    # the retrain phase of the search is the same training: same data, init, schedule and loss
    search = json.loads((search_run / "summary.json").read_text())
    assert learned["test"]["balanced_error"] == pytest.approx(
        search["test"]["balanced_error"], abs=0.03
    )


def test_a_fixed_loss_trains_on_the_final_models_schedule(tmp_path: Path) -> None:
    """With ``search.retrain_train`` set (the paper presets), `train` uses it, as the search's
    retrain phase does, so that a baseline and AutoBalance's final model get the same budget."""
    out = tmp_path / "final-schedule"
    extra = ["search.retrain_train={epochs: 3, batch_size: 16, warmup_epochs: 0}"]
    args = ["train", "--loss", "la", *tiny_args(out)]
    args[args.index("--out") : args.index("--out")] = extra
    assert main(args) == 0
    assert len(read_jsonl(out / "metrics.jsonl")) == 3  # not search.train's 2


def test_compare_table_and_pareto_plot(
    search_run: Path, train_run: Path, tmp_path: Path, capsys
) -> None:
    capsys.readouterr()
    png = tmp_path / "front.png"
    args = ["compare", str(search_run), str(train_run), "--plot", "pareto", "--plot-out", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["run", "method", "bal.err"]
    for run in (search_run, train_run):
        s = json.loads((run / "summary.json").read_text())
        row = next(line for line in lines if line.startswith(run.name + " "))
        assert f"{s['test']['balanced_error']:.3f}" in row and s["method"] in row
    assert png.stat().st_size > 1000
    assert main(["compare", str(search_run), "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("| run | method |")


def test_search_refuses_to_overwrite_and_resumes(search_run: Path, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["search", *tiny_args(search_run)]) == 2
    assert "--resume" in capsys.readouterr().err
    before = json.loads((search_run / "summary.json").read_text())
    n_lines = len(read_jsonl(search_run / "metrics.jsonl"))
    assert main(["search", "--resume", "--out", str(search_run), "--quiet"]) == 0
    after = json.loads((search_run / "summary.json").read_text())
    assert after["test"] == before["test"]
    assert len(read_jsonl(search_run / "metrics.jsonl")) == n_lines  # no duplicated epochs
    assert main(["search", "--resume", "--out", str(tmp_path / "nothing"), "--quiet"]) == 2


def test_presets_lists_every_shipped_preset(capsys) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()]
    expected = {
        "cifar10-lt",
        "cifar100-lt",
        "cifar10-lt-ldam",
        "cifar100-lt-ldam",
        "imagenet-lt",
        "inat2018",
        "waterbirds",
        "cifar10-lt-cpu",
        "digits-demo",
        "gaussians-cpu",
        "waterbirds-like-cpu",
    }
    assert expected <= set(names) and set(names) == set(preset_names())
    assert all(len(line.split(maxsplit=1)) == 2 for line in out.splitlines())
    assert main(["presets", "--show", "cifar10-lt-cpu"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["model"]["name"] == "resnet8" and shown["search"]["train"]["epochs"] == 30


def test_every_preset_parses_and_round_trips() -> None:
    from autobalance.presets import load_config

    for name in preset_names():
        cfg = load_config(preset=name)
        assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["search", "--preset", "gaussians-cpu", "--set", "search.hyperr.interval=3"], "valid"),
        (["search", "--preset", "gaussians-cpu", "--set", "search.hyper.method=magic"], "magic"),
        (["train", "--loss", "nope", "--preset", "gaussians-cpu"], "Unknown loss"),
        (["search", "--preset", "no-such-preset"], "Unknown preset"),
        (["search", "--config", "/nonexistent/cfg.yaml"], "not found"),
        (
            [
                "search",
                "--preset",
                "cifar10-lt-cpu",
                "--set",
                "dataset.data_dir=/nonexistent/data",
            ],
            "/nonexistent/data",
        ),
        (
            ["search", "--preset", "imagenet-lt", "--set", "dataset.data_dir=/nonexistent/in"],
            "in/imagenet_lt",
        ),
        (["train", "--loss", "la", "--preset", "cifar10-lt-cpu", "--data-dir", "/no/d"], "/no/d"),
        (["evaluate", "/nonexistent/run"], "not a run directory"),
        (["compare", "/nonexistent/run"], "not a run directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str, tmp_path, capsys) -> None:
    capsys.readouterr()
    assert (
        main([*args, "--out", str(tmp_path / "run")] if args[0] in ("search", "train") else args)
        == 2
    )
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err and "Traceback" not in err


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(ValueError, match="Unknown preset"):
        main(["search", "--preset", "no-such-preset", "--debug"])


@pytest.mark.parametrize(
    "command", [[], ["demo"], ["search"], ["train"], ["evaluate"], ["compare"], ["presets"]]
)
def test_help_of_every_command(command: list[str], capsys) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: autobalance")


def test_demo_quick_writes_a_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "balanced error" in printed and "Per-class test accuracy" in printed
    report = (out / "report.md").read_text()
    for png in ("per_class_accuracy.png", "alpha_trajectory_autobalance.png"):
        assert f"]({png})" in report
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seeds"] == [10]  # fresh seeds: not those the settings were chosen on
    assert set(metrics["methods"]) == {"ce", "la", "autobalance"}
    for method in ("ce", "la", "autobalance"):
        run = out / "runs" / f"{method}-seed10"
        records = read_jsonl(run / "metrics.jsonl")
        assert records and all("train_loss" in r for r in records)
        summary = json.loads((run / "summary.json").read_text())
        value = metrics["methods"][method]["balanced_error"]["mean"]
        assert value == pytest.approx(summary["test"]["balanced_error"])
        # balanced error = mean of the per-class errors
        assert value == pytest.approx(np.mean(summary["test"]["class_errors"]))
        assert (run / "report.md").is_file()


def test_a_search_that_falls_back_says_so(tmp_path, capsys) -> None:
    out = tmp_path / "fallback"
    args = tiny_args(out)
    # a negative margin makes any final score "worse than the reference": forced fallback
    args[args.index("--set") + 1 : args.index("--set") + 1] = ["search.guard.fallback_margin=-1"]
    assert main(["search", *args]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "fell back to its initialisation" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["guard"]["fell_back"] is True
    assert "reference" in summary["guard"]["fallback_reason"]
    assert "fell back to its initialisation" in (out / "report.md").read_text()
    space = json.loads((out / "search_space.json").read_text())
    assert all(v == 0.0 for raw in space["raw"].values() for v in raw)  # α′ = α₀: the init
    # what the search found is not lost: alpha_rejected.json holds it, and trains
    assert summary["guard"]["rejected_alpha_file"] == "alpha_rejected.json"
    assert "alpha_rejected.json" in err and "alpha_rejected.json" in (out / "report.md").read_text()
    rejected = ParametricCE.load_json(out / "alpha_rejected.json")
    kept = ParametricCE.load_json(out / "alpha.json")
    assert not torch.allclose(rejected.effective_additive, kept.effective_additive)
    torch.testing.assert_close(
        rejected.effective_additive, torch.tensor(summary["rejected_alpha"]["additive"])
    )
    trained = tmp_path / "rejected-train"
    train_args = tiny_args(trained)
    assert main(["train", *train_args, "--alpha", str(out / "alpha_rejected.json")]) == 0
    assert json.loads((trained / "summary.json").read_text())["test"]["balanced_error"] >= 0
