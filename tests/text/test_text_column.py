"""The text column of a text-classification task must hold text: a clear error otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay.audit.base import resolve_text_column
from assay.data import Dataset
from assay.errors import ConfigError, DataError


def _dataset(**columns: object) -> Dataset:
    return Dataset.from_frame(pd.DataFrame(columns), source="reviews.csv")


def _reviews(n: int = 50) -> list[str]:
    return [f"the film was {'good' if i % 2 else 'bad'} and long, review {i}" for i in range(n)]


def test_the_configured_or_only_text_column_is_taken() -> None:
    data = _dataset(review=_reviews(), stars=np.arange(50))
    assert resolve_text_column(data, None, ["review", "stars"], "text-classification") == "review"
    assert resolve_text_column(data, "review", ["review", "stars"], "text-classification") == "review"
    # a tabular task keeps what was configured, and needs no text
    assert resolve_text_column(data, None, ["review", "stars"], "binary") is None


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.linspace(0.1, 9.9, 50), "numeric"),
        (np.arange(50), "integer"),
        ([True, False] * 25, "boolean"),
        (pd.date_range("2024-01-01", periods=50), "datetime"),
    ],
)
def test_a_column_of_numbers_flags_or_dates_is_not_text(values: object, kind: str) -> None:
    data = _dataset(review=_reviews(), other=values)
    with pytest.raises(ConfigError, match=f"holds {kind} values, not free text") as info:
        resolve_text_column(data, "other", ["review", "other"], "text-classification")
    assert info.value.key == "data.text"


def test_a_text_task_without_any_text_column_names_the_key() -> None:
    data = _dataset(stars=np.arange(50), price=np.arange(50) * 1.5)
    with pytest.raises(ConfigError, match="needs a free-text column") as info:
        resolve_text_column(data, None, ["stars", "price"], "text-classification")
    assert info.value.key == "data.text"


def test_a_text_column_with_no_text_at_all_is_a_data_error() -> None:
    data = _dataset(review=["", "   ", None] * 10, stars=np.arange(30))
    with pytest.raises(DataError, match="holds no text") as info:
        resolve_text_column(data, "review", ["review", "stars"], "text-classification")
    assert info.value.column == "review"
