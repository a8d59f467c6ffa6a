"""The schema of a data set: what each column holds, as later stages need to know it.

The schema is inferred once at load time and stored with every model version, so
serving and batch scoring can validate new records against what training saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["ColumnKind", "ColumnSchema", "Schema", "infer_kind", "infer_schema"]

ColumnKind = Literal["numeric", "integer", "boolean", "categorical", "text", "datetime"]

#: at most this many category levels are recorded per column
MAX_RECORDED_LEVELS = 200
#: a string column whose values average this many words or more, and are mostly
#: distinct, is free text rather than a category
TEXT_MIN_WORDS = 4.0


@dataclass(frozen=True)
class ColumnSchema:
    """One column: its kind, nullability and observed domain."""

    name: str
    kind: ColumnKind
    dtype: str
    nullable: bool
    n_unique: int
    categories: tuple[str, ...] | None = None
    min: float | str | None = None
    max: float | str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.categories is not None:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSchema:
        cats = data.get("categories")
        return cls(**{**data, "categories": tuple(cats) if cats is not None else None})


@dataclass(frozen=True)
class Schema:
    """The ordered columns of a data set."""

    columns: tuple[ColumnSchema, ...] = field(default_factory=tuple)

    def __getitem__(self, name: str) -> ColumnSchema:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(col.name == name for col in self.columns)

    @property
    def names(self) -> list[str]:
        return [col.name for col in self.columns]

    def of_kind(self, *kinds: ColumnKind) -> list[str]:
        """Names of the columns whose kind is one of ``kinds``."""
        return [col.name for col in self.columns if col.kind in kinds]

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [col.to_dict() for col in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        return cls(tuple(ColumnSchema.from_dict(c) for c in data["columns"]))


def infer_kind(series: pd.Series) -> ColumnKind:
    """The kind of a column, from its dtype and, for strings, its values."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        values = series.dropna().to_numpy()
        if values.size and np.all(np.mod(values, 1) == 0) and np.abs(values).max() < 2**53:
            return "integer"
        return "numeric"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    return "text" if _looks_like_text(series) else "categorical"


def _looks_like_text(series: pd.Series) -> bool:
    sample = series.dropna()
    if sample.empty:
        return False
    if len(sample) > 2000:
        sample = sample.sample(2000, random_state=0)
    strings = sample.astype(str)
    words = strings.str.split().str.len().mean()
    distinct = strings.nunique() / len(strings)
    return bool(words >= TEXT_MIN_WORDS and distinct >= 0.5)


def infer_schema(frame: pd.DataFrame) -> Schema:
    """Infer the schema of every column of ``frame``."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        kind = infer_kind(series)
        non_null = series.dropna()
        n_unique = int(non_null.nunique())
        categories: tuple[str, ...] | None = None
        lo: float | str | None = None
        hi: float | str | None = None
        if kind in ("categorical", "boolean") and n_unique <= MAX_RECORDED_LEVELS:
            categories = tuple(sorted(str(v) for v in non_null.unique()))
        elif kind in ("numeric", "integer") and not non_null.empty:
            lo, hi = float(non_null.min()), float(non_null.max())
        elif kind == "datetime" and not non_null.empty:
            lo, hi = str(non_null.min()), str(non_null.max())
        columns.append(
            ColumnSchema(
                name=str(name),
                kind=kind,
                dtype=str(series.dtype),
                nullable=bool(series.isna().any()),
                n_unique=n_unique,
                categories=categories,
                min=lo,
                max=hi,
            )
        )
    return Schema(tuple(columns))
