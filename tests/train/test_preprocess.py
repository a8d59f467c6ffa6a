"""build_preprocessor: a branch per column kind, fitted on training rows, robust at predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from assay.data.schema import infer_schema
from assay.errors import DataError
from assay.train.preprocess import MISSING_CATEGORY, build_preprocessor


def _dense(matrix: object) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


@pytest.fixture
def train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 100.0],
            "n": pd.array([1, 2, 3, None, 5], dtype="Int64"),
            "b": [True, False, True, True, False],
            "c": pd.Series(["a", "a", None, "b", "a"], dtype="str"),
            "t": pd.to_datetime(
                ["2024-03-15 13:00", "2024-01-01", "2023-12-31 23:00", None, "2024-06-01"],
                format="mixed",
            ),
        }
    )


def _columns(pre: object, prefix: str) -> list[int]:
    names = list(pre.get_feature_names_out())  # type: ignore[attr-defined]
    return [i for i, name in enumerate(names) if name.startswith(prefix)]


def test_numeric_median_imputation_and_missing_indicator_come_from_training_rows(
    train: pd.DataFrame,
) -> None:
    pre = build_preprocessor(infer_schema(train), ["x"], scale=False, text_column=None)
    pre.fit(train)
    names = list(pre.get_feature_names_out())
    assert names == ["numeric__x", "numeric__missingindicator_x"]
    # the median of the training values 1, 2, 4, 100 is 3, whatever is predicted later
    out = _dense(pre.transform(pd.DataFrame({"x": [np.nan, 1e9, np.nan]})))
    np.testing.assert_array_equal(out[:, 0], [3.0, 1e9, 3.0])
    np.testing.assert_array_equal(out[:, 1], [1.0, 0.0, 1.0])


def test_scaling_is_standardisation_on_training_rows(train: pd.DataFrame) -> None:
    pre = build_preprocessor(infer_schema(train), ["x"], scale=True, text_column=None).fit(train)
    imputed = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    out = _dense(pre.transform(train))[:, 0]
    np.testing.assert_allclose(out, (imputed - imputed.mean()) / imputed.std())


def test_nullable_integers_are_numeric(train: pd.DataFrame) -> None:
    pre = build_preprocessor(infer_schema(train), ["n"], scale=False, text_column=None).fit(train)
    out = _dense(pre.transform(train))
    np.testing.assert_array_equal(out[:, 0], [1, 2, 3, 2.5, 5])


def test_booleans_become_zero_one_and_tolerate_spellings_and_gaps(train: pd.DataFrame) -> None:
    pre = build_preprocessor(infer_schema(train), ["b"], scale=False, text_column=None).fit(train)
    new = pd.DataFrame({"b": pd.Series(["yes", "false", None, 1, "maybe"], dtype=object)})
    # missing and unreadable values take the training mode (True)
    np.testing.assert_array_equal(_dense(pre.transform(new))[:, 0], [1, 0, 1, 1, 1])


def test_one_hot_keeps_missing_as_a_level_and_tolerates_unseen_levels(
    train: pd.DataFrame,
) -> None:
    pre = build_preprocessor(
        infer_schema(train), ["c"], scale=False, text_column=None, min_frequency=1
    ).fit(train)
    names = list(pre.get_feature_names_out())
    assert names == [f"categorical__c_{MISSING_CATEGORY}", "categorical__c_a", "categorical__c_b"]
    new = pd.DataFrame({"c": pd.Series(["b", "never-seen", None], dtype="str")})
    np.testing.assert_array_equal(_dense(pre.transform(new)), [[0, 0, 1], [0, 0, 0], [1, 0, 0]])


def test_rare_and_unseen_levels_share_the_infrequent_column(train: pd.DataFrame) -> None:
    pre = build_preprocessor(
        infer_schema(train), ["c"], scale=False, text_column=None, min_frequency=2
    ).fit(train)
    assert list(pre.get_feature_names_out()) == [
        "categorical__c_a",
        "categorical__c_infrequent_sklearn",
    ]
    new = pd.DataFrame({"c": pd.Series(["b", "zzz", "a"], dtype="str")})
    np.testing.assert_array_equal(_dense(pre.transform(new)), [[0, 1], [0, 1], [1, 0]])


def test_ordinal_codes_for_trees_map_unseen_levels_to_minus_one(train: pd.DataFrame) -> None:
    pre = build_preprocessor(
        infer_schema(train),
        ["c"],
        scale=False,
        text_column=None,
        categorical="ordinal",
        min_frequency=1,
    ).fit(train)
    new = pd.DataFrame({"c": pd.Series(["a", "b", "zzz"], dtype="str")})
    # levels sort as __missing__, a, b
    np.testing.assert_array_equal(_dense(pre.transform(new))[:, 0], [1, 2, -1])


def test_datetimes_expand_to_calendar_parts(train: pd.DataFrame) -> None:
    pre = build_preprocessor(infer_schema(train), ["t"], scale=False, text_column=None).fit(train)
    assert list(pre.get_feature_names_out()) == [
        "datetime__t_year",
        "datetime__t_month",
        "datetime__t_dayofweek",
        "datetime__t_hour",
    ]
    new = pd.DataFrame({"t": pd.Series(["2024-03-15 13:00", "not a date"], dtype=object)})
    out = _dense(pre.transform(new))
    np.testing.assert_array_equal(out[0], [2024, 3, 4, 13])  # a Friday
    # an unparseable date takes the training medians (years 2024,2024,2023,2024 -> 2024)
    assert out[1, 0] == 2024


def test_datetimes_as_epoch_seconds(train: pd.DataFrame) -> None:
    pre = build_preprocessor(
        infer_schema(train), ["t"], scale=False, text_column=None, datetime="epoch"
    ).fit(train)
    out = _dense(pre.transform(pd.DataFrame({"t": pd.to_datetime(["1970-01-02"])})))
    assert out[0, 0] == 86_400.0


def test_text_column_is_tfidf_with_the_training_vocabulary() -> None:
    frame = pd.DataFrame(
        {"note": pd.Series(["red apple pie", "green apple", None, "red car"], dtype="str")}
    )
    pre = build_preprocessor(infer_schema(frame), [], scale=False, text_column="note").fit(frame)
    names = [n.split("__")[1] for n in pre.get_feature_names_out()]
    assert names == ["apple", "car", "green", "pie", "red"]
    out = _dense(pre.transform(pd.DataFrame({"note": ["banana", None, "red red"]})))
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(out[1], 0.0)
    assert out[2, names.index("red")] == pytest.approx(1.0)


def test_every_kind_together_never_raises_on_hostile_rows(train: pd.DataFrame) -> None:
    schema = infer_schema(train)
    pre = build_preprocessor(schema, list(train.columns), scale=True, text_column=None).fit(train)
    hostile = pd.DataFrame(
        {
            "x": [None, "oops"],
            "n": [None, 7],
            "b": [None, "no"],
            "c": [None, "new"],
            "t": [None, "garbage"],
            "extra": [1, 2],
        }
    )
    out = _dense(pre.transform(hostile))
    assert out.shape == (2, len(pre.get_feature_names_out()))
    assert np.isfinite(out).all()


def test_an_unknown_feature_is_a_data_error_naming_it(train: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"column 'income': feature is not a column"):
        build_preprocessor(infer_schema(train), ["x", "income"], scale=False, text_column=None)


def test_no_features_is_a_data_error(train: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="there are no feature columns to train on"):
        build_preprocessor(infer_schema(train), [], scale=False, text_column=None)
