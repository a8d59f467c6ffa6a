"""Value coercion: NumPy scalars to Python values, and the boolean words."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from assay.data.values import FALSE_WORDS, TRUE_WORDS, native, native_array, parse_bool


def test_numpy_scalars_become_python_values_of_the_matching_type() -> None:
    three = native(np.int64(3))
    assert three == 3 and type(three) is int
    flag = native(np.bool_(True))
    assert flag is True
    half = native(np.float32(0.5))
    assert half == 0.5 and type(half) is float
    word = native(np.str_("a"))
    assert word == "a" and type(word) is str


def test_other_values_pass_unchanged() -> None:
    stamp = pd.Timestamp("2024-03-01 12:00")
    items = [1, "x", None, stamp, [np.int64(1)]]
    assert all(native(v) is v for v in items)


def test_nan_stays_nan_unless_missing_becomes_none() -> None:
    nan = native(np.float32("nan"))
    assert type(nan) is float and math.isnan(nan)
    for missing in (np.float32("nan"), float("nan"), None, pd.NA, pd.NaT, np.datetime64("NaT")):
        assert native(missing, missing_as_none=True) is None
    assert native(np.float64("inf"), missing_as_none=True) == math.inf
    assert native([1, 2], missing_as_none=True) == [1, 2]  # a list is not one missing value


def test_timestamps_become_iso_text_when_asked() -> None:
    stamp = pd.Timestamp("2024-03-01 12:00")
    assert native(stamp, iso_timestamps=True) == "2024-03-01T12:00:00"
    assert native(stamp) is stamp


def test_sequences_are_converted_item_by_item_when_asked() -> None:
    out = native((np.int64(1), [np.float64(2.5), "a"]), sequences=True)
    assert out == [1, [2.5, "a"]]
    assert type(out[0]) is int and type(out[1][0]) is float


def test_native_array_infers_the_dtype_of_an_object_array() -> None:
    assert native_array(np.array([1, 2], dtype=object)).dtype.kind == "i"
    assert native_array(np.array(["a", "b"], dtype=object)).dtype.kind == "U"
    floats = np.array([1.5, 2.5])
    assert native_array(floats) is floats


@pytest.mark.parametrize("word", ["true", "1", "1.0", "yes", "y", "t"])
def test_true_words_in_either_case(word: str) -> None:
    assert word in TRUE_WORDS
    assert parse_bool(word) is True and parse_bool(f" {word.upper()} ") is True


@pytest.mark.parametrize("word", ["false", "0", "0.0", "no", "n", "f"])
def test_false_words_in_either_case(word: str) -> None:
    assert word in FALSE_WORDS
    assert parse_bool(word) is False and parse_bool(f" {word.upper()} ") is False


@pytest.mark.parametrize("text", ["maybe", "", "2", "yess", "nan"])
def test_other_text_is_neither(text: str) -> None:
    assert parse_bool(text) is None


def test_the_vocabularies_do_not_overlap() -> None:
    assert not TRUE_WORDS & FALSE_WORDS
