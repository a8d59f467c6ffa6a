"""Exact and near-duplicate group keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.data.keys import (
    exact_duplicate_groups,
    near_duplicate_groups,
    normalize_text,
    numeric_tolerances,
)
from assay.errors import ConfigError, DataError


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two id arrays group the rows the same way (ids may be renamed)."""
    pairs = pd.unique(a.astype(np.int64) * (int(b.max()) + 1) + b)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def _groups(ids: np.ndarray) -> list[list[int]]:
    return sorted(sorted(np.flatnonzero(ids == g).tolist()) for g in np.unique(ids))


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["Alice Smith", " alice  smith.", "Bob", "Bob", "abc", "abd", None, None, "x"],
            "score": [1.0, 1.0000000001, 2.0, 2.0, 3.0, 3.0, np.nan, np.nan, 1.0],
            "visits": [1, 1, 2, 2, 4, 4, 5, 5, 7],
        }
    )


def test_exact_groups_planted_copies_and_missing_values(people: pd.DataFrame) -> None:
    ids = exact_duplicate_groups(people, ["name", "score", "visits"])
    assert ids.dtype == np.int64 and ids.shape == (9,)
    assert _groups(ids) == [[0], [1], [2, 3], [4], [5], [6, 7], [8]]


def test_exact_groups_match_pandas_duplicated(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.integers(0, 3, 500),
            "b": rng.choice(np.array(["u", "v", None], dtype=object), 500),
            "c": rng.choice([0.5, -0.0, np.nan], 500),
            "d": rng.random(500) < 0.5,
        }
    )
    ids = exact_duplicate_groups(frame, ["a", "b", "c", "d"])
    expected = frame.groupby(["a", "b", "c", "d"], dropna=False, sort=False).ngroup().to_numpy()
    assert _same_partition(ids, expected)
    assert (len(ids) - len(np.unique(ids))) == int(frame.duplicated().sum())


def test_near_groups_join_case_space_punctuation_and_noise(people: pd.DataFrame) -> None:
    ids = near_duplicate_groups(people, ["name", "score", "visits"])
    # rows 0/1 differ by case, spaces, a full stop and 1e-10; 4/5 ("abc"/"abd") truly differ
    assert _groups(ids) == [[0, 1], [2, 3], [4], [5], [6, 7], [8]]


def test_near_groups_keep_true_differences_apart() -> None:
    frame = pd.DataFrame({"x": [1.0, 1.1, 1.0000000001, 2.0, 2.0 + 1e-3], "s": ["a"] * 5})
    ids = near_duplicate_groups(frame, ["x", "s"])
    assert _groups(ids) == [[0, 2], [1], [3], [4]]
    assert _groups(near_duplicate_groups(frame, ["x"], numeric_tolerance=0.0)) == [
        [0],
        [1],
        [2],
        [3],
        [4],
    ]


def test_integers_and_dates_compare_exactly() -> None:
    frame = pd.DataFrame(
        {
            "n": [10**12, 10**12 + 1, 10**12],
            "when": pd.to_datetime(
                ["2024-01-01 00:00:00", "2024-01-01 00:00:01", "2024-01-01 00:00:00"]
            ),
        }
    )
    assert _groups(near_duplicate_groups(frame, ["n", "when"])) == [[0, 2], [1]]


def test_chains_are_split_so_every_group_stays_within_tolerance() -> None:
    # 0~1 and 1~2 are within tolerance, 0 and 2 are not
    tol = numeric_tolerances(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), ["x"])["x"]
    values = [1.0, 1.0 + 0.6 * tol, 1.0 + 1.2 * tol, 2.0, 3.0, 4.0]
    frame = pd.DataFrame({"x": values})
    for seed in range(20):
        ids = near_duplicate_groups(frame, ["x"], seed=seed)
        assert ids[0] != ids[2], seed


def test_normalize_text_and_tolerances() -> None:
    assert normalize_text(["Alice Smith", " alice  SMITH.", "O'Brien", "Ｆｕｌｌ", 12]) == [
        "alice smith",
        "alice smith",
        "obrien",
        "full",
        "12",
    ]
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0], "big": [1e6, 1e6 + 1, 1e6, 1e6, 1e6]})
    tol = numeric_tolerances(frame, ["x", "big"], numeric_tolerance=1e-6)
    assert tol["x"] == pytest.approx(2e-6)  # interquartile range 2
    assert tol["big"] == pytest.approx(1.0)  # IQR 0: median absolute value 1e6


