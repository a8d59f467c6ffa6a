"""Splitters: the shipped contract over every registered splitter, plus known answers."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from assay.config.spec import ProjectSpec
from assay.errors import ConfigError, DataError, LeakageError
from assay.split import (
    SPLITTERS,
    BaseSplitter,
    ChronologicalSplitter,
    GroupSplitter,
    RandomSplitter,
    SplitAssignment,
    SplitPlan,
    SplitRequest,
    StratifiedSplitter,
    make_splits,
    parse_gap,
    union_groupings,
)
from assay.testing.splitters import (
    SplitCase,
    SplitterContract,
    check_duplicates_intact,
    check_groups_intact,
    check_partition,
    check_time_order,
    example_frame,
)

NS_PER_DAY = 86_400 * 10**9


def _timed_numeric() -> pd.DataFrame:
    frame = example_frame(240, seed=5)
    frame["step"] = np.sort(np.random.default_rng(5).integers(0, 200, 240))
    return frame


def _timed_grouped() -> pd.DataFrame:
    frame = example_frame(280, seed=6, time=True, duplicate_share=0.02)
    frame["group"] = (frame["time"] - frame["time"].min()).dt.days // 14
    return frame


PLAIN = SplitCase("plain", example_frame(240, seed=1), target="target")
GROUPED = SplitCase(
    "grouped", example_frame(240, seed=2, n_groups=40), target="target", group="group"
)
CASES: dict[str, list[SplitCase]] = {
    "random": [PLAIN, GROUPED],
    "stratified": [
        PLAIN,
        GROUPED,
        SplitCase("multiclass", example_frame(300, seed=3, n_classes=4), target="target", seed=5),
    ],
    "group": [GROUPED],
    "chronological": [
        SplitCase("timed", example_frame(240, seed=4, time=True), target="target", time="time"),
        SplitCase(
            "timed-gap",
            example_frame(240, seed=4, time=True),
            target="target",
            time="time",
            gap="5d",
        ),
        SplitCase("numeric-time", _timed_numeric(), target="target", time="step", gap=3),
        SplitCase(
            "timed-grouped",
            _timed_grouped(),
            target="target",
            time="time",
            group="group",
            gap="2d",
        ),
    ],
}
PAIRS = [(alias, case) for alias, cases in CASES.items() for case in cases]


@pytest.fixture(params=PAIRS, ids=[f"{alias}-{case.name}" for alias, case in PAIRS])
def pair(request: pytest.FixtureRequest) -> tuple[str, SplitCase]:
    value: tuple[str, SplitCase] = request.param
    return value


@pytest.fixture
def splitter(pair: tuple[str, SplitCase]) -> BaseSplitter:
    return SPLITTERS.get(pair[0])()


@pytest.fixture
def split_case(pair: tuple[str, SplitCase]) -> SplitCase:
    return pair[1]


class TestRegisteredSplitters(SplitterContract):
    """The shipped contract, run over every registered splitter."""


def _concrete_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        if not getattr(sub, "__abstractmethods__", None):
            found.add(sub)
        found |= _concrete_subclasses(sub)
    return found


def test_public_names_are_pinned() -> None:
    import assay.split

    assert sorted(assay.split.__all__) == sorted(
        [
            "MIN_ROWS_PER_SPLIT", "PARTS", "SPLITTERS", "BaseSplitter", "ChronologicalSplitter",
            "GroupSplitter", "RandomSplitter", "SplitAssignment", "SplitPlan", "SplitRequest",
            "StratifiedSplitter", "fingerprint_test_set", "make_splits", "parse_gap",
            "time_values", "union_groupings",
        ]
    )
    assert all(hasattr(assay.split, name) for name in assay.split.__all__)


def test_every_concrete_splitter_is_registered_and_has_cases() -> None:
    registered = {cls for _, cls in SPLITTERS.items()}
    concrete = {c for c in _concrete_subclasses(BaseSplitter) if c.__module__.startswith("assay.")}
    assert concrete <= registered
    assert set(SPLITTERS.names()) == {"stratified", "random", "group", "chronological"}
    assert set(CASES) == set(SPLITTERS.names())


class _NaiveSplitter(BaseSplitter):
    """A shuffle that ignores blocks and drops a row: the contract must catch it."""

    alias = "naive"

    def assign_rows(self, frame: pd.DataFrame, request: SplitRequest) -> SplitAssignment:
        order = np.random.default_rng(request.seed).permutation(len(frame))
        fifth = len(frame) // 5
        return SplitAssignment(order[2 * fifth + 1 :], order[fifth : 2 * fifth], order[:fifth])


def test_contract_checks_catch_a_leaky_splitter() -> None:
    frame = GROUPED.frame
    result = _NaiveSplitter().assign(frame, **GROUPED.kwargs())
    parts = result.as_tuple()
    with pytest.raises(AssertionError, match="1 rows are in no part, but 0 drops are counted"):
        check_partition(result, len(frame), drops_rows=False)
    with pytest.raises(AssertionError, match="group column 'group'"):
        check_groups_intact(parts, frame, "group")
    with pytest.raises(AssertionError, match="exact duplicates on x0, x1, colour, target"):
        check_duplicates_intact(parts, frame, GROUPED.duplicate_columns)
    timed = CASES["chronological"][1]
    with pytest.raises(AssertionError, match="later than"):
        check_time_order(_NaiveSplitter().split(timed.frame), timed.frame, "time", "5d")


def _spec(
    task: str = "binary", split: dict[str, object] | None = None, **data: object
) -> ProjectSpec:
    return ProjectSpec.model_validate(
        {
            "task": task,
            "data": {"source": "data.csv", "target": "target", **data},
            "split": split or {},
            "seed": 11,
        }
    )


def _daily_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2023-01-01", periods=n, freq="D"),
            "x": rng.normal(size=n),
            "target": rng.integers(0, 2, n),
        }
    )
    return frame


# -- chronological known answers ---------------------------------------------------------


def test_planted_future_target_feature_cannot_reach_train() -> None:
    frame = _daily_frame()
    cut = pd.Timestamp("2023-01-01") + pd.Timedelta(days=240)
    future = frame["target"].shift(-1).astype(float)
    frame["next_outcome"] = future.where(frame["time"] >= cut)
    plan = make_splits(
        frame,
        _spec(time="time", split={"gap": "7d"}),
        data_version="v1",
    )
    times = frame["time"]
    assert plan.strategy == "chronological"
    assert times.iloc[plan.train].max() <= times.iloc[plan.validation].min() - pd.Timedelta("7D")
    assert times.iloc[plan.validation].max() <= times.iloc[plan.test].min() - pd.Timedelta("7D")
    assert frame["next_outcome"].iloc[plan.train].isna().all()
    # 400 days: test = the last 80, validation starts on day 240, 7-day gaps before each start
    assert plan.sizes == {"train": 234, "validation": 74, "test": 80, "dropped": 12}
    assert plan.dropped_for_gap == 12
    assert times.iloc[plan.validation].min() == cut


def test_rows_sharing_a_boundary_time_go_to_the_same_side() -> None:
    frame = _daily_frame(300)
    frame["time"] = frame["time"].min() + pd.to_timedelta(np.arange(300) // 7, unit="D")
    train, validation, test = ChronologicalSplitter().split(
        frame, target="target", time="time", seed=0
    )
    owner = pd.Series(-1, index=frame.index)
    for index, part in enumerate((train, validation, test)):
        owner.iloc[part] = index
    assert (frame.assign(owner=owner).groupby("time")["owner"].nunique() == 1).all()
    assert frame["time"].iloc[train].max() < frame["time"].iloc[validation].min()


def test_chronological_drops_the_later_copy_of_a_straddling_duplicate() -> None:
    frame = _daily_frame(200)
    frame.loc[190, ["x", "target"]] = frame.loc[3, ["x", "target"]].to_numpy()
    frame.loc[150, ["x", "target"]] = frame.loc[5, ["x", "target"]].to_numpy()
    plan = make_splits(frame, _spec(time="time"), data_version="v1")
    assert plan.straddling_removed == 2
    kept = set(np.concatenate([plan.train, plan.validation, plan.test]).tolist())
    assert {3, 5} <= set(plan.train.tolist())
    assert 190 not in kept and 150 not in kept
    assert plan.sizes["dropped"] == 2


def test_numeric_time_gap_is_in_the_column_units() -> None:
    frame = _daily_frame(100).assign(step=np.arange(100) * 10.0)
    train, validation, test = ChronologicalSplitter().split(
        frame, target="target", time="step", gap=25, seed=0
    )
    step = frame["step"]
    assert step.iloc[test].min() == 800.0
    assert step.iloc[validation].max() == 770.0
    assert step.iloc[train].max() <= step.iloc[validation].min() - 25


@pytest.mark.parametrize(
    ("gap", "nanoseconds"),
    [
        ("7d", 7 * NS_PER_DAY),
        ("12h", 12 * 3600 * 10**9),
        ("30min", 1800 * 10**9),
        ("1w", 7 * NS_PER_DAY),
        ("1 days 02:00:00", 26 * 3600 * 10**9),
        (3600, 3600 * 10**9),
        (None, 0),
    ],
)
def test_parse_gap_for_datetime_columns(gap: str | int | None, nanoseconds: int) -> None:
    assert parse_gap(gap, is_datetime=True) == nanoseconds


def test_parse_gap_numbers_stay_in_column_units() -> None:
    assert parse_gap("2.5", is_datetime=False) == 2.5
    assert parse_gap(4, is_datetime=False) == 4.0


# -- duplicates and groups -----------------------------------------------------------------


def _frame_with_duplicates(n: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    X, y = make_classification(n_samples=n, n_features=5, random_state=seed)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]).assign(target=y)
    rng = np.random.default_rng(seed)
    copies = rng.choice(n, size=n // 10, replace=False)
    sources = rng.choice(np.setdiff1d(np.arange(n), copies), size=n // 10, replace=False)
    frame.iloc[copies] = frame.iloc[sources].to_numpy()
    return frame, [*frame.columns]


def _straddling_sets(frame: pd.DataFrame, columns: list[str], parts: list[np.ndarray]) -> int:
    owner = np.full(len(frame), -1)
    for index, part in enumerate(parts):
        owner[part] = index
    keys = frame[columns].groupby(columns, sort=False).ngroup()
    spread = pd.Series(owner).groupby(keys.to_numpy()).nunique()
    return int((spread > 1).sum())


@pytest.mark.parametrize("strategy", ["random", "stratified"])
def test_duplicates_that_straddle_a_naive_split_end_in_one_split(strategy: str) -> None:
    frame, columns = _frame_with_duplicates()
    rest, test = train_test_split(np.arange(len(frame)), test_size=0.2, random_state=0)
    train, validation = train_test_split(rest, test_size=0.25, random_state=0)
    assert _straddling_sets(frame, columns, [train, validation, test]) > 20

    plan = make_splits(frame, _spec(split={"strategy": strategy}), data_version="v1")
    assert _straddling_sets(frame, columns, [plan.train, plan.validation, plan.test]) == 0
    assert plan.straddling_removed == 0
    assert plan.sizes["dropped"] == 0
    assert abs(plan.sizes["test"] - 200) <= 4


def test_near_duplicates_stay_in_one_split() -> None:
    frame, _ = _frame_with_duplicates(400)
    near = frame.iloc[:60].copy()
    near["f0"] = near["f0"] * (1 + 1e-9)
    frame = pd.concat([frame, near], ignore_index=True)
    plan = make_splits(frame, _spec(split={"strategy": "random"}), data_version="v1")
    owner = np.full(len(frame), -1)
    for index, part in enumerate((plan.train, plan.validation, plan.test)):
        owner[part] = index
    assert np.array_equal(owner[:60], owner[400:460])


def test_duplicates_join_groups_in_group_split() -> None:
    frame = example_frame(300, seed=8, n_groups=30, duplicate_share=0.0)
    frame.loc[0, "group"] = 100
    frame.loc[1, "group"] = 101
    frame.loc[1, ["x0", "x1", "colour", "target"]] = frame.loc[0, ["x0", "x1", "colour", "target"]]
    parts = GroupSplitter().split(frame, target="target", group="group", seed=3)
    check_groups_intact(parts, frame, "group")
    linked = frame["group"].isin([100, 101]).to_numpy()
    owners = {i for i, part in enumerate(parts) if linked[part].any()}
    assert len(owners) == 1


def test_union_groupings_known_answer() -> None:
    joined = union_groupings(np.array([0, 0, 1, 2, 3]), np.array([5, 6, 6, 7, 7]))
    assert joined.tolist() == [0, 0, 0, 1, 1]
    assert union_groupings(np.array(["b", "a", "b"])).tolist() == [0, 1, 0]


# -- stratification and plans --------------------------------------------------------------


def test_class_balance_per_split_within_two_points_of_the_whole() -> None:
    X, y = make_classification(
        n_samples=2000, n_features=6, n_classes=3, n_informative=4,
        weights=[0.7, 0.2, 0.1], random_state=1,
    )
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]).assign(target=y)
    frame.iloc[:200] = frame.iloc[1000:1200].to_numpy()
    frame["target"] = frame["target"].astype(int)
    plan = make_splits(frame, _spec("multiclass"), data_version="v1")
    whole = frame["target"].value_counts(normalize=True)
    for part in ("train", "validation", "test"):
        for label, share in plan.class_balance[part].items():
            assert abs(share - whole[int(label)]) <= 0.02, (part, label)
    check_duplicates_intact((plan.train, plan.validation, plan.test), frame, list(frame.columns))


def test_stratified_counts_match_per_class_rounding() -> None:
    frame = pd.DataFrame({"x": np.arange(100.0), "target": [0] * 70 + [1] * 30})
    train, validation, test = StratifiedSplitter().split(frame, target="target", seed=2)
    y = frame["target"].to_numpy()
    assert np.bincount(y[test]).tolist() == [14, 6]
    assert np.bincount(y[validation]).tolist() == [14, 6]
    assert np.bincount(y[train]).tolist() == [42, 18]


def test_same_seed_same_plan_other_seed_other_test_set() -> None:
    frame, _ = _frame_with_duplicates(300)
    first = make_splits(frame, _spec(), data_version="v1")
    again = make_splits(frame, _spec(), data_version="v1")
    other = make_splits(frame, _spec().model_copy(update={"seed": 12}), data_version="v1")
    assert first == again
    assert first.test_fingerprint == again.test_fingerprint
    assert not np.array_equal(first.test, other.test)
    assert first.test_fingerprint != other.test_fingerprint


def test_fingerprint_is_sha256_of_version_and_sorted_test_positions() -> None:
    frame, _ = _frame_with_duplicates(300)
    plan = make_splits(frame, _spec(), data_version="sha256:abc")
    payload = b"sha256:abc\x00" + np.sort(plan.test).astype("<i8").tobytes()
    assert plan.test_fingerprint == "sha256:" + hashlib.sha256(payload).hexdigest()
    plan.verify_test_set("sha256:abc")
    with pytest.raises(LeakageError, match="test set no longer matches its seal"):
        plan.verify_test_set("sha256:other")


def test_rows_without_target_are_dropped_and_counted() -> None:
    frame, _ = _frame_with_duplicates(300)
    frame["target"] = frame["target"].astype(float)
    frame.loc[[4, 50, 51, 299], "target"] = np.nan
    plan = make_splits(frame, _spec(), data_version="v1")
    used = np.concatenate([plan.train, plan.validation, plan.test])
    assert not {4, 50, 51, 299} & set(used.tolist())
    assert plan.sizes["dropped"] == 4
    assert sum(plan.sizes.values()) == 300


def test_plan_round_trips_through_json() -> None:
    frame = _daily_frame(200)
    plan = make_splits(frame, _spec(time="time", split={"gap": "3d"}), data_version="v1")
    data = json.loads(json.dumps(plan.to_dict()))
    restored = SplitPlan.from_dict(data)
    assert restored == plan
    assert restored.test.dtype == np.int64
    assert data["gap"] == "3d" and data["dropped_for_gap"] == plan.dropped_for_gap > 0
    assert plan.take(frame, "test").index.tolist() == plan.test.tolist()


def test_regression_plan_has_no_class_balance() -> None:
    frame = pd.DataFrame({"x": np.arange(60.0), "target": np.linspace(0, 1, 60)})
    plan = make_splits(frame, _spec("regression"), data_version="v1")
    assert plan.strategy == "random"
    assert plan.class_balance == {}


# -- errors ----------------------------------------------------------------------------------


def test_too_small_data_set_names_the_minimum() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "target": [0, 1] * 5})
    with pytest.raises(DataError, match=r"too small to split.*at least 15 rows") as info:
        make_splits(frame, _spec(), data_version="v1")
    assert info.value.received == "10 rows"


def test_class_with_a_single_row_is_named() -> None:
    frame = pd.DataFrame({"x": np.arange(40.0), "target": ["a"] * 20 + ["b"] * 19 + ["rare"]})
    with pytest.raises(DataError, match="class 'rare' of the target has a single row"):
        make_splits(frame, _spec(), data_version="v1")


def test_class_too_small_for_three_splits_is_named_with_its_count() -> None:
    frame = pd.DataFrame({"x": np.arange(40.0), "target": ["a"] * 20 + ["b"] * 18 + ["rare"] * 2})
    with pytest.raises(DataError, match="class 'rare' has 2 rows"):
        make_splits(frame, _spec("multiclass"), data_version="v1")


@pytest.mark.parametrize("strategy", ["group", "random", "stratified"])
def test_group_column_with_a_single_group(strategy: str) -> None:
    frame = example_frame(60, seed=1).assign(site="only")
    spec = _spec(group="site", split={"strategy": strategy})
    with pytest.raises(DataError, match="column 'site': the group column holds a single group"):
        make_splits(frame, spec, data_version="v1")


def test_unparseable_time_values_are_shown() -> None:
    frame = _daily_frame(60)
    frame["time"] = frame["time"].dt.strftime("%Y-%m-%d").astype(object)
    frame.loc[7, "time"] = "not a date"
    message = r"1 of 60 values of the time column do not parse.*'not a date'"
    with pytest.raises(DataError, match=message):
        make_splits(frame, _spec(time="time"), data_version="v1")


def test_missing_times_are_an_error() -> None:
    frame = _daily_frame(60)
    frame.loc[[3, 9], "time"] = pd.NaT
    with pytest.raises(DataError, match="2 rows have no time"):
        make_splits(frame, _spec(time="time"), data_version="v1")


def test_gap_too_large_empties_validation() -> None:
    frame = _daily_frame(100)
    with pytest.raises(DataError, match="gap is so large that the validation split is empty"):
        make_splits(frame, _spec(time="time", split={"gap": "30d"}), data_version="v1")


def test_single_timestamp_cannot_be_cut() -> None:
    frame = _daily_frame(60).assign(time=pd.Timestamp("2024-01-01"))
    with pytest.raises(DataError, match="too few distinct times for a train split"):
        ChronologicalSplitter().split(frame, target="target", time="time")


@pytest.mark.parametrize(
    ("gap", "is_datetime", "message"),
    [
        ("soon", True, "the gap is not a duration"),
        ("7d", False, "a duration needs a datetime time column"),
        (-1, True, "the gap must not be negative"),
        (float("nan"), False, "the gap is not a duration"),
    ],
)
def test_bad_gaps_are_config_errors(gap: object, is_datetime: bool, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_gap(gap, is_datetime=is_datetime)  # type: ignore[arg-type]
    assert info.value.key == "split.gap"


def test_gap_with_a_random_split_is_rejected() -> None:
    frame = _daily_frame(100)
    spec = _spec(time="time", split={"strategy": "random", "gap": "2d"})
    with pytest.raises(ConfigError, match="gap only applies to chronological splits"):
        make_splits(frame, spec, data_version="v1")


def test_missing_target_column_is_named() -> None:
    frame = _daily_frame(60).rename(columns={"target": "label"})
    with pytest.raises(DataError, match="column 'target' is named as data.target"):
        make_splits(frame, _spec(), data_version="v1")


def test_splitter_argument_errors() -> None:
    frame = _daily_frame(60)
    with pytest.raises(ConfigError, match="split.test_size: a split size must be a share"):
        RandomSplitter().split(frame, test_size=0.6)
    with pytest.raises(ConfigError, match="data.time: a chronological split needs a time column"):
        ChronologicalSplitter().split(frame, target="target")
    with pytest.raises(ConfigError, match="data.group: a group split needs a group column"):
        GroupSplitter().split(frame, target="target")
    with pytest.raises(ConfigError, match="data.target: a stratified split needs the target"):
        StratifiedSplitter().split(frame)
