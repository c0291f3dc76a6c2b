"""Saved policies reload exactly; alpha.json names its policy; the trajectory CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from autobalance.augment import (
    OPS,
    ImagePolicy,
    SphericalPolicy,
    build_policy,
    load_alpha_policy,
    load_policy,
    save_policy,
)
from autobalance.augment.io import (
    link_policy,
    policy_trajectory_csv,
    read_policy_trajectory,
    write_policy_files,
)
from autobalance.config import AugmentConfig


def _random_raw(policy: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("kind", ["pda", "spherical"])
def test_a_saved_policy_reloads_exactly(tmp_path: Path, kind: str) -> None:
    if kind == "pda":
        pol = ImagePolicy(
            torch.tensor([0, 0, 1, 2]), OPS, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25)
        )
        x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    else:
        pol = SphericalPolicy(torch.tensor([0, 0, 1, 2]), init_radius=0.3, max_radius=2.0)
        x = torch.randn(8, 5, generator=torch.Generator().manual_seed(4))
    _random_raw(pol)
    back = load_policy(save_policy(pol, tmp_path / "policy.json"))
    assert type(back) is type(pol)
    for (name, a), (name_b, b) in zip(pol.state_dict().items(), back.state_dict().items()):
        assert name == name_b and torch.equal(a, b), name
    assert back.to_dict() == pol.to_dict()
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    with torch.no_grad():
        a = pol(x, y, generator=torch.Generator().manual_seed(9))
        b = back(x, y, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    assert not any(p.requires_grad for p in back.parameters())  # reloaded frozen


def test_alpha_json_names_its_policy(tmp_path: Path) -> None:
    alpha = tmp_path / "alpha.json"
    alpha.write_text(json.dumps({"format": "autobalance.ParametricCE", "weight": None}))
    assert load_alpha_policy(alpha) is None
    pol = SphericalPolicy(torch.tensor([0, 1]))
    _random_raw(pol, 2)
    write_policy_files(tmp_path, pol, [])
    link_policy(alpha)
    data = json.loads(alpha.read_text())
    assert data["augment_policy"] == "augment_policy.json" and data["weight"] is None
    back = load_alpha_policy(alpha)
    assert back is not None and torch.equal(back.radius, pol.radius)
    (tmp_path / "augment_policy.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"augment_policy\.json"):
        load_alpha_policy(alpha)


def test_policy_trajectory_csv_round_trip(tmp_path: Path) -> None:
    pol = ImagePolicy(torch.tensor([0, 1]), ("rotate", "flip"))
    traj = [{"phase": "init", "epoch": -1, "augment": pol.record()}]
    with torch.no_grad():
        pol.prob += 1.0
    traj.append({"phase": "search", "epoch": 0, "augment": pol.record()})
    traj.append({"phase": "search", "epoch": 1})  # a record without a policy is skipped
    (tmp_path / "augment_trajectory.csv").write_text(policy_trajectory_csv(traj, pol))
    rows = read_policy_trajectory(tmp_path)
    assert len(rows) == 2 * 2 * 2  # steps × clusters × operations
    flip = [r for r in rows if r["op"] == "flip"]
    assert all(r["magnitude"] is None for r in flip)
    assert flip[0]["prob"] == pytest.approx(0.2) and flip[-1]["prob"] > 0.2
    rotate = [r for r in rows if r["op"] == "rotate"]
    assert rotate[0]["magnitude"] == pytest.approx(0.3)
    assert read_policy_trajectory(tmp_path / "missing.csv") == []


def test_build_policy_from_config() -> None:
    clusters = torch.tensor([0, 0, 1, 1, 2])
    assert build_policy(AugmentConfig(), clusters) is None
    pda = build_policy(AugmentConfig(kind="pda", ops=("flip", "cutout")), clusters)
    assert isinstance(pda, ImagePolicy) and pda.num_policies == 3
    assert pda.clusters.tolist() == clusters.tolist()
    per_class = build_policy(AugmentConfig(kind="pda", per="class"), clusters)
    assert per_class is not None and per_class.num_policies == 5
    single = build_policy(AugmentConfig(kind="single"), clusters)
    assert single is not None and single.num_policies == 1 and single.per == "all"
    sph = build_policy(AugmentConfig(kind="spherical", radius=0.2, max_radius=1.0), clusters)
    assert isinstance(sph, SphericalPolicy)
    torch.testing.assert_close(sph.radii().detach(), torch.full((3,), 0.2))
