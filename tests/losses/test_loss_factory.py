"""make_loss: names, aliases, options, counts, and the modules it returns."""

from __future__ import annotations

import pytest
import torch

from autobalance.losses import (
    LOSS_ALIASES,
    LOSS_NAMES,
    CrossEntropy,
    GroupDROLoss,
    LDAMLoss,
    ParametricCE,
    loss_options,
    make_loss,
)

TABLE = [[60, 20], [30, 9], [8, 5]]


def test_names() -> None:
    assert set(LOSS_NAMES) == {
        "ce",
        "weighted_ce",
        "focal",
        "ldam",
        "ldam_drw",
        "ce_drw",
        "la",
        "cdt",
        "vs",
        "parametric",
        "group_la",
        "ce_bal_group",
        "ce_deo",
        "group_dro",
    }
    assert LOSS_ALIASES == {"balanced_ce": "weighted_ce"}
    assert isinstance(make_loss("balanced_ce", class_counts=[3, 1]), CrossEntropy)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"Unknown loss 'hinge', expected one of \('ce'"):
        make_loss("hinge")


def test_unknown_option_lists_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['tau'\] for loss 'cdt'"):
        make_loss("cdt", class_counts=[3, 1], tau=1.0)
    with pytest.raises(ValueError, match="expected a subset of"):
        make_loss("ldam", class_counts=[3, 1], drw_epoch=3)  # DRW is the 'ldam_drw' loss
    assert "gamma" in loss_options("focal")


@pytest.mark.parametrize("name", ["weighted_ce", "ldam", "ldam_drw", "ce_drw", "la", "cdt", "vs"])
def test_missing_class_counts(name: str) -> None:
    with pytest.raises(ValueError, match="needs class_counts"):
        make_loss(name)


@pytest.mark.parametrize("name", ["group_la", "ce_bal_group"])
def test_missing_group_counts(name: str) -> None:
    with pytest.raises(ValueError, match="needs group_counts"):
        make_loss(name, class_counts=[3, 1])


def test_missing_sizes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        make_loss("parametric")
    with pytest.raises(ValueError, match="num_groups"):
        make_loss("group_dro")


def test_counts_and_defaults_reach_the_losses() -> None:
    ldam = make_loss("ldam_drw", class_counts=[100, 10, 1])
    assert isinstance(ldam, LDAMLoss) and ldam.drw_epoch == 160 and ldam.s == 30.0
    assert ldam.margins.max().item() == pytest.approx(0.5)
    param = make_loss("parametric", group_counts=TABLE, learn=("additive",))
    assert isinstance(param, ParametricCE) and param.shape == (3, 2)
    assert make_loss("parametric", num_classes=7).shape == (7,)
    dro = make_loss("group_dro", group_counts=TABLE, by="cell")
    assert isinstance(dro, GroupDROLoss) and dro.num_units == 6
    assert make_loss("ce_deo", group_counts=TABLE).num_groups == 2
    # class counts default to the row sums of the group table
    la = make_loss("la", group_counts=TABLE)
    expected = torch.log(torch.tensor([80.0, 39.0, 13.0]) / 132.0)
    torch.testing.assert_close(la.additive, expected)
