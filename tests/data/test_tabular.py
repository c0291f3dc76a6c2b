from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from autobalance.data.tabular import (
    TabularEncoder,
    load_adult,
    load_celeba_attributes,
    load_compas,
    read_compas,
)


def shared_data() -> Path:
    env = os.environ.get("AUTOBALANCE_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def need(*parts: str) -> Path:
    path = shared_data().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found (set AUTOBALANCE_DATA to the shared data folder)")
    return path


# ----------------------------------------------------------------------------- Adult

ADULT_TRAIN_ROWS = [
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male,"
    " 2174, 0, 40, United-States, <=50K",
    "50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband,"
    " White, Male, 0, 0, 13, United-States, >50K",
    "38, ?, 215646, HS-grad, 9, Divorced, ?, Not-in-family, White, Female, 0, 0, 40, ?, <=50K",
    "53, Private, 234721, 11th, 7, Married-civ-spouse, Handlers-cleaners, Wife, Black, Female,"
    " 0, 0, 40, Cuba, >50K",
]
ADULT_TEST_ROWS = [
    "|1x3 Cross validator",
    "25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male,"
    " 0, 0, 40, Peru, <=50K.",
    "44, Private, 160323, Some-college, 10, Married-civ-spouse, ?, Husband, Black, Male,"
    " 7688, 0, 40, United-States, >50K.",
]
# the UCI files end with an empty line
ADULT_TRAIN = "\n".join(ADULT_TRAIN_ROWS) + "\n\n"
ADULT_TEST = "\n".join(ADULT_TEST_ROWS) + "\n\n"


def test_adult_upstream_format(tmp_path: Path) -> None:
    (tmp_path / "adult.data").write_text(ADULT_TRAIN)
    (tmp_path / "adult.test").write_text(ADULT_TEST)
    train, test = load_adult(tmp_path)
    assert len(train) == 4 and len(test) == 2
    assert train.y.tolist() == [0, 1, 0, 1] and test.y.tolist() == [0, 1]
    assert train.groups.tolist() == [1, 1, 0, 0] and test.groups.tolist() == [1, 1]
    assert train.group_names == ["Female", "Male"] and train.class_names == ["<=50K", ">50K"]
    # 6 numericals + one-hots of the train categories; sex is the group, not a feature
    # workclass 4 (incl. '?'), education 3, marital 3, occupation 4, relationship 3, race 2,
    # native-country 3 (incl. '?')
    n_cat = 4 + 3 + 3 + 4 + 3 + 2 + 3
    assert train.x.shape == (4, 6 + n_cat)
    age = np.array([39, 50, 38, 53], dtype=float)
    z = (np.array([25.0, 44.0]) - age.mean()) / age.std()
    assert test.x[:, 0].numpy() == pytest.approx(z, rel=1e-5)  # standardised with TRAIN stats
    assert train.x[:, :6].mean(0).numpy() == pytest.approx(np.zeros(6), abs=1e-6)
    # every one-hot block of a train row has exactly one 1; unseen test categories → zeros
    # (row 1: Machine-op-inspct, Own-child, Peru; row 2: Some-college)
    assert float(train.x[:, 6:].sum(1).unique()) == 7.0
    assert test.x[:, 6:].sum(1).tolist() == [4.0, 6.0]
    with_sex, _ = load_adult(tmp_path, group_as_feature=True)
    assert with_sex.x.shape[1] == train.x.shape[1] + 2


def test_adult_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"adult\.data, adult\.test"):
        load_adult(tmp_path)


@pytest.mark.data
def test_adult_real_counts() -> None:
    train, test = load_adult(need("adult"))
    assert (len(train), len(test)) == (32561, 16281)
    assert train.class_counts().tolist() == [24720, 7841]
    assert test.class_counts().tolist() == [12435, 3846]
    assert train.x.dtype == torch.float32 and bool(torch.isfinite(train.x).all())


# ----------------------------------------------------------------------------- COMPAS

