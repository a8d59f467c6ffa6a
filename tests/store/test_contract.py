"""The shipped store contract, run on every configured backend (see conftest.py)."""

from __future__ import annotations

from assay.testing.stores import StoreContract


class TestStoreContract(StoreContract):
    """SQLite always; PostgreSQL when ASSAY_TEST_POSTGRES_URL is set."""
