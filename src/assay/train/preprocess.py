"""Preprocessing: turn a frame of mixed columns into the numeric matrix a model needs.

The transformer returned by :func:`build_preprocessor` is unfitted; it is the first
step of every model pipeline, so it is fitted on training rows only and travels
with the model to serving. At predict time it never raises on missing values or on
categories it has not seen: missing numbers are imputed, unseen categories fall into
the "infrequent" bucket (or an all-zero row), unparseable dates become missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

from assay.data.schema import Schema
from assay.data.values import parse_bool
from assay.errors import DataError

__all__ = [
    "MISSING_CATEGORY",
    "BooleanEncoder",
    "CategoryStrings",
    "DatetimeExpander",
    "NumericCoercer",
    "TextColumn",
    "build_preprocessor",
]

#: the level that stands for a missing categorical value
MISSING_CATEGORY = "__missing__"


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        return X.to_frame()
    return pd.DataFrame(np.asarray(X, dtype=object).reshape(len(X), -1))


def _names(transformer: Any, input_features: Sequence[str] | None) -> list[str]:
    if input_features is not None:
        return [str(n) for n in input_features]
    return list(getattr(transformer, "feature_names_in_", []))


class NumericCoercer(TransformerMixin, BaseEstimator):
    """Columns to floats; values that do not parse as numbers become NaN."""

    def fit(self, X: Any, y: Any = None) -> NumericCoercer:
        """Record the input column names."""
        self.feature_names_in_ = np.asarray([str(c) for c in _as_frame(X).columns], dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """A float matrix with NaN for missing or non-numeric values."""
        frame = _as_frame(X)
        out = np.empty(frame.shape, dtype=float)
        for j, name in enumerate(frame.columns):
            col = frame[name]
            if pd.api.types.is_bool_dtype(col.dtype):
                col = col.astype(float)
            out[:, j] = pd.to_numeric(col, errors="coerce").astype(float).to_numpy(na_value=np.nan)
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """The input names, unchanged."""
        return np.asarray(_names(self, input_features), dtype=object)


class BooleanEncoder(NumericCoercer):
    """Booleans (or their usual spellings: yes/no, 1/0, t/f) to 1.0/0.0; anything else NaN."""

    def transform(self, X: Any) -> np.ndarray:
        """A 0/1 float matrix with NaN where the value is missing or not a boolean."""
        frame = _as_frame(X)
        out = np.empty(frame.shape, dtype=float)
        for j, name in enumerate(frame.columns):
            out[:, j] = _map_levels(frame[name], _boolean_value, np.nan)
        return out


def _boolean_value(value: Any) -> float:
    parsed = parse_bool(str(value))
    return np.nan if parsed is None else float(parsed)


def _map_levels(series: pd.Series, func: Any, missing: Any) -> np.ndarray:
    """``func`` applied to each distinct non-missing value (fast on repetitive columns)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.asarray([func(v) for v in uniques] + [missing], dtype=object)
    return np.asarray(mapped[codes])  # code -1 (missing) takes the last entry


class CategoryStrings(NumericCoercer):
    """Category values to strings, missing values to :data:`MISSING_CATEGORY`.

    Integral floats are written without the ``.0`` so that a level read as ``3`` in
    training and ``3.0`` at predict time (a column that gained a missing value) match.
    """

    def transform(self, X: Any) -> np.ndarray:
        """An object matrix of strings."""
        frame = _as_frame(X)
        out = np.empty(frame.shape, dtype=object)
        for j, name in enumerate(frame.columns):
            out[:, j] = _map_levels(frame[name], _category_string, MISSING_CATEGORY)
        return out