HEADER_TEXT = (
    "id,name,first,last,compas_screening_date,sex,dob,age,age_cat,race,juv_fel_count,"
    "decile_score,juv_misd_count,juv_other_count,priors_count,days_b_screening_arrest,c_jail_in,"
    "c_jail_out,c_case_number,c_offense_date,c_arrest_date,c_days_from_compas,c_charge_degree,"
    "c_charge_desc,is_recid,r_case_number,r_charge_degree,r_days_from_arrest,r_offense_date,"
    "r_charge_desc,r_jail_in,r_jail_out,violent_recid,is_violent_recid,vr_case_number,"
    "vr_charge_degree,vr_offense_date,vr_charge_desc,type_of_assessment,decile_score,score_text,"
    "screening_date,v_type_of_assessment,v_decile_score,v_score_text,v_screening_date,"
    "in_custody,out_custody,priors_count,start,end,event,two_year_recid"
)
HEADER = HEADER_TEXT.split(",")


def compas_row(
    i: int, race: str, days: str, is_recid: str, degree: str, score: str, y: int
) -> list[str]:
    row = dict.fromkeys(HEADER, "")
    row.update(
        id=str(i),
        name="n",
        first="f",
        last="l",
        sex="Male" if i % 2 else "Female",
        age=str(20 + i),
        age_cat="25 - 45",
        race=race,
        juv_fel_count="0",
        juv_misd_count=str(i % 3),
        juv_other_count="0",
        priors_count=str(i),
        days_b_screening_arrest=days,
        c_charge_degree=degree,
        is_recid=is_recid,
        score_text=score,
        two_year_recid=str(y),
    )
    return [row[h] for h in HEADER]


def write_compas(path: Path) -> None:
    rows = [
        compas_row(1, "African-American", "-1", "1", "F", "Low", 1),
        compas_row(2, "Caucasian", "30", "0", "M", "High", 0),
        compas_row(3, "Caucasian", "-30", "0", "F", "Medium", 0),
        compas_row(4, "Hispanic", "0", "1", "F", "Low", 1),
        compas_row(5, "African-American", "31", "1", "F", "Low", 1),  # out: days > 30
        compas_row(6, "African-American", "", "1", "F", "Low", 1),  # out: days missing
        compas_row(7, "Caucasian", "0", "-1", "F", "Low", 0),  # out: is_recid = -1
        compas_row(8, "Caucasian", "0", "0", "O", "Low", 0),  # out: ordinary traffic
        compas_row(9, "Caucasian", "0", "0", "F", "N/A", 0),  # out: no score
        compas_row(10, "African-American", "2", "0", "M", "Low", 0),
        compas_row(11, "African-American", "3", "1", "F", "Low", 1),
        compas_row(12, "Caucasian", "-4", "1", "F", "Low", 1),
    ]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)


def test_compas_filter_and_groups(tmp_path: Path) -> None:
    write_compas(tmp_path / "compas-scores-two-years.csv")
    kept = read_compas(tmp_path / "compas-scores-two-years.csv")
    assert kept["age"].tolist() == ["21", "22", "23", "24", "30", "31", "32"]
    train, test = load_compas(tmp_path, test_fraction=0.5, seed=0)
    assert len(train) + len(test) == 6  # the Hispanic row is dropped
    assert train.group_names == ["African-American", "Caucasian"]
    ys = torch.cat([train.y, test.y]).tolist()
    gs = torch.cat([train.groups, test.groups]).tolist()
    assert sorted(zip(ys, gs)) == sorted([(1, 0), (0, 1), (0, 1), (0, 0), (1, 0), (1, 1)])
    # 5 numericals + sex(2) + age_cat(1) + c_charge_degree(F, M); race is not a feature
    assert train.x.shape[1] == 5 + 2 + 1 + 2
    every, _ = load_compas(tmp_path, races=None, test_fraction=0.5)
    assert every.group_names == ["African-American", "Caucasian", "Hispanic"]


def test_compas_split_is_seeded_and_stratified(tmp_path: Path) -> None:
    write_compas(tmp_path / "compas-scores-two-years.csv")
    a, _ = load_compas(tmp_path, test_fraction=0.5, seed=3)
    b, _ = load_compas(tmp_path, test_fraction=0.5, seed=3)
    assert torch.equal(a.x, b.x)
    with pytest.raises(ValueError, match="test_fraction"):
        load_compas(tmp_path, test_fraction=1.0)


