"""Plain-JSON conversion of what the store writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay.config.spec import StoreSpec
from assay.data.schema import ColumnSchema, Schema
from assay.errors import StoreError
from assay.store import to_jsonable
from assay.store.serialize import dumps


def test_numpy_values_become_python_values() -> None:
    value = {"auc": np.float64(0.8), "n": np.int64(3), "ok": np.bool_(True), "v": np.arange(3)}
    plain = to_jsonable(value)
    assert plain == {"auc": 0.8, "n": 3, "ok": True, "v": [0, 1, 2]}
    assert [type(plain[k]) for k in ("auc", "n", "ok")] == [float, int, bool]
    json.dumps(plain)


def test_non_finite_floats_become_null() -> None:
    assert to_jsonable([float("nan"), np.inf, -np.inf, 1.0]) == [None, None, None, 1.0]
    assert dumps({"x": float("nan")}) == '{"x":null}'


def test_objects_with_to_dict_and_pydantic_models() -> None:
    schema = Schema((ColumnSchema("age", "integer", "int64", False, 40, None, 18, 90),))
    assert to_jsonable(schema)["columns"][0]["name"] == "age"
    assert to_jsonable(StoreSpec(url="sqlite:///x.db")) == {
        "url": "sqlite:///x.db",
        "artifacts": None,
    }


def test_datetimes_paths_and_sets() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert to_jsonable({"at": when, "p": Path("/a/b"), "s": {2, 1}}) == {
        "at": "2026-01-02T03:04:05+00:00",
        "p": "/a/b",
        "s": [1, 2],
    }


def test_unconvertible_value_names_its_key_path() -> None:
    @dataclass
    class Opaque:
        x: Any

    with pytest.raises(StoreError, match=r"metrics\.per_slice\[1\]: a value cannot be stored"):
        to_jsonable({"per_slice": [1, Opaque(2)]}, "metrics")
