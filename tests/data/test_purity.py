"""Pure regions: planted partial leaks are found, clean and chance-pure data are not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, make_classification

from assay.data.purity import PureRegion, find_pure_regions, purest_region


def _codes(y: np.ndarray) -> tuple[np.ndarray, list[str]]:
    cat = pd.Categorical(y)
    return cat.codes.astype(np.int64), [str(c) for c in cat.categories]


def _churn(n: int, share: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Noisy features; a fee paid by ``share`` of all rows, every one of them a leaver."""
    X, y = make_classification(n_samples=n, n_features=4, n_informative=3, n_redundant=0,
                               weights=[0.6], flip_y=0.2, random_state=seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    rng = np.random.default_rng(seed)
    leavers = rng.choice(np.flatnonzero(y == 1), int(share * n), replace=False)
    fee = np.zeros(n)
    fee[leavers] = rng.uniform(20, 200, len(leavers)).round(2)
    frame["cancellation_fee_paid"] = fee
    return frame, y


@pytest.mark.parametrize("share", [0.03, 0.12, 0.30])
def test_a_planted_partial_leak_is_found_at_every_strength(share: float, seed: int) -> None:
    frame, y = _churn(3000, share, seed)
    codes, labels = _codes(y)
    region = purest_region(frame["cancellation_fee_paid"], codes, labels)
    assert region is not None
    assert region.region == "cancellation_fee_paid > 0"
    assert region.kind == "above" and region.label == "1" and region.purity == 1.0
    assert region.share == pytest.approx(share, abs=0.002)
    assert region.p_value < 1e-6 and region.base_rate < 0.5
    # the noisy genuine features have no pure region
    assert all(purest_region(frame[c], codes, labels) is None for c in ["x0", "x1", "x2", "x3"])


def test_a_leak_in_whether_a_value_is_present_is_found(seed: int) -> None:
    frame, y = _churn(3000, 0.12, seed)
    fee = frame["cancellation_fee_paid"].where(frame["cancellation_fee_paid"] > 0)
    codes, labels = _codes(y)
    region = purest_region(fee, codes, labels)
    assert region is not None and region.region == "cancellation_fee_paid is present"


def test_a_categorical_level_leak_is_found(seed: int) -> None:
    frame, y = _churn(3000, 0.05, seed)
    rng = np.random.default_rng(seed)
    status = rng.choice(["active", "paused", "trial"], len(y)).astype(object)
    status[frame["cancellation_fee_paid"].to_numpy() > 0] = "closed_by_customer"
    codes, labels = _codes(y)
    [region] = find_pure_regions(pd.Series(status, name="status"), codes, labels)
    assert region.region == "status = closed_by_customer" and region.kind == "value"
    assert region.rows == int(0.05 * len(y))


def test_near_pure_is_enough_but_a_mixed_region_is_not(seed: int) -> None:
    frame, y = _churn(3000, 0.12, seed)
    codes, labels = _codes(y)
    fee = frame["cancellation_fee_paid"].to_numpy().copy()
    stayers = np.flatnonzero(codes == 0)
    rng = np.random.default_rng(seed)
    fee[rng.choice(stayers, 2, replace=False)] = 50.0  # 2 of 362 rows: 99.4% pure
    region = purest_region(pd.Series(fee, name="fee"), codes, labels)
    assert region is not None and 0.99 <= region.purity < 1.0 and region.contrary_rows == 2
    # 40 more stayers pay fees over the same range: about 90% pure anywhere above 0
    fee[rng.choice(stayers, 40, replace=False)] = rng.uniform(20, 200, 40).round(2)
    assert purest_region(pd.Series(fee, name="fee"), codes, labels) is None


def test_small_pure_categories_are_chance(seed: int) -> None:
    # 60 levels of 50 rows on a 50/50 target: none is pure; a level of 8 rows that is
    # pure by chance is below the row floor
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 3000)
    level = rng.integers(0, 60, 3000).astype(str).astype(object)
    ones = np.flatnonzero(y == 1)[:8]
    level[ones] = "rare"
    codes, labels = _codes(y)
    assert find_pure_regions(pd.Series(level, name="region"), codes, labels) == []


def test_a_pure_category_of_a_common_class_needs_more_than_its_base_rate(seed: int) -> None:
    # the class is 95% of the rows: a level that is 99% that class is ordinary
    rng = np.random.default_rng(seed)
    y = (rng.random(4000) < 0.05).astype(int)
    level = np.where(rng.random(4000) < 0.3, "retail", "wholesale").astype(object)
    ordinary = np.flatnonzero((level == "retail") & (y == 1))
    y[ordinary[: max(0, len(ordinary) - 12)]] = 0  # 'retail' ~99% class 0
    codes, labels = _codes(y)
    found = find_pure_regions(pd.Series(level, name="channel"), codes, labels)
    assert found == []


def test_genuinely_predictive_noisy_features_have_no_pure_region(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 5000)
    codes, labels = _codes(y)
    # ROC AUC 0.8: two normals 1.19 sd apart
    score = pd.Series(y * 1.19 + rng.normal(size=5000), name="score")
    assert find_pure_regions(score, codes, labels) == []
    # ordinary missingness, more common in one class but far from pure
    income = pd.Series(np.where(rng.random(5000) < 0.1 + 0.1 * y, np.nan, 1.0), name="income")
    assert find_pure_regions(income, codes, labels) == []


def test_clean_data_sets_have_no_pure_region() -> None:
    bc = load_breast_cancer(as_frame=True).frame
    codes, labels = _codes(bc["target"].to_numpy())
    assert [c for c in bc.columns[:-1] if find_pure_regions(bc[c], codes, labels)] == []
    for seed in range(3):
        X, y = make_classification(n_samples=4000, n_features=10, n_informative=5,
                                   class_sep=1.5, random_state=seed)
        codes, labels = _codes(y)
        assert all(find_pure_regions(pd.Series(X[:, j]), codes, labels) == []
                   for j in range(10))


def test_dates_and_multiclass(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    y = rng.choice(["a", "b", "c"], n)
    closed = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"))
    refunded = rng.random(n) < 0.3
    late = (y == "c") & refunded
    closed[late] = pd.Timestamp("2025-06-01") + pd.to_timedelta(rng.integers(0, 30, late.sum()), "D")
    codes, labels = _codes(y)
    region = purest_region(closed.rename("closed_at"), codes, labels)
    assert region is not None and region.label == "c" and region.kind == "above"
    assert region.region.startswith("closed_at > 2024-")


def test_region_round_trips_through_json(seed: int) -> None:
    frame, y = _churn(2000, 0.12, seed)
    codes, labels = _codes(y)
    region = purest_region(frame["cancellation_fee_paid"], codes, labels)
    assert region is not None
    assert PureRegion.from_dict(json.loads(json.dumps(region.to_dict()))) == region
    assert "'cancellation_fee_paid > 0' (12.0% of rows" in region.describe()