@pytest.mark.data
def test_compas_real_counts() -> None:
    root = need("compas")
    kept = read_compas(root / "compas-scores-two-years.csv")
    assert len(kept["two_year_recid"]) == 6172
    races, counts = np.unique(kept["race"], return_counts=True)
    assert dict(zip(races.tolist(), counts.tolist()))["African-American"] == 3175
    train, test = load_compas(root)
    assert len(train) + len(test) == 3175 + 2103
    assert torch.cat([train.groups, test.groups]).bincount().tolist() == [3175, 2103]
    assert abs(len(test) / 5278 - 0.2) < 0.002


# ----------------------------------------------------------------------------- CelebA

ATTRS = ["Bald", "Blond_Hair", "Eyeglasses", "Male"]


def write_celeba(root: Path, gz: bool) -> np.ndarray:
    vals = np.array(
        [[-1, 1, -1, -1], [1, -1, 1, 1], [-1, -1, -1, 1], [-1, 1, 1, -1], [1, 1, -1, 1]]
    )
    lines = [str(len(vals)), " ".join(ATTRS)]
    for i, v in enumerate(vals, 1):
        lines.append(f"{i:06d}.jpg " + " ".join(f"{int(a):2d}" for a in v))
    text = ("\r\n".join(lines) + "\r\n").encode()
    if gz:
        (root / "list_attr_celeba.txt.gz").write_bytes(gzip.compress(text))
    else:
        (root / "list_attr_celeba.txt").write_bytes(text)
    part = "".join(f"{i:06d}.jpg {s}\r\n" for i, s in enumerate([0, 0, 1, 2, 0], 1))
    (root / "list_eval_partition.txt").write_text(part, newline="")
    return vals


@pytest.mark.parametrize("gz", [False, True])
def test_celeba_attributes(tmp_path: Path, gz: bool) -> None:
    vals = write_celeba(tmp_path, gz)
    train, val, test = load_celeba_attributes(tmp_path)
    assert (len(train), len(val), len(test)) == (3, 1, 1)
    assert train.y.tolist() == [1, 0, 1]  # Blond_Hair of rows 1, 2, 5
    assert train.groups.tolist() == [0, 1, 1]  # Male
    assert torch.equal(train.x, torch.tensor(vals[[0, 1, 4]][:, [0, 2]], dtype=torch.float32))
    assert test.y.tolist() == [1] and val.groups.tolist() == [1]
    assert train.class_names == ["not_Blond_Hair", "Blond_Hair"]


def test_celeba_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"list_attr_celeba\.txt"):
        load_celeba_attributes(tmp_path)
    write_celeba(tmp_path, gz=False)
    with pytest.raises(ValueError, match="Unknown CelebA attribute 'Smiling'"):
        load_celeba_attributes(tmp_path, target="Smiling")


@pytest.mark.data
def test_celeba_real_counts() -> None:
    train, val, test = load_celeba_attributes(need("celeba"))
    assert (len(train), len(val), len(test)) == (162770, 19867, 19962)
    assert train.x.shape[1] == 38
    # (class, group) cells of the train split, as in Sagawa et al. 2020, Table 5
    cells = (train.y * 2 + train.groups).bincount().tolist()
    assert cells == [71629, 66874, 22880, 1387]


def test_encoder_unseen_and_constant_columns() -> None:
    train = {"c": np.array(["a", "b", "a"]), "v": np.array(["2", "2", "2"])}
    enc = TabularEncoder(categorical=["c"], numerical=["v"]).fit(train)
    out = enc.transform({"c": np.array(["b", "z"]), "v": np.array(["3", "2"])})
    assert out.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert enc.feature_names_ == ["v", "c=a", "c=b"]
    with pytest.raises(ValueError, match="non-numeric"):
        enc.transform({"c": np.array(["a"]), "v": np.array(["x"])})
