"""The ``store`` fixture: a fresh store per test, on SQLite and (when configured) PostgreSQL.

PostgreSQL runs when ``ASSAY_TEST_POSTGRES_URL`` names a database the tests may wipe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.store import Store
from assay.testing.stores import open_test_store, store_params


@pytest.fixture(params=store_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as opened:
        yield opened
