"""`autobalance reproduce`: registry, --dry-run, and tiny real runs (Gaussian data via --set)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import TINY as CLI_TINY
from PIL import Image
from sklearn.metrics import balanced_accuracy_score

from autobalance.cli import main
from autobalance.experiment import build_experiment
from autobalance.losses import is_loss_label
from autobalance.presets import preset_names
from autobalance.reproduce import (
    REPRODUCTIONS,
    caveats,
    describe_plan,
    estimated_epochs,
    is_search,
    make_plan,
)
from autobalance.runs import RunDir, read_trajectory

# Swap the CIFAR preset's data and model for a 4-class Gaussian mixture and an MLP: seconds.
TINY = [
    "dataset.name=gaussians_lt",
    "model.name=mlp",
    *CLI_TINY,
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
            assert is_search(m) or is_loss_label(m.split("+")[0]), m
        for p in rep.paper:
            assert p.method is None or p.method in rep.methods
            assert p.value is None or 0 < p.value < 100  # percent, as printed
        assert "2201.01212" in rep.citation


# Paper Table 1 (balanced test error, %), columns CIFAR10-LT, CIFAR100-LT, ImageNet-LT,
# iNaturalist, as read in the paper's text (arXiv 2201.01212); VS has no row there.
TABLE1 = {
    "ce": ("Cross-Entropy", (30.45, 62.69, 55.47, 39.72)),
    "ldam_drw": ("LDAM loss [8]", (26.37, 59.47, 54.21, 35.63)),
    "la": ("LA loss (τ = 1) [53]", (23.13, 58.96, 52.46, 34.06)),
    "cdt": ("CDT loss [67]", (20.73, 57.26, 53.47, 34.46)),
    "autobalance+la_tau": ("AutoBalance: τ of LA loss", (21.82, 58.68, 52.39, 34.19)),
    "autobalance+l": ("AutoBalance: l", (23.02, 58.71, 52.60, 34.35)),
    "autobalance+delta": ("AutoBalance: Δ", (22.59, 58.40, 53.02, 34.37)),
    "autobalance+dl": ("AutoBalance: Δ&l", (21.39, 56.84, 51.74, 33.41)),
    "autobalance": ("AutoBalance: Δ&l, LA init", (21.15, 56.70, 50.91, 33.25)),
}
COLUMNS = ("cifar10_lt", "cifar100_lt", "imagenet_lt", "inat2018")


def _paper(method: str, dataset: str | None = None) -> float | None:
    pv = REPRODUCTIONS["table1"].paper_value(method, "balanced_error", dataset)
    assert pv is not None, (method, dataset)
    return pv.value


def test_table1_paper_numbers_as_read() -> None:
    rep = REPRODUCTIONS["table1"]
    assert _paper("vs") is None
    assert not [p for p in rep.paper if p.method is None]  # every row is a method now
    assert set(rep.methods) == {"vs", *TABLE1}
    for method, (label, values) in TABLE1.items():
        row = rep.paper_row(method, "balanced_error")
        assert [p.dataset for p in row] == list(COLUMNS), method
        assert [p.value for p in row] == list(values), method
        assert {p.label for p in row} == {label}
        assert [_paper(method, d) for d in COLUMNS] == list(values)
        # the default column is CIFAR10-LT, the data the reproduction runs on
        assert _paper(method) == values[0]
    assert "summary" not in rep.paper_source and "2201.01212" in rep.citation


def test_table1_rows_map_to_their_search_spaces() -> None:
    # τ of LA: one scalar τ from the LA loss (τ = 1); l, Δ, Δ&l: from the consistent weighted CE
    # (init 'balanced'); the preset's own row: Δ&l from LA (paper Sec. 3).
    plan = make_plan("table1", "paper", seeds=[0])
    expect = {
        "autobalance+la_tau": ("la_tau", ("additive",), "la"),
        "autobalance+l": ("full", ("additive",), "balanced"),
        "autobalance+delta": ("full", ("multiplicative",), "balanced"),
        "autobalance+dl": ("full", ("additive", "multiplicative"), "balanced"),
        "autobalance": ("full", ("additive", "multiplicative"), "la"),
    }
    for method, want in expect.items():
        space = plan.config(method, 0).search.space
        assert (space.kind, space.search, space.init) == want, method
        assert is_search(method)
    # the la_tau space starts at τ = 1, i.e. at the LA loss, with w = 1 and Δ = 1
    cfg = plan.config("autobalance+la_tau", 0).search.space
    s = cfg.build(torch.tensor([50.0, 20.0, 5.0]))
    assert s.hparams()[0].item() == pytest.approx(1.0)
    eff = s.effective()
    torch.testing.assert_close(eff["additive"], s.log_prior)
    assert bool((eff["weight"] == 1).all()) and bool((eff["multiplicative"] == 1).all())


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
    for name, row, value in (
        ("AutoBalance: τ of LA", "AutoBalance: τ of LA loss", "21.82"),
        ("AutoBalance: l", "AutoBalance: l", "23.02"),
        ("AutoBalance: Δ", "AutoBalance: Δ", "22.59"),
        ("AutoBalance: Δ&l", "AutoBalance: Δ&l", "21.39"),
        ("AutoBalance", "AutoBalance: Δ&l, LA init", "21.15"),
    ):
        line = next(x for x in text.splitlines() if x.startswith(f"  {name} "))
        assert "search + retrain" in line and f"paper '{row}' bal.err {value}" in line
    assert "CIFAR100-LT 56.84, ImageNet-LT 51.74, iNaturalist 33.41" in text
    assert "total: 450 epochs" in text  # 5 baselines x 30 + 5 searches x (30 + 30)
    assert "lossy JPEG CIFAR-10, not comparable to the paper's numbers in absolute terms" in text
    assert not out.exists()
    assert (
        main(["reproduce", "table1", "--scale", "paper", "--dry-run", "--seeds", "0", "1", "2"])
        == 0
    )
    text = capsys.readouterr().out
    assert "preset 'cifar10-lt'" in text and "model resnet32" in text
    # (5 baselines x 200 (the final model's schedule, retrain_train) + 5 searches x
    # (300 search + 200 retrain)) x 3 seeds
    assert "total: 10500 epochs" in text
    assert "lossy" not in text


def test_table1_compares_with_the_column_of_its_dataset() -> None:
    # on CIFAR100-LT data the CIFAR100-LT column is the reference, with no "not the paper's" note
    plan = make_plan("table1", "paper", overrides=["dataset.name=cifar100_lt"])
    assert plan.reproduction.column_for("cifar100_lt") == "cifar100_lt"
    assert caveats(plan) == []
    text = describe_plan(plan)
    line = next(x for x in text.splitlines() if x.startswith("  AutoBalance: Δ&l "))
    assert "bal.err 56.84 (CIFAR10-LT 21.39, ImageNet-LT 51.74, iNaturalist 33.41)" in line


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
    # the search rows carry each seed's guard verdict, read from the run's own summary
    assert "guard" not in methods["ce"]
    for rec, path in zip(methods["autobalance"]["guard"], methods["autobalance"]["runs"]):
        own = RunDir.open(path).read_json("summary.json")["guard"]
        assert rec["fell_back"] == own["fell_back"] and rec["would_fall_back"] is not None
    reset = [r["fell_back"] for r in methods["autobalance"]["guard"]]
    notes = [n for n in res["notes"] if n.startswith("AutoBalance:")]
    assert len(notes) == (1 if any(reset) else 0)
    ldam = RunDir.open(methods["ldam_drw"]["runs"][1]).read_config()
    assert ldam.model.options == {"norm_head": True} and ldam.dataset.seed == 0
    # the cosine head has no bias, the linear head of the other methods has one
    assert "head.bias" not in RunDir.open(methods["ldam_drw"]["runs"][0]).load_model_state()
    assert "head.bias" in RunDir.open(methods["ce"]["runs"][0]).load_model_state()


def test_guard_note_names_the_seeds_that_fell_back_or_were_kept_only_with_the_fallback_off() -> (
    None
):
    from autobalance.reproduce import guard_note

    kept = {"fell_back": False, "would_fall_back": False}
    reset = {"fell_back": True, "would_fall_back": True}
    off = {"fell_back": False, "would_fall_back": True}
    assert guard_note("AB", [0, 1], [kept, kept]) is None
    note = guard_note("AB", [0, 1, 2], [reset, kept, reset])
    assert note is not None and "seed(s) 0, 2 of 3" in note and "initial loss" in note
    note = guard_note("AB", [3, 4], [off, kept])
    assert note is not None and "seed(s) 3" in note and "fallback is off" in note
    assert "reset" not in note


def test_table1_printout_and_report(table1: tuple[Path, str]) -> None:
    out, text = table1
    res = json.loads((out / "results.json").read_text())
    ce = res["results"]["methods"]["ce"]["ours"]["balanced_error"]
    cell = f"{100 * ce['mean']:.2f} ± {100 * ce['std']:.2f}"
    ce_line = next(line for line in text.splitlines() if line.startswith("CE "))
    assert cell in ce_line and "30.45" in ce_line and "Cross-Entropy" in ce_line
    vs_line = next(line for line in text.splitlines() if line.startswith("VS "))
    assert "n/a" in vs_line
    ab_line = next(line for line in text.splitlines() if line.startswith("AutoBalance "))
    assert "21.15" in ab_line and "AutoBalance: Δ&l, LA init" in ab_line
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


def test_table1_search_rows_run(tmp_path: Path) -> None:
    out = tmp_path / "rows"
    methods = ["autobalance+la_tau", "autobalance+l", "autobalance+delta", "autobalance+dl"]
    assert main(tiny("table1", out, "--methods", *methods)) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    assert list(res["methods"]) == methods and res["paper_column"] == "cifar10_lt"
    for m in methods:
        run = RunDir.open(res["methods"][m]["runs"][0])
        space = json.loads(run.file("search_space.json").read_text())
        assert space["init"] == ("la" if m.endswith("la_tau") else "balanced"), m
        assert space["kind"] == ("la_tau" if m.endswith("la_tau") else "clusters"), m
        assert len(space["raw"]) == (2 if m.endswith("dl") else 1), m
        assert res["methods"][m]["paper"]["balanced_error"]["dataset"] == "cifar10_lt"


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