def _category_string(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING_CATEGORY
    if isinstance(value, float):
        if np.isnan(value):
            return MISSING_CATEGORY
        if value.is_integer():
            return str(int(value))
    return str(value)


class DatetimeExpander(TransformerMixin, BaseEstimator):
    """Datetimes to numbers: calendar parts (year, month, day of week, hour) or epoch seconds.

    Values are read as UTC (naive values are taken to be UTC); values that do not
    parse become NaN and are imputed by the next step.
    """

    def __init__(self, mode: Literal["parts", "epoch"] = "parts") -> None:
        self.mode = mode

    def fit(self, X: Any, y: Any = None) -> DatetimeExpander:
        """Record the input column names."""
        self.feature_names_in_ = np.asarray([str(c) for c in _as_frame(X).columns], dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Per input column, four part columns (``parts``) or one epoch column."""
        frame = _as_frame(X)
        blocks = []
        for name in frame.columns:
            stamps = pd.to_datetime(frame[name], errors="coerce", utc=True, format="mixed")
            if self.mode == "epoch":
                seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
                blocks.append(seconds.to_numpy(dtype=float, na_value=np.nan)[:, None])
                continue
            parts = [stamps.dt.year, stamps.dt.month, stamps.dt.day_of_week, stamps.dt.hour]
            blocks.append(
                np.column_stack([p.to_numpy(dtype=float, na_value=np.nan) for p in parts])
            )
        if not blocks:
            return np.empty((len(frame), 0))
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """``<col>_epoch`` or ``<col>_year``, ``_month``, ``_dayofweek``, ``_hour``."""
        names = _names(self, input_features)
        if self.mode == "epoch":
            return np.asarray([f"{n}_epoch" for n in names], dtype=object)
        suffixes = ("year", "month", "dayofweek", "hour")
        return np.asarray([f"{n}_{s}" for n in names for s in suffixes], dtype=object)


class TextColumn(TransformerMixin, BaseEstimator):
    """One text column to a list of strings (missing -> empty) for a text vectoriser."""

    def fit(self, X: Any, y: Any = None) -> TextColumn:
        """Record the input column name."""
        self.feature_names_in_ = np.asarray([str(c) for c in _as_frame(X).columns], dtype=object)
        return self

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """The input name, unchanged (the vectoriser names the outputs)."""
        return np.asarray(_names(self, input_features), dtype=object)

    def transform(self, X: Any) -> list[str]:
        """The column's values as strings."""
        values = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.ravel(X))
        return [
            "" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in values.tolist()
        ]


def build_preprocessor(
    schema: Schema,
    features: Sequence[str],
    *,
    scale: bool | Literal["standard", "minmax"],
    text_column: str | None,
    categorical: Literal["onehot", "ordinal"] = "onehot",
    datetime: Literal["parts", "epoch"] = "parts",
    min_frequency: int | float = 5,
    text_options: Mapping[str, Any] | None = None,
) -> ColumnTransformer:
    """An unfitted ColumnTransformer for ``features``, one branch per column kind.

    Args:
        schema: the data set's schema; each feature's kind chooses its branch.
        features: the feature columns (target, id and other roles already removed).
        scale: rescale numeric outputs (linear models, neural nets, kernels; not trees):
            ``True`` or ``"standard"`` standardises them, ``"minmax"`` maps the
            training range to [0, 1] (a column that is nearly constant stays nearly
            constant, where standardising would blow its rare values up).
        text_column: the free-text column; it is vectorised with TF-IDF whatever its
            inferred kind, and added to ``features`` when missing from it.
        categorical: one-hot (linear models, nets) or ordinal codes (trees).
        datetime: calendar parts or epoch seconds.
        min_frequency: categories rarer than this (a count, or a fraction of rows)
            are grouped into one "infrequent" level, where unseen levels also go.
        text_options: keyword arguments for the ``TfidfVectorizer`` (e.g. ``ngram_range``).

    Numeric and integer columns get median imputation plus a missing indicator;
    booleans become 0/1 (mode-imputed); categoricals get a constant "missing" level.
    """
    names = list(dict.fromkeys([*features, *([text_column] if text_column else [])]))
    for name in names:
        if name not in schema:
            raise DataError(
                "feature is not a column of the data set",
                column=name,
                expected="one of: " + ", ".join(schema.names[:20]),
                received=name,
                fix="Remove it from the feature list or check the column name.",
            )
    if not names:
        raise DataError(
            "there are no feature columns to train on",
            expected="at least one feature column",
            received="an empty feature list",
            fix="Keep at least one column besides the target, id, time, group and dropped ones.",
        )
    by_kind: dict[str, list[str]] = {}
    for name in names:
        kind = "text" if name == text_column else schema[name].kind
        by_kind.setdefault(kind, []).append(name)

    numeric_steps: list[tuple[str, Any]] = [
        ("coerce", NumericCoercer()),
        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
    ]
    if scale:
        numeric_steps.append(("scale", _scaler(scale)))
    encoder: Any
    if categorical == "onehot":
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=min_frequency, sparse_output=True
        )
    else:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, min_frequency=min_frequency
        )
    date_steps: list[tuple[str, Any]] = [
        ("expand", DatetimeExpander(mode=datetime)),
        ("impute", SimpleImputer(strategy="median")),
    ]
    if scale:
        date_steps.append(("scale", _scaler(scale)))

    branches: list[tuple[str, Any, Any]] = []
    if cols := by_kind.get("numeric", []) + by_kind.get("integer", []):
        branches.append(("numeric", Pipeline(numeric_steps), cols))
    if cols := by_kind.get("boolean", []):
        boolean = Pipeline(
            [("encode", BooleanEncoder()), ("impute", SimpleImputer(strategy="most_frequent"))]
        )
        branches.append(("boolean", boolean, cols))
    if cols := by_kind.get("categorical", []):
        branches.append(
            ("categorical", Pipeline([("strings", CategoryStrings()), ("encode", encoder)]), cols)
        )
    if cols := by_kind.get("datetime", []):
        branches.append(("datetime", Pipeline(date_steps), cols))
    options = {"max_features": 20_000, "sublinear_tf": True, **dict(text_options or {})}
    for name in by_kind.get("text", []):
        text = Pipeline([("strings", TextColumn()), ("tfidf", TfidfVectorizer(**options))])
        branches.append((f"text_{name}", text, [name]))
    return ColumnTransformer(branches, remainder="drop", sparse_threshold=0.3)


def _scaler(scale: bool | str) -> Any:
    if scale is True or scale == "standard":
        return StandardScaler()
    if scale == "minmax":
        return MinMaxScaler()
    raise ValueError(f"scale must be a bool, 'standard' or 'minmax', not {scale!r}")
