"""Every registered drift test runs the contract of :mod:`assay.testing.drift`."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from assay.data.schema import ColumnSchema
from assay.monitor import DRIFT_TESTS, BaseDriftTest, build_reference, detect_drift, drift_tests
from assay.testing.drift import DriftTestContract

ALIASES = DRIFT_TESTS.names()


def test_every_drift_test_is_registered_and_covered() -> None:
    concrete = [
        obj
        for _, obj in inspect.getmembers(drift_tests, inspect.isclass)
        if issubclass(obj, BaseDriftTest) and not inspect.isabstract(obj)
    ]
    assert {cls.alias for cls in concrete} == set(ALIASES)
    assert TestEveryDriftTest.covered == tuple(ALIASES)


class TestEveryDriftTest(DriftTestContract):
    covered = tuple(ALIASES)

    @pytest.fixture(params=ALIASES)
    def drift_test(self, request: pytest.FixtureRequest) -> BaseDriftTest:
        return DRIFT_TESTS.get(str(request.param))()


@pytest.mark.parametrize("alias", ALIASES)
def test_detect_drift_reports_empty_and_all_missing_windows(alias: str) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=300), "c": rng.choice(np.array(["a", "b", "c"]), 300)}
    )
    schema = [
        ColumnSchema("x", "numeric", "float64", True, 0),
        ColumnSchema("c", "categorical", "str", True, 0),
    ]
    reference = build_reference(frame, schema)
    cls = DRIFT_TESTS.get(alias)
    tests = {f"{kind}_test": alias for kind in ("numeric", "categorical") if kind in cls.kinds}
    empty = detect_drift(reference, frame.iloc[:0], **tests)
    assert not empty.checked and "window too small: 0 rows" in empty.note
    gaps = pd.DataFrame({"x": [np.nan] * 60, "c": pd.Series([None] * 60, dtype=object)})
    report = detect_drift(reference, gaps, **tests)
    assert report.checked
    # every value went missing: a drift in the missing bin, reported on both columns
    assert report.dataset_drift and {c.name for c in report.columns if c.drifted} == {"x", "c"}
    assert all(c.missing_current == 1.0 for c in report.columns)
