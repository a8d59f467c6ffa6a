"""The reference profile: known bins and shares, samples, skips, errors, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.data.schema import ColumnSchema, infer_schema
from assay.errors import ConfigError, DataError
from assay.monitor import CONFIDENCE, PREDICTION, ReferenceProfile, build_reference
from assay.monitor.reference import level_codes


def _schema(frame: pd.DataFrame) -> tuple[ColumnSchema, ...]:
    return infer_schema(frame).columns


def test_numeric_bins_are_deciles_with_open_outer_bins() -> None:
    frame = pd.DataFrame({"x": np.arange(1.0, 101.0)})
    profile = build_reference(frame, _schema(frame))["x"]
    assert profile.kind == "numeric"
    np.testing.assert_array_equal(profile.edges, np.quantile(frame["x"], np.arange(1, 10) / 10))
    assert profile.shares == pytest.approx([0.1] * 10)
    assert profile.missing_share == 0.0
    # open-ended outer bins: values far outside the training range land in the end bins
    counts, _ = profile.bin_counts(pd.Series([-1e9, 1e9, 50.0, None]))
    assert counts.tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1]


def test_tied_quantiles_are_merged_and_missing_is_its_own_share() -> None:
    frame = pd.DataFrame({"k": [0] * 60 + [1] * 30 + [None] * 10}, dtype="Int64")
    profile = build_reference(frame, [ColumnSchema("k", "integer", "Int64", True, 2)])["k"]
    assert profile.edges == (0.0, 1.0)
    assert profile.shares == pytest.approx([0.0, 0.6, 0.3])
    assert profile.missing_share == pytest.approx(0.1)
    assert profile.distribution.sum() == pytest.approx(1.0)


def test_bin_counts_match_a_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=500)})
    profile = build_reference(frame, _schema(frame))["x"]
    current = np.r_[rng.normal(0.5, 2.0, 300), profile.edges[:3], [np.nan] * 7]
    counts, values = profile.bin_counts(pd.Series(current))
    expected = [0] * (len(profile.edges) + 2)
    for value in current:
        if np.isnan(value):
            expected[-1] += 1
        else:
            expected[sum(edge <= value for edge in profile.edges)] += 1
    assert counts.tolist() == expected
    assert values is not None
    np.testing.assert_array_equal(values[:-7], np.sort(current[~np.isnan(current)]))


def test_categorical_levels_by_frequency_with_unseen_and_missing() -> None:
    frame = pd.DataFrame({"plan": ["b"] * 5 + ["a"] * 3 + ["c"] * 1 + [None]})
    profile = build_reference(frame, _schema(frame))["plan"]
    assert profile.kind == "categorical"
    assert profile.levels == ("b", "a", "c")
    assert profile.shares == pytest.approx([0.5, 0.3, 0.1, 0.0])  # the unseen bin is 0
    assert profile.missing_share == pytest.approx(0.1)
    counts, values = profile.bin_counts(pd.Series(["a", "zz", "zz", None, "b", "new"]))
    assert counts.tolist() == [1, 1, 0, 3, 1]
    assert values is None


def test_levels_match_across_number_and_string_forms() -> None:
    codes = level_codes(pd.Series([1, 2, None, 7]), ["1", "2"])
    assert codes.tolist() == [0, 1, 3, 2]
    assert level_codes(pd.Series([1.0, 2.0]), ["1", "2"]).tolist() == [0, 1]
    assert level_codes(pd.Series(["1", "2"]), ["1", "2"]).tolist() == [0, 1]
    assert level_codes(pd.Series([True, False, None]), ["False", "True"]).tolist() == [1, 0, 3]


def test_boolean_column_is_profiled_by_level() -> None:
    frame = pd.DataFrame({"member": [True, False, False, False]})
    profile = build_reference(frame, _schema(frame))["member"]
    assert profile.levels == ("False", "True")
    assert profile.shares == pytest.approx([0.75, 0.25, 0.0])


def test_text_and_datetime_columns_are_skipped_with_the_reason() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.5, 2.5, 3.5],
            "note": ["the quick brown fox jumps", "over the lazy dog today", "a b c d e f"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        }
    )
    reference = build_reference(frame, _schema(frame))
    assert [p.name for p in reference.columns] == ["x"]
    reasons = {s.name: (s.kind, s.reason) for s in reference.skipped}
    assert reasons["note"][0] == "text" and "embeddings" in reasons["note"][1]
    assert reasons["when"][0] == "datetime" and "time moves forward" in reasons["when"][1]


def test_too_many_levels_is_skipped() -> None:
    frame = pd.DataFrame({"id": [f"u{i}" for i in range(50)]})
    reference = build_reference(
        frame, [ColumnSchema("id", "categorical", "str", False, 50)], max_levels=20
    )
    assert "id" not in reference
    assert "50 distinct levels" in reference.skipped[0].reason


def test_sample_is_sorted_bounded_seeded_and_per_column(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    schema = _schema(frame)
    one = build_reference(frame, schema, sample=500, seed=seed)
    sample = one["a"].sample
    assert sample.size == 500
    assert np.all(np.diff(sample) >= 0)
    assert np.isin(sample, frame["a"].to_numpy()).all()
    assert np.unique(sample).size == 500  # drawn without replacement
    again = build_reference(frame, schema, sample=500, seed=seed)
    np.testing.assert_array_equal(again["a"].sample, sample)
    other_seed = build_reference(frame, schema, sample=500, seed=seed + 1)
    assert not np.array_equal(other_seed["a"].sample, sample)
    # a column's sample does not depend on the other columns
    alone = build_reference(frame[["a"]], [schema[0]], sample=500, seed=seed)
    np.testing.assert_array_equal(alone["a"].sample, sample)
    # a small column keeps every non-missing value
    small = build_reference(frame.head(100), schema, sample=500)
    np.testing.assert_array_equal(small["a"].sample, np.sort(frame["a"].head(100)))


def test_model_outputs_are_profiled_under_reserved_names(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=400)})
    labels = rng.choice(["yes", "no"], size=400, p=[0.3, 0.7])
    reference = build_reference(
        frame, _schema(frame), prediction=labels, confidence=rng.random(400)
    )
    assert reference.prediction is not None and reference.prediction.name == PREDICTION
    assert reference.prediction.kind == "categorical"
    assert reference.prediction.levels == ("no", "yes")
    assert reference.confidence is not None and reference.confidence.name == CONFIDENCE
    assert reference.confidence.kind == "numeric"
    assert [p.name for p in reference.features] == ["x"]
    regression = build_reference(frame, _schema(frame), prediction=rng.normal(size=400))
    assert regression[PREDICTION].kind == "numeric"
    integer_classes = build_reference(frame, _schema(frame), prediction=rng.integers(0, 3, 400))
    assert integer_classes[PREDICTION].levels is not None
    assert sorted(integer_classes[PREDICTION].levels) == ["0", "1", "2"]


def test_json_round_trip_of_both_sample_encodings(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=2000),
            "visits": rng.poisson(3.0, 2000),
            "plan": rng.choice(["a", "b", "c"], 2000),
        }
    )
    frame.loc[::17, "x"] = np.nan
    reference = build_reference(frame, _schema(frame), prediction=rng.integers(0, 2, 2000))
    data = json.loads(json.dumps(reference.to_dict()))
    encodings = {c["name"]: c["sample"]["encoding"] for c in data["columns"] if "sample" in c}
    assert encodings == {"x": "float64-le-base64", "visits": "runs-float64-le-base64"}
    back = ReferenceProfile.from_dict(data)
    assert back == reference
    np.testing.assert_array_equal(back["visits"].sample, reference["visits"].sample)
    # compact: the counted-values encoding is far smaller than one value per entry
    assert len(json.dumps(data["columns"][1])) < 2000


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64)),
        min_size=1,
        max_size=60,
    ),
    levels=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=60),
)
def test_round_trip_property(values: list[float | None], levels: list[str | None]) -> None:
    n = min(len(values), len(levels))
    frame = pd.DataFrame(
        {"x": pd.Series(values[:n], dtype="float64"), "c": pd.Series(levels[:n], dtype=object)}
    )
    columns = [
        ColumnSchema("x", "numeric", "float64", True, 0),
        ColumnSchema("c", "categorical", "object", True, 0),
    ]
    reference = build_reference(frame, columns, sample=20)
    assert ReferenceProfile.from_dict(json.loads(json.dumps(reference.to_dict()))) == reference
    for profile in reference:
        assert profile.distribution.sum() == pytest.approx(1.0)


def test_malformed_profile_is_a_data_error() -> None:
    with pytest.raises(
        DataError, match="reference profile: the reference profile has an unknown format"
    ):
        ReferenceProfile.from_dict({"columns": []})
    with pytest.raises(DataError, match="is malformed .*KeyError.*Rebuild it with"):
        ReferenceProfile.from_dict({"format": 1, "columns": [{"name": "x"}]})


def test_input_errors_name_the_problem() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    schema = _schema(frame)
    with pytest.raises(
        DataError, match=r"column 'age': .*not in the reference frame .*got columns: x"
    ):
        build_reference(frame, [ColumnSchema("age", "numeric", "float64", False, 3)])
    with pytest.raises(DataError, match="reference frame: the reference frame has no rows"):
        build_reference(frame.head(0), schema)
    with pytest.raises(
        ConfigError, match=r"bins: .*out of range \(expected an integer >= 2, got 1\)"
    ):
        build_reference(frame, schema, bins=1)
    with pytest.raises(ConfigError, match="sample: .*expected an integer >= 1"):
        build_reference(frame, schema, sample=0)
    with pytest.raises(
        DataError, match=r"predictions do not match .*one value per reference row \(3\), got 2"
    ):
        build_reference(frame, schema, prediction=[1, 0])
    reserved = frame.rename(columns={"x": PREDICTION})
    with pytest.raises(DataError, match="is reserved for the model outputs"):
        build_reference(reserved, _schema(reserved))