def test_bad_arguments_name_the_problem(people: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="column 'nope' is not in the data"):
        near_duplicate_groups(people, ["name", "nope"])
    with pytest.raises(DataError, match="at least one column"):
        exact_duplicate_groups(people, [])
    with pytest.raises(ConfigError, match="tolerance must be a finite number >= 0"):
        near_duplicate_groups(people, ["name"], numeric_tolerance=-1.0)


def test_empty_frame_gives_empty_ids() -> None:
    frame = pd.DataFrame({"x": pd.Series([], dtype=float)})
    assert near_duplicate_groups(frame, ["x"]).shape == (0,)
    assert exact_duplicate_groups(frame, ["x"]).shape == (0,)


def test_order_invariance(people: pd.DataFrame, seed: int) -> None:
    rng = np.random.default_rng(seed)
    big = pd.concat([people] * 5, ignore_index=True)
    big["score"] = big["score"] * (1 + rng.normal(0, 1e-12, len(big)))
    order = rng.permutation(len(big))
    shuffled = big.iloc[order].reset_index(drop=True)
    columns = ["name", "score", "visits"]
    for function in (exact_duplicate_groups, near_duplicate_groups):
        ids = function(big, columns)
        again = function(shuffled, columns)
        assert _same_partition(ids[order], again), function.__name__


_WORDS = ["Alice", "bob", "Carol Ann", "d"]


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 25))
    cents = st.integers(-100_000, 100_000)
    return pd.DataFrame(
        {
            "x": [c / 100 for c in draw(st.lists(cents, min_size=n, max_size=n))],
            "y": [
                np.nan if c % 7 == 0 else c / 100
                for c in draw(st.lists(cents, min_size=n, max_size=n))
            ],
            "s": draw(st.lists(st.sampled_from(_WORDS), min_size=n, max_size=n)),
            "k": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
        }
    )


def _noisy(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for c in ("x", "y"):
        out[c] = out[c] * (1 + rng.uniform(-1e-12, 1e-12, len(out)))
    out["s"] = ["  " + s.upper() + "!" for s in out["s"]]
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames(), seed=st.integers(0, 2**16))
def test_property_partition_tolerance_and_noisy_copies(frame: pd.DataFrame, seed: int) -> None:
    n = len(frame)
    both = pd.concat([frame, _noisy(frame, seed)], ignore_index=True)
    columns = ["x", "y", "s", "k"]
    ids = near_duplicate_groups(both, columns, seed=seed)
    exact = exact_duplicate_groups(both, columns)

    # a partition with dense ids, refined by the exact groups
    assert ids.dtype == np.int64 and ids.shape == (2 * n,)
    assert set(np.unique(ids).tolist()) == set(range(int(ids.max()) + 1))
    assert _same_partition(exact, pd.factorize(pd.Series(list(zip(ids, exact))))[0])
    # every row sits with its noisy copy
    assert np.array_equal(ids[:n], ids[n:])
    # rows of a group are equal on the normalised strings and integers, and within tolerance
    tolerance = numeric_tolerances(both, columns)
    texts = np.array(normalize_text(both["s"]))
    for g in np.unique(ids):
        rows = np.flatnonzero(ids == g)
        assert len(set(texts[rows])) == 1 and both["k"].iloc[rows].nunique() == 1
        for c in ("x", "y"):
            v = both[c].to_numpy()[rows]
            assert np.isnan(v).all() or (not np.isnan(v).any() and np.ptp(v) <= tolerance[c])


def test_hash_collisions_never_merge_different_rows(
    people: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assay.data import keys

    expected_exact = _groups(exact_duplicate_groups(people, ["name", "score", "visits"]))
    expected_near = _groups(near_duplicate_groups(people, ["name", "score", "visits"]))
    # every row hashes alike: only the verification step can tell rows apart
    monkeypatch.setattr(keys, "_mix_into", lambda h, codes: h.fill(1))
    assert _groups(exact_duplicate_groups(people, ["name", "score", "visits"])) == expected_exact
    assert _groups(near_duplicate_groups(people, ["name", "score", "visits"])) == expected_near
