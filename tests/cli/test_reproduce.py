"""`autobalance reproduce`: registry, --dry-run, and tiny real runs (Gaussian data via --set)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import balanced_accuracy_score

from autobalance.cli import main
from autobalance.experiment import build_experiment
from autobalance.losses import LOSS_NAMES
from autobalance.presets import preset_names
from autobalance.reproduce import REPRODUCTIONS, estimated_epochs, is_search, make_plan
from autobalance.runs import RunDir, read_trajectory

# Swap the CIFAR preset's data and model for a 4-class Gaussian mixture and an MLP: seconds.
TINY = [
    "dataset.name=gaussians_lt",
    "dataset.options={num_classes: 4, dim: 8, n_max: 60, n_test_per_class: 25}",
    "dataset.imbalance_ratio=10",
    "model.name=mlp",
    "model.hidden=[16]",
    "search.train.epochs=2",
    "search.train.batch_size=16",
    "search.train.warmup_epochs=0",
    "search.hyper.interval=2",
    "search.space.num_clusters=2",
    "loss_options.ldam_drw.drw_epoch=1",
]


def tiny(name: str, out: Path, *extra: str) -> list[str]:
    return [
        "reproduce",
        name,
        "--out",
        str(out),
        "--quiet",
        "--threads",
        "1",
        *extra,
        "--set",
        *TINY,
    ]


# ---------------------------------------------------------------------- registry and plan


def test_registry_entries_are_consistent() -> None:
    assert {"table1", "fig3", "fig4"} <= set(REPRODUCTIONS)
    for name, rep in REPRODUCTIONS.items():
        assert rep.name == name
        assert set(rep.presets) == {"cpu", "paper"}
        assert set(rep.presets.values()) <= set(preset_names())
        for m in rep.methods:
            assert is_search(m) or m.split("+")[0] in LOSS_NAMES, m
        for p in rep.paper:
            assert p.method is None or p.method in rep.methods
            assert p.value is None or 0 < p.value < 100  # percent, as printed
        assert "2201.01212" in rep.citation


def test_table1_paper_numbers_as_read() -> None:
    # Table 1, CIFAR10-LT column, as read (percent); VS has no row there
    rep = REPRODUCTIONS["table1"]
    got = {m: rep.paper_value(m, "balanced_error") for m in rep.methods}
    values = {m: (p.value if p else None) for m, p in got.items()}
    assert values == {
        "ce": 30.45,
        "la": 23.13,
        "ldam_drw": 26.37,
        "cdt": 20.73,
        "vs": None,
        "autobalance": 21.15,
    }
    only = [(p.label, p.value) for p in rep.paper if p.method is None]
    assert only == [("AutoBalance: Δ&l", 21.39)]


def test_plan_order_of_overrides() -> None:
    plan = make_plan("table1", "cpu", seeds=[3], overrides=["dataset.seed=7"], device="cpu")
    ldam = plan.config("ldam_drw", 3)
    assert ldam.model.options == {"norm_head": True}  # method override (cosine head for LDAM)
    assert plan.config("ce", 3).model.options == {}
    assert ldam.dataset.seed == 7  # --set wins over the reproduction's dataset.seed=0
    assert ldam.search.seed == 3
    # E = 30 for a baseline; 30 search + 30 retrain epochs for AutoBalance
    assert estimated_epochs(ldam, "ldam_drw") == 30
    assert estimated_epochs(plan.config("autobalance", 3), "autobalance") == 60


def test_dry_run_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["reproduce", "table1", "--dry-run", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "preset 'cifar10-lt-cpu'" in text and "model resnet8" in text
    for name in ("CE", "LA", "LDAM-DRW", "CDT", "VS", "AutoBalance"):
        assert f"  {name} " in text
    assert "total: 210 epochs" in text  # 5 baselines x 30 + (30 + 30)
    assert "lossy JPEG CIFAR-10, not comparable to the paper's numbers in absolute terms" in text
    assert not out.exists()
    assert (
        main(["reproduce", "table1", "--scale", "paper", "--dry-run", "--seeds", "0", "1", "2"])
        == 0
    )
    text = capsys.readouterr().out
    assert "preset 'cifar10-lt'" in text and "model resnet32" in text
    assert "total: 4200 epochs" in text  # (5 x 200 + 400) x 3 seeds
    assert "lossy" not in text


def test_listing_and_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["reproduce"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in REPRODUCTIONS)
    assert main(["reproduce", "table9", "--dry-run"]) == 2
    assert "Unknown reproduction 'table9', expected one of" in capsys.readouterr().err
    assert main(["reproduce", "table1", "--methods", "foo", "--dry-run"]) == 2
    assert "Unknown method(s) ['foo']" in capsys.readouterr().err
    out = tmp_path / "bad"
    assert main(["reproduce", "fig4", "--out", str(out), "--set", "search.nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert not out.exists()  # a bad override fails before anything runs


# ---------------------------------------------------------------------- tiny real runs


@pytest.fixture(scope="module")
def table1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("rep") / "t1"
    args = tiny(
        "table1", out, "--seeds", "0", "1", "--methods", "ce", "ldam_drw", "vs", "autobalance"
    )
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(args) == 0
    return out, buf.getvalue()


def _balanced_error_from_model(run: RunDir) -> float:
    cfg = run.read_config()
    exp = build_experiment(cfg)
    model = exp.model_fn()
    model.load_state_dict(run.load_model_state())
    model.eval()
    with torch.no_grad():
        pred = model(exp.eval_transform(exp.test.x)).argmax(1).numpy()
    return 1.0 - balanced_accuracy_score(exp.test.y.numpy(), pred)


def test_table1_results_match_the_runs(table1: tuple[Path, str]) -> None:
    out, _ = table1
    res = json.loads((out / "results.json").read_text())
    assert res["reproduction"] == "table1" and res["seeds"] == [0, 1]
    methods = res["results"]["methods"]
    assert list(methods) == ["ce", "ldam_drw", "vs", "autobalance"]
    for m, rec in methods.items():
        assert len(rec["runs"]) == 2
        errs = [_balanced_error_from_model(RunDir.open(p)) for p in rec["runs"]]
        ours = rec["ours"]["balanced_error"]
        np.testing.assert_allclose(ours["values"], errs, atol=1e-9, err_msg=m)
        assert ours["mean"] == pytest.approx(np.mean(errs))
        assert ours["std"] == pytest.approx(np.std(errs, ddof=1))
    assert methods["ce"]["paper"]["balanced_error"]["value"] == 30.45
    assert methods["vs"]["paper"]["balanced_error"]["value"] is None
    ldam = RunDir.open(methods["ldam_drw"]["runs"][1]).read_config()
    assert ldam.model.options == {"norm_head": True} and ldam.dataset.seed == 0
    # the cosine head has no bias, the linear head of the other methods has one
    assert "head.bias" not in RunDir.open(methods["ldam_drw"]["runs"][0]).load_model_state()
    assert "head.bias" in RunDir.open(methods["ce"]["runs"][0]).load_model_state()


def test_table1_printout_and_report(table1: tuple[Path, str]) -> None:
    out, text = table1
    res = json.loads((out / "results.json").read_text())
    ce = res["results"]["methods"]["ce"]["ours"]["balanced_error"]
    cell = f"{100 * ce['mean']:.2f} ± {100 * ce['std']:.2f}"
    ce_line = next(line for line in text.splitlines() if line.startswith("CE "))
    assert cell in ce_line and "30.45" in ce_line and "Cross-Entropy" in ce_line
    vs_line = next(line for line in text.splitlines() if line.startswith("VS "))
    assert "n/a" in vs_line
    assert "[paper] AutoBalance: Δ&l" in text and "21.39" in text
    assert "is not the paper's (cifar10_lt)" in text  # Gaussian data, not CIFAR
    assert "paper: Li et al. 2021" in text and "Table 1" in text
    report = (out / "report.md").read_text()
    assert "| CE |" in report and "30.45" in report
    assert res["table"]["headers"][:3] == ["method", "ours bal.err (%)", "paper bal.err (%)"]


def test_finished_runs_are_reused(table1: tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    out, _ = table1
    before = json.loads((out / "results.json").read_text())["results"]["methods"]["ce"]
    args = tiny("table1", out, "--seeds", "0", "1", "--methods", "ce")
    args.remove("--quiet")
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.count("(reused") == 2
    after = json.loads((out / "results.json").read_text())["results"]["methods"]["ce"]
    assert after["ours"] == before["ours"]


def test_fig3_trajectory_table_and_png(tmp_path: Path) -> None:
    out = tmp_path / "f3"
    assert main(tiny("fig3", out)) == 0
    png = out / "fig3_alpha_trajectory_seed0.png"
    with Image.open(png) as im:
        assert im.size[0] > 200 and im.size[1] > 100
    res = json.loads((out / "results.json").read_text())
    rec = res["results"]["autobalance-seed0"]
    run = RunDir.open(rec["run"])
    rows = read_trajectory(run.file("alpha_trajectory.csv"))
    init = [r for r in rows if r["phase"] == "init"]
    # LA init (τ = 1): l_k = log π_k, so Σ_k exp(l_k) = 1 and Δ = 1
    assert sum(np.exp(r["l"]) for r in init) == pytest.approx(1.0, abs=1e-5)
    space = json.loads(run.file("search_space.json").read_text())
    clusters = np.asarray(space["clusters"])
    final_l = np.asarray(space["additive"])
    final_d = np.asarray(space["multiplicative"])
    counts = np.asarray(json.loads(run.file("summary.json").read_text())["class_counts"], float)
    ns = []
    for c, v in rec["clusters"].items():
        members = clusters == int(c)
        init_l = np.mean([r["l"] for r in init if members[r["class"]]])
        assert v["l"][0] == pytest.approx(init_l, abs=1e-6)
        assert v["delta"][0] == pytest.approx(1.0)
        assert v["l"][1] == pytest.approx(final_l[members].mean(), abs=1e-6)
        assert v["delta"][1] == pytest.approx(final_d[members].mean(), abs=1e-6)
        assert v["n"] == pytest.approx(counts[members].mean())
        ns.append(v["n"])
    assert ns == sorted(ns, reverse=True)  # head → tail


def test_fig4_error_curves(tmp_path: Path) -> None:
    out = tmp_path / "f4"
    assert main(tiny("fig4", out)) == 0
    with Image.open(out / "fig4_error_curves.png") as im:
        assert im.size[0] > 200
    res = json.loads((out / "results.json").read_text())
    rec = res["results"]["autobalance-seed0"]
    run = RunDir.open(rec["run"])
    search = [r for r in run.metrics() if r["phase"] == "search"]
    assert search and all("train/balanced_error" in r for r in search)  # eval_train applied
    last = rec["last_search_epoch"]
    assert last["train"] == search[-1]["train/balanced_error"]
    assert last["val"] == search[-1]["val/balanced_error"]
    assert last["retrain_test"] == pytest.approx(_balanced_error_from_model(run))
    assert res["paper_says"] and "paper says:" in (out / "report.md").read_text()


def test_interrupted_search_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "t1"
    assert main(tiny("table1", out, "--methods", "autobalance")) == 0
    first = json.loads((out / "results.json").read_text())["results"]["methods"]["autobalance"]
    Path(first["runs"][0], "summary.json").unlink()  # as if killed after the last checkpoint
    args = tiny("table1", out, "--methods", "autobalance")
    args.remove("--quiet")
    assert main(args) == 0
    assert "(resuming" in capsys.readouterr().out
    again = json.loads((out / "results.json").read_text())["results"]["methods"]["autobalance"]
    assert again["ours"] == first["ours"]
